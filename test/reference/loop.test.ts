/** The Loop node: iteration semantics, per-iteration batch norms and taps. */
import assert from "node:assert/strict"
import { describe, test } from "node:test"
import * as Net from "../../src/dsl/Net.ts"
import { apply, init, type Params, type State, type Tensor } from "../../src/interpreters/reference/index.ts"
import { generate, make } from "../../src/interpreters/reference/Tensor.ts"
import { check } from "../../src/interpreters/shape-check/index.ts"
import { assertClose, assertTensor } from "./helpers.ts"

const body = Net.seq(
  Net.scope("conv", Net.conv2d(4, 3)),
  Net.scope("bn", Net.batchNorm()),
  Net.relu,
  Net.tap("t"),
)
const feedback = Net.seq(Net.scope("conv", Net.conv2d(3, 1)), Net.sigmoid)
const readout = Net.seq(Net.scope("conv", Net.conv2d(2, 1)), Net.scope("bn", Net.batchNorm()))
const x = generate([2, 4, 4, 3], (i) => Math.cos(i * 0.11))

const renameKeys = (
  record: Readonly<Record<string, Tensor>>,
  f: (key: string) => string,
): Record<string, Tensor> => Object.fromEntries(Object.entries(record).map(([k, v]) => [f(k), v]))

describe("Loop", () => {
  for (const batchNorm of ["shared", "perIteration"] as const)
    test(`one iteration equals body → readout (${batchNorm} batch norms)`, () => {
      const once = Net.loop({ iterations: 1, body, feedback, readout, batchNorm })
      const plain = Net.seq(Net.scope("body", body), Net.scope("readout", readout))
      const { params, state } = init(once, [4, 4, 3], 3)
      // the plain network's names are the loop's without `@0`
      const strip = (k: string) => k.replace("@0", "")
      const plainParams = renameKeys(params, strip)
      const plainState = renameKeys(state, strip)
      assert.deepEqual(
        Object.keys(plainParams)
          .filter((k) => !k.startsWith("feedback/"))
          .sort(),
        check(plain, [4, 4, 3])
          .summary.params.map((p) => p.path)
          .sort(),
      )
      for (const mode of ["train", "eval"] as const) {
        const a = apply(once, params, state, x, mode)
        const b = apply(plain, plainParams, plainState, x, mode)
        assertClose(a.y, b.y)
        assertClose(a.taps.t!, b.taps.t!)
        assertClose(a.taps["t@0"]!, b.taps.t!)
        for (const [k, v] of Object.entries(a.state)) assertClose(v, b.state[strip(k)]!)
      }
    })

  test("h₀ = body(x), hₖ = body(x ⊙ feedback(hₖ₋₁)); taps t@0, t@1, t@2 and t (the last)", () => {
    // body: 1×1 conv with weight 2, then tap; feedback and readout: identity. h₀ = 2x, h₁ = 2·x·2x, h₂ = 2·x·4x².
    const net = Net.loop({
      iterations: 3,
      body: Net.seq(Net.scope("w", Net.conv2d(1, 1, { bias: false })), Net.tap("t")),
      feedback: Net.identity,
      readout: Net.identity,
    })
    const params: Params = { "body/w/kernel": make([1, 1, 1, 1], [2]) }
    const r = apply(net, params, {}, make([1, 1, 3, 1], [1, 2, 3]), "eval")
    assertTensor(r.taps["t@0"]!, [1, 1, 3, 1], [2, 4, 6])
    assertTensor(r.taps["t@1"]!, [1, 1, 3, 1], [4, 16, 36])
    assertTensor(r.taps["t@2"]!, [1, 1, 3, 1], [8, 64, 216])
    assertTensor(r.taps.t!, [1, 1, 3, 1], [8, 64, 216])
    assertTensor(r.y, [1, 1, 3, 1], [8, 64, 216])
    assert.deepEqual(Object.keys(r.taps).sort(), Object.keys(check(net, [1, 3, 1]).summary.taps).sort())
  })

  test("feedback and readout: y = readout(body(x ⊙ feedback(body(x))))", () => {
    const net = Net.loop({
      iterations: 2,
      body: Net.scope("w", Net.conv2d(1, 1, { bias: false })),
      feedback: Net.seq(Net.sigmoid, Net.tap("gate")),
      readout: Net.seq(Net.relu, Net.tap("y")),
    })
    const xs = [-1, 0.5, 2]
    const r = apply(net, { "body/w/kernel": make([1, 1, 1, 1], [2]) }, {}, make([1, 1, 3, 1], xs), "eval")
    const s = (v: number) => 1 / (1 + Math.exp(-v))
    const h1 = xs.map((v) => 2 * v * s(2 * v))
    assertTensor(
      r.y,
      [1, 1, 3, 1],
      h1.map((v) => Math.max(v, 0)),
    )
    assertTensor(
      r.taps["gate@1"]!,
      [1, 1, 3, 1],
      xs.map((v) => s(2 * v)),
    )
    assertTensor(r.taps["y@0"]!, [1, 1, 3, 1], [0, 1, 4])
    assert.equal(r.taps["gate@0"], undefined) // feedback only runs from the second iteration
  })

  describe("batch norms in train mode", () => {
    // body: BN (γ 1, β 0, eps 0, momentum 0.5); x = [1, 3] (B 2, C 1).
    // k = 0: μ 2, σ² 1 (unbiased 2) → h₀ = [−1, 1]. k = 1: input x ⊙ h₀ = [−1, 3]: μ 1, σ² 4 (unbiased 8) → [−1, 1].
    const bn = Net.scope("bn", Net.batchNorm({ eps: 0, momentum: 0.5 }))
    const input = make([2, 1], [1, 3])
    const one = (v: number) => make([1], [v])

    test("per iteration: body/bn@0 and body/bn@1 each see one batch", () => {
      const net = Net.loop({ iterations: 2, body: bn, feedback: Net.identity, readout: Net.identity })
      const params: Params = {
        "body/bn@0/gamma": one(1),
        "body/bn@0/beta": one(0),
        "body/bn@1/gamma": one(1),
        "body/bn@1/beta": one(0),
      }
      const state: State = {
        "body/bn@0/mean": one(0),
        "body/bn@0/variance": one(1),
        "body/bn@1/mean": one(0),
        "body/bn@1/variance": one(1),
      }
      const r = apply(net, params, state, input, "train")
      assertTensor(r.y, [2, 1], [-1, 1])
      assertTensor(r.state["body/bn@0/mean"]!, [1], [1])
      assertTensor(r.state["body/bn@0/variance"]!, [1], [0.5 + 0.5 * 2])
      assertTensor(r.state["body/bn@1/mean"]!, [1], [0.5])
      assertTensor(r.state["body/bn@1/variance"]!, [1], [0.5 + 0.5 * 8])
    })

    test("shared: body/bn is updated once per iteration, in order", () => {
      const net = Net.loop({
        iterations: 2,
        body: bn,
        feedback: Net.identity,
        readout: Net.identity,
        batchNorm: "shared",
      })
      const r = apply(
        net,
        { "body/bn/gamma": one(1), "body/bn/beta": one(0) },
        { "body/bn/mean": one(0), "body/bn/variance": one(1) },
        input,
        "train",
      )
      assertTensor(r.y, [2, 1], [-1, 1])
      // mean: 0 → 1 → 0.5·1 + 0.5·1; variance: 1 → 1.5 → 0.5·1.5 + 0.5·8
      assertTensor(r.state["body/bn/mean"]!, [1], [1])
      assertTensor(r.state["body/bn/variance"]!, [1], [4.75])
    })
  })
})

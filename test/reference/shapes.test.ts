/**
 * The reference interpreter agrees with the shape checker: output and tap
 * shapes, and exactly the parameters and state the checker declares.
 */
import assert from "node:assert/strict"
import { describe, test } from "node:test"
import * as Net from "../../src/dsl/Net.ts"
import * as Zoo from "../../src/dsl/zoo.ts"
import { apply, init } from "../../src/interpreters/reference/index.ts"
import { generate } from "../../src/interpreters/reference/Tensor.ts"
import { check } from "../../src/interpreters/shape-check/index.ts"
import { recording } from "./helpers.ts"

const agrees = (net: Net.AnyNet, input: readonly number[], batch = 2) => {
  const checked = check(net, input)
  assert.ok(checked.ok, checked.ok ? "" : checked.errors.map((e) => `${e.path}: ${e.message}`).join("\n"))
  const { summary } = checked
  const { params, state } = init(net, input, 42)
  const x = generate([batch, ...input], (i) => Math.sin(0.7 * i + 0.3))
  for (const mode of ["train", "eval"] as const) {
    const readParams = new Set<string>()
    const readState = new Set<string>()
    const r = apply(net, recording(params, readParams), recording(state, readState), x, mode)
    assert.deepEqual(r.y.shape, [batch, ...summary.output])
    assert.ok(r.y.data.every(Number.isFinite))
    assert.deepEqual(Object.keys(r.taps).sort(), Object.keys(summary.taps).sort())
    for (const [name, shape] of Object.entries(summary.taps))
      assert.deepEqual(r.taps[name]!.shape, [batch, ...shape], name)
    // every declared parameter and buffer is used, and nothing else
    assert.deepEqual([...readParams].sort(), summary.params.map((p) => p.path).sort())
    assert.deepEqual([...readState].sort(), summary.state.map((s) => s.path).sort())
    assert.deepEqual(Object.keys(r.state).sort(), Object.keys(state).sort())
    const changed = Object.keys(state).filter((k) => r.state[k] !== state[k])
    assert.deepEqual(changed.sort(), mode === "train" ? Object.keys(state).sort() : [])
  }
}

describe("agreement with the shape checker", () => {
  test("smallResNet({ outputs: 5, widths: [4, 8] }) on 8×8×3", () => {
    agrees(Zoo.smallResNet({ outputs: 5, widths: [4, 8] }), [8, 8, 3])
  })

  test("a small loop with pooling, concat, pixel shuffle and batch norms in every part", () => {
    for (const batchNorm of ["perIteration", "shared"] as const) {
      const net = Net.seq(
        Net.scope("stem", Net.conv2d(3, 3)),
        Net.loop({
          iterations: 3,
          batchNorm,
          body: Net.seq(
            Net.concat(
              Net.scope("a", Net.conv2d(4, 3, { stride: 2 })),
              Net.seq(Net.maxPool(2), Net.scope("b", Net.conv2d(4, 1))),
            ),
            Net.scope("bn", Net.batchNorm()),
            Net.relu,
            Net.tap("feat"),
          ),
          feedback: Net.seq(
            Net.scope("up", Net.conv2d(12, 1)),
            Net.scope("bn", Net.batchNorm()),
            Net.pixelShuffle(2),
            Net.sigmoid,
          ),
          readout: Net.seq(
            Net.residual(Net.seq(Net.scope("c", Net.conv2d(8, 3)), Net.scope("bn", Net.batchNorm()))),
            Net.avgPool(3, { stride: 1, padding: "same" }),
            Net.globalAvgPool,
            Net.scope("fc", Net.dense(5)),
            Net.tap("logits"),
          ),
        }),
      )
      agrees(net, [4, 4, 2])
    }
  })

  test("flatten, reshape, dense, mul", () => {
    agrees(
      Net.seq(
        Net.scope("conv", Net.conv2d(4, 3, { padding: "valid", groups: 2, dilation: 1 })),
        Net.flatten,
        Net.reshape([2, -1]),
        Net.mul(Net.identity, Net.sigmoid),
        Net.flatten,
        Net.scope("fc", Net.dense(3, { bias: false })),
        Net.scope("bn", Net.batchNorm()),
      ),
      [5, 4, 2],
    )
  })
})

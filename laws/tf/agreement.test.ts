/**
 * The tf interpreter agrees with the static and the reference interpreters
 * on generated well-shaped networks:
 * - runtime output and tap shapes equal the shape checker's;
 * - `init`'s parameter count equals the static count; the same seed gives the same parameters;
 * - outputs, taps, new state and gradients equal the float64 reference's.
 *
 * Tolerances: float32 against float64 on values of order 1, through at most
 * ~10 layers including batch norm over small batches: |tf − ref| ≤ 2e-3·(1 + |ref|)
 * for values; gradients compared as vectors, relative error ≤ 2e-2 of the
 * reference norm (float32 accumulation in batch norm's backward).
 */
import assert from "node:assert/strict"
import { before, test } from "node:test"
import * as tf from "@tensorflow/tfjs-core"
import fc from "fast-check"
import * as Net from "../../src/dsl/Net.ts"
import * as Shape from "../../src/dsl/Shape.ts"
import * as Ref from "../../src/interpreters/reference/index.ts"
import * as Check from "../../src/interpreters/shape-check/index.ts"
import { apply } from "../../src/interpreters/tf/apply.ts"
import { valueAndGrad } from "../../src/interpreters/tf/autodiff.ts"
import * as Tf from "../../src/interpreters/tf/index.ts"
import * as Init from "../../src/interpreters/tf/init.ts"
import * as Arb from "../arbitraries/Net.ts"

const runs = { seed: 4242, numRuns: 60 }

before(async () => {
  await Tf.ready("cpu")
})

const toRef = (t: tf.Tensor): Ref.Tensor => Ref.Tensors.make(t.shape, Float64Array.from(t.dataSync()))
const treeToRef = (tree: Init.Tree): Ref.Params =>
  Object.fromEntries(Object.entries(tree).map(([k, v]) => [k, toRef(v)]))

const randomInput = (shape: Shape.Shape, batch: number, seed: number): Float32Array => {
  const rand = Init.prng(seed)
  return Float32Array.from({ length: batch * Shape.size(shape) }, () => 2 * rand() - 1)
}

const close = (actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, tol = 2e-3) => {
  assert.equal(actual.length, expected.length, `${what}: length`)
  for (let i = 0; i < actual.length; i++)
    assert.ok(
      Math.abs(actual[i]! - expected[i]!) <= tol * (1 + Math.abs(expected[i]!)),
      `${what}[${i}]: tf ${actual[i]} vs reference ${expected[i]}`,
    )
}

const netAndInput = Arb.imageShape(7).chain((input) =>
  Arb.wellShaped(input, { loops: true, groups: true, sigmoid: true, head: true }, 5).map((net) => ({
    input,
    net,
  })),
)

test("runtime output and tap shapes equal the static shapes; init's parameter count equals the static count", () => {
  fc.assert(
    fc.property(netAndInput, fc.integer({ min: 2, max: 3 }), ({ input, net }, batch) => {
      const checked = Check.check(net, input)
      assert.ok(checked.ok)
      tf.tidy(() => {
        const { params, state } = Init.init(net, input, 1)
        assert.equal(Init.count(params), checked.summary.cost.params)
        assert.equal(Init.count(state), checked.summary.cost.buffers)
        const x = tf.tensor(randomInput(input, batch, 7), [batch, ...input])
        for (const mode of ["train", "eval"] as const) {
          const r = apply(net, params, state, x, mode)
          assert.deepEqual(r.y.shape, [batch, ...checked.summary.output])
          assert.deepEqual(Object.keys(r.taps).sort(), Object.keys(checked.summary.taps).sort())
          for (const [name, shape] of Object.entries(checked.summary.taps))
            assert.deepEqual(r.taps[name]!.shape, [batch, ...shape], name)
        }
      })
    }),
    runs,
  )
})

test("the same seed gives the same parameters; another seed different ones", () => {
  const net = Net.seq(Net.conv2d(4, 3), Net.batchNorm(), Net.globalAvgPool, Net.dense(2))
  const a = Init.init(net, [5, 5, 2], 11)
  const b = Init.init(net, [5, 5, 2], 11)
  const c = Init.init(net, [5, 5, 2], 12)
  for (const k of Object.keys(a.params)) assert.deepEqual(a.params[k]!.dataSync(), b.params[k]!.dataSync(), k)
  assert.notDeepEqual(a.params["0/kernel"]!.dataSync(), c.params["0/kernel"]!.dataSync())
  Init.dispose(a.params, a.state, b.params, b.state, c.params, c.state)
})

test("forward (output, taps, new state) agrees with the float64 reference, in train and eval modes", () => {
  fc.assert(
    fc.property(netAndInput, fc.integer({ min: 2, max: 3 }), fc.nat(), ({ input, net }, batch, seed) => {
      tf.tidy(() => {
        const { params, state } = Init.init(net, input, seed)
        const xs = randomInput(input, batch, seed + 1)
        const x = tf.tensor(xs, [batch, ...input])
        const rx = Ref.Tensors.make([batch, ...input], Float64Array.from(xs))
        for (const mode of ["train", "eval"] as const) {
          const t = apply(net, params, state, x, mode)
          const r = Ref.apply(net, treeToRef(params), treeToRef(state), rx, mode)
          close(t.y.dataSync(), r.y.data, `${mode} output`)
          for (const name of Object.keys(r.taps))
            close(t.taps[name]!.dataSync(), r.taps[name]!.data, `${mode} tap ${name}`)
          for (const k of Object.keys(r.state))
            close(t.state[k]!.dataSync(), r.state[k]!.data, `${mode} state ${k}`)
        }
      })
    }),
    runs,
  )
})

test("gradients with respect to every parameter agree with the reference's float64 finite differences", () => {
  fc.assert(
    fc.property(netAndInput, fc.nat(), ({ input, net }, seed) => {
      const batch = 2
      tf.tidy(() => {
        const { params, state } = Init.init(net, input, seed)
        const xs = randomInput(input, batch, seed + 1)
        const out = Check.check(net, input).summary.output!
        const proj = randomInput(out, batch, seed + 2)
        const x = tf.tensor(xs, [batch, ...input])
        const p = tf.tensor(proj, [batch, ...out])
        const { grads } = valueAndGrad(
          (ps) => tf.sum(tf.mul(apply(net, ps, state, x, "train").y, p)) as tf.Scalar,
          params,
        )
        const rx = Ref.Tensors.make([batch, ...input], Float64Array.from(xs))
        const rstate = treeToRef(state)
        const f = (ps: Ref.Params) => {
          const y = Ref.apply(net, ps, rstate, rx, "train").y.data
          let s = 0
          for (let i = 0; i < y.length; i++) s += y[i]! * proj[i]!
          return s
        }
        const rg = Ref.gradient(f, treeToRef(params), 1e-6)
        let diff = 0
        let norm = 0
        for (const k of Object.keys(rg)) {
          const a = grads[k]!.dataSync()
          const b = rg[k]!.data
          for (let i = 0; i < b.length; i++) {
            diff += (a[i]! - b[i]!) ** 2
            norm += b[i]! ** 2
          }
        }
        assert.ok(
          Math.sqrt(diff) <= 2e-2 * Math.sqrt(norm) + 1e-4,
          `gradient error ${Math.sqrt(diff)} vs norm ${Math.sqrt(norm)}`,
        )
      })
    }),
    { ...runs, numRuns: 30 },
  )
})

test("no tensors leak from apply inside tidy", () => {
  const net = Net.seq(Net.conv2d(3, 3), Net.batchNorm(), Net.relu, Net.globalAvgPool, Net.dense(2))
  const { params, state } = Init.init(net, [6, 6, 2], 3)
  const before = tf.memory().numTensors
  tf.tidy(() => {
    apply(net, params, state, tf.ones([2, 6, 6, 2]), "eval")
  })
  assert.equal(tf.memory().numTensors, before)
  Init.dispose(params, state)
})

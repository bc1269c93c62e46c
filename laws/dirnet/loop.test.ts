/**
 * tf laws of DIR-Net's loop:
 * - a loop of one iteration is the plain network (FE, RF, then the heads):
 *   equal outputs and taps on random inputs, in eval and train mode, with
 *   the same parameters (iteration 0's batch norms renamed by `plainPath`);
 * - iteration k of an l-iteration loop equals the k + 1-iteration loop's
 *   output (the loop is causal: later iterations do not change earlier ones);
 * - every iteration uses its own batch norms: changing iteration 1's batch
 *   norm leaves iteration 0 unchanged and changes iteration 1.
 */
import assert from "node:assert/strict"
import { before, test } from "node:test"
import * as tf from "@tensorflow/tfjs-core"
import fc from "fast-check"
import * as Dirnet from "../../src/dsl/dirnet.ts"
import { apply } from "../../src/interpreters/tf/apply.ts"
import * as Init from "../../src/interpreters/tf/init.ts"
import { readyForLaws, runs } from "../arbitraries/Runs.ts"

before(async () => {
  await readyForLaws()
})

const defaults = { seed: 4711, numRuns: 18 }

const options = fc.record({
  loopPoint: fc.constantFrom(1 as const, 2 as const, 3 as const, 4 as const),
  width: fc.constantFrom(2, 4),
  hidden: fc.constantFrom(4, 8),
})

const input = (batch: number, seed: number): tf.Tensor4D => {
  const rand = Init.prng(seed)
  return tf.tensor4d(
    Float32Array.from({ length: batch * 32 * 32 * 3 }, () => rand()),
    [batch, 32, 32, 3],
  )
}

const maxDiff = (a: tf.Tensor, b: tf.Tensor): number =>
  tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!)

test("a loop of one iteration equals the plain network (body then readout)", () => {
  fc.assert(
    fc.property(options, fc.nat({ max: 1000 }), (o, seed) => {
      const looped = Dirnet.dirnet({ ...o, iterations: 1 })
      const plain = Dirnet.plain(o)
      const { params, state } = Init.init(looped, [32, 32, 3], seed)
      const rename = (t: Init.Tree) =>
        Object.fromEntries(Object.entries(t).map(([k, v]) => [Dirnet.plainPath(k), v]))
      tf.tidy(() => {
        const x = input(3, seed)
        for (const mode of ["eval", "train"] as const) {
          const a = apply(looped, params, state, x, mode)
          const b = apply(plain, rename(params), rename(state), x, mode)
          assert.equal(maxDiff(a.y, b.y), 0, `${mode}: output`)
          for (const t of ["fe", "rf", "pose", "camera", "logvar", "gateFeatures"]) {
            assert.equal(maxDiff(a.taps[t]!, b.taps[t]!), 0, `${mode}: tap ${t}`)
            if (t !== "fe") assert.equal(maxDiff(a.taps[`${t}@0`]!, b.taps[t]!), 0, `${mode}: tap ${t}@0`)
          }
          // Running statistics agree too.
          for (const [k, v] of Object.entries(a.state))
            assert.equal(maxDiff(v, b.state[Dirnet.plainPath(k)]!), 0, k)
        }
      })
      Init.dispose(params, state)
    }),
    runs(defaults),
  )
})

test("the loop is causal and each iteration has its own batch norms", () => {
  const o = { loopPoint: 3 as const, width: 4, hidden: 8 }
  const three = Dirnet.dirnet({ ...o, iterations: 3 })
  const two = Dirnet.dirnet({ ...o, iterations: 2 })
  const { params, state } = Init.init(three, [32, 32, 3], 3)
  tf.tidy(() => {
    const x = input(2, 9)
    const a3 = apply(three, params, state, x, "eval")
    const a2 = apply(two, params, state, x, "eval")
    assert.equal(maxDiff(a3.taps["pose@1"]!, tf.slice(a2.y, [0, 0], [2, 63])), 0)
    assert.ok(maxDiff(a3.taps["pose@2"]!, a3.taps["pose@1"]!) > 0, "iterations differ")
    // Perturb iteration 1's first batch norm only.
    const bn1 = Object.keys(params).find((k) => k.endsWith("bn0@1/beta"))!
    const perturbed = { ...params, [bn1]: tf.add(params[bn1]!, 0.5) }
    const p = apply(three, perturbed, state, x, "eval")
    assert.equal(maxDiff(p.taps["pose@0"]!, a3.taps["pose@0"]!), 0, "iteration 0 untouched")
    assert.ok(maxDiff(p.taps["pose@1"]!, a3.taps["pose@1"]!) > 0, "iteration 1 changed")
  })
  Init.dispose(params, state)
})

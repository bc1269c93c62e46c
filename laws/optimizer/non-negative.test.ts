/**
 * `Optimizer.nonNegative` is the projection onto θ ≥ 0 after the wrapped
 * optimizer's update, on generated parameters (≥ 0), gradients, learning
 * rates and momentum, over several steps:
 * - every parameter stays ≥ 0;
 * - a coordinate the wrapped step leaves ≥ 0 gets exactly the wrapped step;
 * - a coordinate it would take below 0 lands on 0 exactly.
 * Momentum and Adam state evolve as without the projection (it touches only the update).
 */
import assert from "node:assert/strict"
import { before, test } from "node:test"
import * as tf from "@tensorflow/tfjs-core"
import fc from "fast-check"
import * as Optimizer from "../../src/dsl/Optimizer.ts"
import * as Optim from "../../src/interpreters/tf/optimizer.ts"
import { readyForLaws, runs } from "../arbitraries/Runs.ts"

before(async () => {
  await readyForLaws()
})

const f32 = (lo: number, hi: number) => fc.float({ min: Math.fround(lo), max: Math.fround(hi), noNaN: true })

test("nonNegative(o) keeps θ ≥ 0 and equals o wherever o's step stays ≥ 0", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 12 }).chain((n) =>
        fc.record({
          theta: fc.array(f32(0, 2), { minLength: n, maxLength: n }),
          grads: fc.array(fc.array(f32(-5, 5), { minLength: n, maxLength: n }), {
            minLength: 1,
            maxLength: 4,
          }),
          lr: f32(1e-3, 1),
          kind: fc.constantFrom("sgd", "momentum", "adam"),
        }),
      ),
      ({ theta, grads, lr, kind }) => {
        const inner =
          kind === "adam"
            ? Optimizer.adam({ lr })
            : Optimizer.sgd({ lr, ...(kind === "momentum" ? { momentum: 0.9 } : {}) })
        const projected = Optimizer.nonNegative(inner)
        tf.tidy(() => {
          let params = { w: tf.tensor1d(theta) }
          let state = Optim.init(projected, params)
          let shadow = Optim.init(inner, params)
          for (const g of grads) {
            const gw = { w: tf.tensor1d(g) }
            const free = Optim.update(inner, gw, shadow, params)
            const step = Optim.update(projected, gw, state, params)
            const before = params.w.arraySync() as number[]
            const wanted = Optim.applyUpdates(params, free.updates).w!.arraySync() as number[]
            const next = Optim.applyUpdates(params, step.updates)
            const got = next.w!.arraySync() as number[]
            got.forEach((v, i) => {
              assert.ok(v >= 0, `θ[${i}] = ${v} < 0`)
              if (wanted[i]! >= 0) assert.equal(v, wanted[i], `θ[${i}] from ${before[i]}`)
              else assert.equal(v, 0, `θ[${i}] from ${before[i]}: the step would give ${wanted[i]}`)
            })
            // The projection changes the update only: the optimizer's own state is the wrapped one's.
            const a = Optim.tensors(step.state).map((t) => t.arraySync())
            const b = Optim.tensors(free.state).map((t) => t.arraySync())
            assert.deepEqual(a, b)
            params = next as { w: tf.Tensor1D }
            state = step.state
            shadow = free.state
          }
        })
      },
    ),
    runs({ seed: 5, numRuns: 150 }),
  )
})

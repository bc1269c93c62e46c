// The fused training-mode batch norm (cmkg-cpu kernels) computes what the composite
// of tfjs ops computes (the cpu backend, which has no fused kernel): outputs, batch
// statistics, first-order gradients and a second-order term (the gradient of a
// gradient, as meta-learning takes it). Tolerance: 2e-4 · max(1, max |composite|)
// (float64 vs float32 accumulation of the statistics over up to ~600 values).
import assert from "node:assert/strict"
import { after, before, describe, it } from "node:test"
import * as tf from "@tensorflow/tfjs-core"
import fc from "fast-check"
import { dnnlCalls, fastPathCalls, resetCallCounts, useDnnl } from "../../src/backend/index.ts"
import { BATCH_NORM_TRAIN, BATCH_NORM_TRAIN_GRAD, batchNormTrain } from "../../src/backend/ops/batchNorm.ts"
import { ready } from "../../src/interpreters/tf/index.ts"
import { data, dnnlSkip, on, relErr, tensor } from "./helpers.ts"

const EPS = 1e-5

/** Everything the op's users see: y, μ, σ², ∇(x,γ,β) of ⟨y, w⟩, and ∇(x,γ) of ⟨∇x⟨y,w⟩, v⟩. */
const everything = (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, w: tf.Tensor, v: tf.Tensor) => {
  const { y, mean, variance } = batchNormTrain(x, gamma, beta, EPS)
  const objective = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
    tf.sum(tf.mul(batchNormTrain(a, g, b, EPS).y, w))
  const first = tf.grads(objective)([x, gamma, beta])
  const second = tf.grads((a: tf.Tensor, g: tf.Tensor) => {
    const [dx] = tf.grads(objective)([a, g, beta])
    return tf.sum(tf.mul(dx as tf.Tensor, v))
  })([x, gamma])
  return [y, mean, variance, ...first, ...second]
}

// The fused kernels run on oneDNN when its addon is built, else on JS loops: both are checked.
for (const dnnl of [true, false])
  describe(`training-mode batch norm (${dnnl ? "oneDNN" : "JS loops"})`, {
    skip: dnnl && dnnlSkip(),
  }, () => {
    before(async () => {
      await ready("cmkg-cpu")
      useDnnl(dnnl)
    })
    after(() => useDnnl(true))

    it("fused kernels = composite: outputs, statistics, gradients and second-order gradients", () => {
      resetCallCounts()
      const nativeBefore = dnnlCalls.BatchNormTrain ?? 0
      const names = ["y", "mean", "variance", "dx", "dgamma", "dbeta", "d2x", "d2gamma"]
      fc.assert(
        fc.property(
          fc.tuple(
            fc.integer({ min: 1, max: 4 }),
            fc.integer({ min: 1, max: 6 }),
            fc.integer({ min: 1, max: 6 }),
            fc.integer({ min: 1, max: 5 }),
          ),
          fc.nat(1000),
          fc.double({ min: -3, max: 3, noNaN: true }),
          (shape, seed, offset) => {
            fc.pre(shape[0] * shape[1] * shape[2] >= 2)
            const c = shape[3]
            const x = data(shape, seed)
            // An offset far from zero checks the statistics do not cancel catastrophically.
            x.values.forEach((value, i) => {
              x.values[i] = value + offset * 10
            })
            const gamma = data([c], seed + 1)
            const beta = data([c], seed + 2)
            const w = data(shape, seed + 3)
            const v = data(shape, seed + 4)
            const run = () => everything(tensor(x), tensor(gamma), tensor(beta), tensor(w), tensor(v))
            const composite = on("cpu", run)
            const fused = on("cmkg-cpu", run)
            composite.forEach((expected, i) => {
              const err = relErr(expected, fused[i] as Float32Array)
              assert.ok(err <= 2e-4, `${names[i]} of ${shape}: relative error ${err}`)
            })
          },
        ),
        { seed: 11, numRuns: 30 },
      )
      const native = (dnnlCalls.BatchNormTrain ?? 0) - nativeBefore
      assert.ok(dnnl ? native >= 30 : native === 0, `oneDNN ran ${native} batch norms`)
      assert.ok((fastPathCalls[BATCH_NORM_TRAIN] ?? 0) >= 30)
      assert.ok((fastPathCalls[BATCH_NORM_TRAIN_GRAD] ?? 0) >= 30)
    })
  })

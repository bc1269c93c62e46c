// Adam's fused moment update (cmkg-cpu: native, or a JS loop without the addon) computes what
// the composite of tfjs ops computes (the cpu backend): update and moments, and gradients
// through it (an optimizer step inside a differentiated function). Tolerance: 1e-5 relative
// to max(1, |composite|) (float32 rounding and fused multiply-adds).
import assert from "node:assert/strict"
import { after, before, describe, it } from "node:test"
import * as tf from "@tensorflow/tfjs-core"
import fc from "fast-check"
import { dnnlCalls, fastPathCalls, useDnnl } from "../../src/backend/index.ts"
import { scaleByAdam } from "../../src/backend/ops/adam.ts"
import { ready } from "../../src/interpreters/tf/index.ts"
import { data, dnnlSkip, on, relErr, tensor } from "./helpers.ts"

for (const dnnl of [true, false])
  describe(`fused Adam (${dnnl ? "oneDNN addon" : "JS loop"})`, { skip: dnnl && dnnlSkip() }, () => {
    before(async () => {
      await ready("cmkg-cpu")
      useDnnl(dnnl)
    })
    after(() => useDnnl(true))

    it("update, moments and gradients equal the composite's", () => {
      const nativeBefore = dnnlCalls.ScaleByAdam ?? 0
      const fusedBefore = fastPathCalls.CmkgScaleByAdam ?? 0
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 3000 }),
          fc.nat(1000),
          fc.integer({ min: 1, max: 50 }),
          (n, seed, t) => {
            const k = { b1: 0.9, b2: 0.999, eps: 1e-8, c1: 1 - 0.9 ** t, c2: 1 - 0.999 ** t }
            const g = data([n], seed)
            const mu = data([n], seed + 1)
            const nu = data([n], seed + 2)
            nu.values.forEach((v, i) => {
              nu.values[i] = Math.abs(v)
            })
            const run = () => {
              const r = scaleByAdam(tensor(g), tensor(mu), tensor(nu), k)
              const grads = tf.grads((a: tf.Tensor, b: tf.Tensor) => {
                const s = scaleByAdam(a, b, tensor(nu), k)
                return tf.sum(tf.add(tf.square(s.update), tf.mul(s.mu, s.nu)))
              })([tensor(g), tensor(mu)])
              return [r.update, r.mu, r.nu, ...grads]
            }
            const expected = on("cpu", run)
            const got = on("cmkg-cpu", run)
            expected.forEach((e, i) => {
              assert.ok(relErr(e, got[i]!) <= 1e-5, `output ${i}: ${relErr(e, got[i]!)}`)
            })
          },
        ),
        { seed: 9, numRuns: 30 },
      )
      assert.ok((fastPathCalls.CmkgScaleByAdam ?? 0) - fusedBefore >= 60)
      const native = (dnnlCalls.ScaleByAdam ?? 0) - nativeBefore
      assert.ok(dnnl ? native >= 60 : native === 0, `native ran ${native}`)
    })
  })

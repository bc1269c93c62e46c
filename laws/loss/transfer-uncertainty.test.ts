/**
 * Laws of supervision transfer (Gupta et al. Eq. 2) and DIR-Net's uncertainty
 * loss (Eq. 8), under the tf interpreter:
 * - transfer is zero when the student reproduces the teacher's layer exactly:
 *   the same network and parameters (identity adapter), and a student layer
 *   s with teacher layer t(s) for the adapter t (1×1 conv or dense);
 * - L_var3D = e^{−α}/2·L_3D + α/2 (L_3D = ‖J_gt − Ĵ‖₂, the ℓ2 norm of Eq. 3) is
 *   minimised over α at α = log L_3D: its derivative in α vanishes there, and
 *   it is larger at α* ± δ.
 *
 * Tolerances (float32): the identity-adapter case is exact (same tensors);
 * with an adapter the teacher t(s) is computed by float32 matMul, so the loss
 * is ≤ 1e-8 per element² (float32 re-association of ≤ 4 products of size ≤ 1:
 * |Δ| ≲ 1e-6); ∂L_var/∂α at α* ≤ 1e-5 (≈ float32 round-off of e^{−α*}·L/2 = 1/2);
 * L_var(α* ± δ) − L_var(α*) ≥ δ²/8 − 1e-6 for δ ∈ [0.05, 2] (the second
 * derivative is e^{−α}L/2 ≥ e^{−δ}/2 along the segment).
 */
import assert from "node:assert/strict"
import { before, test } from "node:test"
import * as tf from "@tensorflow/tfjs-core"
import fc from "fast-check"
import * as Loss from "../../src/dsl/Loss.ts"
import * as Net from "../../src/dsl/Net.ts"
import * as Program from "../../src/dsl/Program.ts"
import { apply } from "../../src/interpreters/tf/apply.ts"
import { valueAndGrad } from "../../src/interpreters/tf/autodiff.ts"
import * as Init from "../../src/interpreters/tf/init.ts"
import * as TfLoss from "../../src/interpreters/tf/loss.ts"
import { readyForLaws, runs } from "../arbitraries/Runs.ts"
import { imageDims, rng, seed, signals, tensor, toTf } from "./env.ts"

const defaults = { seed: 3003, numRuns: 50 }

before(async () => {
  await readyForLaws()
})

test("transfer is zero when the student network reproduces the teacher's layer (identity adapter)", () => {
  const net = Net.seq(
    Net.conv2d(3, 3),
    Net.batchNorm(),
    Net.relu,
    Net.tap("mid"),
    Net.maxPool(2),
    Net.globalAvgPool,
    Net.dense(4),
  )
  const student = Program.model("student", net, [6, 6, 2])
  const teacher = Program.model("teacher", net, [6, 6, 2])
  fc.assert(
    fc.property(seed, fc.integer({ min: 1, max: 3 }), (sd, B) => {
      tf.tidy(() => {
        const { params, state } = Init.init(net, [6, 6, 2], sd % 1000)
        const x = toTf(tensor([B, 6, 6, 2], rng(sd)))
        const s = apply(student.net, params, state, x, "eval")
        const t = apply(teacher.net, params, state, x, "eval")
        const env: TfLoss.Env = {
          outputs: { student: s, teacher: t },
          batch: {},
          params: {},
          meta: {},
        }
        for (const loss of [
          Loss.transfer(Loss.tap(student, "mid"), Loss.tap(teacher, "mid")),
          Loss.transfer(Loss.output(student), Loss.output(teacher)),
        ])
          assert.equal(TfLoss.evaluate(loss, env).arraySync(), 0)
      })
    }),
    runs({ seed: 3003, numRuns: 30 }),
  )
})

test("transfer is zero when the teacher's layer is the adapter applied to the student's", () => {
  fc.assert(
    fc.property(
      imageDims,
      fc.integer({ min: 1, max: 4 }),
      fc.boolean(),
      seed,
      ({ B, H, W, C }, Ct, image, sd) => {
        tf.tidy(() => {
          const r = rng(sd)
          const s = toTf(tensor(image ? [B, H, W, C] : [B, C], r))
          const kernel = toTf(tensor(image ? [1, 1, C, Ct] : [C, Ct], r))
          const bias = toTf(tensor([Ct], r))
          const t = tf.add(
            tf.reshape(tf.matMul(tf.reshape(s, [-1, C]), tf.reshape(kernel, [C, Ct])), [
              ...s.shape.slice(0, -1),
              Ct,
            ]),
            bias,
          )
          const env: TfLoss.Env = {
            outputs: { s: { y: s, taps: {} }, t: { y: t, taps: {} } },
            batch: {},
            params: { adapter: { kernel, bias } },
            meta: {},
          }
          const v = TfLoss.evaluate(
            Loss.transfer(signals.out("s"), signals.out("t"), "adapter"),
            env,
          ).arraySync()
          assert.ok(v >= 0 && v <= 1e-8 * (t.size / B), `transfer ${v}`)
        })
      },
    ),
    runs(defaults),
  )
})

test("DIR-Net's L_var3D (Eq. 8) is minimised over α at α = log L_3D", () => {
  const loss = Loss.uncertainty({
    prediction: signals.out("m"),
    target: signals.field("joints3d"),
    logVariance: signals.out("var"),
    norm: "l2",
  })
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 1, max: 8 }),
      seed,
      fc.double({ min: 0.05, max: 2, noNaN: true }),
      (B, D, sd, delta) => {
        tf.tidy(() => {
          const r = rng(sd)
          const p = toTf(tensor([B, D], r, 0, 3))
          const t = toTf(tensor([B, D], r, 0, 3))
          const l3d = tf.norm(tf.sub(p, t), 2, 1) // ‖J_gt − Ĵ‖₂ per sample (Eq. 3)
          const best = tf.reshape(tf.log(l3d), [B, 1])
          const at = (alpha: tf.Tensor) =>
            TfLoss.evaluate(loss, {
              outputs: { m: { y: p, taps: {} }, var: { y: alpha, taps: {} } },
              batch: { joints3d: t },
              params: {},
              meta: {},
            })
          const { value, grads } = valueAndGrad((tree) => at(tree.alpha!), { alpha: best })
          for (const g of grads.alpha!.dataSync())
            assert.ok(Math.abs(g) <= 1e-5, `∂L_var/∂α = ${g} at α = log L_3D`)
          const v = value.arraySync()
          for (const sign of [-1, 1]) {
            const moved = at(tf.add(best, sign * delta)).arraySync()
            assert.ok(
              moved - v >= (delta * delta) / 8 - 1e-6,
              `L_var(α* ${sign > 0 ? "+" : "−"} ${delta}) = ${moved} vs L_var(α*) = ${v}`,
            )
          }
        })
      },
    ),
    runs(defaults),
  )
})

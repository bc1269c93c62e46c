/**
 * Laws of CMKG's distillation losses (Eqs. 2-3) under the tf interpreter:
 * - L_ACT(x, x) = 0 and L_ATT(x, x) = 0; both ≥ 0;
 * - L_ATT is symmetric and invariant to scaling either activation by c > 0;
 * - per tap pair, L_ATT ≤ 2 for the `paper` variant (so ≤ 4, the bound for any
 *   two unit vectors: attention maps are non-negative, so Ā_s·Ā_t ≥ 0 and
 *   ‖Ā_s − Ā_t‖² = 2 − 2Ā_s·Ā_t ≤ 2), and ≤ 2/(H·W) for `code` (the mean over
 *   the H·W positions of the same squared difference);
 * - every normalised attention map has unit ℓ2 norm.
 *
 * Tolerances (float32, values O(1)): identities are exact (both sides run
 * the same ops on the same tensors); symmetry 1e-6 absolute; scale invariance
 * 2e-5 absolute (c ∈ [0.1, 10]: A is scaled by c², the ε = 1e-12 inside the
 * norm moves Ā by < 1e-12/‖cA‖² ≪ 1e-6 since activations are ≥ 0.1 in size,
 * the rest is float32 round-off of ‖A‖); bounds +1e-5; unit norm 1e-5.
 */
import assert from "node:assert/strict"
import { before, test } from "node:test"
import * as tf from "@tensorflow/tfjs-core"
import fc from "fast-check"
import * as Loss from "../../src/dsl/Loss.ts"
import * as TfLoss from "../../src/interpreters/tf/loss.ts"
import { readyForLaws, runs } from "../arbitraries/Runs.ts"
import { imageDims, rng, seed, signals, tensor, tfEnv, toTf } from "./env.ts"

const defaults = { seed: 4004, numRuns: 60 }

before(async () => {
  await readyForLaws()
})

const { tap } = signals
const act = Loss.activationMatch(tap("s", "q"), tap("t", "q"))
const att = (variant: Loss.AttentionVariant, pairs = 1): Loss.Loss =>
  Loss.attentionTransfer(
    Array.from({ length: pairs }, (_, i) => [tap("s", `q${i}`), tap("t", `q${i}`)] as const),
    variant,
  )
const variant = fc.constantFrom<Loss.AttentionVariant>("paper", "code")

/** Student and teacher activations per pair: same H×W, channels may differ. */
const activations = fc.record({
  dims: imageDims,
  Ct: fc.integer({ min: 1, max: 4 }),
  pairs: fc.integer({ min: 1, max: 3 }),
  seed,
})

const value = (loss: Loss.Loss, s: Record<string, tf.Tensor>, t: Record<string, tf.Tensor>): number =>
  tf.tidy(() =>
    TfLoss.evaluate(
      loss,
      tfEnv({
        ...Object.fromEntries(Object.entries(s).map(([k, v]) => [`tap|s|${k}`, v])),
        ...Object.fromEntries(Object.entries(t).map(([k, v]) => [`tap|t|${k}`, v])),
      }),
    ).arraySync(),
  )

const make = (a: {
  dims: { B: number; H: number; W: number; C: number }
  Ct: number
  pairs: number
  seed: number
}) => {
  const rand = rng(a.seed)
  const { B, H, W, C } = a.dims
  const s: Record<string, tf.Tensor> = {}
  const t: Record<string, tf.Tensor> = {}
  for (let i = 0; i < a.pairs; i++) {
    s[`q${i}`] = toTf(tensor([B, H, W, C], rand, 0.1, 1))
    t[`q${i}`] = toTf(tensor([B, H, W, a.Ct], rand, 0.1, 1))
  }
  return { s, t }
}

test("L_ACT(x, x) = 0, L_ATT(x, x) = 0, and both are ≥ 0", () => {
  fc.assert(
    fc.property(activations, variant, (a, v) => {
      tf.tidy(() => {
        const { s, t } = make({ ...a, Ct: a.dims.C })
        assert.equal(value(act, { q: s.q0! }, { q: s.q0! }), 0)
        assert.equal(value(att(v, a.pairs), s, s), 0)
        assert.ok(value(act, { q: s.q0! }, { q: t.q0! }) >= 0)
        assert.ok(value(att(v, a.pairs), s, t) >= 0)
      })
    }),
    runs(defaults),
  )
})

test("L_ATT is symmetric", () => {
  fc.assert(
    fc.property(activations, variant, (a, v) => {
      tf.tidy(() => {
        const { s, t } = make(a)
        const st = value(att(v, a.pairs), s, t)
        const ts = value(att(v, a.pairs), t, s)
        assert.ok(Math.abs(st - ts) <= 1e-6, `${st} vs ${ts}`)
      })
    }),
    runs(defaults),
  )
})

test("L_ATT is invariant to scaling either activation by a positive constant", () => {
  fc.assert(
    fc.property(
      activations,
      variant,
      fc.double({ min: 0.1, max: 10, noNaN: true }),
      fc.boolean(),
      (a, v, c, student) => {
        tf.tidy(() => {
          const { s, t } = make(a)
          const scale = (r: Record<string, tf.Tensor>) =>
            Object.fromEntries(Object.entries(r).map(([k, x]) => [k, tf.mul(x, c)]))
          const base = value(att(v, a.pairs), s, t)
          const scaled = student ? value(att(v, a.pairs), scale(s), t) : value(att(v, a.pairs), s, scale(t))
          assert.ok(Math.abs(base - scaled) <= 2e-5, `${base} vs ${scaled} (c = ${c})`)
        })
      },
    ),
    runs(defaults),
  )
})

test("L_ATT per tap pair is at most 2 ≤ 4 (paper) and at most 2/(H·W) (code)", () => {
  fc.assert(
    fc.property(activations, variant, (a, v) => {
      tf.tidy(() => {
        const { s, t } = make(a)
        const bound = v === "paper" ? 2 : 2 / (a.dims.H * a.dims.W)
        for (let i = 0; i < a.pairs; i++) {
          const one = value(att(v, 1), { q0: s[`q${i}`]! }, { q0: t[`q${i}`]! })
          assert.ok(one <= bound + 1e-5, `pair ${i}: ${one} > ${bound}`)
        }
        assert.ok(value(att(v, a.pairs), s, t) <= a.pairs * bound + 1e-5)
      })
    }),
    runs(defaults),
  )
  // The bound 2 is attained by disjoint attention: student active only at position 0, teacher only at 1.
  tf.tidy(() => {
    const s = tf.tensor4d([1, 0], [1, 1, 2, 1])
    const t = tf.tensor4d([0, 1], [1, 1, 2, 1])
    assert.ok(Math.abs(value(att("paper"), { q0: s }, { q0: t }) - 2) < 1e-6)
  })
})

test("each normalised attention map has unit ℓ2 norm", () => {
  fc.assert(
    fc.property(imageDims, seed, (dims, sd) => {
      tf.tidy(() => {
        const q = toTf(tensor([dims.B, dims.H, dims.W, dims.C], rng(sd), 0.1, 1))
        const a = TfLoss.attentionMap(q)
        assert.deepEqual(a.shape, [dims.B, dims.H * dims.W])
        for (const n of tf.norm(a, 2, 1).arraySync() as number[])
          assert.ok(Math.abs(n - 1) <= 1e-5, `norm ${n}`)
      })
    }),
    runs(defaults),
  )
})

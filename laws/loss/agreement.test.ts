/**
 * The tf interpreter of losses agrees with the float64 reference on every
 * loss kind, values and gradients, on generated shapes and values:
 * squared/absolute error (sum and mean reductions, slices), attention
 * transfer (both variants, several pairs), supervision transfer (1×1-conv and
 * dense adapters, identity), uncertainty (ℓ1, ℓ2), weighted and default norms
 * (p = 1, 2), sums and scales, and the re-projection signal (DIR-Net's Eq. 2). Gradients are with respect to everything the
 * loss reads (activations, taps, fields, parameters, adapters, φ, α); the
 * reference's are its float64 central finite differences (`Ref.gradient`,
 * h = 1e-5: truncation ~h²·|f'''| ≈ 1e-10, round-off ~1e-16/h ≈ 1e-11).
 *
 * Inputs are float32-representable, so both interpreters see the same
 * numbers; |·| kinks are hit with probability ~1e-5 per element (values are
 * continuous), negligible at these sizes.
 *
 * Tolerances: values |tf − ref| ≤ 1e-4·(1 + |ref|) (float32 round-off through
 * sums of ≤ 200 terms and one normalisation); gradients, per input tensor,
 * ‖tf − ref‖₂ ≤ 1e-3·(1 + ‖ref‖₂).
 */
import assert from "node:assert/strict"
import { before, test } from "node:test"
import * as tf from "@tensorflow/tfjs-core"
import fc from "fast-check"
import * as Loss from "../../src/dsl/Loss.ts"
import * as Ref from "../../src/interpreters/reference/index.ts"
import * as RefLoss from "../../src/interpreters/reference/loss.ts"
import { valueAndGrad } from "../../src/interpreters/tf/autodiff.ts"
import * as TfLoss from "../../src/interpreters/tf/loss.ts"
import { readyForLaws, runs } from "../arbitraries/Runs.ts"
import { type Flat, flatToTf, refEnv, rng, seed, signals, tensor, tfEnv, uniform } from "./env.ts"

const defaults = { seed: 777, numRuns: 40 }

before(async () => {
  await readyForLaws()
})

const { out, tap, field } = signals

interface Dims {
  readonly B: number
  readonly H: number
  readonly W: number
  readonly C: number
  readonly D: number
}
const dims = fc.record({
  B: fc.integer({ min: 1, max: 3 }),
  H: fc.integer({ min: 1, max: 3 }),
  W: fc.integer({ min: 1, max: 3 }),
  C: fc.integer({ min: 1, max: 3 }),
  D: fc.integer({ min: 2, max: 5 }),
})

type Case = (d: Dims, rand: () => number) => { loss: Loss.Loss; flat: Flat }

const cases: Record<string, Case> = {
  "squared error (sum) of an output against a field": ({ B, D }, r) => ({
    loss: { _tag: "SquaredError", prediction: out("m"), target: field("joints3d"), reduce: "sum" },
    flat: { "out|m": tensor([B, D], r), "field|joints3d": tensor([B, D], r) },
  }),
  "squared error (mean) of a tap slice against a field": ({ B, H, W, C, D }, r) => ({
    loss: {
      _tag: "SquaredError",
      prediction: { _tag: "Slice", signal: tap("m", "x"), start: 1, size: C },
      target: field("depth"),
      reduce: "mean",
    },
    flat: { "tap|m|x": tensor([B, H, W, C + D], r), "field|depth": tensor([B, H, W, C], r) },
  }),
  "absolute error (sum and mean)": ({ B, D }, r) => ({
    loss: {
      _tag: "Sum",
      terms: [
        { _tag: "AbsoluteError", prediction: out("m"), target: field("joints2d"), reduce: "sum" },
        { _tag: "AbsoluteError", prediction: out("m"), target: field("joints2d"), reduce: "mean" },
      ],
    },
    flat: { "out|m": tensor([B, D], r), "field|joints2d": tensor([B, D], r) },
  }),
  "attention transfer, paper, two pairs": ({ B, H, W, C, D }, r) => ({
    loss: {
      _tag: "AttentionTransfer",
      variant: "paper",
      pairs: [
        [tap("s", "a"), tap("t", "a")],
        [tap("s", "b"), tap("t", "b")],
      ],
    },
    flat: {
      "tap|s|a": tensor([B, H, W, C], r, 0.1, 1),
      "tap|t|a": tensor([B, H, W, D], r, 0.1, 1),
      "tap|s|b": tensor([B, W, H, D], r, 0.1, 1),
      "tap|t|b": tensor([B, W, H, C], r, 0.1, 1),
    },
  }),
  "attention transfer, code": ({ B, H, W, C, D }, r) => ({
    loss: { _tag: "AttentionTransfer", variant: "code", pairs: [[tap("s", "a"), tap("t", "a")]] },
    flat: { "tap|s|a": tensor([B, H, W, C], r, 0.1, 1), "tap|t|a": tensor([B, H, W, D], r, 0.1, 1) },
  }),
  "supervision transfer with a 1×1-conv adapter": ({ B, H, W, C, D }, r) => ({
    loss: { _tag: "Transfer", student: tap("s", "x"), teacher: tap("t", "x"), adapter: "t1" },
    flat: {
      "tap|s|x": tensor([B, H, W, C], r),
      "tap|t|x": tensor([B, H, W, D], r),
      "param|t1|kernel": tensor([1, 1, C, D], r),
      "param|t1|bias": tensor([D], r),
    },
  }),
  "supervision transfer with a dense adapter, and without": ({ B, C, D }, r) => ({
    loss: {
      _tag: "Sum",
      terms: [
        { _tag: "Transfer", student: out("s"), teacher: out("t"), adapter: "t1" },
        { _tag: "Transfer", student: out("t"), teacher: field("joints3d"), adapter: undefined },
      ],
    },
    flat: {
      "out|s": tensor([B, C], r),
      "out|t": tensor([B, D], r),
      "field|joints3d": tensor([B, D], r),
      "param|t1|kernel": tensor([C, D], r),
      "param|t1|bias": tensor([D], r),
    },
  }),
  "uncertainty, ℓ2 and ℓ1": ({ B, D }, r) => ({
    loss: {
      _tag: "Sum",
      terms: [
        {
          _tag: "Uncertainty",
          prediction: out("m"),
          target: field("joints3d"),
          logVariance: out("v3"),
          norm: "l2",
          reduce: "norm",
        },
        {
          _tag: "Uncertainty",
          prediction: { _tag: "Slice", signal: out("m"), start: 0, size: 1 },
          target: field("joints2d"),
          logVariance: out("v2"),
          norm: "l1",
          reduce: "norm",
        },
      ],
    },
    flat: {
      "out|m": tensor([B, D], r),
      "field|joints3d": tensor([B, D], r),
      "field|joints2d": tensor([B, 1], r),
      "out|v3": uniform([B, 1], r, -1, 1),
      "out|v2": uniform([B], r, -1, 1),
    },
  }),
  "uncertainty in its bounded form (reduce: mean), ℓ2 and smooth-ℓ1": ({ B, D }, r) => ({
    loss: {
      _tag: "Sum",
      terms: [
        {
          _tag: "Uncertainty",
          prediction: out("m"),
          target: field("joints3d"),
          logVariance: out("v3"),
          norm: "l2",
          reduce: "mean",
        },
        {
          _tag: "Uncertainty",
          prediction: out("m"),
          target: field("joints2d"),
          logVariance: out("v2"),
          norm: "l1",
          reduce: "mean",
        },
      ],
    },
    flat: {
      "out|m": tensor([B, D], r),
      "field|joints3d": tensor([B, D], r),
      // Spread so that coordinates fall on both sides of smooth-ℓ1's knee at |d| = 1.
      "field|joints2d": uniform([B, D], r, -3, 3),
      "out|v3": uniform([B, 1], r, -1, 1),
      "out|v2": uniform([B], r, -1, 1),
    },
  }),
  // DIR-Net's L_2D and L_var2D read the re-projection of pose@k through camera@k (D joints here);
  // |c₀| up to 5 crosses the clip at ±4, where the scale stops depending on c₀.
  "re-projection of a pose tap through a camera tap, in squared error and uncertainty": ({ B, D }, r) => {
    const projected = Loss.reproject(tap("m", "pose"), tap("m", "camera"), { imageSize: 4, baseScale: 0.25 })
    return {
      loss: {
        _tag: "Sum",
        terms: [
          { _tag: "SquaredError", prediction: projected, target: field("joints2d"), reduce: "mean" },
          {
            _tag: "Uncertainty",
            prediction: projected,
            target: field("joints2d"),
            logVariance: out("v"),
            norm: "l1",
            reduce: "mean",
          },
        ],
      },
      flat: {
        "tap|m|pose": tensor([B, 3 * D], r),
        "tap|m|camera": tensor([B, 3], r, 0, 5),
        "field|joints2d": uniform([B, 2 * D], r, -2, 8),
        "out|v": uniform([B, 1], r, -1, 1),
      },
    }
  },
  "weighted and default norms, p = 1 and 2, scaled and summed": ({ C, D }, r) => ({
    loss: {
      _tag: "Sum",
      terms: [
        { _tag: "WeightedNorm", model: "m", phi: "phi", p: 2 },
        { _tag: "Scale", factor: 0.5, loss: { _tag: "WeightedNorm", model: "m", phi: "phi", p: 1 } },
        { _tag: "Norm", model: "m", sigma: 0.3, p: 2 },
        { _tag: "Scale", factor: -2, loss: { _tag: "Norm", model: "m", sigma: 0.1, p: 1 } },
      ],
    },
    flat: {
      "param|m|0/kernel": tensor([3, 3, C, D], r, 0.01, 1),
      "param|m|0/bias": tensor([D], r, 0.01, 1),
      "meta|phi|0/kernel": tensor([3, 3, C, D], r),
      "meta|phi|0/bias": tensor([D], r),
    },
  }),
  "distillation: L_ACT + λ·L_ATT": ({ B, H, W, C }, r) => ({
    loss: {
      _tag: "Sum",
      terms: [
        { _tag: "SquaredError", prediction: tap("s", "last"), target: tap("t", "last"), reduce: "sum" },
        {
          _tag: "Scale",
          factor: 1e3,
          loss: {
            _tag: "AttentionTransfer",
            variant: "paper",
            pairs: [[tap("s", "last"), tap("t", "last")]],
          },
        },
      ],
    },
    flat: { "tap|s|last": tensor([B, H, W, C], r, 0.1, 1), "tap|t|last": tensor([B, H, W, C], r, 0.1, 1) },
  }),
}

const norm2 = (xs: ArrayLike<number>): number => Math.sqrt(Array.from(xs).reduce((a, v) => a + v * v, 0))

for (const [name, make] of Object.entries(cases))
  test(`tf agrees with the reference: ${name}`, () => {
    fc.assert(
      fc.property(dims, seed, (d, sd) => {
        const { loss, flat } = make(d, rng(sd))
        const refValue = RefLoss.evaluate(loss, refEnv(flat))
        const refGrads = Ref.gradient((p) => RefLoss.evaluate(loss, refEnv(p)), flat)
        tf.tidy(() => {
          const { value, grads } = valueAndGrad((t) => TfLoss.evaluate(loss, tfEnv(t)), flatToTf(flat))
          const v = value.arraySync()
          assert.ok(
            Math.abs(v - refValue) <= 1e-4 * (1 + Math.abs(refValue)),
            `value: tf ${v} vs reference ${refValue}`,
          )
          for (const [k, g] of Object.entries(grads)) {
            const expected = refGrads[k]!.data
            const actual = g.dataSync()
            const diff = norm2(Array.from(actual, (a, i) => a - expected[i]!))
            assert.ok(
              diff <= 1e-3 * (1 + norm2(expected)),
              `gradient ${k}: ‖tf − ref‖ = ${diff}, ‖ref‖ = ${norm2(expected)}`,
            )
          }
        })
      }),
      runs(defaults),
    )
  })

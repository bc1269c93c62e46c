/**
 * The tf meaning of `Loss` values: a scalar tensor, differentiable to any order.
 *
 * `evaluate(loss, env)` reads the signals a loss names from `env` (model
 * outputs and taps, data fields, parameter trees, meta-parameters φ) and
 * builds the loss from primitive tfjs ops only — no `customGrad` ops such as
 * `tf.logSoftmax` — so that it can sit inside an unrolled inner loop that is
 * itself differentiated (meta-learning). `abs` is used for the ℓ1 terms; its
 * derivative is taken to be 0 at 0.
 *
 * Semantics (shared with the float64 reference, `reference/loss.ts`):
 * - every pointwise loss is the **mean over the batch** of a per-sample value;
 * - SquaredError / AbsoluteError: per sample Σ over elements of (p − t)² / |p − t|
 *   (`reduce: "sum"`), or the mean over elements (`"mean"`);
 * - AttentionTransfer: per pair, A = Σ_c Q_c² (`paper`) or mean_c Q_c² (`code`)
 *   over the last (channel) axis, flattened over the other per-sample axes
 *   (the two differ by the factor C, which the normalisation cancels, so one map serves both),
 *   Ā = A / √(‖A‖² + ε) with ε = {@link ATTENTION_EPS} (so Ā is defined and smooth
 *   at A = 0; ‖Ā‖ = 1 up to a relative 1e-12/‖A‖² otherwise); per sample
 *   Σ_positions (Ā_s − Ā_t)² (`paper`) or its mean over positions (`code`); mean
 *   over the batch; summed over pairs;
 * - Transfer: t(s) = s·K + b over the last axis (a 1×1 convolution on `[H, W, C]`
 *   signals, a dense map on vectors), `K` = the adapter's `kernel` reshaped to
 *   `[C_s, C_t]`; identity without adapter; per sample ‖t(s) − teacher‖²;
 * - Uncertainty, `reduce: "norm"`: per sample L = ‖p − t‖₂ = √(Σ (p − t)² + ε) (`l2`:
 *   DIR-Net's L_3D of Eq. 3 is the ℓ2 *norm*, not its square; ε = {@link NORM_EPS} keeps
 *   its gradient finite at 0) or L = ‖p − t‖₁ (`l1`, L_2D); α the log-variance signal
 *   (one scalar per sample); `l2`: e^{−α}/2·L + α/2 (Eq. 8), `l1`: e^{−α}(L − 1/2) + α/2 (Eq. 9);
 *   `reduce: "mean"`: `l2`: e^{−α}/2·mean((p − t)²) + α/2, `l1`: e^{−α}·mean(smoothL1(p − t)) + α/2
 *   (smoothL1(d) = d²/2 below |d| = 1, |d| − 1/2 above);
 * - WeightedNorm: Σ over every parameter of the model φ ⊙ θ² (p = 2) or φ ⊙ |θ| (p = 1);
 * - Norm: σ·Σ|θ|^p; Sum: Σ terms (0 for no terms); Scale: factor × loss;
 * - Slice signals: `x[..., start : start + size]`;
 * - Reproject signals: `pose [B, 3J]` through `camera [B, 3]` into `[B, 2J]` pixels (`reproject.ts`).
 *
 * `perSampleValues` gives the per-sample values `[B]` whose batch mean a loss is
 * (DIR-Net's gate reads them); the parameter norms have none.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core"
import { Data } from "effect"
import type * as Loss from "../../dsl/Loss.ts"
import type { Tree } from "./init.ts"
import { reproject } from "./reproject.ts"

/** ε inside the attention maps' ℓ2 norm: Ā = A / √(‖A‖² + ε). */
export const ATTENTION_EPS = 1e-12
/** ε inside the per-sample ℓ2 norm of the `l2` uncertainty loss: L = √(Σ d² + ε). */
export const NORM_EPS = 1e-12

/** What a loss reads. */
export interface Env {
  /** Each model's output and taps on this batch, by model name. */
  readonly outputs: Readonly<
    Record<string, { readonly y: tf.Tensor; readonly taps: Readonly<Record<string, tf.Tensor>> }>
  >
  /** Data fields, batch first. */
  readonly batch: Readonly<Partial<Record<Loss.Field, tf.Tensor>>>
  /** Parameter trees by model name, and by adapter name (`{ kernel, bias }`). */
  readonly params: Readonly<Record<string, Tree>>
  /** Meta-parameters φ by name: the same keys and shapes as the parameter tree of the model they weight. */
  readonly meta: Readonly<Record<string, Tree>>
}

/** A loss that reads something `env` does not have, or signals of incompatible shapes. */
export class LossError extends Data.TaggedError("LossError")<{ readonly message: string }> {}

const fail = (message: string): never => {
  throw new LossError({ message })
}

/** The tensor a signal denotes, batch first. */
export const signal = (s: Loss.Signal, env: Env): tf.Tensor => {
  switch (s._tag) {
    case "Output":
      return (env.outputs[s.model] ?? fail(`no outputs of model "${s.model}"`)).y
    case "Tap": {
      const out = env.outputs[s.model] ?? fail(`no outputs of model "${s.model}"`)
      return out.taps[s.tap] ?? fail(`model "${s.model}" has no tap "${s.tap}"`)
    }
    case "Field":
      return env.batch[s.field] ?? fail(`the batch has no field "${s.field}"`)
    case "Slice": {
      const x = signal(s.signal, env)
      const last = x.shape[x.shape.length - 1]!
      if (
        !(
          Number.isInteger(s.start) &&
          Number.isInteger(s.size) &&
          s.start >= 0 &&
          s.size >= 1 &&
          s.start + s.size <= last
        )
      )
        fail(`slice [${s.start}, ${s.start + s.size}) is outside the last axis of size ${last}`)
      return tf.slice(
        x,
        x.shape.map((_, i) => (i === x.shape.length - 1 ? s.start : 0)),
        x.shape.map((d, i) => (i === x.shape.length - 1 ? s.size : d)),
      )
    }
    case "Reproject": {
      const pose = signal(s.pose, env)
      const camera = signal(s.camera, env)
      if (pose.rank !== 2 || pose.shape[1]! % 3 !== 0 || pose.shape[1]! === 0)
        fail(`Reproject: the pose must be [B, 3J] (x, y, z per joint), got [${pose.shape.join(", ")}]`)
      if (camera.rank !== 2 || camera.shape[1] !== 3 || camera.shape[0] !== pose.shape[0])
        fail(
          `Reproject: the camera must be [B, 3] for a pose [${pose.shape.join(", ")}], got [${camera.shape.join(", ")}]`,
        )
      return reproject(pose, camera, s.imageSize, s.baseScale)
    }
    default: {
      const _: never = s
      return _
    }
  }
}

const batchOf = (x: tf.Tensor): number => x.shape[0]!
/** `[B, ...]` → `[B, n]`. */
const flat = (x: tf.Tensor): tf.Tensor2D => tf.reshape(x, [batchOf(x), -1])

const sameShape = (what: string, a: tf.Tensor, b: tf.Tensor): void => {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i]))
    fail(`${what}: shapes [${a.shape.join(", ")}] and [${b.shape.join(", ")}] differ`)
}

/** Per-sample Σ (or mean) over elements of `f(p − t)`, as `[B]`. */
const perSample = (d: tf.Tensor, reduce: "sum" | "mean"): tf.Tensor1D =>
  reduce === "sum" ? tf.sum(flat(d), 1) : tf.mean(flat(d), 1)

/**
 * ℓ2-normalised attention maps `[B, P]` of an activation `[B, ..., C]`: Σ_c Q_c². The code
 * variant's mean over channels is this divided by C, which the normalisation cancels (up to
 * ε/C²), so both variants share it; they differ only in how positions are reduced.
 */
export const attentionMap = (q: tf.Tensor): tf.Tensor2D => {
  const a = flat(tf.sum(tf.square(q), -1))
  return tf.div(a, tf.sqrt(tf.add(tf.sum(tf.square(a), 1, true), ATTENTION_EPS)))
}

/** Gupta's t: `s·K + b` over the last axis, K the adapter's kernel as `[C_s, C_t]`. */
const adapt = (s: tf.Tensor, adapter: Tree, name: string): tf.Tensor => {
  const kernel = adapter.kernel ?? fail(`adapter "${name}" has no kernel`)
  const cs = s.shape[s.shape.length - 1]!
  const ct = kernel.shape[kernel.shape.length - 1]!
  if (kernel.size !== cs * ct)
    fail(`adapter "${name}": kernel [${kernel.shape.join(", ")}] does not map ${cs} channels`)
  const y = tf.matMul(tf.reshape(s, [-1, cs]), tf.reshape(kernel, [cs, ct]))
  const biased = adapter.bias === undefined ? y : tf.add(y, adapter.bias)
  return tf.reshape(biased, [...s.shape.slice(0, -1), ct])
}

const paramsOf = (env: Env, model: string): Tree => env.params[model] ?? fail(`no parameters of "${model}"`)

const smoothL1 = (d: tf.Tensor): tf.Tensor => {
  const a = tf.abs(d)
  return tf.where(tf.less(a, 1), tf.mul(tf.square(d), 0.5), tf.sub(a, 0.5))
}

/** Per pair of an attention-transfer loss, the per-sample `[B]` distance of the attention maps. */
const attentionPairs = (l: Extract<Loss.Loss, { _tag: "AttentionTransfer" }>, env: Env): tf.Tensor1D[] =>
  l.pairs.map(([s, t], i) => {
    const qs = signal(s, env)
    const qt = signal(t, env)
    if (qs.shape.length !== qt.shape.length || qs.shape.slice(0, -1).some((d, j) => d !== qt.shape[j]))
      fail(
        `AttentionTransfer pair ${i}: activations [${qs.shape.join(", ")}] and [${qt.shape.join(", ")}] differ in spatial size`,
      )
    const diff = tf.square(tf.sub(attentionMap(qs), attentionMap(qt)))
    return l.variant === "paper" ? tf.sum(diff, 1) : tf.mean(diff, 1)
  })

/** The per-sample values `[B]` of a loss that is a batch mean (every kind but the parameter norms). */
const samples = (l: Loss.Loss, env: Env): tf.Tensor1D => {
  switch (l._tag) {
    case "SquaredError":
    case "AbsoluteError": {
      const p = signal(l.prediction, env)
      const t = signal(l.target, env)
      sameShape(l._tag, p, t)
      const d = tf.sub(p, t)
      return perSample(l._tag === "SquaredError" ? tf.square(d) : tf.abs(d), l.reduce)
    }
    case "AttentionTransfer": {
      const pairs = attentionPairs(l, env)
      return pairs.length === 0
        ? fail("an attention transfer without pairs has no per-sample values")
        : addN(pairs)
    }
    case "Transfer": {
      const s = signal(l.student, env)
      const t = signal(l.teacher, env)
      const mapped = l.adapter === undefined ? s : adapt(s, paramsOf(env, l.adapter), l.adapter)
      sameShape("Transfer", mapped, t)
      return perSample(tf.square(tf.sub(mapped, t)), "sum")
    }
    case "Uncertainty": {
      const p = signal(l.prediction, env)
      const t = signal(l.target, env)
      sameShape("Uncertainty", p, t)
      const a = signal(l.logVariance, env)
      if (a.size !== batchOf(a))
        fail(`Uncertainty: the log-variance must be one scalar per sample, got [${a.shape.join(", ")}]`)
      const alpha = tf.reshape(a, [batchOf(a)])
      const d = tf.sub(p, t)
      const decay = tf.exp(tf.neg(alpha))
      const half = tf.mul(alpha, 0.5)
      if (l.reduce === "mean")
        return l.norm === "l2"
          ? tf.add(tf.mul(tf.mul(decay, 0.5), perSample(tf.square(d), "mean")), half)
          : tf.add(tf.mul(decay, perSample(smoothL1(d), "mean")), half)
      return l.norm === "l2"
        ? tf.add(tf.mul(tf.mul(decay, 0.5), tf.sqrt(tf.add(perSample(tf.square(d), "sum"), NORM_EPS))), half)
        : tf.add(tf.mul(decay, tf.sub(perSample(tf.abs(d), "sum"), 0.5)), half)
    }
    case "Sum":
      return l.terms.length === 0
        ? fail("an empty sum has no per-sample values")
        : addN(l.terms.map((t) => samples(t, env)))
    case "Scale":
      return tf.mul(samples(l.loss, env), l.factor)
    case "WeightedNorm":
    case "Norm":
      return fail(`${l._tag} of "${l.model}" reads parameters, not the batch: it has no per-sample values`)
    default: {
      const _: never = l
      return _
    }
  }
}

const addN = <T extends tf.Tensor>(ts: readonly T[]): T =>
  ts.length === 1 ? ts[0]! : (tf.addN([...ts]) as T)

const go = (l: Loss.Loss, env: Env): tf.Scalar => {
  switch (l._tag) {
    case "SquaredError":
    case "AbsoluteError":
    case "Transfer":
    case "Uncertainty":
      return tf.mean(samples(l, env))
    case "AttentionTransfer": {
      const terms = attentionPairs(l, env).map((pair) => tf.mean(pair))
      return (terms.length === 0 ? tf.scalar(0) : tf.addN(terms)) as tf.Scalar
    }
    case "WeightedNorm": {
      const theta = paramsOf(env, l.model)
      const phi = env.meta[l.phi] ?? fail(`no meta-parameters "${l.phi}"`)
      const terms = Object.entries(theta).map(([k, t]) => {
        const w = phi[k] ?? fail(`meta-parameters "${l.phi}" have no entry "${k}" of "${l.model}"`)
        sameShape(`WeightedNorm ${l.phi}/${k}`, w, t)
        return tf.sum(tf.mul(w, l.p === 2 ? tf.square(t) : tf.abs(t)))
      })
      return (terms.length === 0 ? tf.scalar(0) : tf.addN(terms)) as tf.Scalar
    }
    case "Norm": {
      const terms = Object.values(paramsOf(env, l.model)).map((t) =>
        tf.sum(l.p === 2 ? tf.square(t) : tf.abs(t)),
      )
      return tf.mul(terms.length === 0 ? tf.scalar(0) : tf.addN(terms), l.sigma)
    }
    case "Sum": {
      const terms = l.terms.map((t) => go(t, env))
      return (terms.length === 0 ? tf.scalar(0) : tf.addN(terms)) as tf.Scalar
    }
    case "Scale":
      return tf.mul(go(l.loss, env), l.factor)
    default: {
      const _: never = l
      return _
    }
  }
}

/** The loss's value on `env`: a scalar, differentiable (to any order) in everything `env` holds. */
export const evaluate = (loss: Loss.Loss, env: Env): tf.Scalar => tf.tidy(() => go(loss, env))

/** The per-sample values `[B]` whose batch mean `loss` is; a `LossError` for losses that read parameters. */
export const perSampleValues = (loss: Loss.Loss, env: Env): tf.Tensor1D => tf.tidy(() => samples(loss, env))

/**
 * The part of a loss that reads meta-parameters `phi`: the terms of its `Sum`s
 * (with their `Scale` factors) that mention φ; `undefined` when none does.
 */
export const dependingOn = (loss: Loss.Loss, phi: string): Loss.Loss | undefined => {
  switch (loss._tag) {
    case "WeightedNorm":
      return loss.phi === phi ? loss : undefined
    case "Sum": {
      const terms = loss.terms.map((t) => dependingOn(t, phi)).filter((t): t is Loss.Loss => t !== undefined)
      return terms.length === 0 ? undefined : { _tag: "Sum", terms }
    }
    case "Scale": {
      const inner = dependingOn(loss.loss, phi)
      return inner === undefined ? undefined : { _tag: "Scale", factor: loss.factor, loss: inner }
    }
    case "SquaredError":
    case "AbsoluteError":
    case "AttentionTransfer":
    case "Transfer":
    case "Uncertainty":
    case "Norm":
      return undefined
    default: {
      const _: never = loss
      return _
    }
  }
}

/**
 * The loss algebra: losses and regularisers as values over **signals**.
 *
 * A signal names something a loss reads: a model's output, one of its taps
 * (typed: only tap names the model's network declares compile), a data field,
 * or a model's parameters. Losses compose by `sum` and `scale`. Interpreters
 * give a loss its meanings: a scalar tensor (tf), a shape check against the
 * models it names (shape-check), and plain float64 arrays (reference).
 *
 * Every pointwise loss is a mean over the batch of a per-sample quantity, so
 * its value does not depend on the batch size.
 *
 * @module
 */
import type * as Program from "./Program.ts"

// ---- signals ------------------------------------------------------------------

/** Per-sample data fields a batch provides (see `Data`). */
export type Field = "joints3d" | "joints2d" | "rgb" | "depth"

export type Signal =
  | { readonly _tag: "Output"; readonly model: string }
  | { readonly _tag: "Tap"; readonly model: string; readonly tap: string }
  | { readonly _tag: "Field"; readonly field: Field }
  /** A slice `[start, start + size)` of the last axis of another signal (e.g. the pose part of a head's output). */
  | { readonly _tag: "Slice"; readonly signal: Signal; readonly start: number; readonly size: number }
  /**
   * The weak-perspective re-projection of 3D joints `pose` (`[3J]`: x, y, z per joint) through a camera
   * (`[3]`: c₀, c₁, c₂) into `[2J]` pixels of an `imageSize` input (DIR-Net's Eq. 2 without MANO, R = I):
   * `J2D_j = S·(s·(x_j, y_j) + t + ½)` with `s = baseScale·exp(clip(c₀, −4, 4))`, `t = (c₁, c₂)`, `S = imageSize`.
   */
  | {
      readonly _tag: "Reproject"
      readonly pose: Signal
      readonly camera: Signal
      readonly imageSize: number
      readonly baseScale: number
    }

/** A model's final output. */
export const output = (model: Program.Model): Signal => ({ _tag: "Output", model: model.name })
/** A model's tap; the name must be one of the taps its network declares. */
export const tap = <T extends string>(model: Program.Model<T>, name: NoInfer<T>): Signal => ({
  _tag: "Tap",
  model: model.name,
  tap: name,
})
/** A field of the data batch. */
export const field = (name: Field): Signal => ({ _tag: "Field", field: name })
/** `signal[..., start : start + size]`. */
export const slice = (signal: Signal, start: number, size: number): Signal => ({
  _tag: "Slice",
  signal,
  start,
  size,
})

/** {@link Signal}'s `Reproject`: `pose` through `camera` into pixels of an `imageSize` input. */
export const reproject = (
  pose: Signal,
  camera: Signal,
  o: { readonly imageSize: number; readonly baseScale: number },
): Signal => ({ _tag: "Reproject", pose, camera, imageSize: o.imageSize, baseScale: o.baseScale })

/** The models whose outputs or taps a signal reads. */
export const signalModels = (s: Signal): string[] => {
  switch (s._tag) {
    case "Output":
    case "Tap":
      return [s.model]
    case "Field":
      return []
    case "Slice":
      return signalModels(s.signal)
    case "Reproject":
      return [...new Set([...signalModels(s.pose), ...signalModels(s.camera)])]
    default: {
      const _: never = s
      return _
    }
  }
}

// ---- losses -------------------------------------------------------------------

/** Attention transfer's two published variants (Zagoruyko & Komodakis; CMKG Eq. 3). */
export type AttentionVariant =
  /** The paper (and CMKG): attention = Σ_c Q_c², ℓ2-normalised; loss = ‖Ā_s − Ā_t‖² summed over positions. */
  | "paper"
  /** Zagoruyko's code: attention = mean_c Q_c², ℓ2-normalised; loss = mean over positions of (Ā_s − Ā_t)². */
  | "code"

export type Loss =
  /** Mean over the batch of the squared ℓ2 distance per sample: L_REG (CMKG Eq. 1), L_3D (DIR-Net Eq. 3). */
  | {
      readonly _tag: "SquaredError"
      readonly prediction: Signal
      readonly target: Signal
      readonly reduce: "sum" | "mean"
    }
  /** Mean over the batch of the ℓ1 distance per sample: L_2D (DIR-Net Eq. 3). */
  | {
      readonly _tag: "AbsoluteError"
      readonly prediction: Signal
      readonly target: Signal
      readonly reduce: "sum" | "mean"
    }
  /** Attention transfer summed over tap pairs (CMKG Eq. 3). Pairs need equal H×W. */
  | {
      readonly _tag: "AttentionTransfer"
      readonly pairs: readonly (readonly [student: Signal, teacher: Signal])[]
      readonly variant: AttentionVariant
    }
  /**
   * Supervision transfer (Gupta et al. Eq. 2): ‖t(ψ(I_u)) − φ(I_l)‖² per sample, mean over
   * the batch, with `t` a learnable 1×1 convolution (image signals) or dense map (vectors)
   * named `adapter`, or the identity when `adapter` is undefined.
   */
  | {
      readonly _tag: "Transfer"
      readonly student: Signal
      readonly teacher: Signal
      readonly adapter: string | undefined
    }
  /**
   * DIR-Net's uncertainty losses (Eqs. 8, 9) for a per-sample error L of `prediction` against `target`
   * and a predicted log-variance α (one scalar per sample), averaged over the batch. `reduce` says what L is:
   * - `"norm"`, the equations as printed: L = ‖ŷ − y‖₂ (`l2`, L_var3D: e^{−α}/2·L + α/2) or
   *   L = ‖ŷ − y‖₁ (`l1`, L_var2D: e^{−α}(L − ½) + α/2, unbounded below as α → −∞ once L < ½);
   * - `"mean"`, bounded, what the DIR-Net programs train with: `l2`: L = mean((ŷ − y)²), e^{−α}/2·L + α/2;
   *   `l1`: L = mean(smoothL1(ŷ − y)), e^{−α}·L + α/2, i.e. Eq. 9 with its −½ taken per coordinate by
   *   smooth-ℓ1, equal to it when every coordinate is off by at least 1 (He et al.'s KL loss).
   */
  | {
      readonly _tag: "Uncertainty"
      readonly prediction: Signal
      readonly target: Signal
      readonly logVariance: Signal
      readonly norm: "l1" | "l2"
      readonly reduce: "norm" | "mean"
    }
  /** R(θ; φ) = Σ φ_i θ_i² (CMKG Eq. 10) or its ℓ1 form Σ φ_i |θ_i|, over `model`'s parameters, with φ named `phi`. */
  | { readonly _tag: "WeightedNorm"; readonly model: string; readonly phi: string; readonly p: 1 | 2 }
  /** The default regulariser σ·Σ|θ_i|^p over `model`'s parameters. */
  | { readonly _tag: "Norm"; readonly model: string; readonly sigma: number; readonly p: 1 | 2 }
  | { readonly _tag: "Sum"; readonly terms: readonly Loss[] }
  | { readonly _tag: "Scale"; readonly factor: number; readonly loss: Loss }

export type Tag = Loss["_tag"]

// ---- constructors ---------------------------------------------------------------

/** ‖prediction − target‖² per sample, averaged over the batch (`reduce: "mean"` also averages over elements). */
export const squaredError = (prediction: Signal, target: Signal, reduce: "sum" | "mean" = "sum"): Loss => ({
  _tag: "SquaredError",
  prediction,
  target,
  reduce,
})
export const absoluteError = (prediction: Signal, target: Signal, reduce: "sum" | "mean" = "sum"): Loss => ({
  _tag: "AbsoluteError",
  prediction,
  target,
  reduce,
})

/**
 * How L_REG and L_ACT reduce each sample's squared errors: `"sum"`, ‖·‖² as
 * CMKG's Eqs. 1 and 2 print them, or `"mean"` over elements, PyTorch's
 * `MSELoss` and the "mean squared errors" of the text after Eq. 8.
 */
export type Reduction = "sum" | "mean"

/** CMKG's L_REG (Eq. 1): squared error of the predicted 3D joints (`reduce` default `"sum"`, Eq. 1 as printed). */
export const regression = (model: Program.Model, reduce: Reduction = "sum"): Loss =>
  squaredError(output(model), field("joints3d"), reduce)

/**
 * CMKG's L_ACT (Eq. 2): ‖Q_l(x; f) − Q_l(x̃; g)‖² between the student's and the teacher's final
 * activation maps (`reduce` default `"sum"`, Eq. 2 as printed; `"mean"` divides by H·W·C).
 */
export const activationMatch = (student: Signal, teacher: Signal, reduce: Reduction = "sum"): Loss =>
  squaredError(student, teacher, reduce)

/** CMKG's L_ATT (Eq. 3), the paper's variant by default. */
export const attentionTransfer = (
  pairs: readonly (readonly [Signal, Signal])[],
  variant: AttentionVariant = "paper",
): Loss => ({ _tag: "AttentionTransfer", pairs, variant })

/**
 * CMKG's L_DIST = L_ACT + λ·L_ATT (Eq. 4), λ = 1e3 by default: the final
 * activations `last` matched (reduced by `reduce`, default `"sum"`), attention
 * transferred at every tap of `taps`.
 */
export const distillation = <S extends string, T extends string>(options: {
  readonly student: Program.Model<S>
  readonly teacher: Program.Model<T>
  readonly last: NoInfer<S & T>
  readonly taps: readonly NoInfer<S & T>[]
  readonly lambda?: number
  readonly variant?: AttentionVariant
  readonly reduce?: Reduction
}): Loss =>
  sum(
    activationMatch(tap(options.student, options.last), tap(options.teacher, options.last), options.reduce),
    scale(
      options.lambda ?? 1e3,
      attentionTransfer(
        options.taps.map((t) => [tap(options.student, t), tap(options.teacher, t)] as const),
        options.variant,
      ),
    ),
  )

export const transfer = (student: Signal, teacher: Signal, adapter?: string): Loss => ({
  _tag: "Transfer",
  student,
  teacher,
  adapter,
})

export const uncertainty = (options: {
  readonly prediction: Signal
  readonly target: Signal
  readonly logVariance: Signal
  readonly norm: "l1" | "l2"
  /** Default `"norm"`, the equations as printed. */
  readonly reduce?: "norm" | "mean"
}): Loss => ({ _tag: "Uncertainty", reduce: "norm", ...options })

/** R(θ; φ) = Σ φ_i θ_i² (p = 2, CMKG Eq. 10) or Σ φ_i |θ_i| (p = 1). */
export const weightedNorm = (model: Program.Model, phi: string, p: 1 | 2 = 2): Loss => ({
  _tag: "WeightedNorm",
  model: model.name,
  phi,
  p,
})

/** σ·Σ|θ_i|^p, the default ℓ1 / ℓ2 regularisers. */
export const norm = (model: Program.Model, sigma: number, p: 1 | 2 = 2): Loss => ({
  _tag: "Norm",
  model: model.name,
  sigma,
  p,
})

export const sum = (...terms: Loss[]): Loss => ({ _tag: "Sum", terms })
export const scale = (factor: number, loss: Loss): Loss => ({ _tag: "Scale", factor, loss })

/** DIR-Net's total loss over loops (Eq. 12): the sum over iterations k of `perIteration(k)`. */
export const overLoops = (iterations: number, perIteration: (k: number) => Loss): Loss =>
  sum(...Array.from({ length: iterations }, (_, k) => perIteration(k)))

// ---- folds ------------------------------------------------------------------------

/** Every signal a loss reads. */
export const signals = (l: Loss): Signal[] => {
  switch (l._tag) {
    case "SquaredError":
    case "AbsoluteError":
      return [l.prediction, l.target]
    case "AttentionTransfer":
      return l.pairs.flatMap((p) => [...p])
    case "Transfer":
      return [l.student, l.teacher]
    case "Uncertainty":
      return [l.prediction, l.target, l.logVariance]
    case "WeightedNorm":
    case "Norm":
      return []
    case "Sum":
      return l.terms.flatMap(signals)
    case "Scale":
      return signals(l.loss)
  }
}

/** The models a loss reads activations or parameters of. */
export const models = (l: Loss): string[] => {
  const fromSignal = signalModels
  const direct = (x: Loss): string[] =>
    x._tag === "WeightedNorm" || x._tag === "Norm"
      ? [x.model]
      : x._tag === "Sum"
        ? x.terms.flatMap(direct)
        : x._tag === "Scale"
          ? direct(x.loss)
          : []
  return [...new Set([...signals(l).flatMap(fromSignal), ...direct(l)])]
}

/** Names of the meta-parameters (φ) a loss reads. */
export const metaParams = (l: Loss): string[] =>
  l._tag === "WeightedNorm"
    ? [l.phi]
    : l._tag === "Sum"
      ? [...new Set(l.terms.flatMap(metaParams))]
      : l._tag === "Scale"
        ? metaParams(l.loss)
        : []

/** Names of the learnable adapters (Gupta's t) a loss owns. */
export const adapters = (l: Loss): string[] =>
  l._tag === "Transfer"
    ? l.adapter === undefined
      ? []
      : [l.adapter]
    : l._tag === "Sum"
      ? [...new Set(l.terms.flatMap(adapters))]
      : l._tag === "Scale"
        ? adapters(l.loss)
        : []

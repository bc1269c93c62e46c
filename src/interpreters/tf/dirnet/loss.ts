/**
 * The tf meaning of the `Loss` values DIR-Net uses, per sample.
 *
 * A minimal evaluator for the loss kinds Eq. 12 needs (squared and absolute
 * errors, the uncertainty losses, sums and scales over tap/field/slice
 * signals), kept local to DIR-Net until the generic tf loss interpreter
 * lands; it evaluates each loss as a `[B]` vector of per-sample values (the
 * gate's reward needs them), the scalar loss being their mean.
 *
 * Conventions (stated by `Loss`): `reduce: "sum"` sums a sample's element
 * errors, `"mean"` averages them. For `Uncertainty`, the per-sample error L
 * is the **mean** over coordinates: `l2` gives `e^{−α}/2·mean((ŷ−y)²) + α/2`
 * (Eq. 8); `l1` gives `e^{−α}·mean(smoothL1(ŷ−y)) + α/2`, which is Eq. 9's
 * `e^{−α}(L − ½) + α/2` when every coordinate is off by at least 1 (the
 * regime Eq. 9 is written for, following He et al.'s KL loss): Eq. 9 taken
 * literally is unbounded below as α → −∞ once L < ½.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core"
import type * as Loss from "../../../dsl/Loss.ts"

/** Where signals come from: taps by name (model names are not distinguished: one model), the output, data fields. */
export interface Signals {
  readonly taps: Readonly<Record<string, tf.Tensor>>
  readonly output: tf.Tensor | undefined
  readonly fields: Partial<Readonly<Record<Loss.Field, tf.Tensor>>>
}

export class UnsupportedLoss extends Error {}

const signal = (s: Loss.Signal, env: Signals): tf.Tensor => {
  switch (s._tag) {
    case "Tap": {
      const t = env.taps[s.tap]
      if (t === undefined)
        throw new UnsupportedLoss(`no tap "${s.tap}" (have ${Object.keys(env.taps).join(", ")})`)
      return t
    }
    case "Output":
      if (env.output === undefined) throw new UnsupportedLoss("no output")
      return env.output
    case "Field": {
      const t = env.fields[s.field]
      if (t === undefined) throw new UnsupportedLoss(`no field "${s.field}"`)
      return t
    }
    case "Slice": {
      const t = signal(s.signal, env)
      const begin = t.shape.map((_, i) => (i === t.rank - 1 ? s.start : 0))
      const size = t.shape.map((d, i) => (i === t.rank - 1 ? s.size : d!))
      return tf.slice(t, begin, size)
    }
  }
}

/** Flattens to `[B, n]`. */
const rows = (t: tf.Tensor): tf.Tensor2D => tf.reshape(t, [t.shape[0]!, -1]) as tf.Tensor2D

const smoothL1 = (d: tf.Tensor): tf.Tensor => {
  const a = tf.abs(d)
  return tf.where(tf.less(a, 1), tf.mul(tf.square(d), 0.5), tf.sub(a, 0.5))
}

/** The per-sample values `[B]` of `loss`. */
export const perSample = (loss: Loss.Loss, env: Signals): tf.Tensor1D => {
  switch (loss._tag) {
    case "SquaredError":
    case "AbsoluteError": {
      const d = tf.sub(rows(signal(loss.prediction, env)), rows(signal(loss.target, env)))
      const e = loss._tag === "SquaredError" ? tf.square(d) : tf.abs(d)
      return (loss.reduce === "sum" ? tf.sum(e, 1) : tf.mean(e, 1)) as tf.Tensor1D
    }
    case "Uncertainty": {
      const d = tf.sub(rows(signal(loss.prediction, env)), rows(signal(loss.target, env)))
      const alpha = tf.reshape(signal(loss.logVariance, env), [-1])
      const error = loss.norm === "l2" ? tf.mul(tf.mean(tf.square(d), 1), 0.5) : tf.mean(smoothL1(d), 1)
      return tf.add(tf.mul(tf.exp(tf.neg(alpha)), error), tf.mul(alpha, 0.5)) as tf.Tensor1D
    }
    case "Sum": {
      if (loss.terms.length === 0) throw new UnsupportedLoss("empty sum")
      return tf.addN(loss.terms.map((t) => perSample(t, env))) as tf.Tensor1D
    }
    case "Scale":
      return tf.mul(perSample(loss.loss, env), loss.factor) as tf.Tensor1D
    default:
      throw new UnsupportedLoss(`the DIR-Net loss evaluator does not handle ${loss._tag}`)
  }
}

/** The scalar value of `loss`: the batch mean of {@link perSample}. */
export const value = (loss: Loss.Loss, env: Signals): tf.Scalar => tf.mean(perSample(loss, env))

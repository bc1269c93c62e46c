/**
 * Batch norm in training mode (batch statistics) as one op with a
 * hand-written gradient.
 *
 * Written as a composite of tfjs ops, a training-mode batch norm costs about
 * six full passes over the activation forward and twenty backward (tfjs's
 * gradients of mean/sub/square broadcast and tile through the whole tensor):
 * in a conv net's training step that is most of the time. Where the backend
 * has the two fused kernels below (`cmkg-cpu` does) the op costs two passes
 * forward and two backward. Elsewhere it is the composite, so every backend
 * computes the same function.
 *
 * Second order stays exact: the gradient kernel's own gradient is the
 * vector-Jacobian product of the composite backward formula, built from
 * differentiable ops (meta-learning differentiates through a training step).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core"
import { vjp } from "./vjp.ts"

/** Inputs {x, gamma, beta}, attr {eps}; outputs [y, mean, variance] (variance biased, over all axes but the last). */
export const BATCH_NORM_TRAIN = "CmkgBatchNormTrain"
/** Inputs {x, gamma, dy, mean, variance}, attr {eps}; outputs [dx, dgamma, dbeta]. */
export const BATCH_NORM_TRAIN_GRAD = "CmkgBatchNormTrainGrad"

export interface BatchStatistics {
  readonly y: tf.Tensor
  readonly mean: tf.Tensor1D
  readonly variance: tf.Tensor1D
}

const leadingAxes = (x: tf.Tensor): Array<number> => x.shape.slice(0, -1).map((_, i) => i)

/** y = (x − μ)·γ/√(σ² + ε) + β with the batch's μ and (biased) σ², per last-axis channel. */
export const composite = (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number): BatchStatistics =>
  tf.tidy(() => {
    const axes = leadingAxes(x)
    const mean = tf.mean(x, axes) as tf.Tensor1D
    const centred = tf.sub(x, mean)
    const variance = tf.mean(tf.square(centred), axes) as tf.Tensor1D
    // The per-channel factor γ/√(σ² + ε) is formed first so that only two full-size ops touch the activation.
    const y = tf.add(tf.mul(centred, tf.mul(gamma, tf.rsqrt(tf.add(variance, eps)))), beta)
    return { y, mean, variance }
  })

/**
 * The gradient of `composite`'s y with respect to (x, γ, β), as differentiable
 * ops: with x̂ = (x − μ)/√(σ² + ε) and N values per channel,
 * dβ = Σ dy, dγ = Σ dy·x̂, dx = γ/√(σ² + ε) · (dy − dβ/N − x̂·dγ/N).
 */
export const compositeGrad = (
  x: tf.Tensor,
  gamma: tf.Tensor,
  dy: tf.Tensor,
  eps: number,
): { dx: tf.Tensor; dgamma: tf.Tensor; dbeta: tf.Tensor } =>
  tf.tidy(() => {
    const axes = leadingAxes(x)
    const n = x.size / x.shape[x.shape.length - 1]!
    const mean = tf.mean(x, axes)
    const centred = tf.sub(x, mean)
    const invStd = tf.rsqrt(tf.add(tf.mean(tf.square(centred), axes), eps))
    const xHat = tf.mul(centred, invStd)
    const dbeta = tf.sum(dy, axes)
    const dgamma = tf.sum(tf.mul(dy, xHat), axes)
    const inner = tf.sub(tf.sub(dy, tf.div(dbeta, n)), tf.mul(xHat, tf.div(dgamma, n)))
    const dx = tf.mul(inner, tf.mul(gamma, invStd))
    return { dx, dgamma, dbeta }
  })

const hasKernel = (name: string): boolean => tf.getKernel(name, tf.getBackend()) !== undefined

/**
 * Training-mode batch norm: the normalised output and the batch statistics
 * (for the running averages). Gradients flow to x, γ and β through y only:
 * the statistics are side outputs for state updates, not for losses.
 */
export const batchNormTrain = (
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  eps: number,
): BatchStatistics => {
  if (!hasKernel(BATCH_NORM_TRAIN)) return composite(x, gamma, beta, eps)
  const [y, mean, variance] = tf
    .engine()
    .runKernel(
      BATCH_NORM_TRAIN,
      { x, gamma, beta } as unknown as tf.NamedTensorMap,
      { eps } as unknown as tf.NamedAttrMap,
    ) as unknown as [tf.Tensor, tf.Tensor1D, tf.Tensor1D]
  return { y, mean, variance }
}

const epsOf = (attrs: tf.NamedAttrMap | undefined): number => (attrs as unknown as { eps: number }).eps

/** Gradient configs of the two kernels (registered with the interpreter's other gradients). */
export const batchNormGradients: ReadonlyArray<tf.GradConfig> = [
  {
    kernelName: BATCH_NORM_TRAIN,
    inputsToSave: ["x", "gamma"],
    outputsToSave: [false, true, true],
    gradFunc: (dys, saved, attrs) => {
      const [x, gamma, mean, variance] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]
      const dy = (Array.isArray(dys) ? dys[0] : dys) as tf.Tensor
      const [dx, dgamma, dbeta] = tf
        .engine()
        .runKernel(
          BATCH_NORM_TRAIN_GRAD,
          { x, gamma, dy, mean, variance } as unknown as tf.NamedTensorMap,
          { eps: epsOf(attrs) } as unknown as tf.NamedAttrMap,
        ) as unknown as [tf.Tensor, tf.Tensor, tf.Tensor]
      return { x: () => dx, gamma: () => dgamma, beta: () => dbeta }
    },
  },
  {
    // Second order: the VJP of the composite backward formula. μ and σ² enter
    // the composite through x, so their own gradients are zero here.
    kernelName: BATCH_NORM_TRAIN_GRAD,
    inputsToSave: ["x", "gamma", "dy", "mean", "variance"],
    gradFunc: (dys, saved, attrs) => {
      const [x, gamma, dy, mean, variance] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]
      const [ddx, ddgamma, ddbeta] = dys as [tf.Tensor, tf.Tensor, tf.Tensor]
      const eps = epsOf(attrs)
      const [gx, ggamma, gdy] = vjp(
        (a, g, d) => {
          const r = compositeGrad(a!, g!, d!, eps)
          return [r.dx, r.dgamma, r.dbeta]
        },
        [x, gamma, dy],
        [ddx, ddgamma, ddbeta],
      )
      return {
        x: () => gx,
        gamma: () => ggamma,
        dy: () => gdy,
        mean: () => tf.zerosLike(mean),
        variance: () => tf.zerosLike(variance),
      }
    },
  },
]

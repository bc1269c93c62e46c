/**
 * Adam's moment update as one op: `scaleByAdam(g, μ, ν)` → (u, μ', ν') with
 * μ' = b1·μ + (1−b1)·g, ν' = b2·ν + (1−b2)·g², u = (μ'/c1) / (√(ν'/c2) + ε).
 *
 * As a composite of tfjs ops that is twelve passes over every parameter (on
 * ResNet-18, 11.7 M of them, a third of a training step on a CPU); the
 * `cmkg-cpu` kernel does one. Other backends run the composite. The kernel's
 * gradient is the VJP of the composite (an optimizer step can sit inside a
 * differentiated function), so both paths mean the same function.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core"
import { vjp } from "./vjp.ts"

/** Inputs {g, mu, nu}; attrs {b1, b2, eps, c1, c2}; outputs [update, mu', nu']. */
export const SCALE_BY_ADAM = "CmkgScaleByAdam"

export interface AdamConstants {
  readonly b1: number
  readonly b2: number
  readonly eps: number
  /** Bias corrections 1 − b1^t and 1 − b2^t. */
  readonly c1: number
  readonly c2: number
}

export interface AdamStep {
  readonly update: tf.Tensor
  readonly mu: tf.Tensor
  readonly nu: tf.Tensor
}

export const composite = (g: tf.Tensor, mu: tf.Tensor, nu: tf.Tensor, k: AdamConstants): AdamStep =>
  tf.tidy(() => {
    const m = tf.add(tf.mul(mu, k.b1), tf.mul(g, 1 - k.b1))
    const v = tf.add(tf.mul(nu, k.b2), tf.mul(tf.square(g), 1 - k.b2))
    const update = tf.div(tf.div(m, k.c1), tf.add(tf.sqrt(tf.div(v, k.c2)), k.eps))
    return { update, mu: m, nu: v }
  })

export const scaleByAdam = (g: tf.Tensor, mu: tf.Tensor, nu: tf.Tensor, k: AdamConstants): AdamStep => {
  const fused =
    tf.getKernel(SCALE_BY_ADAM, tf.getBackend()) !== undefined &&
    [g, mu, nu].every((t) => t.dtype === "float32")
  if (!fused) return composite(g, mu, nu, k)
  const [update, m, v] = tf
    .engine()
    .runKernel(
      SCALE_BY_ADAM,
      { g, mu, nu } as unknown as tf.NamedTensorMap,
      { ...k } as unknown as tf.NamedAttrMap,
    ) as unknown as [tf.Tensor, tf.Tensor, tf.Tensor]
  return { update, mu: m, nu: v }
}

export const adamGradients: ReadonlyArray<tf.GradConfig> = [
  {
    kernelName: SCALE_BY_ADAM,
    inputsToSave: ["g", "mu", "nu"],
    gradFunc: (dys, saved, attrs) => {
      const [g, mu, nu] = saved as [tf.Tensor, tf.Tensor, tf.Tensor]
      const [du, dmu, dnu] = dys as [tf.Tensor, tf.Tensor, tf.Tensor]
      const k = attrs as unknown as AdamConstants
      const [gg, gmu, gnu] = vjp(
        (a, b, c) => {
          const r = composite(a!, b!, c!, k)
          return [r.update, r.mu, r.nu]
        },
        [g, mu, nu],
        [du, dmu, dnu],
      )
      return { g: () => gg, mu: () => gmu, nu: () => gnu }
    },
  },
]

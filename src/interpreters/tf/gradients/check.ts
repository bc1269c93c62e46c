// Finite-difference checks for first and second derivatives of tfjs
// functions: used by the second-order laws, usable when adding new kernels.
//
// All tensors here are float32; comparisons are done in float64 on the host.

import * as tf from "@tensorflow/tfjs-core"

export type ScalarFn = (xs: readonly tf.Tensor[]) => tf.Scalar

/** Gradient of f with respect to every input; inputs f does not depend on get zeros. */
export const gradients = (f: ScalarFn, xs: readonly tf.Tensor[]): tf.Tensor[] => {
  const { value, grads } = tf.engine().gradients(() => f(xs), [...xs], undefined, true)
  value.dispose()
  return grads.map((g, i) => g ?? tf.zerosLike(xs[i] as tf.Tensor))
}

/** <a, b> summed over all inputs. */
const inner = (as: readonly tf.Tensor[], bs: readonly tf.Tensor[]): tf.Scalar =>
  tf.addN(as.map((a, i) => tf.sum(tf.mul(a, bs[i] as tf.Tensor)))) as tf.Scalar

/** Hessian-vector product by reverse-over-reverse: grad_x <grad f(x), v>. */
export const hvp = (f: ScalarFn, xs: readonly tf.Tensor[], vs: readonly tf.Tensor[]): tf.Tensor[] =>
  tf.tidy(() => gradients((ys) => inner(gradients(f, ys), vs), xs))

const shifted = (xs: readonly tf.Tensor[], vs: readonly tf.Tensor[], eps: number): tf.Tensor[] =>
  xs.map((x, i) => tf.add(x, tf.mul(vs[i] as tf.Tensor, eps)))

/** (grad f(x + eps v) - grad f(x - eps v)) / 2 eps. */
export const fdHvp = (
  f: ScalarFn,
  xs: readonly tf.Tensor[],
  vs: readonly tf.Tensor[],
  eps: number,
): tf.Tensor[] =>
  tf.tidy(() => {
    const gp = gradients(f, shifted(xs, vs, eps))
    const gm = gradients(f, shifted(xs, vs, -eps))
    return gp.map((g, i) => tf.div(tf.sub(g, gm[i] as tf.Tensor), 2 * eps))
  })

/** <grad f(x), v> and its central difference (f(x + eps v) - f(x - eps v)) / 2 eps, in float64. */
export const directional = (
  f: ScalarFn,
  xs: readonly tf.Tensor[],
  vs: readonly tf.Tensor[],
  eps: number,
): { analytic: number; numeric: number } =>
  tf.tidy(() => {
    const analytic = inner(gradients(f, xs), vs).dataSync()[0] as number
    const fp = f(shifted(xs, vs, eps)).dataSync()[0] as number
    const fm = f(shifted(xs, vs, -eps)).dataSync()[0] as number
    return { analytic, numeric: (fp - fm) / (2 * eps) }
  })

/**
 * Gradients of functions of parameter trees, composable to any order.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core"
import type { Tree } from "./init.ts"

/**
 * The value of `f(params)` and its gradient with respect to the entries
 * `wrt` (default: all). Usable inside another differentiated function: the
 * returned gradients are themselves differentiable.
 */
export const valueAndGrad = (
  f: (params: Tree) => tf.Scalar,
  params: Tree,
  wrt: readonly string[] = Object.keys(params),
): { value: tf.Scalar; grads: Tree } => {
  const keys = [...wrt]
  const { value, grads } = tf.valueAndGrads((...ts: tf.Tensor[]) => {
    const tree: Record<string, tf.Tensor> = { ...params }
    keys.forEach((k, i) => {
      tree[k] = ts[i]!
    })
    return f(tree)
  })(keys.map((k) => params[k]!))
  return { value: value as tf.Scalar, grads: Object.fromEntries(keys.map((k, i) => [k, grads[i]!])) }
}

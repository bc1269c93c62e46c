/**
 * Vector-Jacobian products of composite ops, for the gradients of fused
 * kernels (batch norm's, Adam's): a fused kernel's gradient is the VJP of the
 * composite it stands for, so both mean the same function to every order.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core"

/**
 * Run `f` (which takes gradients) inside a gradient function. When the outer
 * `tf.grads` is walking its tape (gradient depth 0), a nested `tf.grads`
 * replaces the engine's tape with its own and leaves it null, so the outer
 * one fails ("activeTape is null") and leaks its saved tensors. tfjs-core
 * 4.22 (pinned) keeps the tape in `engine.state.activeTape`: keep it aside.
 */
export const withOwnTape = <A>(f: () => A): A => {
  const state = (tf.engine() as unknown as { state: { activeTape: unknown } }).state
  const outer = state.activeTape
  try {
    return f()
  } finally {
    state.activeTape = outer
  }
}

/** Σᵢ ⟨fᵢ(inputs), cotangentsᵢ⟩ differentiated with respect to each input. */
export const vjp = (
  f: (...inputs: tf.Tensor[]) => readonly tf.Tensor[],
  inputs: readonly tf.Tensor[],
  cotangents: readonly tf.Tensor[],
): tf.Tensor[] =>
  withOwnTape(() =>
    tf.grads((...xs: tf.Tensor[]) => tf.addN(f(...xs).map((y, i) => tf.sum(tf.mul(y, cotangents[i]!)))))([
      ...inputs,
    ]),
  )

/**
 * The tf meaning of `Optimizer` values: pure state in, state out.
 *
 * `update` uses only differentiable tfjs ops on its arguments, so an
 * optimizer step can sit inside a function that is itself differentiated
 * (an unrolled inner loop); the runner's step (`step.ts`) manages tensor
 * lifetimes around it.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core"
import { scaleByAdam } from "../../backend/ops/adam.ts"
import type * as Optimizer from "../../dsl/Optimizer.ts"
import type { Tree } from "./init.ts"

/** Per-transform state: moments keyed by parameter path, and a step count. */
export interface State {
  readonly count: number
  readonly slots: readonly Readonly<Record<string, Tree>>[]
}

const map = (tree: Tree, f: (t: tf.Tensor, k: string) => tf.Tensor): Record<string, tf.Tensor> =>
  Object.fromEntries(Object.entries(tree).map(([k, t]) => [k, f(t, k)]))

const zerosLike = (params: Tree): Tree => map(params, (t) => tf.zerosLike(t))

/** Initial optimizer state for `params`. */
export const init = (o: Optimizer.Optimizer, params: Tree): State => ({
  count: 0,
  slots: o.chain.map((t) => {
    switch (t._tag) {
      case "Trace":
        return { momentum: zerosLike(params) }
      case "ScaleByAdam":
        return { mu: zerosLike(params), nu: zerosLike(params) }
      default:
        return {}
    }
  }),
})

/** Transforms `grads` into updates (to be added to the parameters). */
export const update = (
  o: Optimizer.Optimizer,
  grads: Tree,
  state: State,
  params: Tree,
): { updates: Tree; state: State } => {
  let g: Tree = grads
  const count = state.count + 1
  const slots = o.chain.map((t, i): Readonly<Record<string, Tree>> => {
    const slot = state.slots[i]!
    switch (t._tag) {
      case "ClipByGlobalNorm": {
        const norm = tf.sqrt(tf.addN(Object.values(g).map((x) => tf.sum(tf.square(x)))))
        const factor = tf.minimum(tf.scalar(1), tf.div(t.maxNorm, tf.add(norm, 1e-12)))
        g = map(g, (x) => tf.mul(x, factor))
        return slot
      }
      case "ClipByValue":
        g = map(g, (x) => tf.clipByValue(x, -t.max, t.max))
        return slot
      case "AddDecayedWeights":
        g = map(g, (x, k) => tf.add(x, tf.mul(params[k]!, t.decay)))
        return slot
      case "Trace": {
        const momentum = map(g, (x, k) => tf.add(tf.mul(slot.momentum![k]!, t.decay), x))
        g = momentum
        return { momentum }
      }
      case "ScaleByAdam": {
        // One fused op per parameter where the backend has it (see adam.ts).
        const constants = { b1: t.b1, b2: t.b2, eps: t.eps, c1: 1 - t.b1 ** count, c2: 1 - t.b2 ** count }
        const steps = Object.fromEntries(
          Object.entries(g).map(([k, x]) => [k, scaleByAdam(x, slot.mu![k]!, slot.nu![k]!, constants)]),
        )
        g = map(g, (_, k) => steps[k]!.update)
        return { mu: map(g, (_, k) => steps[k]!.mu), nu: map(g, (_, k) => steps[k]!.nu) }
      }
      case "Scale":
        g = map(g, (x) => tf.mul(x, t.factor))
        return slot
      case "KeepParamsNonNegative":
        // θ + u < 0 ⇒ u = −θ, so θ + u = 0 exactly.
        g = map(g, (u, k) => tf.where(tf.less(tf.add(params[k]!, u), 0), tf.neg(params[k]!), u))
        return slot
      default: {
        const unhandled: never = t
        throw new Error(`unknown transform ${(unhandled as Optimizer.Transform)._tag}`)
      }
    }
  })
  return { updates: g, state: { count, slots } }
}

/** `θ + u` for every parameter that has an update (others unchanged). */
export const applyUpdates = (params: Tree, updates: Tree): Tree =>
  map(params, (p, k) => (updates[k] === undefined ? p : tf.add(p, updates[k])))

/** Every tensor held by an optimizer state. */
export const tensors = (s: State): tf.Tensor[] =>
  s.slots.flatMap((slot) => Object.values(slot).flatMap((t) => Object.values(t)))

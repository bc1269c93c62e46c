/**
 * The tf meaning of `Optimizer` values: pure state in, state out.
 *
 * `update` uses only differentiable tfjs ops on its arguments, so an
 * optimizer step can sit inside a function that is itself differentiated
 * (an unrolled inner loop); the runner's step (`step.ts`) manages tensor
 * lifetimes around it.
 *
 * A partition's state is its labels' states side by side: one step count,
 * and the slots of each label's chain (labels in `Optimizer.labels` order,
 * a frozen label has none) over that label's parameters only, so a
 * checkpoint holds it as it holds a chain's. Its updates cover only the
 * parameters of non-frozen labels: the frozen ones are never touched.
 *
 * Parameter trees may be keyed by something other than the path a
 * partition's rules read (the staged runner's `model␀path`): `pathOf` maps
 * a key to its path.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core"
import { scaleByAdam } from "../../backend/ops/adam.ts"
import * as Optimizer from "../../dsl/Optimizer.ts"
import type { Tree } from "./init.ts"

/** Per-transform state: moments keyed by parameter path, and a step count. */
export interface State {
  readonly count: number
  readonly slots: readonly Readonly<Record<string, Tree>>[]
}

const map = (tree: Tree, f: (t: tf.Tensor, k: string) => tf.Tensor): Record<string, tf.Tensor> =>
  Object.fromEntries(Object.entries(tree).map(([k, t]) => [k, f(t, k)]))

const zerosLike = (params: Tree): Tree => map(params, (t) => tf.zerosLike(t))

/** Maps a tree key to the parameter path a partition's rules read. */
export type PathOf = (key: string) => string
const samePath: PathOf = (k) => k

const pick = (tree: Tree, keys: readonly string[]): Record<string, tf.Tensor> =>
  Object.fromEntries(keys.map((k) => [k, tree[k]!]))

/** The keys of `tree` each label of a partition owns, with the label's optimizer, in the state's order. */
const blocks = (p: Optimizer.Partition, keys: readonly string[], pathOf: PathOf) =>
  Optimizer.labels(p).map(({ label, optimizer }) => ({
    optimizer,
    keys: keys.filter((k) => Optimizer.labelOf(p, pathOf(k)) === label),
  }))

/** The parameters (of `keys`) an optimizer updates: all but a partition's frozen ones. */
export const trainable = (
  o: Optimizer.Optimizer,
  keys: readonly string[],
  pathOf: PathOf = samePath,
): string[] =>
  o._tag === "Optimizer"
    ? [...keys]
    : keys.filter((k) => o.optimizers[Optimizer.labelOf(o, pathOf(k))]?._tag !== "Frozen")

/** Initial optimizer state for `params`. */
export const init = (o: Optimizer.Optimizer, params: Tree, pathOf: PathOf = samePath): State =>
  o._tag === "Optimizer"
    ? initChain(o, params)
    : {
        count: 0,
        slots: blocks(o, Object.keys(params), pathOf).flatMap((b) =>
          b.optimizer._tag === "Frozen" ? [] : initChain(b.optimizer, pick(params, b.keys)).slots,
        ),
      }

/** The slot names of each slot of a chain's state and the keys every slot holds, for `params` (no tensors made). */
const layout = (
  o: Optimizer.Optimizer,
  keys: readonly string[],
  pathOf: PathOf,
): { names: string[]; keys: string[] }[] => {
  const chainLayout = (c: Optimizer.Chain, ks: readonly string[]) =>
    initChain(c, {}).slots.map((slot) => ({ names: Object.keys(slot), keys: [...ks] }))
  return o._tag === "Optimizer"
    ? chainLayout(o, keys)
    : blocks(o, keys, pathOf).flatMap((b) =>
        b.optimizer._tag === "Frozen" ? [] : chainLayout(b.optimizer, b.keys),
      )
}

/**
 * Whether a state (e.g. one kept from an earlier stage under the same step path) is a state of
 * optimizer `o` over `params`: the same slots, each holding a tensor of each parameter's shape.
 */
export const fits = (
  o: Optimizer.Optimizer,
  state: State,
  params: Tree,
  pathOf: PathOf = samePath,
): boolean => {
  const expected = layout(o, Object.keys(params), pathOf)
  return (
    state.slots.length === expected.length &&
    expected.every(({ names, keys }, i) => {
      const slot = state.slots[i]!
      return (
        names.length === Object.keys(slot).length &&
        names.every((n) => {
          const tree = slot[n]
          return (
            tree !== undefined &&
            keys.length === Object.keys(tree).length &&
            keys.every((k) => tree[k]?.shape.join() === params[k]!.shape.join())
          )
        })
      )
    })
  )
}

const initChain = (o: Optimizer.Chain, params: Tree): State => ({
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

/**
 * Transforms `grads` into updates (to be added to the parameters). A partition's updates leave out
 * its frozen parameters; `grads` may lack them (see {@link trainable}).
 */
export const update = (
  o: Optimizer.Optimizer,
  grads: Tree,
  state: State,
  params: Tree,
  pathOf: PathOf = samePath,
): { updates: Tree; state: State } => {
  if (o._tag === "Optimizer") return updateChain(o, grads, state, params)
  const updates: Record<string, tf.Tensor> = {}
  const slots: Readonly<Record<string, Tree>>[] = []
  let at = 0
  for (const b of blocks(o, Object.keys(params), pathOf)) {
    if (b.optimizer._tag === "Frozen") continue
    const n = b.optimizer.chain.length
    if (b.keys.length === 0) {
      // A label that owns no parameter here keeps its (empty) slots: a clip has no norm to take.
      slots.push(...state.slots.slice(at, at + n))
      at += n
      continue
    }
    const sub = updateChain(
      b.optimizer,
      pick(grads, b.keys),
      { count: state.count, slots: state.slots.slice(at, at + n) },
      pick(params, b.keys),
    )
    at += n
    Object.assign(updates, sub.updates)
    slots.push(...sub.state.slots)
  }
  return { updates, state: { count: state.count + 1, slots } }
}

const updateChain = (
  o: Optimizer.Chain,
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

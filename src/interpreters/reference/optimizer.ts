/**
 * The float64 reference meaning of `Optimizer` values, partitions included:
 * naive loops over `Float64Array`s with the tf interpreter's semantics
 * (`tf/optimizer.ts`): a chain transforms the gradient left to right; a
 * partition gives each label's chain only the parameters its rules label
 * (first matching rule, else `otherwise`), each with its own state, and
 * leaves a frozen label's parameters without an update.
 *
 * @module
 */
import * as Optimizer from "../../dsl/Optimizer.ts"
import type { Params } from "./index.ts"
import { generate, type Tensor } from "./Tensor.ts"

/** Per-transform state: moments by parameter path, and a step count (a partition: its labels' slots side by side). */
export interface State {
  readonly count: number
  readonly slots: readonly Readonly<Record<string, Params>>[]
}

const map = (p: Params, f: (t: Tensor, k: string) => Tensor): Record<string, Tensor> =>
  Object.fromEntries(Object.entries(p).map(([k, t]) => [k, f(t, k)]))
const pointwise = (t: Tensor, f: (x: number, i: number) => number): Tensor =>
  generate(t.shape, (i) => f(t.data[i]!, i))
const zeros = (p: Params): Params => map(p, (t) => pointwise(t, () => 0))
const pick = (p: Params, keys: readonly string[]): Params => Object.fromEntries(keys.map((k) => [k, p[k]!]))

const chainInit = (o: Optimizer.Chain, params: Params): State => ({
  count: 0,
  slots: o.chain.map((t) =>
    t._tag === "Trace"
      ? { momentum: zeros(params) }
      : t._tag === "ScaleByAdam"
        ? { mu: zeros(params), nu: zeros(params) }
        : {},
  ),
})

const chainUpdate = (o: Optimizer.Chain, grads: Params, state: State, params: Params) => {
  let g: Params = grads
  const count = state.count + 1
  const slots = o.chain.map((t, i): Readonly<Record<string, Params>> => {
    const slot = state.slots[i]!
    switch (t._tag) {
      case "ClipByGlobalNorm": {
        let sq = 0
        for (const x of Object.values(g)) for (const v of x.data) sq += v * v
        const factor = Math.min(1, t.maxNorm / (Math.sqrt(sq) + 1e-12))
        g = map(g, (x) => pointwise(x, (v) => v * factor))
        return slot
      }
      case "ClipByValue":
        g = map(g, (x) => pointwise(x, (v) => Math.min(t.max, Math.max(-t.max, v))))
        return slot
      case "AddDecayedWeights":
        g = map(g, (x, k) => pointwise(x, (v, j) => v + t.decay * params[k]!.data[j]!))
        return slot
      case "Trace": {
        const momentum = map(g, (x, k) => pointwise(x, (v, j) => t.decay * slot.momentum![k]!.data[j]! + v))
        g = momentum
        return { momentum }
      }
      case "ScaleByAdam": {
        const c1 = 1 - t.b1 ** count
        const c2 = 1 - t.b2 ** count
        const mu = map(g, (x, k) => pointwise(x, (v, j) => t.b1 * slot.mu![k]!.data[j]! + (1 - t.b1) * v))
        const nu = map(g, (x, k) => pointwise(x, (v, j) => t.b2 * slot.nu![k]!.data[j]! + (1 - t.b2) * v * v))
        g = map(g, (x, k) =>
          pointwise(x, (_, j) => mu[k]!.data[j]! / c1 / (Math.sqrt(nu[k]!.data[j]! / c2) + t.eps)),
        )
        return { mu, nu }
      }
      case "Scale":
        g = map(g, (x) => pointwise(x, (v) => v * t.factor))
        return slot
      case "KeepParamsNonNegative":
        g = map(g, (x, k) => pointwise(x, (u, j) => (params[k]!.data[j]! + u < 0 ? -params[k]!.data[j]! : u)))
        return slot
      default: {
        const _: never = t
        throw new Error(`unknown transform ${(_ as Optimizer.Transform)._tag}`)
      }
    }
  })
  return { updates: g, state: { count, slots } }
}

/** The keys each label of a partition owns, with the label's optimizer, in the state's order. */
const blocks = (p: Optimizer.Partition, keys: readonly string[]) =>
  Optimizer.labels(p).map(({ label, optimizer }) => ({
    optimizer,
    keys: keys.filter((k) => Optimizer.labelOf(p, k) === label),
  }))

/** Initial optimizer state for `params` (keyed by parameter path). */
export const init = (o: Optimizer.Optimizer, params: Params): State =>
  o._tag === "Optimizer"
    ? chainInit(o, params)
    : {
        count: 0,
        slots: blocks(o, Object.keys(params)).flatMap((b) =>
          b.optimizer._tag === "Frozen" ? [] : chainInit(b.optimizer, pick(params, b.keys)).slots,
        ),
      }

/** Transforms `grads` into updates to add to the parameters (none for a partition's frozen ones). */
export const update = (
  o: Optimizer.Optimizer,
  grads: Params,
  state: State,
  params: Params,
): { readonly updates: Params; readonly state: State } => {
  if (o._tag === "Optimizer") return chainUpdate(o, grads, state, params)
  const updates: Record<string, Tensor> = {}
  const slots: Readonly<Record<string, Params>>[] = []
  let at = 0
  for (const b of blocks(o, Object.keys(params))) {
    if (b.optimizer._tag === "Frozen") continue
    const n = b.optimizer.chain.length
    const own = state.slots.slice(at, at + n)
    at += n
    if (b.keys.length === 0) {
      slots.push(...own)
      continue
    }
    const sub = chainUpdate(
      b.optimizer,
      pick(grads, b.keys),
      { count: state.count, slots: own },
      pick(params, b.keys),
    )
    Object.assign(updates, sub.updates)
    slots.push(...sub.state.slots)
  }
  return { updates, state: { count: state.count + 1, slots } }
}

/** `θ + u` for every parameter that has an update (the others as they are). */
export const applyUpdates = (params: Params, updates: Params): Params =>
  map(params, (p, k) => (updates[k] === undefined ? p : pointwise(p, (v, j) => v + updates[k]!.data[j]!)))

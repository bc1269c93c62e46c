/**
 * Optimizers as values: gradient transformations composed like optax's.
 *
 * An optimizer is a chain of transformations of the gradient (clip, decay,
 * momentum, Adam scaling, learning-rate scaling); interpreters give it
 * meaning as a pure `(grads, state, params) → (updates, state)` function, so
 * an optimizer can sit inside a differentiable inner loop.
 *
 * A {@link partition} (optax's `multi_transform`) gives each labelled subset
 * of the parameter paths its own optimizer (or none: {@link frozen}), e.g.
 * DIR-Net's progressive stages: the feature extractor frozen, the learning
 * rate divided by 10 everywhere except the attention map generator.
 *
 * @module
 */
import * as Params from "./Params.ts"

export type Transform =
  | { readonly _tag: "ClipByGlobalNorm"; readonly maxNorm: number }
  | { readonly _tag: "ClipByValue"; readonly max: number }
  /** Adds `decay · θ` to the gradient (L2 weight decay as PyTorch's `weight_decay`). */
  | { readonly _tag: "AddDecayedWeights"; readonly decay: number }
  /** Heavy-ball momentum: `m ← β·m + g`, update `m` (PyTorch's SGD momentum, dampening 0). */
  | { readonly _tag: "Trace"; readonly decay: number }
  /** Adam's bias-corrected moment scaling. */
  | { readonly _tag: "ScaleByAdam"; readonly b1: number; readonly b2: number; readonly eps: number }
  | { readonly _tag: "Scale"; readonly factor: number }
  /**
   * Projects onto θ ≥ 0: an update that would take a parameter below zero
   * takes it to zero instead (optax's `keep_params_nonnegative`). Put it last.
   */
  | { readonly _tag: "KeepParamsNonNegative" }

/** A chain of gradient transformations. */
export interface Chain {
  readonly _tag: "Optimizer"
  readonly name: string
  /** Applied left to right. */
  readonly chain: readonly Transform[]
}

/** No update at all: the parameters stay bit-identical (optax's `set_to_zero`, without adding the zeros). */
export interface Frozen {
  readonly _tag: "Frozen"
}

/** One labelled subset of a {@link Partition}: the paths `filter` selects (first matching rule wins). */
export interface Rule {
  readonly label: string
  readonly filter: Params.Filter
}

/**
 * A different optimizer per labelled subset of the parameters (optax's
 * `multi_transform`): a parameter takes the label of the first rule whose
 * filter matches its path, or `otherwise`; each label's optimizer sees only
 * its subset (a clip by global norm clips that subset's norm) and keeps its
 * own state.
 */
export interface Partition {
  readonly _tag: "Partition"
  readonly name: string
  readonly optimizers: Readonly<Record<string, Chain | Frozen>>
  readonly rules: readonly Rule[]
  readonly otherwise: string
}

export type Optimizer = Chain | Partition

export const chain = (name: string, ...chain: Transform[]): Chain => ({ _tag: "Optimizer", name, chain })

export const frozen: Frozen = { _tag: "Frozen" }

export const rule = (label: string, filter: Params.Filter): Rule => ({ label, filter })

/** A partitioned optimizer: `optimizers` by label, `rules` in order, `otherwise` for paths no rule matches. */
export const partition = (o: {
  readonly optimizers: Readonly<Record<string, Chain | Frozen>>
  readonly rules: readonly Rule[]
  readonly otherwise: string
  readonly name?: string
}): Partition => ({
  _tag: "Partition",
  name:
    o.name ??
    `partition(${Object.entries(o.optimizers)
      .map(([l, x]) => `${l}: ${x._tag === "Frozen" ? "frozen" : x.name}`)
      .join(", ")})`,
  optimizers: o.optimizers,
  rules: o.rules,
  otherwise: o.otherwise,
})

/** The label a partition gives parameter path `path`. */
export const labelOf = (p: Partition, path: string): string =>
  p.rules.find((r) => Params.matches(r.filter, path))?.label ?? p.otherwise

/** The labels a partition uses, in a fixed order (its optimizers' keys), each with its optimizer. */
export const labels = (p: Partition): { readonly label: string; readonly optimizer: Chain | Frozen }[] =>
  Object.keys(p.optimizers)
    .sort()
    .map((label) => ({ label, optimizer: p.optimizers[label]! }))

export const clipByGlobalNorm = (maxNorm: number): Transform => ({ _tag: "ClipByGlobalNorm", maxNorm })
export const clipByValue = (max: number): Transform => ({ _tag: "ClipByValue", max })
export const addDecayedWeights = (decay: number): Transform => ({ _tag: "AddDecayedWeights", decay })
export const trace = (decay: number): Transform => ({ _tag: "Trace", decay })
export const scaleByAdam = (b1 = 0.9, b2 = 0.999, eps = 1e-8): Transform => ({
  _tag: "ScaleByAdam",
  b1,
  b2,
  eps,
})
export const scale = (factor: number): Transform => ({ _tag: "Scale", factor })
export const keepParamsNonNegative = (): Transform => ({ _tag: "KeepParamsNonNegative" })

/** The same optimizer projected onto θ ≥ 0 after every update (e.g. a learned weight decay that may not turn into a reward for large weights). */
export const nonNegative = (o: Chain): Chain => chain(`${o.name}, θ ≥ 0`, ...o.chain, keepParamsNonNegative())

export interface Common {
  readonly lr: number
  readonly weightDecay?: number
  /** Clip the global gradient norm to this value first. */
  readonly clip?: number
}

const prefix = (o: Common): Transform[] => [
  ...(o.clip === undefined ? [] : [clipByGlobalNorm(o.clip)]),
  ...(o.weightDecay === undefined || o.weightDecay === 0 ? [] : [addDecayedWeights(o.weightDecay)]),
]

/** SGD with optional momentum and weight decay (PyTorch semantics). */
export const sgd = (o: Common & { readonly momentum?: number }): Chain =>
  chain(
    "sgd",
    ...prefix(o),
    ...(o.momentum === undefined || o.momentum === 0 ? [] : [trace(o.momentum)]),
    scale(-o.lr),
  )

/** Adam (PyTorch semantics: weight decay is added to the gradient). */
export const adam = (
  o: Common & { readonly b1?: number; readonly b2?: number; readonly eps?: number },
): Chain => chain("adam", ...prefix(o), scaleByAdam(o.b1, o.b2, o.eps), scale(-o.lr))

/** The learning rate of an optimizer chain (the negated final scale), for reports. */
export const learningRate = (o: Chain): number => {
  const last = [...o.chain].reverse().find((t) => t._tag === "Scale")
  return last === undefined ? 0 : -(last as { factor: number }).factor
}

/** The same optimizer with its learning rate multiplied by `factor` (a step schedule; checked against torch's); a partition's every label. */
export const scaleLearningRate = <O extends Optimizer>(o: O, factor: number): O => {
  if (o._tag === "Partition")
    return {
      ...o,
      optimizers: Object.fromEntries(
        Object.entries(o.optimizers).map(([l, x]) => [
          l,
          x._tag === "Frozen" ? x : scaleLearningRate(x, factor),
        ]),
      ),
    }
  const c = o as Chain
  const i = c.chain.map((t) => t._tag).lastIndexOf("Scale")
  if (i < 0) return o
  return {
    ...o,
    chain: c.chain.map((t, j) => (j === i && t._tag === "Scale" ? scale(t.factor * factor) : t)),
  }
}

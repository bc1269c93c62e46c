/**
 * Optimizers as values: gradient transformations composed like optax's.
 *
 * An optimizer is a chain of transformations of the gradient (clip, decay,
 * momentum, Adam scaling, learning-rate scaling); interpreters give it
 * meaning as a pure `(grads, state, params) → (updates, state)` function, so
 * an optimizer can sit inside a differentiable inner loop.
 *
 * @module
 */

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

export interface Optimizer {
  readonly _tag: "Optimizer"
  readonly name: string
  /** Applied left to right. */
  readonly chain: readonly Transform[]
}

export const chain = (name: string, ...chain: Transform[]): Optimizer => ({ _tag: "Optimizer", name, chain })

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
export const nonNegative = (o: Optimizer): Optimizer =>
  chain(`${o.name}, θ ≥ 0`, ...o.chain, keepParamsNonNegative())

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
export const sgd = (o: Common & { readonly momentum?: number }): Optimizer =>
  chain(
    "sgd",
    ...prefix(o),
    ...(o.momentum === undefined || o.momentum === 0 ? [] : [trace(o.momentum)]),
    scale(-o.lr),
  )

/** Adam (PyTorch semantics: weight decay is added to the gradient). */
export const adam = (
  o: Common & { readonly b1?: number; readonly b2?: number; readonly eps?: number },
): Optimizer => chain("adam", ...prefix(o), scaleByAdam(o.b1, o.b2, o.eps), scale(-o.lr))

/** The learning rate of an optimizer (the negated final scale), for reports. */
export const learningRate = (o: Optimizer): number => {
  const last = [...o.chain].reverse().find((t) => t._tag === "Scale")
  return last === undefined ? 0 : -(last as { factor: number }).factor
}

/** The same optimizer with its learning rate multiplied by `factor` (a step schedule; checked against torch's). */
export const scaleLearningRate = (o: Optimizer, factor: number): Optimizer => {
  const i = o.chain.map((t) => t._tag).lastIndexOf("Scale")
  if (i < 0) return o
  return {
    ...o,
    chain: o.chain.map((t, j) => (j === i && t._tag === "Scale" ? scale(t.factor * factor) : t)),
  }
}

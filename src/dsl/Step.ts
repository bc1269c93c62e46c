/**
 * Training steps as composable values: what one batch does to the parameters.
 *
 * A step is a pure state transition of (parameters, meta-parameters,
 * optimizer state) given a batch, like optax's gradient transformations, so
 * CMKG's Algorithm 1 is a composition of steps rather than a hand-written
 * loop:
 *
 * ```ts
 * const inner = Step.inner({ loss: F, wrt: student, rate: alpha, steps: 1 })
 * Step.together(
 *   Step.metaMinimize({ outer: G, inner, wrt: "phi", optimizer: Optimizer.sgd({ lr: beta }) }),  // M-step
 *   Step.minimize({ loss: G, wrt: [student], optimizer: Optimizer.sgd({ lr: alpha }) }),            // θ step
 * )
 * ```
 *
 * @module
 */
import type * as Exits from "./Exits.ts"
import type * as Loss from "./Loss.ts"
import * as LossDsl from "./Loss.ts"
import type * as Optimizer from "./Optimizer.ts"
import * as Params from "./Params.ts"
import type * as Program from "./Program.ts"

/**
 * How batch norm behaves while a step evaluates a model. `train`: batch
 * statistics, running statistics updated; `batch-stats`: batch statistics,
 * running ones left as they are; `running`: frozen running statistics (eval).
 */
export type BatchNormPolicy = "train" | "batch-stats" | "running"

/** How a meta-gradient is computed through the unrolled inner steps. */
export type MetaMode =
  /** Differentiate through the unrolled steps exactly (second order). */
  | "exact"
  /** Treat the inner gradients as constants (∂θ̈/∂φ from the regulariser's direct term only). */
  | "first-order"
  /** For l = 1 and a weighted-norm regulariser: ∂θ̈/∂φ = −α·∂R/∂θ per coordinate (−2αθ for ℓ2, −α·sign θ for ℓ1). */
  | "closed-form"

/** l steps of plain SGD on `loss` with respect to the parameters of `wrt`: θ̈ ← θ̈ − α∇θ̈ loss. */
export interface Inner {
  readonly _tag: "Inner"
  readonly loss: Loss.Loss
  readonly wrt: readonly string[]
  readonly rate: number
  readonly steps: number
  readonly batchNorm: BatchNormPolicy
}

export type Step =
  /**
   * One optimizer update of the parameters of `wrt` (models and/or adapters) on `loss`;
   * of a model named in `select`, only the parameter paths its filter selects (the rest stay as they are).
   */
  | {
      readonly _tag: "Minimize"
      readonly loss: Loss.Loss
      readonly wrt: readonly string[]
      readonly select?: Readonly<Record<string, Params.Filter>>
      readonly optimizer: Optimizer.Optimizer
      readonly batchNorm: BatchNormPolicy
    }
  /** One optimizer update of meta-parameters `wrt` on `outer` evaluated at the inner steps' result θ̈(φ). */
  | {
      readonly _tag: "MetaMinimize"
      readonly outer: Loss.Loss
      readonly inner: Inner
      readonly wrt: string
      readonly optimizer: Optimizer.Optimizer
      readonly mode: MetaMode
      readonly batchNorm: BatchNormPolicy
    }
  /** Every step computed from the same starting parameters, then all updates applied (Algorithm 1, line 8). */
  | { readonly _tag: "Together"; readonly steps: readonly Step[] }
  /** REINFORCE updates of a gate deciding a frozen looped network's exits (see `Exits.Reinforce`). */
  | Exits.Reinforce

const names = (wrt: Program.Model | string | readonly (Program.Model | string)[]): string[] =>
  (Array.isArray(wrt) ? wrt : [wrt]).map((m: Program.Model | string) => (typeof m === "string" ? m : m.name))

export const inner = (o: {
  readonly loss: Loss.Loss
  readonly wrt: Program.Model | readonly Program.Model[]
  readonly rate: number
  readonly steps?: number
  readonly batchNorm?: BatchNormPolicy
}): Inner => ({
  _tag: "Inner",
  loss: o.loss,
  wrt: names(o.wrt),
  rate: o.rate,
  steps: o.steps ?? 1,
  batchNorm: o.batchNorm ?? "batch-stats",
})

type Target = Program.Model | string | Params.Selection

/** Train the parameters of `wrt` (models, adapter names, or a model's parameters a filter selects: `Params.only`) on `loss`. */
export const minimize = (o: {
  readonly loss: Loss.Loss
  readonly wrt: Target | readonly Target[]
  readonly optimizer: Optimizer.Optimizer
  readonly batchNorm?: BatchNormPolicy
}): Step => {
  const targets: readonly Target[] = Array.isArray(o.wrt) ? o.wrt : [o.wrt as Target]
  const nameOf = (t: Target) => (typeof t === "string" ? t : t._tag === "Selection" ? t.model : t.name)
  // A model named whole is trained whole; several selections of one model train their union.
  const whole = new Set(targets.filter((t) => typeof t === "string" || t._tag === "Model").map(nameOf))
  const select: Record<string, Params.Filter[]> = {}
  for (const t of targets)
    if (typeof t !== "string" && t._tag === "Selection" && !whole.has(t.model))
      select[t.model] = [...(select[t.model] ?? []), t.filter]
  return {
    _tag: "Minimize",
    loss: o.loss,
    wrt: [...new Set(targets.map(nameOf))],
    // Omitted when every model is trained whole, so such programs' values (and program.json) are unchanged.
    ...(Object.keys(select).length === 0
      ? {}
      : {
          select: Object.fromEntries(
            Object.entries(select).map(([m, fs]) => [
              m,
              fs.length === 1 ? fs[0]! : { _tag: "Or", filters: fs },
            ]),
          ),
        }),
    optimizer: o.optimizer,
    batchNorm: o.batchNorm ?? "train",
  }
}

/** Meta-learn `wrt` (a meta-parameter name, e.g. φ) through `inner` on `outer`. */
export const metaMinimize = (o: {
  readonly outer: Loss.Loss
  readonly inner: Inner
  readonly wrt: string
  readonly optimizer: Optimizer.Optimizer
  readonly mode?: MetaMode
  readonly batchNorm?: BatchNormPolicy
}): Step => ({
  _tag: "MetaMinimize",
  outer: o.outer,
  inner: o.inner,
  wrt: o.wrt,
  optimizer: o.optimizer,
  mode: o.mode ?? "exact",
  batchNorm: o.batchNorm ?? "batch-stats",
})

export const together = (...steps: Step[]): Step => ({ _tag: "Together", steps })

/** The losses a step evaluates (for shape checks and reports). */
export const losses = (s: Step): Loss.Loss[] =>
  s._tag === "Minimize"
    ? [s.loss]
    : s._tag === "MetaMinimize"
      ? [s.outer, s.inner.loss]
      : s._tag === "Reinforce"
        ? []
        : s.steps.flatMap(losses)

/** The models a step reads or updates (those that need parameters before it runs). */
export const models = (s: Step): string[] =>
  s._tag === "Reinforce"
    ? [s.network, s.gate]
    : s._tag === "Together"
      ? [...new Set(s.steps.flatMap(models))]
      : [...new Set(losses(s).flatMap(LossDsl.models))]

/** Parameter groups (models, adapters, meta-parameters) a step updates. */
export const updates = (s: Step): string[] =>
  s._tag === "Minimize"
    ? [...s.wrt]
    : s._tag === "MetaMinimize"
      ? [s.wrt]
      : s._tag === "Reinforce"
        ? [s.gate]
        : [...new Set(s.steps.flatMap(updates))]

/**
 * The parameter paths of group `name` (a model or adapter with parameters `paths`) that a `Minimize`
 * step trains: those its `select` filter keeps for that model, else all of them.
 */
export const trainedPaths = (
  s: Extract<Step, { _tag: "Minimize" }>,
  name: string,
  paths: readonly string[],
): string[] => {
  const filter = s.select?.[name]
  return filter === undefined ? [...paths] : Params.select(filter, paths)
}

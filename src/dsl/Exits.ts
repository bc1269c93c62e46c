/**
 * Dynamic exits as values of the algebra (DIR-Net, Sec. 4): evaluating a
 * looped network under an exit policy is a stage kind ({@link Evaluate}),
 * training the gate 𝒢 with REINFORCE is a step kind ({@link Reinforce}).
 *
 * Both read a network with one `Net.Loop` whose readout declares DIR-Net's
 * taps per iteration k: `pose@k` (the 3D joints), `camera@k`, `logvar@k`
 * (`[α_2D, α_3D]`) and `gateFeatures@k` (what the gate reads). The costs
 * they report or reward — GFLOPs of a sample that exits after loop k — are
 * the shape checker's per-loop MACs of that network, never constants.
 *
 * @module
 */
import type * as Data from "./Data.ts"
import type * as Optimizer from "./Optimizer.ts"
import type * as Program from "./Program.ts"

/** Where each sample leaves the loop. */
export type Policy =
  /** After the last loop (no dynamic exit). */
  | { readonly _tag: "Last" }
  /** After loop `loop` (0-based), every sample: the network cut to a fixed depth, for the accuracy each loop adds. */
  | { readonly _tag: "Loop"; readonly loop: number }
  /**
   * At the loop whose 3D error against the sample's own labels is least: no rule that sees only the
   * image can do better, so the gap between it and the best fixed loop is what exiting per input can win.
   */
  | { readonly _tag: "Oracle" }
  /** At the first loop whose average predicted variance `mean(exp α_2D, exp α_3D)` is below `tau` (Sec. 4.1). */
  | { readonly _tag: "Variance"; readonly tau: number }
  /**
   * {@link Policy}'s `Variance` with τ_var the `quantile` of the average predicted variances of the same
   * network on `of` (every sample at every loop): the variances' scale is only known once trained.
   */
  | { readonly _tag: "VarianceQuantile"; readonly quantile: number; readonly of: Data.Spec }
  /**
   * Sampled EXIT/CONTINUE at each loop from `softmax(𝒢(f)/temperature)` of the gate model `gate` (Sec. 4.2),
   * with `seed` keying the samples; the last loop always exits.
   */
  | { readonly _tag: "Gate"; readonly gate: string; readonly temperature: number; readonly seed: number }

/** How a results row names its evaluation (`results.json`'s `evaluate`): "No Iter." is the last loop of a one-loop network. */
export type Label =
  | { readonly _tag: "NoIter" }
  | { readonly _tag: "Last" }
  | { readonly _tag: "Loop"; readonly loop: number }
  | { readonly _tag: "Oracle" }
  | { readonly _tag: "Variance"; readonly tau: number }
  | { readonly _tag: "Gate"; readonly temperature: number; readonly seed: number }

/** Where an exit evaluation's result goes. */
export type Into =
  /** A row of a results table, reported as variant `variant` (the model a table names) evaluated as `label`. */
  | {
      readonly _tag: "Row"
      readonly table: string
      readonly row: string
      readonly column: string
      readonly variant: string
      readonly label: Label
    }
  /** A point of Figure 7's AUC-against-GFLOPs series of variant `variant`. */
  | { readonly _tag: "Sweep"; readonly series: "τ_var" | "τ_gate"; readonly variant: string }

/**
 * A stage: 3D AUC and EPE of each sample's prediction at the loop `policy`
 * exits it at (batch norm in eval mode, so samples are independent), and the
 * average GFLOPs of those exits, of `model` on `data`.
 */
export interface Evaluate {
  readonly _tag: "EvaluateExits"
  readonly name: string
  readonly model: string
  readonly data: Data.Spec
  readonly policy: Policy
  readonly into: Into
}

/**
 * A step: `updates` policy-gradient updates (Eq. 10, vanilla REINFORCE with
 * the batch-mean baseline) of the gate model `gate` on one batch, `network`
 * frozen (applied once, eval mode): its `gateFeatures@k` are the gate's
 * inputs, and exiting after loop l pays `r_l = −λ·(L_2D^l + L_3D^l) − μ·GFLOPs(l)`
 * (Eq. 11), GFLOPs(l) the shape checker's cost of a sample exiting after l.
 * Exits are sampled from `softmax(𝒢(f)/temperature)`.
 */
export interface Reinforce {
  readonly _tag: "Reinforce"
  readonly gate: string
  readonly network: string
  readonly lambda: number
  /** μ. */
  readonly flopsWeight: number
  readonly temperature: number
  readonly updates: number
  readonly optimizer: Optimizer.Optimizer
}

// ---- constructors -----------------------------------------------------------------------------

export const last: Policy = { _tag: "Last" }
export const loop = (loop: number): Policy => ({ _tag: "Loop", loop })
export const oracle: Policy = { _tag: "Oracle" }
export const variance = (tau: number): Policy => ({ _tag: "Variance", tau })
export const varianceQuantile = (quantile: number, of: Data.Spec): Policy => ({
  _tag: "VarianceQuantile",
  quantile,
  of,
})
export const gate = (gate: Program.Model | string, temperature: number, seed = 0): Policy => ({
  _tag: "Gate",
  gate: typeof gate === "string" ? gate : gate.name,
  temperature,
  seed,
})

export const evaluate = (o: {
  readonly name: string
  readonly model: Program.Model | string
  readonly data: Data.Spec
  readonly policy: Policy
  readonly into: Into
}): Evaluate => ({
  _tag: "EvaluateExits",
  name: o.name,
  model: typeof o.model === "string" ? o.model : o.model.name,
  data: o.data,
  policy: o.policy,
  into: o.into,
})

export const reinforce = (o: {
  readonly gate: Program.Model | string
  readonly network: Program.Model | string
  readonly lambda: number
  readonly flopsWeight: number
  readonly temperature: number
  readonly updates?: number
  readonly optimizer: Optimizer.Optimizer
}): Reinforce => ({
  _tag: "Reinforce",
  gate: typeof o.gate === "string" ? o.gate : o.gate.name,
  network: typeof o.network === "string" ? o.network : o.network.name,
  lambda: o.lambda,
  flopsWeight: o.flopsWeight,
  temperature: o.temperature,
  updates: o.updates ?? 1,
  optimizer: o.optimizer,
})

/** The models a policy reads besides the evaluated one (the gate). */
export const policyModels = (p: Policy): string[] => (p._tag === "Gate" ? [p.gate] : [])

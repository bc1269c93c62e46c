/**
 * What checking an experiment reports (`experiment.ts`): the models, the
 * errors, the compute of every training stage, and with exit evaluations
 * each variant's per-loop costs.
 *
 * @module
 */
import type * as Costs from "./dirnet.ts"
import type * as Check from "./index.ts"
import type * as ProgramCheck from "./program.ts"

export interface StageCost {
  readonly stage: string
  readonly steps: number
  readonly samplesPerStep: number
  /** MACs of one training step (whole batch). */
  readonly macsPerStep: number
  readonly macs: number
  /** Parameters the stage's step updates (its `wrt` less what `select` and a partition's frozen labels keep fixed), when known. */
  readonly trainedParams?: number
}

export interface ExperimentReport {
  readonly models: readonly ProgramCheck.ModelReport[]
  readonly errors: readonly Check.ShapeError[]
  readonly stages: readonly StageCost[]
  readonly trainStages: number
  readonly macsTotal: number
  /** Adapter parameter specs by adapter name, for the runner to initialise. */
  readonly adapters: Readonly<Record<string, readonly Check.ParamSpec[]>>
  /** With exit evaluations: each evaluated variant's per-loop costs, and the gate's parameters (0 without one). */
  readonly loops?: readonly VariantCosts[]
  readonly gateParams?: number
}

export interface VariantCosts {
  readonly model: string
  readonly costs: Costs.LoopCosts
  /** Parameters of its "No Iter." network. */
  readonly noIterParams: number
}

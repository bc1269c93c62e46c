/**
 * What checking an experiment reports, whatever its kind (the staged
 * `experiment.ts`, DIR-Net's `dirnet-experiment.ts`): the models, the errors,
 * and the compute of every training stage.
 *
 * @module
 */
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
}

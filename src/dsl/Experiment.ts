/**
 * Experiments: the procedure of a program, as data.
 *
 * An experiment is a list of stages over the program's models. A `Train`
 * stage runs a `Step` over batches of a data set for some epochs; an
 * `Evaluate` stage measures a model on a data set and files the result under
 * a table and a row of the report. Stages run in order; parameters flow from
 * one stage to the next by model name, and a stage can start a model from
 * scratch or from another model's current parameters.
 *
 * @module
 */
import type * as Data from "./Data.ts"
import type * as Exits from "./Exits.ts"
import type * as Loss from "./Loss.ts"
import type * as Program from "./Program.ts"
import * as Step from "./Step.ts"

/** How a stage initialises a model before training it. */
export type Init =
  /** Keep the model's current parameters (fresh seeded ones if it has none yet). */
  | { readonly _tag: "Keep" }
  /** Fresh seeded parameters, discarding any current ones. */
  | { readonly _tag: "Scratch" }
  /** Copy another model's current parameters (same network). */
  | { readonly _tag: "Copy"; readonly from: string }

export interface Train {
  readonly _tag: "Train"
  readonly name: string
  readonly data: Data.Spec
  readonly epochs: number
  readonly batchSize: number
  readonly step: Step.Step
  readonly init: Readonly<Record<string, Init>>
}

export interface Evaluate {
  readonly _tag: "Evaluate"
  readonly name: string
  readonly model: string
  readonly data: Data.Spec
  /** The report table and row this result belongs to, e.g. table "Table 1", row "KD student (L_ACT)". */
  readonly table: string
  readonly row: string
  /** Column label (e.g. the target domain), for tables with one column per data set. */
  readonly column: string
}

/** A stage: training, evaluating a model's prediction, or evaluating a looped model under an exit policy (`Exits`). */
export type Stage = Train | Evaluate | Exits.Evaluate

/** A meta-parameter tree φ with one weight per parameter of `like` (CMKG's regulariser weights). */
export interface MetaParam {
  readonly name: string
  readonly like: string
  readonly init: number
}

export interface Experiment {
  readonly _tag: "Experiment"
  /** Which data field each model reads as its input. */
  readonly feeds: Readonly<Record<string, Loss.Field>>
  readonly metaParams: readonly MetaParam[]
  readonly stages: readonly Stage[]
  /**
   * Each table's reference row (table → row, e.g. "Table 2" → "w/o R"): the
   * summary gives every other row of the table its paired difference from
   * this one over seeds, column by column. Tables without one get none.
   */
  readonly references: Readonly<Record<string, string>>
}

/**
 * Every kind of experiment a program can hold: one, the staged
 * {@link Experiment} (DIR-Net's progressive training, exits, gate and
 * sweeps are stages and steps of it: `Dirnet.experiment`).
 */
export type Any = Experiment

// ---- constructors -----------------------------------------------------------------

export const keep: Init = { _tag: "Keep" }
export const scratch: Init = { _tag: "Scratch" }
export const copy = (from: Program.Model): Init => ({ _tag: "Copy", from: from.name })

export const train = (o: {
  readonly name: string
  readonly data: Data.Spec
  readonly epochs: number
  readonly batchSize: number
  readonly step: Step.Step
  readonly init?: Readonly<Record<string, Init>>
}): Train => ({ _tag: "Train", init: {}, ...o })

export const evaluate = (o: {
  readonly name: string
  readonly model: Program.Model
  readonly data: Data.Spec
  readonly table: string
  readonly row: string
  readonly column?: string
}): Evaluate => ({
  _tag: "Evaluate",
  name: o.name,
  model: o.model.name,
  data: o.data,
  table: o.table,
  row: o.row,
  column: o.column ?? "test",
})

export const metaParam = (name: string, like: Program.Model, init = 0): MetaParam => ({
  name,
  like: like.name,
  init,
})

export const experiment = (o: {
  readonly feeds: Readonly<Record<string, Loss.Field>>
  readonly metaParams?: readonly MetaParam[]
  readonly stages: readonly Stage[]
  readonly references?: Readonly<Record<string, string>>
}): Experiment => ({
  _tag: "Experiment",
  feeds: o.feeds,
  metaParams: o.metaParams ?? [],
  stages: o.stages,
  references: o.references ?? {},
})

// ---- folds ---------------------------------------------------------------------------

/** Number of optimisation steps a train stage takes for a data set of `size` samples (last partial batch dropped). */
export const stepsOf = (stage: Train, size: number): number =>
  stage.epochs * Math.floor(size / stage.batchSize)

/** Every loss the experiment evaluates, with the stage that does. */
export const losses = (e: Experiment): { stage: string; loss: Loss.Loss }[] =>
  e.stages.flatMap((s) =>
    s._tag === "Train" ? Step.losses(s.step).map((loss) => ({ stage: s.name, loss })) : [],
  )

/** The results rows the experiment files (table, row), in stage order: evaluate stages' and exit evaluations'. */
export const rows = (e: Experiment): { table: string; row: string }[] =>
  e.stages.flatMap((s) =>
    s._tag === "Evaluate"
      ? [{ table: s.table, row: s.row }]
      : s._tag === "EvaluateExits" && s.into._tag === "Row"
        ? [{ table: s.into.table, row: s.into.row }]
        : [],
  )

/**
 * The shape-check interpreter on a whole experiment: every network, every
 * stage's step and losses, every feed against its data, checked before
 * anything trains; and the experiment's compute (MACs per training step of
 * each stage × steps) for estimates of wall time.
 *
 * Training-step cost convention: a trained model costs 3× its forward MACs
 * per sample (forward, and the two backward products), a frozen one 1×; a
 * meta-step costs its l inner steps plus the outer step, and the second-order
 * pass is counted as one more forward-backward of the trained model.
 *
 * @module
 */
import * as Data from "../../dsl/Data.ts"
import type * as Dirnet from "../../dsl/dirnet.ts"
import * as Experiment from "../../dsl/Experiment.ts"
import * as Loss from "../../dsl/Loss.ts"
import type * as Program from "../../dsl/Program.ts"
import * as Step from "../../dsl/Step.ts"
import * as DirnetExperimentCheck from "./dirnet-experiment.ts"
import type { ExperimentReport, StageCost } from "./experiment-report.ts"
import type * as Check from "./index.ts"
import * as LossCheck from "./loss.ts"
import * as ProgramCheck from "./program.ts"
import * as StepCheck from "./step.ts"

export type { ExperimentReport, StageCost }

/** Every data set the experiment reads, whatever its kind. */
export const dataSpecs = (p: Program.Program<Experiment.Any>): Data.Spec[] => {
  const e = p.experiment
  if (e === undefined) return []
  switch (e._tag) {
    case "Experiment":
      return e.stages.map((s) => s.data)
    case "DirNetExperiment":
      return [e.train, e.test]
  }
}

/** Samples a data spec yields (synthetic sets know it statically; real ones are estimated as unknown). */
const sizeOf = (spec: Data.Spec): number | undefined =>
  spec._tag === "Synthetic" ? Math.floor(spec.count * (spec.subset.to - spec.subset.from)) : undefined

const stepMacs = (
  step: Step.Step,
  forward: (model: string) => number,
  lossMacs: (l: Loss.Loss) => number,
): number => {
  const lossCost = (l: Loss.Loss, trained: readonly string[]) =>
    Loss.models(l).reduce((a, m) => a + (trained.includes(m) ? 3 : 1) * forward(m), 0) + 3 * lossMacs(l)
  switch (step._tag) {
    case "Minimize":
      return lossCost(step.loss, step.wrt)
    case "MetaMinimize":
      return (
        step.inner.steps * lossCost(step.inner.loss, step.inner.wrt) +
        lossCost(step.outer, step.inner.wrt) +
        (step.mode === "exact" ? step.inner.wrt.reduce((a, m) => a + 3 * forward(m), 0) : 0)
      )
    case "Together":
      return step.steps.reduce((a, s) => a + stepMacs(s, forward, lossMacs), 0)
  }
}

export const check = (p: Program.Program<Experiment.Experiment>): ExperimentReport => {
  const base = ProgramCheck.checkModels(p)
  const errors: Check.ShapeError[] = [...base.errors]
  const e = p.experiment
  if (e === undefined)
    return { models: base.models, errors, stages: [], trainStages: 0, macsTotal: 0, adapters: {} }
  const summaries = Object.fromEntries(base.models.map((m) => [m.name, m.summary]))
  const modelNames = new Set(p.models.map((m) => m.name))
  const forward = (m: string) => summaries[m]?.cost.macs ?? 0
  const adapters: Record<string, readonly Check.ParamSpec[]> = {}
  const stages: StageCost[] = []
  for (const mp of e.metaParams)
    if (!modelNames.has(mp.like))
      errors.push({
        _tag: "ShapeError",
        path: `metaParams/${mp.name}`,
        message: `φ "${mp.name}" is shaped like model "${mp.like}", which the program does not declare`,
      })
  e.stages.forEach((stage, i) => {
    const at = `stage ${i + 1} "${stage.name}"`
    const fields = Data.shapes(stage.data) as Partial<Record<Loss.Field, readonly number[]>>
    const feedOf = (model: string): void => {
      const feed = e.feeds[model]
      if (feed === undefined) {
        errors.push({
          _tag: "ShapeError",
          path: `${at}/${model}`,
          message: `no feed declared: which data field does "${model}" read?`,
        })
        return
      }
      const have = fields[feed]
      const summary = summaries[model]
      if (have === undefined)
        errors.push({
          _tag: "ShapeError",
          path: `${at}/${model}`,
          message: `reads "${feed}", which the data (${Data.describe(stage.data)}) does not provide`,
        })
      else if (summary !== undefined && !have.every((d, k) => d === summary.input[k]))
        errors.push({
          _tag: "ShapeError",
          path: `${at}/${model}`,
          message: `expects input ${summary.input.join("×")}, the data's "${feed}" is ${have.join("×")}`,
        })
    }
    if (stage._tag === "Evaluate") {
      if (!modelNames.has(stage.model))
        errors.push({ _tag: "ShapeError", path: at, message: `evaluates unknown model "${stage.model}"` })
      else feedOf(stage.model)
      return
    }
    for (const name of Object.keys(stage.init))
      if (!modelNames.has(name))
        errors.push({
          _tag: "ShapeError",
          path: `${at}/init`,
          message: `initialises unknown model "${name}"`,
        })
    for (const [name, init] of Object.entries(stage.init))
      if (init._tag === "Copy" && !modelNames.has(init.from))
        errors.push({
          _tag: "ShapeError",
          path: `${at}/init/${name}`,
          message: `copies unknown model "${init.from}"`,
        })
    const ctx: StepCheck.StepContext = { models: summaries, fields, metaParams: e.metaParams }
    const r = StepCheck.checkStep(stage.step, ctx, `${at}/step`)
    errors.push(...r.errors)
    Object.assign(adapters, r.adapters)
    for (const loss of Step.losses(stage.step))
      for (const m of Loss.models(loss)) if (modelNames.has(m)) feedOf(m)
    const lossMacs = (l: Loss.Loss) => LossCheck.checkLoss(l, ctx).macs
    const size = sizeOf(stage.data)
    const steps = size === undefined ? 0 : Experiment.stepsOf(stage, size)
    const macsPerStep = stage.batchSize * stepMacs(stage.step, forward, lossMacs)
    stages.push({
      stage: stage.name,
      steps,
      samplesPerStep: stage.batchSize,
      macsPerStep,
      macs: steps * macsPerStep,
      trainedParams: r.trainedParams,
    })
  })
  // A table's reference row must be a row the experiment files under that table.
  for (const [table, row] of Object.entries(e.references)) {
    const rows = e.stages.flatMap((s) => (s._tag === "Evaluate" && s.table === table ? [s.row] : []))
    if (rows.length === 0)
      errors.push({
        _tag: "ShapeError",
        path: `references/${table}`,
        message: `names table "${table}", which no evaluate stage fills`,
      })
    else if (!rows.includes(row))
      errors.push({
        _tag: "ShapeError",
        path: `references/${table}`,
        message: `reference row "${row}" is not a row of the table (its rows: ${[...new Set(rows)].map((r) => `"${r}"`).join(", ")})`,
      })
  }
  const dedup = [...new Map(errors.map((x) => [`${x.path}: ${x.message}`, x])).values()]
  return {
    models: base.models,
    errors: dedup,
    stages,
    trainStages: stages.length,
    macsTotal: stages.reduce((a, s) => a + s.macs, 0),
    adapters,
  }
}

/** The static check of a program holding any kind of experiment (or none): dispatches on the experiment's kind. */
export const checkAny = (p: Program.Program<Experiment.Any>): ExperimentReport => {
  const e = p.experiment
  if (e === undefined) return check(p as Program.Program<Experiment.Experiment>)
  switch (e._tag) {
    case "Experiment":
      return check(p as Program.Program<Experiment.Experiment>)
    case "DirNetExperiment":
      return DirnetExperimentCheck.check(p as Program.Program<Dirnet.Experiment>)
    default: {
      const unhandled: never = e
      throw new Error(`unknown experiment kind ${(unhandled as { _tag: string })._tag}`)
    }
  }
}

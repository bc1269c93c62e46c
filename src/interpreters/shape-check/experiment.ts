/**
 * The shape-check interpreter on a whole experiment: every network, every
 * stage's step and losses, every feed against its data, checked before
 * anything trains; and the experiment's compute (MACs per training step of
 * each stage × steps) for estimates of wall time.
 *
 * Training-step cost convention: a trained model costs 3× its forward MACs
 * per sample (forward, and the two backward products), a frozen one 1×, and
 * leading layers with no parameter the step updates 1× (no backward reaches
 * them: DIR-Net's FE after stage 0); a
 * meta-step costs its l inner steps plus the outer step, and the second-order
 * pass is counted as one more forward-backward of the trained model.
 *
 * @module
 */
import * as Data from "../../dsl/Data.ts"
import * as Experiment from "../../dsl/Experiment.ts"
import * as Loss from "../../dsl/Loss.ts"
import * as Optimizer from "../../dsl/Optimizer.ts"
import type * as Program from "../../dsl/Program.ts"
import * as Step from "../../dsl/Step.ts"
import type * as Costs from "./dirnet.ts"
import * as ExitsCheck from "./exits.ts"
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
  return [
    ...e.stages.flatMap((s) =>
      s._tag === "EvaluateExits" && s.policy._tag === "VarianceQuantile" ? [s.data, s.policy.of] : [s.data],
    ),
  ]
}

/** Samples a data spec yields (synthetic sets know it statically; real ones are estimated as unknown). */
export const sizeOf = (spec: Data.Spec): number | undefined =>
  spec._tag === "Synthetic" ? Math.floor(spec.count * (spec.subset.to - spec.subset.from)) : undefined

/**
 * MACs of the leading layers of `model` that hold no parameter a `Minimize` step updates (its
 * `select` and a partition's frozen labels): the backward pass stops before them (DIR-Net's FE after stage 0).
 */
const untrainedPrefix = (
  s: Extract<Step.Step, { _tag: "Minimize" }>,
  summary: Check.Summary | undefined,
  model: string,
) => {
  if (summary === undefined || (s.select?.[model] === undefined && s.optimizer._tag !== "Partition")) return 0
  const o = s.optimizer
  const updated = new Set(
    Step.trainedPaths(
      s,
      model,
      summary.params.map((p) => p.path),
    ).filter((path) => o._tag !== "Partition" || o.optimizers[Optimizer.labelOf(o, path)]?._tag !== "Frozen"),
  )
  let macs = 0
  for (const layer of summary.layers) {
    if (summary.params.some((p) => p.path.startsWith(`${layer.path}/`) && updated.has(p.path))) break
    macs += layer.cost.macs
  }
  return macs
}

const stepMacs = (
  step: Step.Step,
  forward: (model: string) => number,
  lossMacs: (l: Loss.Loss) => number,
  summaries: Readonly<Record<string, Check.Summary>> = {},
): number => {
  const lossCost = (l: Loss.Loss, trained: readonly string[], prefix: (m: string) => number = () => 0) =>
    Loss.models(l).reduce(
      (a, m) => a + (trained.includes(m) ? 3 * forward(m) - 2 * prefix(m) : forward(m)),
      0,
    ) +
    3 * lossMacs(l)
  switch (step._tag) {
    case "Minimize":
      return lossCost(step.loss, step.wrt, (m) => untrainedPrefix(step, summaries[m], m))
    case "MetaMinimize":
      return (
        step.inner.steps * lossCost(step.inner.loss, step.inner.wrt) +
        lossCost(step.outer, step.inner.wrt) +
        (step.mode === "exact" ? step.inner.wrt.reduce((a, m) => a + 3 * forward(m), 0) : 0)
      )
    case "Together":
      return step.steps.reduce((a, s) => a + stepMacs(s, forward, lossMacs, summaries), 0)
    case "Reinforce":
      return 0 // counted by the step checker (`exits.ts`), which knows the loop
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
  const programModels = Object.fromEntries(p.models.map((m) => [m.name, m]))
  // Exit evaluations: each variant's per-loop costs (from its full network) and its "No Iter." parameters.
  const loops = new Map<string, { costs?: Costs.LoopCosts; noIterParams?: number }>()
  let gateParams = 0
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
    if (stage._tag === "EvaluateExits") {
      const costs = ExitsCheck.checkEvaluate(
        stage,
        { models: summaries, programModels, fields },
        at,
        (path, message) => errors.push({ _tag: "ShapeError", path, message }),
      )
      if (modelNames.has(stage.model)) feedOf(stage.model)
      if (costs !== undefined && stage.into._tag === "Row") {
        const { variant, label } = stage.into
        const entry = loops.get(variant)
        if (label._tag === "NoIter") loops.set(variant, { ...entry, noIterParams: costs.params })
        else loops.set(variant, { ...entry, costs })
      }
      if (stage.policy._tag === "Gate") gateParams = summaries[stage.policy.gate]?.cost.params ?? gateParams
      return
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
    const ctx: StepCheck.StepContext = { models: summaries, fields, metaParams: e.metaParams, programModels }
    const r = StepCheck.checkStep(stage.step, ctx, `${at}/step`)
    errors.push(...r.errors)
    Object.assign(adapters, r.adapters)
    for (const loss of Step.losses(stage.step))
      for (const m of Loss.models(loss)) if (modelNames.has(m)) feedOf(m)
    if (stage.step._tag === "Reinforce" && modelNames.has(stage.step.network)) feedOf(stage.step.network)
    const lossMacs = (l: Loss.Loss) => LossCheck.checkLoss(l, ctx).macs
    const size = sizeOf(stage.data)
    const steps = size === undefined ? 0 : Experiment.stepsOf(stage, size)
    const macsPerStep = stage.batchSize * (stepMacs(stage.step, forward, lossMacs, summaries) + r.macs)
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
    const rows = Experiment.rows(e).flatMap((r) => (r.table === table ? [r.row] : []))
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
  const variantCosts = [...loops].flatMap(([model, l]) =>
    l.costs === undefined
      ? []
      : [{ model, costs: l.costs, noIterParams: l.noIterParams ?? l.costs.paramsUpTo[0]! }],
  )
  return {
    models: base.models,
    errors: dedup,
    stages,
    trainStages: stages.length,
    macsTotal: stages.reduce((a, s) => a + s.macs, 0),
    adapters,
    ...(loops.size === 0 ? {} : { loops: variantCosts, gateParams }),
  }
}

/** The static check of a program holding an experiment (or none). */
export const checkAny = (p: Program.Program<Experiment.Any>): ExperimentReport => check(p)

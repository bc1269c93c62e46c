/**
 * The tf meaning of a DIR-Net experiment (`Dirnet.Experiment`): train every
 * variant with the progressive protocol (Algorithm 1; variants that differ
 * only in the loop's feedback share one stage 0), evaluate the rows (3D AUC
 * and EPE of each sample's prediction at its exit, the average GFLOPs of
 * those exits, parameters), train the gate with REINFORCE on the frozen
 * network where a row or the sweep needs it, and sweep τ_var and τ_gate on
 * one trained network and gate (Figure 7: evaluation only).
 *
 * Every GFLOPs figure and parameter count is the shape checker's
 * (`shape-check/dirnet-experiment.ts`: the MACs of a sample exiting after
 * each loop), never a constant written here.
 *
 * The run directory, as the staged runner's: `metrics.jsonl` (one line per
 * training step — phase, epoch, step, Eq. 12's `loss` — and per gate step,
 * `gate` = −R̄), `models/<variant>/` and `models/<variant>-gate/` (tfjs
 * weights format), `results.json` and `results.md` (see `results.ts`).
 * DIR-Net runs do not checkpoint mid-training (the protocol runs
 * synchronously): an interrupted run is run again from the start.
 *
 * @module
 */
import { appendFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import * as Metrics from "../../../data/metrics.ts"
import { type Dataset, open } from "../../../data/open.ts"
import * as Preprocess from "../../../data/preprocess.ts"
import type * as Stream from "../../../data/stream.ts"
import * as Dirnet from "../../../dsl/dirnet.ts"
import type * as Program from "../../../dsl/Program.ts"
import * as Costs from "../../shape-check/dirnet.ts"
import * as DirnetCheck from "../../shape-check/dirnet-experiment.ts"
import * as Checkpoint from "../checkpoint.ts"
import type * as Runner from "../experiment.ts"
import * as Init from "../init.ts"
import * as Exits from "./exits.ts"
import { closingNotes, markdown, type Results, type Row, type SweepPoint } from "./results.ts"
import * as Train from "./train.ts"

/** A training step's loss was not finite. */
export class NonFiniteLoss extends Error {}

// ---- measuring exits ----------------------------------------------------------------------

const PCK_THRESHOLDS = Metrics.thresholds(0, 50, 26)

type Measured = Omit<Row, "stage" | "table" | "row" | "column" | "model" | "evaluate" | "params">

/** 3D metrics of each sample's prediction at its exit, and the average cost of those exits. */
const measure = (ev: Exits.Evaluated, exits: Int32Array, macsAtExit: readonly number[]): Measured => {
  const pred = Exits.poseAtExit(ev.its, exits)
  const report = Metrics.report3d(pred, ev.truth, ev.scale)
  const d = Metrics.distances(
    Preprocess.denormalise(pred, ev.scale),
    Preprocess.denormalise(ev.truth, ev.scale),
    3,
  )
  const curve = Metrics.pckCurve(d, PCK_THRESHOLDS)
  const dist = Costs.exitDistribution(exits, ev.its.iterations)
  return {
    samples: ev.its.size,
    epe: report.epe,
    auc20to50: report.auc20to50,
    auc0to50: report.auc0to50,
    pck: Object.fromEntries(Object.entries(report.pck)),
    pckCurve: Array.from(PCK_THRESHOLDS, (x, i) => [x, curve[i]!] as const),
    gflops: Costs.gflops(Costs.expectedMacs({ macsAtExit }, dist)),
    meanExit: dist.reduce((a, p, k) => a + p * k, 0),
    exits: dist,
  }
}

/** The `q`-quantile of sorted values (nearest rank). */
const quantile = (sorted: readonly number[], q: number): number =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))]!

const slug = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^-|-$/g, "")

// ---- the run ------------------------------------------------------------------------------

/** What every part of a run reads. */
interface Context {
  readonly e: Dirnet.Experiment
  readonly seed: number
  readonly reporter: Runner.Reporter
  readonly costs: ReadonlyMap<string, DirnetCheck.VariantCosts>
  readonly gateParams: number
  readonly train: Dataset
  readonly test: Dataset
  readonly out: string
  readonly metric: (record: Record<string, string | number>) => void
}

const evalBatches = (ds: Dataset): Iterable<Stream.Batch> =>
  ds.batches({ batchSize: 64, seed: 0, epoch: 0, shuffle: false })

/** Algorithm 1's settings for a variant, reporting every step (metrics line, progress) and stopping on a non-finite loss. */
const protocol = (ctx: Context, variant: Dirnet.Variant) => {
  const { e } = ctx
  const phases = Dirnet.schedule(e)
  const stepsPerEpoch = Math.floor(ctx.train.size / e.batchSize)
  let phaseStart = Date.now()
  let current = -1
  let done = 0
  return {
    dirnet: variant.options,
    imageSize: e.imageSize,
    batches: (epoch: number) =>
      ctx.train.batches({ batchSize: e.batchSize, seed: ctx.seed * 7919, epoch, dropLast: true }),
    lr: e.lr,
    weights: e.weights,
    seed: ctx.seed,
    epochs: (stage: number) => (stage === 0 ? e.epochs.first : e.epochs.later),
    onStep: (i: { stage: number; epoch: number; step: number; loss: number }) => {
      const index = phases.findIndex((p) => p.stage === i.stage && p.variants.includes(variant.name))
      const phase = phases[index]!
      if (index !== current) {
        current = index
        phaseStart = Date.now()
        done = 0
      }
      done += 1
      ctx.metric({ stage: phase.name, epoch: i.epoch, step: i.step, loss: i.loss })
      if (!Number.isFinite(i.loss))
        throw new NonFiniteLoss(
          `phase "${phase.name}", epoch ${i.epoch + 1}, step ${i.step + 1}: loss is not finite (${i.loss}); DIR-Net runs keep no checkpoint`,
        )
      const secondsPerStep = (Date.now() - phaseStart) / 1000 / done
      ctx.reporter.progress({
        stage: phase.name,
        stageIndex: index,
        stages: phases.length,
        epoch: i.epoch,
        epochs: phase.epochs,
        step: i.step,
        steps: stepsPerEpoch,
        losses: { loss: i.loss },
        imagesPerSecond: e.batchSize / Math.max(secondsPerStep, 1e-9),
        secondsLeft: secondsPerStep * ((phase.epochs - i.epoch) * stepsPerEpoch - i.step - 1),
      })
    },
  }
}

/** A results row, logged as it is made; `index` is its place among the experiment's rows. */
interface Made {
  readonly index: number
  readonly row: Row
}

const makeRow = (ctx: Context, index: number, m: Measured, params: number): Made => {
  const r = ctx.e.rows[index]!
  const row: Row = {
    stage: `${r.table} · ${r.row}`,
    table: r.table,
    row: r.row,
    column: "test",
    model: r.model,
    evaluate: r.evaluate,
    params,
    ...m,
  }
  ctx.reporter.log(
    `${r.table} · ${r.row} (${r.model}): 3D AUC(20-50) ${row.auc20to50.toFixed(3)}, EPE ${row.epe.toFixed(1)} mm, ` +
      `${Costs.gflopsText(row.gflops)} GFLOPs, ${params.toLocaleString("en-US")} params, mean exit loop ${(row.meanExit + 1).toFixed(2)}`,
  )
  return { index, row }
}

/** The indices of a variant's rows, "No Iter." ones or the others. */
const rowsOf = (e: Dirnet.Experiment, model: string, noIter: boolean): number[] =>
  e.rows.flatMap((r, index) =>
    r.model === model && (r.evaluate._tag === "NoIter") === noIter ? [index] : [],
  )

/** The "No Iter." rows of a group's variants, on their shared stage 0 (FE, RF and the heads once). */
const noIterRows = (ctx: Context, group: readonly Dirnet.Variant[], stage0: Train.Trained): Made[] => {
  const indices = group.flatMap((v) => rowsOf(ctx.e, v.name, true))
  if (indices.length === 0) return []
  const ev = Exits.iterationsOver(stage0, evalBatches(ctx.test))
  return indices.map((index) => {
    const c = ctx.costs.get(ctx.e.rows[index]!.model)!
    const atFirst = measure(ev, new Int32Array(ev.its.size), c.costs.macsAtExit.slice(0, 1))
    return makeRow(ctx, index, atFirst, c.noIterParams)
  })
}

/** Trains the gate on the frozen network's training-set features and Eq. 11's rewards (the shape checker's GFLOPs). */
const trainGate = (ctx: Context, v: Dirnet.Variant, onTrain: Exits.Evaluated): Exits.Gate => {
  const { e } = ctx
  const reward = Exits.rewards(onTrain.its, ctx.costs.get(v.name)!.costs, {
    lambda: e.gate.lambda,
    flopsWeight: e.gate.flopsWeight,
  })
  const phase = `${v.name} · gate (REINFORCE)`
  const gate = Exits.trainGate(
    Exits.initGate(v.options.hidden, ctx.seed + 99, e.gate.hidden),
    onTrain.its,
    reward,
    {
      steps: e.gate.steps,
      lr: e.gate.lr,
      temperature: e.gate.temperature,
      seed: ctx.seed,
      onStep: (step, meanReturn) => ctx.metric({ stage: phase, epoch: 0, step, gate: -meanReturn }),
    },
  )
  Checkpoint.save(
    join(ctx.out, "models", slug(`${v.name}-gate`)),
    { [`params/${v.name}-gate`]: gate.params },
    { model: `${v.name}-gate`, row: `${v.name}-gate`, table: "gates", settings: e.gate },
  )
  return gate
}

/** A trained variant's rows and, when it is the swept one, Figure 7's points. */
const evaluate = (
  ctx: Context,
  v: Dirnet.Variant,
  trained: Train.Trained,
): { readonly rows: Made[]; readonly sweep: SweepPoint[] | undefined } => {
  const { e, seed } = ctx
  const macsAtExit = ctx.costs.get(v.name)!.costs.macsAtExit
  const params = ctx.costs.get(v.name)!.costs.params
  const ev = Exits.iterationsOver(trained, evalBatches(ctx.test))
  const indices = rowsOf(e, v.name, false)
  const sweep = e.sweep?.model === v.name ? e.sweep : undefined
  const needsGate =
    indices.some((i) => e.rows[i]!.evaluate._tag === "Gate") || (sweep?.tauGate.length ?? 0) > 0
  const onTrain =
    needsGate || (sweep?.tauVarQuantiles.length ?? 0) > 0
      ? Exits.iterationsOver(trained, evalBatches(ctx.train))
      : undefined
  const gate = needsGate ? trainGate(ctx, v, onTrain!) : undefined
  const gateExits = (temperature: number, offset: number) =>
    Exits.gateExits(gate!, ev.its, temperature, seed * 1_000_003 + offset)
  const exitsOf = (policy: Dirnet.ExitPolicy): Int32Array => {
    switch (policy._tag) {
      case "Last":
        return new Int32Array(ev.its.size).fill(ev.its.iterations - 1)
      case "Variance":
        return Exits.varianceExits(ev.its, policy.tau)
      case "Gate":
        return gateExits(policy.temperature, policy.seed)
    }
  }
  const rows = indices.map((index) => {
    const policy = e.rows[index]!.evaluate as Dirnet.ExitPolicy
    const m = measure(ev, exitsOf(policy), macsAtExit)
    return makeRow(ctx, index, m, params + (policy._tag === "Gate" ? ctx.gateParams : 0))
  })
  let points: SweepPoint[] | undefined
  if (sweep !== undefined && onTrain !== undefined) {
    // τ_var as quantiles of the training set's average variances, over every sample and loop.
    const variances: number[] = []
    for (let k = 0; k < onTrain.its.iterations; k++)
      for (let b = 0; b < onTrain.its.size; b++) variances.push(Exits.averageVariance(onTrain.its, k, b))
    variances.sort((a, b) => a - b)
    const point = (series: SweepPoint["series"], tau: number, q: number | undefined, exits: Int32Array) => {
      const m = measure(ev, exits, macsAtExit)
      const p: SweepPoint = {
        series,
        tau,
        quantile: q,
        auc20to50: m.auc20to50,
        epe: m.epe,
        gflops: m.gflops,
        meanExit: m.meanExit,
        exits: m.exits,
      }
      ctx.reporter.log(
        `Figure 7 · ${series} = ${tau.toPrecision(3)}${q === undefined ? "" : ` (quantile ${q})`}: 3D AUC(20-50) ${p.auc20to50.toFixed(3)}, ${Costs.gflopsText(p.gflops)} GFLOPs, mean exit loop ${(p.meanExit + 1).toFixed(2)}`,
      )
      return p
    }
    points = [
      ...sweep.tauVarQuantiles.map((q) => {
        const tau = quantile(variances, q)
        return point("τ_var", tau, q, Exits.varianceExits(ev.its, tau))
      }),
      ...sweep.tauGate.map((t) => point("τ_gate", t, undefined, gateExits(t, 0))),
    ]
  }
  if (gate !== undefined) Init.dispose(gate.params)
  return { rows, sweep: points }
}

/** Runs a DIR-Net experiment (already shape-checked by the caller) into `options.out`. */
export const run = async (
  program: Program.Program<Dirnet.Experiment>,
  options: Runner.RunOptions,
): Promise<Runner.Outcome> => {
  const e = program.experiment
  if (e === undefined) throw new Error(`program "${program.name}" declares no experiment`)
  const report = DirnetCheck.check(program)
  if (report.errors.length > 0)
    throw new Error(
      `program "${program.name}" is ill-formed: ${report.errors.map((x) => `${x.path}: ${x.message}`).join("; ")}`,
    )
  const { out } = options
  mkdirSync(out, { recursive: true })
  const metricsPath = join(out, "metrics.jsonl")
  if (existsSync(metricsPath)) rmSync(metricsPath)
  rmSync(join(out, "models"), { recursive: true, force: true })
  const started = Date.now()
  const elapsed = () => (Date.now() - started) / 1000
  const ctx: Context = {
    e,
    seed: options.seed,
    reporter: options.reporter,
    costs: new Map(report.loops.map((l) => [l.model, l])),
    gateParams: report.gateParams,
    train: open(e.train),
    test: open(e.test),
    out,
    metric: (record) => appendFileSync(metricsPath, `${JSON.stringify({ ...record, time: elapsed() })}\n`),
  }
  if (ctx.train.size < e.batchSize)
    throw new Error(`${ctx.train.size} training samples are fewer than one batch of ${e.batchSize}`)

  const rows: Made[] = []
  let sweep: Results["sweep"]
  for (const group of Dirnet.stage0Groups(e)) {
    const first = group[0]!
    const stage0 = Train.progressive({ ...protocol(ctx, first), dirnet: { ...first.options, iterations: 1 } })
    rows.push(...noIterRows(ctx, group, stage0))
    for (const v of group) {
      const trained =
        v.options.iterations === 1
          ? Train.clone({ ...stage0, options: v.options, net: Dirnet.dirnet(v.options) })
          : Train.progressive({ ...protocol(ctx, v), from: stage0 })
      Checkpoint.save(
        join(out, "models", slug(v.name)),
        { [`params/${v.name}`]: trained.params, [`state/${v.name}`]: trained.state },
        { model: v.name, row: v.name, table: "trained variants", options: v.options },
      )
      const r = evaluate(ctx, v, trained)
      rows.push(...r.rows)
      if (r.sweep !== undefined) sweep = { model: v.name, points: r.sweep }
      Train.dispose(trained)
    }
    Train.dispose(stage0)
  }

  const results: Results = {
    kind: "DirNetExperiment",
    program: program.name,
    seed: options.seed,
    backend: options.backend,
    rows: rows.sort((a, b) => a.index - b.index).map((r) => r.row),
    seconds: elapsed(),
    sweep,
    loops: report.loops.map((l) => ({
      model: l.model,
      gflopsAtExit: l.costs.gflopsAtExit,
      params: l.costs.params,
      noIterParams: l.noIterParams,
    })),
    gateParams: report.gateParams,
  }
  writeFileSync(join(out, "results.json"), `${JSON.stringify(results, null, 2)}\n`)
  writeFileSync(join(out, "results.md"), markdown(results))
  for (const note of closingNotes(results)) options.reporter.log(note)
  return { _tag: "Done", results }
}

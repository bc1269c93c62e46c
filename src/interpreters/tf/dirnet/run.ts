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
 * `gate` = −R̄), `checkpoints/` (`checkpoint.ts`: `NNNNNN/` in the tfjs
 * weights format, written atomically, and `LATEST`), `models/<variant>/`
 * and `models/<variant>-gate/` (tfjs weights format), `results.json` and
 * `results.md` (see `results.ts`).
 *
 * A checkpoint is written after every epoch of every phase, after the "No
 * Iter." rows and after each variant's evaluation, and when the caller asks
 * the run to stop (Ctrl-C, after the current step). It holds the shared
 * stage 0 of the current group, the network in training with its optimizer
 * states, and the position (phase, epoch, step, the rows and sweep so far).
 * Batches depend only on (data, seed, epoch) and initialisation only on
 * (seed, path), so a resumed run ends with the same results as an
 * uninterrupted one on the same backend; `metrics.jsonl` is cut back to
 * what it held at the checkpoint. A non-finite loss stops the run naming
 * the phase and step, keeping the last good checkpoint.
 *
 * @module
 */
import { mkdirSync, rmSync } from "node:fs"
import { join } from "node:path"
import { Schema } from "effect"
import * as Metrics from "../../../data/metrics.ts"
import { type Dataset, open } from "../../../data/open.ts"
import * as Preprocess from "../../../data/preprocess.ts"
import type * as Stream from "../../../data/stream.ts"
import * as Dirnet from "../../../dsl/dirnet.ts"
import type * as Program from "../../../dsl/Program.ts"
import * as Names from "../../../run-dir/names.ts"
import { writeFile } from "../../../run-dir/write-file.ts"
import * as Costs from "../../shape-check/dirnet.ts"
import * as DirnetCheck from "../../shape-check/dirnet-experiment.ts"
import * as Checkpoint from "../checkpoint.ts"
import * as Runner from "../experiment.ts"
import * as Init from "../init.ts"
import * as Journal from "../journal.ts"
import type * as Opt from "../optimizer.ts"
import * as Exits from "./exits.ts"
import { closingNotes, markdown, type Results, type Row, type SweepPoint } from "./results.ts"
import * as Train from "./train.ts"

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

/** Writes a trained model to `dir` (tfjs weights format), replacing what an interrupted run may have left there. */
const saveModel = (dir: string, groups: Checkpoint.Groups, meta: unknown) => {
  rmSync(dir, { recursive: true, force: true })
  Checkpoint.save(dir, groups, meta)
}

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

/** Algorithm 1's settings for a network with `options` (a variant's, or its group's stage 0). */
const protocol = (ctx: Context, options: Dirnet.Resolved): Train.Protocol => ({
  dirnet: options,
  imageSize: ctx.e.imageSize,
  batches: (epoch: number) =>
    ctx.train.batches({ batchSize: ctx.e.batchSize, seed: ctx.seed * 7919, epoch, dropLast: true }),
  lr: ctx.e.lr,
  weights: ctx.e.weights,
  seed: ctx.seed,
})

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
  saveModel(
    join(ctx.out, "models", Names.slug(`${v.name}-gate`)),
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

/**
 * Where a run is, saved with every checkpoint. The run goes through the
 * groups of variants that share a stage 0 (`Dirnet.stage0Groups`) in order;
 * in group `group`, `variant` −1 is the shared stage 0 (then the "No Iter."
 * rows) and `variant` i ≥ 0 the group's i-th variant: its stages 1 … l_max,
 * then its evaluation. `stage` is the stage of Algorithm 1 in training (past
 * the variant's last one: its evaluation is next), `epoch` its epochs done
 * and `step` the steps done of the next epoch.
 */
interface Position extends Journal.Progress {
  readonly group: number
  readonly variant: number
  readonly stage: number
  readonly epoch: number
  readonly step: number
  /** The rows and the sweep made so far. */
  readonly rows: readonly Made[]
  readonly sweep: Results["sweep"]
}

/** The fields of {@link Position} a resumed run reads, checked when a checkpoint is read back. */
const PositionFields = Schema.Struct({
  group: Schema.Int,
  variant: Schema.Int,
  stage: Schema.Int,
  epoch: Schema.Int,
  step: Schema.Int,
  rows: Schema.Array(Schema.Unknown),
})

/** The checkpoint's names for the shared stage 0 and the network in training (its optimizer groups: "0", "1"). */
const STAGE0 = "stage0"
const TRAINING = "training"

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
  const { out, reporter } = options
  mkdirSync(out, { recursive: true })
  const groups = Dirnet.stage0Groups(e)
  const phases = Dirnet.schedule(e)
  const phaseOf = (variant: string, stage: number) => {
    const index = phases.findIndex((p) => p.stage === stage && p.variants.includes(variant))
    return { index, phase: phases[index]! }
  }
  /** The network trained by a group's stage 0 (its first variant's options, one iteration). */
  const stage0Options = (group: readonly Dirnet.Variant[]): Dirnet.Resolved => ({
    ...group[0]!.options,
    iterations: 1,
  })

  // ---- the state of the run: its position and the networks it holds (all saved by a checkpoint)
  let position: Position = {
    group: 0,
    variant: -1,
    stage: 0,
    epoch: 0,
    step: 0,
    rows: [],
    sweep: undefined,
    seconds: 0,
  }
  /** The current group's stage 0, once trained. */
  let stage0: Train.Trained | undefined
  /** The network in training. */
  let training: Train.Training | undefined
  /** A trained variant being evaluated. */
  let trained: Train.Trained | undefined
  /** The network in training and its optimizer states as a checkpoint held them, until training takes them up. */
  let resumed: { params: Init.Tree; state: Init.Tree; optimizers: Opt.State[] } | undefined

  const describe = (p: Position): string => {
    const group = groups[p.group]
    if (group === undefined) return "every variant trained and evaluated"
    const v = p.variant === -1 ? group[0]! : group[p.variant]!
    const last = p.variant === -1 ? 0 : v.options.iterations - 1
    if (p.stage > last)
      return `${p.variant === -1 ? `${v.name}'s stage 0` : v.name} trained, evaluating it next`
    const { index, phase } = phaseOf(v.name, p.stage)
    const where = `phase ${index + 1}/${phases.length} "${phase.name}"`
    return p.epoch >= phase.epochs ? `${where} done` : `${where}, epoch ${p.epoch + 1}, step ${p.step}`
  }

  const journal = Journal.open<Position>(out, {
    resume: options.resume,
    restart: options.restart,
    note: reporter.log,
    position: PositionFields,
  })
  const loaded = journal.resumed
  if (options.resume) {
    if (loaded !== undefined) {
      position = loaded.position
      const { params, state, opt } = loaded.world
      const group = groups[position.group]
      if (params[STAGE0] !== undefined && group !== undefined) {
        const o = stage0Options(group)
        stage0 = {
          options: o,
          imageSize: e.imageSize,
          net: Dirnet.dirnet(o),
          params: params[STAGE0],
          state: state[STAGE0]!,
        }
      }
      if (params[TRAINING] !== undefined)
        resumed = {
          params: params[TRAINING],
          state: state[TRAINING]!,
          optimizers: Object.keys(opt)
            .sort((a, b) => Number(a) - Number(b))
            .map((k) => opt[k]!),
        }
      reporter.log(`resuming from ${loaded.dir}: ${describe(position)}`)
    }
  }
  if (loaded === undefined) rmSync(join(out, "models"), { recursive: true, force: true })
  const { elapsed } = journal
  const ctx: Context = {
    e,
    seed: options.seed,
    reporter,
    costs: new Map(report.loops.map((l) => [l.model, l])),
    gateParams: report.gateParams,
    train: open(e.train),
    test: open(e.test),
    out,
    metric: (record) => journal.log({ ...record, time: elapsed() }),
  }
  if (ctx.train.size < e.batchSize)
    throw new Error(`${ctx.train.size} training samples are fewer than one batch of ${e.batchSize}`)
  const stepsPerEpoch = Math.floor(ctx.train.size / e.batchSize)

  const checkpoint = (): string => {
    const world: Checkpoint.World = {
      params: {
        ...(stage0 === undefined ? {} : { [STAGE0]: stage0.params }),
        ...(training === undefined ? {} : { [TRAINING]: training.params }),
      },
      state: {
        ...(stage0 === undefined ? {} : { [STAGE0]: stage0.state }),
        ...(training === undefined ? {} : { [TRAINING]: training.state }),
      },
      meta: {},
      opt: Object.fromEntries((training?.groups ?? []).map((g, i) => [String(i), g.state])),
    }
    return journal.checkpoint(world, position)
  }
  const release = () => {
    if (training !== undefined) Train.disposeTraining(training)
    for (const t of [trained, stage0]) if (t !== undefined) Train.dispose(t)
    if (resumed !== undefined) {
      Init.dispose(resumed.params, resumed.state)
      Train.disposeOptimizers(resumed.optimizers)
    }
    training = trained = stage0 = resumed = undefined
  }
  /** Stops the run at its checkpoint `dir` (Ctrl-C). */
  const stop = (dir: string): Runner.Outcome => {
    release()
    return { _tag: "Stopped", checkpoint: dir }
  }

  /**
   * Trains the stages `position.stage` … of a network with `net`'s options
   * for variant `v` (its phases' names), from the checkpoint's network or
   * from `from` (copied); checkpoints after every epoch. Undefined when
   * asked to stop (`position` then says where; the caller checkpoints).
   */
  const train = async (
    v: Dirnet.Variant,
    net: Dirnet.Resolved,
    from: Train.Trained | undefined,
  ): Promise<Train.Trained | undefined> => {
    const o = protocol(ctx, net)
    let previous: Train.Trained | undefined =
      from === undefined || resumed !== undefined ? undefined : Train.clone(from)
    for (let stage = position.stage; stage < net.iterations; stage++) {
      if (resumed !== undefined) {
        const r = resumed
        resumed = undefined
        training = Train.beginStage(o, stage, r, r.optimizers)
      } else training = Train.beginStage(o, stage, previous)
      previous = undefined
      const t = training
      const { index, phase } = phaseOf(v.name, stage)
      const epochs = stage === 0 ? e.epochs.first : e.epochs.later
      const phaseStart = Date.now()
      let done = 0
      for (let epoch = position.epoch; epoch < epochs; epoch++) {
        const skip = epoch === position.epoch ? position.step : 0
        let step = 0
        for (const b of o.batches(epoch)) {
          // Resuming mid-epoch: an epoch's batches are a function of (seed, epoch), so skip those already seen.
          if (step < skip) {
            step += 1
            continue
          }
          const loss = Train.trainStep(t, b)
          done += 1
          ctx.metric({ stage: phase.name, epoch, step, loss })
          if (!Number.isFinite(loss))
            throw Runner.nonFiniteLoss(phase.name, epoch, step, { loss }, journal.last(), "phase")
          const secondsPerStep = (Date.now() - phaseStart) / 1000 / done
          reporter.progress({
            stage: phase.name,
            stageIndex: index,
            stages: phases.length,
            epoch,
            epochs,
            step,
            steps: stepsPerEpoch,
            losses: { loss },
            imagesPerSecond: e.batchSize / Math.max(secondsPerStep, 1e-9),
            secondsLeft: secondsPerStep * ((epochs - epoch) * stepsPerEpoch - step - 1),
          })
          step += 1
          await Runner.yieldToEventLoop()
          if (options.shouldStop?.() === true) {
            position = { ...position, stage, epoch, step }
            return undefined
          }
        }
        position = { ...position, stage, epoch: epoch + 1, step: 0 }
        checkpoint()
      }
      training = undefined
      previous = Train.finish(t)
      position = { ...position, stage: stage + 1, epoch: 0, step: 0 }
    }
    if (previous === undefined) throw new Error(`${v.name}: nothing left to train at stage ${position.stage}`)
    return previous
  }

  try {
    for (let g = position.group; g < groups.length; g++) {
      const group = groups[g]!
      if (position.variant === -1) {
        const s0 = await train(group[0]!, stage0Options(group), undefined)
        if (s0 === undefined) return stop(checkpoint())
        stage0 = s0
        const rows = noIterRows(ctx, group, stage0)
        position = { ...position, variant: 0, stage: 1, epoch: 0, step: 0, rows: [...position.rows, ...rows] }
        const dir = checkpoint()
        if (options.shouldStop?.() === true) return stop(dir)
      }
      const s0 = stage0
      if (s0 === undefined) throw new Error(`group ${g + 1}: its stage 0 is missing from the checkpoint`)
      for (let i = position.variant; i < group.length; i++) {
        const v = group[i]!
        if (v.options.iterations === 1)
          trained = Train.clone({ ...s0, options: v.options, net: Dirnet.dirnet(v.options) })
        else {
          const t = await train(v, v.options, s0)
          if (t === undefined) return stop(checkpoint())
          trained = t
        }
        saveModel(
          join(out, "models", Names.slug(v.name)),
          { [`params/${v.name}`]: trained.params, [`state/${v.name}`]: trained.state },
          { model: v.name, row: v.name, table: "trained variants", options: v.options },
        )
        const r = evaluate(ctx, v, trained)
        Train.dispose(trained)
        trained = undefined
        position = {
          ...position,
          rows: [...position.rows, ...r.rows],
          sweep: r.sweep === undefined ? position.sweep : { model: v.name, points: r.sweep },
        }
        const next = i + 1 < group.length
        if (!next) {
          Train.dispose(s0)
          stage0 = undefined
        }
        position = next
          ? { ...position, variant: i + 1, stage: 1, epoch: 0, step: 0 }
          : { ...position, group: g + 1, variant: -1, stage: 0, epoch: 0, step: 0 }
        if (g + 1 < groups.length || next) {
          const dir = checkpoint()
          if (options.shouldStop?.() === true) return stop(dir)
        }
      }
    }
  } catch (err) {
    release()
    throw err
  }

  const results: Results = {
    kind: "DirNetExperiment",
    program: program.name,
    seed: options.seed,
    backend: options.backend,
    rows: [...position.rows].sort((a, b) => a.index - b.index).map((r) => r.row),
    seconds: elapsed(),
    sweep: position.sweep,
    loops: report.loops.map((l) => ({
      model: l.model,
      gflopsAtExit: l.costs.gflopsAtExit,
      params: l.costs.params,
      noIterParams: l.noIterParams,
    })),
    gateParams: report.gateParams,
  }
  writeFile(join(out, "results.json"), `${JSON.stringify(results, null, 2)}\n`)
  writeFile(join(out, "results.md"), markdown(results))
  for (const note of closingNotes(results)) reporter.log(note)
  return { _tag: "Done", results }
}

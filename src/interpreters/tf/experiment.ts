/**
 * Running an experiment: the tf meaning of `Experiment` values.
 *
 * Stages run in order over a "world" (every model's parameters and
 * batch-norm state, the meta-parameters, the optimizer states). The run
 * directory receives metrics as JSONL, a checkpoint after every epoch (the
 * whole world plus the position in the experiment, in the tfjs weights
 * format, written atomically) and the results. A resumed run restarts from
 * the last checkpoint; because batches depend only on (data, seed, epoch) and
 * initialisation only on (seed, path), it ends with the same results as an
 * uninterrupted run on the same backend.
 *
 * Rows compared in a table are paired (common random numbers): within a
 * seed, a stage's randomness depends on what the stage is, never on where it
 * sits in the program. Its batch order is keyed by (seed, the split it trains
 * on) (`Stream.batchSeed`), a fresh model's parameters by (seed, parameter
 * path), so every model with the same network starts from the same
 * parameters. Two rows that train the same network on the same split see the
 * same initialisation and batch order, and inserting a row changes no other
 * row's numbers.
 *
 * @module
 */
import { mkdirSync, rmSync } from "node:fs"
import { join } from "node:path"
import * as tf from "@tensorflow/tfjs-core"
import { Schema } from "effect"
import * as Metrics from "../../data/metrics.ts"
import { type Dataset, open } from "../../data/open.ts"
import * as Stream from "../../data/stream.ts"
import * as Data from "../../dsl/Data.ts"
import type * as Experiment from "../../dsl/Experiment.ts"
import type * as Loss from "../../dsl/Loss.ts"
import type * as Program from "../../dsl/Program.ts"
import * as Step from "../../dsl/Step.ts"
import * as Names from "../../run-dir/names.ts"
import type * as RunFiles from "../../run-dir/schema.ts"
import { writeFile } from "../../run-dir/write-file.ts"
import { apply } from "./apply.ts"
import * as Checkpoint from "./checkpoint.ts"
import * as ExitResults from "./exit-results.ts"
import * as Exits from "./exits.ts"
import * as Init from "./init.ts"
import * as Journal from "./journal.ts"
import * as StepRun from "./step.ts"

type World = StepRun.World

/** One evaluated row of a results table (`results.json`'s schema). */
export type Row = RunFiles.StagedRow

/** A staged experiment's `results.json`. */
export type Results = RunFiles.StagedResults

/** Where the run is: the stage to run, and inside a train stage the epochs and the steps of the current epoch done. */
interface Position extends Journal.Progress {
  readonly stage: number
  readonly epoch: number
  readonly step: number
  readonly rows: readonly Row[]
}

/** The fields of {@link Position} a resumed run reads, checked when a checkpoint is read back. */
const PositionFields = Schema.Struct({
  stage: Schema.Int,
  epoch: Schema.Int,
  step: Schema.Int,
  rows: Schema.Array(Schema.Unknown),
})

export interface Progress {
  readonly stage: string
  readonly stageIndex: number
  readonly stages: number
  readonly epoch: number
  readonly epochs: number
  readonly step: number
  readonly steps: number
  readonly losses: Readonly<Record<string, number>>
  readonly imagesPerSecond: number
  readonly secondsLeft: number
}

export interface Reporter {
  readonly progress: (p: Progress) => void
  readonly log: (line: string) => void
}

export interface RunOptions {
  readonly out: string
  readonly seed: number
  readonly backend: string
  readonly resume: boolean
  /** With `resume`: when there is nothing to resume from, start over instead of refusing (see `journal.ts`). */
  readonly restart?: boolean | undefined
  readonly reporter: Reporter
  /** Polled after every step: when true, the run checkpoints and stops (Ctrl-C). */
  readonly shouldStop?: () => boolean
}

export type Outcome =
  | { readonly _tag: "Done"; readonly results: RunFiles.Results }
  | { readonly _tag: "Stopped"; readonly checkpoint: string }

/**
 * A training step produced a non-finite loss: the run stops, the last good
 * checkpoint is kept. `unit` names what `stage` is (DIR-Net's runner: a "phase").
 */
export class NonFiniteLoss extends Error {
  constructor(
    readonly stage: string,
    readonly epoch: number,
    readonly step: number,
    readonly losses: Readonly<Record<string, number>>,
    readonly checkpoint: string | undefined,
    readonly unit: string = "stage",
  ) {
    super(
      `${unit} "${stage}", epoch ${epoch + 1}, step ${step + 1}: loss is not finite (${JSON.stringify(losses)}); ` +
        (checkpoint === undefined
          ? "no checkpoint was written yet"
          : `last good checkpoint kept at ${checkpoint}`),
    )
  }
}

// ---- data ------------------------------------------------------------------------------

const toTensors = (b: Stream.Batch, imageSize: number): Partial<Record<Loss.Field, tf.Tensor>> => {
  const out: Partial<Record<Loss.Field, tf.Tensor>> = {
    joints3d: tf.tensor2d(b.joints3d, [b.size, 63]),
    joints2d: tf.tensor2d(b.joints2d, [b.size, 42]),
  }
  if (b.rgb.length > 0) out.rgb = tf.tensor4d(b.rgb, [b.size, imageSize, imageSize, 3])
  if (b.depth !== undefined) out.depth = tf.tensor4d(b.depth, [b.size, imageSize, imageSize, 1])
  return out
}

const disposeBatch = (t: Partial<Record<Loss.Field, tf.Tensor>>) => {
  for (const v of Object.values(t)) v?.dispose()
}

// ---- world -------------------------------------------------------------------------------

const initModel = (world: World, model: Program.Model, seed: number): World => {
  const { params, state } = Init.init(model.net, model.input, seed)
  for (const t of [
    ...Object.values(world.params[model.name] ?? {}),
    ...Object.values(world.state[model.name] ?? {}),
  ])
    t.dispose()
  return {
    ...world,
    params: { ...world.params, [model.name]: params },
    state: { ...world.state, [model.name]: state },
  }
}

/**
 * Starts model `to` from model `from`'s parameters and state. Where a kernel
 * differs only in its input channels (an RGB network copied into a depth
 * one), the copy averages the source kernel over its input channels and
 * repeats it (as Gupta et al. initialise a depth network from an RGB one).
 */
const copyModel = (world: World, to: Program.Model, from: string, seed: number): World => {
  const params = world.params[from]
  const state = world.state[from]
  if (params === undefined || state === undefined)
    throw new Error(`cannot copy "${from}": it has no parameters yet`)
  const fresh = initModel(world, to, seed)
  const adapt = (mine: Init.Tree, theirs: Init.Tree): Init.Tree =>
    Object.fromEntries(
      Object.entries(mine).map(([k, v]) => {
        const src = theirs[k]
        if (src === undefined) return [k, v]
        let out: tf.Tensor = v
        if (src.shape.join() === v.shape.join()) out = src.clone()
        else if (src.rank === 4 && v.rank === 4 && [0, 1, 3].every((a) => src.shape[a] === v.shape[a]))
          out = tf.tidy(() => tf.tile(tf.mean(src, 2, true), [1, 1, v.shape[2]!, 1]))
        if (out !== v) v.dispose()
        return [k, out]
      }),
    )
  return {
    ...fresh,
    params: { ...fresh.params, [to.name]: adapt(fresh.params[to.name]!, params) },
    state: { ...fresh.state, [to.name]: adapt(fresh.state[to.name]!, state) },
  }
}

/** Meta-parameters φ: one weight per parameter of the `like` model, initialised to a constant. */
const initMeta = (world: World, e: Experiment.Experiment): World => {
  let meta = world.meta
  for (const m of e.metaParams) {
    if (meta[m.name] !== undefined) continue
    const like = world.params[m.like]
    if (like === undefined) continue
    meta = {
      ...meta,
      [m.name]: Object.fromEntries(Object.entries(like).map(([k, v]) => [k, tf.fill(v.shape, m.init)])),
    }
  }
  return { ...world, meta }
}

// ---- models (checkpoints: `checkpoint.ts`'s checkpoints/NNNNNN and LATEST) ------------------------------

/** The evaluated model's parameters and state, kept as `models/<stage>/` (tfjs weights format) for reports and reuse. */
const saveModel = (out: string, stage: Experiment.Evaluate, world: World) => {
  const dir = join(out, "models", Names.slug(stage.name))
  rmSync(dir, { recursive: true, force: true })
  Checkpoint.save(
    dir,
    {
      [`params/${stage.model}`]: world.params[stage.model]!,
      [`state/${stage.model}`]: world.state[stage.model]!,
    },
    {
      stage: stage.name,
      model: stage.model,
      table: stage.table,
      row: stage.row,
      column: stage.column,
    },
  )
}

// ---- evaluation ---------------------------------------------------------------------------------

const evaluate = (
  stage: Experiment.Evaluate,
  world: World,
  program: Program.Program,
  e: Experiment.Experiment,
  ds: Dataset,
): Row => {
  const model = program.models.find((m) => m.name === stage.model)!
  const feed = e.feeds[stage.model] ?? "rgb"
  const params = world.params[stage.model]
  const state = world.state[stage.model]
  if (params === undefined || state === undefined)
    throw new Error(`stage "${stage.name}": model "${stage.model}" was never trained or initialised`)
  const preds: number[] = []
  const truths: number[] = []
  const scales: number[] = []
  for (const b of ds.batches({ batchSize: 64, seed: 0, epoch: 0, shuffle: false })) {
    const t = toTensors(b, ds.imageSize)
    const y = tf.tidy(() => {
      const out = apply(model.net, params, state, t[feed]!, "eval").y
      return out.shape[1] === 63 ? out : tf.slice(out, [0, 0], [b.size, 63])
    })
    preds.push(...(y.dataSync() as Float32Array))
    y.dispose()
    disposeBatch(t)
    truths.push(...b.joints3d)
    scales.push(...b.scale)
  }
  const report = Metrics.report3d(
    Float32Array.from(preds),
    Float32Array.from(truths),
    Float32Array.from(scales),
  )
  const d = Metrics.distances(
    Float32Array.from(preds.map((p, i) => p * scales[Math.floor(i / 63)]!)),
    Float32Array.from(truths.map((p, i) => p * scales[Math.floor(i / 63)]!)),
    3,
  )
  const at = Metrics.thresholds(0, 50, 26)
  const curve = Metrics.pckCurve(d, at)
  return {
    stage: stage.name,
    table: stage.table,
    row: stage.row,
    column: stage.column,
    model: stage.model,
    samples: truths.length / 63,
    epe: report.epe,
    auc20to50: report.auc20to50,
    auc0to50: report.auc0to50,
    pck: Object.fromEntries(Object.entries(report.pck)),
    pckCurve: Array.from(at, (x, i) => [x, curve[i]!] as const),
  }
}

// ---- the run ------------------------------------------------------------------------------------

const openCache = new Map<string, Dataset>()
const dataset = (spec: Data.Spec): Dataset => {
  const key = JSON.stringify(spec)
  let ds = openCache.get(key)
  if (ds === undefined) {
    ds = open(spec)
    openCache.set(key, ds)
  }
  return ds
}

/** Lets signal handlers (Ctrl-C) and timers run between training steps. */
export const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve))

/** Runs `program`'s experiment (already shape-checked by the caller). */
export const run = async (
  program: Program.Program<Experiment.Experiment>,
  options: RunOptions,
): Promise<Outcome> => {
  const e = program.experiment
  if (e === undefined) throw new Error(`program "${program.name}" declares no experiment`)
  const { out, seed, reporter } = options
  mkdirSync(out, { recursive: true })
  const models = Object.fromEntries(program.models.map((m) => [m.name, m]))
  const ctx: StepRun.Context = { models, feeds: e.feeds, seed }

  const journal = Journal.open<Position>(out, {
    resume: options.resume,
    restart: options.restart,
    note: reporter.log,
    position: PositionFields,
  })
  let world: World = journal.resumed?.world ?? { params: {}, state: {}, meta: {}, opt: {} }
  let position: Position = journal.resumed?.position ?? { stage: 0, epoch: 0, step: 0, rows: [], seconds: 0 }
  if (journal.resumed !== undefined)
    reporter.log(
      `resuming from ${journal.resumed.dir}: stage ${position.stage + 1}/${e.stages.length}, epoch ${position.epoch + 1}, step ${position.step}`,
    )
  const { elapsed } = journal
  const checkpoint = () => journal.checkpoint(world, position)

  try {
    for (let si = position.stage; si < e.stages.length; si++) {
      const stage = e.stages[si]!
      if (stage._tag === "EvaluateExits") {
        const row = Exits.evaluateStage(stage, { ...world, models, dataset, seed, out, log: reporter.log })
        position = { ...position, stage: si + 1, epoch: 0, step: 0, rows: [...position.rows, row] }
        continue
      }
      if (stage._tag === "Evaluate") {
        const row = evaluate(stage, world, program, e, dataset(stage.data))
        saveModel(out, stage, world)
        reporter.log(
          `${stage.name}: ${row.row} [${row.column}] EPE ${row.epe.toFixed(2)} mm, AUC(20-50) ${row.auc20to50.toFixed(3)}`,
        )
        position = { ...position, stage: si + 1, epoch: 0, step: 0, rows: [...position.rows, row] }
        continue
      }
      const ds = dataset(stage.data)
      if (position.epoch === 0 && position.step === 0) {
        // Each stage is a fresh optimisation: its optimizers start from their initial state.
        for (const st of Object.values(world.opt))
          for (const slot of st.slots)
            for (const tree of Object.values(slot)) for (const t of Object.values(tree)) t.dispose()
        world = { ...world, opt: {} }
        for (const [name, init] of Object.entries(stage.init)) {
          const model = models[name]
          if (model === undefined) throw new Error(`stage "${stage.name}": no model "${name}"`)
          if (init._tag === "Copy") world = copyModel(world, model, init.from, seed)
          else if (init._tag === "Scratch" || world.params[name] === undefined)
            world = initModel(world, model, seed)
        }
        for (const name of modelsOf(stage.step))
          if (world.params[name] === undefined) world = initModel(world, models[name]!, seed)
        world = StepRun.prepare(
          stage.step,
          world,
          ctx,
          seed,
          Data.shapes(stage.data) as Partial<Record<Loss.Field, readonly number[]>>,
        )
        world = initMeta(world, e)
      }
      const steps = Math.floor(ds.size / stage.batchSize)
      if (steps === 0)
        throw new Error(
          `stage "${stage.name}": ${ds.size} samples are fewer than one batch of ${stage.batchSize}`,
        )
      const stageStart = Date.now()
      let done = 0
      for (let epoch = position.epoch; epoch < stage.epochs; epoch++) {
        let step = 0
        const skip = epoch === position.epoch ? position.step : 0
        for (const b of ds.batches({
          batchSize: stage.batchSize,
          seed: Stream.batchSeed(seed, stage.data),
          epoch,
          dropLast: true,
        })) {
          // Resuming mid-epoch: the batches of an epoch are a function of (seed, epoch), so skip those already seen.
          if (step < skip) {
            step += 1
            continue
          }
          const t = toTensors(b, ds.imageSize)
          const result = StepRun.run(stage.step, world, t, ctx)
          disposeBatch(t)
          world = result.world
          done += 1
          const finite = Object.values(result.losses).every(Number.isFinite)
          const secondsPerStep = (Date.now() - stageStart) / 1000 / done
          const record = { stage: stage.name, epoch, step, time: elapsed(), ...result.losses }
          journal.log(record)
          if (!finite) throw new NonFiniteLoss(stage.name, epoch, step, result.losses, journal.last())
          reporter.progress({
            stage: stage.name,
            stageIndex: si,
            stages: e.stages.length,
            epoch,
            epochs: stage.epochs,
            step,
            steps,
            losses: result.losses,
            imagesPerSecond: stage.batchSize / Math.max(secondsPerStep, 1e-9),
            secondsLeft: secondsPerStep * ((stage.epochs - epoch) * steps - step - 1),
          })
          step += 1
          await yieldToEventLoop()
          if (options.shouldStop?.() === true) {
            position = { ...position, stage: si, epoch, step }
            const dir = checkpoint()
            Checkpoint.disposeWorld(world)
            return { _tag: "Stopped", checkpoint: dir }
          }
        }
        position = { ...position, stage: si, epoch: epoch + 1, step: 0 }
        checkpoint()
      }
      position = { ...position, stage: si + 1, epoch: 0, step: 0 }
    }
  } catch (err) {
    Checkpoint.disposeWorld(world)
    throw err
  }

  const base = { program: program.name, seed, backend: options.backend, seconds: elapsed() }
  // An experiment that evaluates exits writes DIR-Net's results (costs, sweep); any other the staged kind.
  const exitResults = ExitResults.fromRows(program, base, position.rows)
  const results: RunFiles.Results = exitResults ?? {
    program: program.name,
    seed,
    backend: options.backend,
    ...(Object.keys(e.references).length > 0 ? { references: e.references } : {}),
    rows: position.rows,
    seconds: base.seconds,
  }
  writeFile(join(out, "results.json"), `${JSON.stringify(results, null, 2)}\n`)
  writeFile(
    join(out, "results.md"),
    exitResults === undefined ? markdown(results as Results) : ExitResults.markdown(exitResults),
  )
  if (exitResults !== undefined) for (const note of ExitResults.closingNotes(exitResults)) reporter.log(note)
  Checkpoint.disposeWorld(world)
  return { _tag: "Done", results }
}

/** The models a step reads or updates (those that need parameters before it runs). */
const modelsOf = (step: Step.Step): string[] => Step.models(step)

/** Results as Markdown: one table per report table, rows × columns of EPE (mm) / AUC. */
export const markdown = (r: Results): string => {
  const tables = [...new Set(r.rows.map((x) => x.table))]
  const parts = [`# ${r.program}\n\nseed ${r.seed}, backend ${r.backend}, ${r.seconds.toFixed(0)} s\n`]
  for (const t of tables) {
    const rows = r.rows.filter((x) => x.table === t)
    const columns = [...new Set(rows.map((x) => x.column))]
    const names = [...new Set(rows.map((x) => x.row))]
    parts.push(`## ${t}\n`)
    parts.push(`| method | ${columns.map((c) => `${c}: EPE (mm) / AUC 20-50`).join(" | ")} |`)
    parts.push(`|---|${columns.map(() => "---").join("|")}|`)
    for (const n of names)
      parts.push(
        `| ${n} | ${columns
          .map((c) => {
            const x = rows.find((y) => y.row === n && y.column === c)
            return x === undefined ? "" : `${x.epe.toFixed(2)} / ${x.auc20to50.toFixed(3)}`
          })
          .join(" | ")} |`,
      )
    parts.push("")
  }
  return `${parts.join("\n")}\n`
}

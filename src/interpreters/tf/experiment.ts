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
 * The run is an Effect program on the {@link Backend} service. Its world is a
 * resource of the run's scope; each step is one synchronous Effect (its
 * batch's tensors acquired and released around it, the world, the position
 * and the metrics line updated together), and between steps the fiber yields
 * to the event loop. Interrupting the fiber there (Ctrl-C under the platform
 * runtime) releases the world, and that release writes a checkpoint of where
 * the run stands before disposing it: in a train stage after its last step,
 * in an evaluate stage at its start (it is evaluated again on resume).
 * Failures are tagged errors ({@link RunError}), each one line.
 *
 * @module
 */
import { mkdirSync, rmSync } from "node:fs"
import { join } from "node:path"
import * as tf from "@tensorflow/tfjs-core"
import { Effect, Data as EffectData, Exit, Schema } from "effect"
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
import { type WriteFailed, writeFile } from "../../run-dir/write-file.ts"
import { apply, type ParameterError } from "./apply.ts"
import { Backend } from "./backend.ts"
import * as Checkpoint from "./checkpoint.ts"
import * as ExitResults from "./exit-results.ts"
import * as Exits from "./exits.ts"
import * as Init from "./init.ts"
import * as Journal from "./journal.ts"
import type * as TfLoss from "./loss.ts"
import { type RUN_ERROR_TAGS, runErrorTags } from "./run-error-tags.ts"
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

/** What {@link run} is told: where, which seed, whether to resume, where to report. */
export interface Options {
  readonly out: string
  readonly seed: number
  readonly resume: boolean
  /** With `resume`: when there is nothing to resume from, start over instead of refusing (see `journal.ts`). */
  readonly restart?: boolean | undefined
  readonly reporter: Reporter
  /** Called with the checkpoint written when the run is interrupted (Ctrl-C), before the interruption ends it. */
  readonly onStopped?: (checkpoint: string) => void
  /** Run one stage only, as the sweep engine does (one stage per job): see {@link Part}. */
  readonly part?: Part
}

/**
 * One stage of the experiment run on its own (`cluster/`): it starts from
 * `world()` — the versions of what it reads, as earlier stages left them —
 * instead of an empty world (unless the journal in `out` resumes it), runs
 * stage `stage` only, and hands `done` the world and its rows before the world
 * is disposed; no `results.json` is written (the engine assembles the seed's).
 */
export interface Part {
  readonly stage: number
  readonly world: () => World
  readonly done: (world: World, rows: readonly Row[]) => void
}

/**
 * A training step produced a non-finite loss: the run stops, the last good
 * checkpoint is kept. `unit` names what `stage` is (DIR-Net's runner: a "phase").
 */
export class NonFiniteLoss extends EffectData.TaggedError("NonFiniteLoss")<{
  readonly stage: string
  readonly epoch: number
  readonly step: number
  readonly losses: Readonly<Record<string, number>>
  readonly checkpoint: string | undefined
  readonly message: string
}> {}

export const nonFiniteLoss = (
  stage: string,
  epoch: number,
  step: number,
  losses: Readonly<Record<string, number>>,
  checkpoint: string | undefined,
  unit = "stage",
): NonFiniteLoss =>
  new NonFiniteLoss({
    stage,
    epoch,
    step,
    losses,
    checkpoint,
    message:
      `${unit} "${stage}", epoch ${epoch + 1}, step ${step + 1}: loss is not finite (${JSON.stringify(losses)}); ` +
      (checkpoint === undefined
        ? "no checkpoint was written yet"
        : `last good checkpoint kept at ${checkpoint}`),
  })

/** A failure of the runner no other error describes (a model never trained, a stage with too little data, a bug). */
export class TrainingFailed extends EffectData.TaggedError("TrainingFailed")<{ readonly message: string }> {}

/** Every way a run fails; each is one line the CLI prints as it is. */
export type RunError =
  | NonFiniteLoss
  | Journal.CannotResume
  | WriteFailed
  | StepRun.StepError
  | TfLoss.LossError
  | ParameterError
  | Init.IllFormed
  | TrainingFailed

// RUN_ERROR_TAGS (its own module, for the CLI) must be exactly RunError's tags: this fails to compile otherwise.
type SameTags<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
const runErrorTagsAreComplete: SameTags<RunError["_tag"], (typeof RUN_ERROR_TAGS)[number]> = true
void runErrorTagsAreComplete

/** A thrown value as a {@link RunError}: the interpreter's own errors as they are, anything else by its message. */
export const asRunError = (e: unknown): RunError =>
  typeof e === "object" && e !== null && runErrorTags.has((e as { _tag?: unknown })._tag as string)
    ? (e as RunError)
    : new TrainingFailed({ message: e instanceof Error ? e.message : String(e) })

/** The interpreter's synchronous code (tfjs, the run directory) as one Effect that fails with a {@link RunError}. */
const attempt = <A>(f: () => A): Effect.Effect<A, RunError> => Effect.try({ try: f, catch: asRunError })

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

// ---- the run's state -----------------------------------------------------------------------

/**
 * What the run holds between steps: the world (every tensor the run owns) and
 * where it is. Both change together inside one synchronous Effect per step,
 * so that wherever an interruption lands, the pair is one a checkpoint can
 * record and a resumed run continue from.
 */
interface State {
  world: World
  position: Position
}

/** What every stage of one run shares. */
interface Run {
  readonly program: Program.Program<Experiment.Experiment>
  readonly experiment: Experiment.Experiment
  readonly models: Readonly<Record<string, Program.Model>>
  readonly ctx: StepRun.Context
  readonly seed: number
  readonly out: string
  readonly reporter: Reporter
  readonly journal: Journal.Journal<Position>
  readonly state: State
  /** The datasets opened by this run, by spec: each opened once (synthetic sets are generated on first open). */
  readonly dataset: (spec: Data.Spec) => Effect.Effect<Dataset, RunError>
}

/**
 * The batches of one epoch, as a resource of the enclosing scope: the reader
 * under them (file descriptors of a real dataset) is closed when the scope
 * closes, also when the epoch is cut short by a failure or Ctrl-C.
 */
const epochBatches = (ds: Dataset, options: Stream.BatchOptions) =>
  Effect.acquireRelease(
    attempt(() => ds.batches(options)[Symbol.iterator]()),
    (it) => Effect.sync(() => it.return?.()),
  )

/** The next batch of an epoch (reading it may fail: a real dataset's image), or undefined at its end. */
const nextBatch = (it: Iterator<Stream.Batch>) =>
  attempt(() => {
    const r = it.next()
    return r.done === true ? undefined : r.value
  })

/** A batch's tensors for the length of `use`: created before it, disposed after it however it ends. */
const withTensors = <A>(
  b: Stream.Batch,
  imageSize: number,
  use: (t: Partial<Record<Loss.Field, tf.Tensor>>) => A,
): Effect.Effect<A, RunError> =>
  Effect.acquireUseRelease(
    attempt(() => toTensors(b, imageSize)),
    (t) => attempt(() => use(t)),
    (t) => Effect.sync(() => disposeBatch(t)),
  )

// ---- evaluation ---------------------------------------------------------------------------------

/** Where a run stands once stage `si` has evaluated `row`: at the next stage, with the row kept. */
const evaluated = (p: Position, si: number, row: Row): Position => ({
  ...p,
  stage: si + 1,
  epoch: 0,
  step: 0,
  rows: [...p.rows, row],
})

/** The evaluate stage: the row of its model on its data (the model kept under `models/`), then the next stage. */
const evaluateStage = (run: Run, si: number, stage: Experiment.Evaluate): Effect.Effect<void, RunError> =>
  Effect.gen(function* () {
    const { state } = run
    const model = run.models[stage.model]!
    const feed = run.experiment.feeds[stage.model] ?? "rgb"
    const params = state.world.params[stage.model]
    const modelState = state.world.state[stage.model]
    if (params === undefined || modelState === undefined)
      return yield* new TrainingFailed({
        message: `stage "${stage.name}": model "${stage.model}" was never trained or initialised`,
      })
    const ds = yield* run.dataset(stage.data)
    const preds: number[] = []
    const truths: number[] = []
    const scales: number[] = []
    yield* Effect.scoped(
      Effect.gen(function* () {
        const batches = yield* epochBatches(ds, { batchSize: 64, seed: 0, epoch: 0, shuffle: false })
        for (let b = yield* nextBatch(batches); b !== undefined; b = yield* nextBatch(batches)) {
          const batch = b
          yield* withTensors(batch, ds.imageSize, (t) => {
            const y = tf.tidy(() => {
              const out = apply(model.net, params, modelState, t[feed]!, "eval").y
              return out.shape[1] === 63 ? out : tf.slice(out, [0, 0], [batch.size, 63])
            })
            preds.push(...(y.dataSync() as Float32Array))
            y.dispose()
            truths.push(...batch.joints3d)
            scales.push(...batch.scale)
          })
          // Ctrl-C lands between batches: the stage is evaluated again on resume (the world is unchanged).
          yield* Effect.yieldNow
        }
      }),
    )
    const row = rowOf(stage, preds, truths, scales)
    yield* attempt(() => {
      saveModel(run.out, stage, state.world)
      run.reporter.log(
        `${stage.name}: ${row.row} [${row.column}] EPE ${row.epe.toFixed(2)} mm, AUC(20-50) ${row.auc20to50.toFixed(3)}`,
      )
      state.position = evaluated(state.position, si, row)
    })
  })

/** The results row of an evaluate stage from its predictions (joints3d, normalised), truths and per-sample scales. */
const rowOf = (stage: Experiment.Evaluate, preds: number[], truths: number[], scales: number[]): Row => {
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

// ---- training -------------------------------------------------------------------------------------

/**
 * A train stage's world before its first step: fresh optimizer states (each
 * stage is a fresh optimisation), its models initialised or copied as it
 * says, the step's adapters and the meta-parameters made.
 */
const startTrainStage = (run: Run, stage: Experiment.Train): World => {
  const { models, seed } = run
  let world = run.state.world
  for (const st of Object.values(world.opt))
    for (const slot of st.slots)
      for (const tree of Object.values(slot)) for (const t of Object.values(tree)) t.dispose()
  world = { ...world, opt: {} }
  for (const [name, init] of Object.entries(stage.init)) {
    const model = models[name]
    if (model === undefined)
      throw new TrainingFailed({ message: `stage "${stage.name}": no model "${name}"` })
    if (init._tag === "Copy") world = copyModel(world, model, init.from, seed)
    else if (init._tag === "Scratch" || world.params[name] === undefined)
      world = initModel(world, model, seed)
  }
  for (const name of modelsOf(stage.step))
    if (world.params[name] === undefined) world = initModel(world, models[name]!, seed)
  world = StepRun.prepare(
    stage.step,
    world,
    run.ctx,
    seed,
    Data.shapes(stage.data) as Partial<Record<Loss.Field, readonly number[]>>,
  )
  return initMeta(world, run.experiment)
}

/**
 * The train stage: its epochs of steps from where the run is, a checkpoint
 * after every epoch. Each step is one synchronous Effect (the batch's tensors
 * acquired and released around it; the world, the position and the metrics
 * line updated together); between steps the fiber yields to the event loop,
 * where Ctrl-C interrupts it.
 */
const trainStage = (run: Run, si: number, stage: Experiment.Train): Effect.Effect<void, RunError> =>
  Effect.gen(function* () {
    const { state, journal, reporter } = run
    const stages = run.experiment.stages.length
    const ds = yield* run.dataset(stage.data)
    if (state.position.epoch === 0 && state.position.step === 0)
      yield* attempt(() => {
        state.world = startTrainStage(run, stage)
      })
    const steps = Math.floor(ds.size / stage.batchSize)
    if (steps === 0)
      return yield* new TrainingFailed({
        message: `stage "${stage.name}": ${ds.size} samples are fewer than one batch of ${stage.batchSize}`,
      })
    const stageStart = Date.now()
    let done = 0
    for (let epoch = state.position.epoch; epoch < stage.epochs; epoch++) {
      yield* Effect.scoped(
        Effect.gen(function* () {
          const batches = yield* epochBatches(ds, {
            batchSize: stage.batchSize,
            seed: Stream.batchSeed(run.seed, stage.data),
            epoch,
            dropLast: true,
          })
          // Resuming mid-epoch: the batches of an epoch are a function of (seed, epoch), so skip those already seen.
          for (let step = 0; step < state.position.step; step++) yield* nextBatch(batches)
          for (let b = yield* nextBatch(batches); b !== undefined; b = yield* nextBatch(batches)) {
            const step = state.position.step
            const losses = yield* withTensors(b, ds.imageSize, (t) => {
              const result = StepRun.run(stage.step, state.world, t, run.ctx)
              state.world = result.world
              journal.log({ stage: stage.name, epoch, step, time: journal.elapsed(), ...result.losses })
              if (!Object.values(result.losses).every(Number.isFinite))
                throw nonFiniteLoss(stage.name, epoch, step, result.losses, journal.last())
              state.position = { ...state.position, stage: si, epoch, step: step + 1 }
              return result.losses
            })
            done += 1
            const secondsPerStep = (Date.now() - stageStart) / 1000 / done
            reporter.progress({
              stage: stage.name,
              stageIndex: si,
              stages,
              epoch,
              epochs: stage.epochs,
              step,
              steps,
              losses,
              imagesPerSecond: stage.batchSize / Math.max(secondsPerStep, 1e-9),
              secondsLeft: secondsPerStep * ((stage.epochs - epoch) * steps - step - 1),
            })
            // Lets signal handlers (Ctrl-C) and timers run between training steps.
            yield* Effect.yieldNow
          }
        }),
      )
      yield* attempt(() => {
        state.position = { ...state.position, stage: si, epoch: epoch + 1, step: 0 }
        journal.checkpoint(state.world, state.position)
      })
    }
    state.position = { ...state.position, stage: si + 1, epoch: 0, step: 0 }
  })

// ---- the run ------------------------------------------------------------------------------------

/** Lets signal handlers (Ctrl-C) and timers run between training steps (DIR-Net's promise-based runner). */
export const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve))

/**
 * The run's state as a resource: the world resumed from the journal's
 * checkpoint (or empty), released when the run ends. Interrupted (Ctrl-C), the
 * release first writes a checkpoint of the world where the run stands, then
 * tells `onStopped`; on failure or success it only disposes the world.
 */
const acquireState = (journal: Journal.Journal<Position>, options: Options) =>
  Effect.acquireRelease(
    Effect.sync(
      (): State => ({
        world: journal.resumed?.world ??
          options.part?.world() ?? { params: {}, state: {}, meta: {}, opt: {} },
        position: journal.resumed?.position ?? {
          stage: options.part?.stage ?? 0,
          epoch: 0,
          step: 0,
          rows: [],
          seconds: 0,
        },
      }),
    ),
    (state, exit) =>
      Effect.sync(() => {
        try {
          if (Exit.hasInterrupts(exit)) options.onStopped?.(journal.checkpoint(state.world, state.position))
        } catch (e) {
          options.reporter.log(`Ctrl-C: the checkpoint could not be written: ${asRunError(e).message}`)
        } finally {
          Checkpoint.disposeWorld(state.world)
        }
      }),
  )

/**
 * Runs `program`'s experiment (already shape-checked by the caller) on the
 * {@link Backend}: its stages in order from where the run directory's
 * journal stands, then `results.json` and `results.md`. Interrupting the
 * fiber (Ctrl-C under the platform runtime) writes a checkpoint from which
 * `resume` continues to the results of an uninterrupted run.
 */
export const run = (
  program: Program.Program<Experiment.Experiment>,
  options: Options,
): Effect.Effect<RunFiles.Results, RunError, Backend> =>
  Effect.scoped(
    Effect.gen(function* () {
      const backend = yield* Backend
      const e = program.experiment
      if (e === undefined)
        return yield* new TrainingFailed({ message: `program "${program.name}" declares no experiment` })
      const { out, seed, reporter } = options
      yield* attempt(() => mkdirSync(out, { recursive: true }))
      const models = Object.fromEntries(program.models.map((m) => [m.name, m]))
      const journal = yield* attempt(() =>
        Journal.open<Position>(out, {
          resume: options.resume,
          restart: options.restart,
          note: reporter.log,
          position: PositionFields,
        }),
      )
      const state = yield* acquireState(journal, options)
      if (journal.resumed !== undefined)
        reporter.log(
          `resuming from ${journal.resumed.dir}: stage ${state.position.stage + 1}/${e.stages.length}, epoch ${state.position.epoch + 1}, step ${state.position.step}`,
        )
      const opened = new Map<string, Dataset>()
      const openOnce = (spec: Data.Spec): Dataset => {
        const key = JSON.stringify(spec)
        const ds = opened.get(key) ?? open(spec)
        opened.set(key, ds)
        return ds
      }
      const r: Run = {
        program,
        experiment: e,
        models,
        ctx: { models, feeds: e.feeds, seed },
        seed,
        out,
        reporter,
        journal,
        state,
        dataset: (spec) => attempt(() => openOnce(spec)),
      }
      const end = options.part === undefined ? e.stages.length : options.part.stage + 1
      for (let si = state.position.stage; si < end; si++) {
        const stage = e.stages[si]!
        if (stage._tag === "EvaluateExits")
          yield* attempt(() => {
            const world = state.world
            const row = Exits.evaluateStage(stage, {
              ...world,
              models,
              dataset: openOnce,
              seed,
              out,
              log: reporter.log,
            })
            state.position = evaluated(state.position, si, row)
          })
        else yield* stage._tag === "Evaluate" ? evaluateStage(r, si, stage) : trainStage(r, si, stage)
      }
      if (options.part !== undefined) {
        const { world, position } = state
        yield* attempt(() => options.part!.done(world, position.rows))
      }
      const base = { program: program.name, seed, backend: backend.name, seconds: journal.elapsed() }
      const { results, markdown: md, notes } = seedResults(program, base, state.position.rows)
      if (options.part === undefined)
        yield* attempt(() => {
          writeFile(join(out, "results.json"), `${JSON.stringify(results, null, 2)}\n`)
          writeFile(join(out, "results.md"), md)
          for (const note of notes) reporter.log(note)
        })
      return results
    }),
  )

/** The models a step reads or updates (those that need parameters before it runs). */
const modelsOf = (step: Step.Step): string[] => Step.models(step)

/**
 * A seed's results from its rows, as the single-process runner and the sweep
 * engine (`cluster/stage-run.ts`) both write them: DIR-Net's kind (costs,
 * sweep, closing notes) for an experiment that evaluates exits, else the staged kind.
 */
export const seedResults = (
  program: Program.Program<Experiment.Experiment>,
  base: RunFiles.ResultsHeader,
  rows: readonly (RunFiles.StagedRow | RunFiles.DirnetRow)[],
): { results: RunFiles.Results; markdown: string; notes: readonly string[] } => {
  const exitResults = ExitResults.fromRows(program, base, rows)
  if (exitResults !== undefined)
    return {
      results: exitResults,
      markdown: ExitResults.markdown(exitResults),
      notes: ExitResults.closingNotes(exitResults),
    }
  const references = program.experiment!.references ?? {}
  const results: Results = {
    program: base.program,
    seed: base.seed,
    backend: base.backend,
    ...(Object.keys(references).length > 0 ? { references } : {}),
    rows: rows as RunFiles.StagedRow[],
    seconds: base.seconds,
  }
  return { results, markdown: markdown(results), notes: [] }
}

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

/**
 * The sweep engine's commands: `cmkg run PROGRAM --cluster URL` submits the
 * experiment × seeds as stage jobs and follows them to the results;
 * `cmkg worker --cluster URL` runs stages on this machine, one at a time;
 * `cmkg status --cluster URL [RUN]` shows every stage's state.
 *
 * @module
 */
import { createHash, randomBytes } from "node:crypto"
import { accessSync, constants, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join, resolve } from "node:path"
import { Context, Effect, Layer, Schema } from "effect"
import * as Engine from "../cluster/engine.ts"
import * as Plan from "../cluster/plan.ts"
import * as StageRun from "../cluster/stage-run.ts"
import * as Status from "../cluster/status.ts"
import * as Url from "../cluster/url.ts"
import type * as Experiment from "../dsl/Experiment.ts"
import * as Program from "../dsl/Program.ts"
import * as Tf from "../interpreters/tf/index.ts"
import * as RunDir from "../report/run-dir.ts"
import * as Summary from "../report/summary.ts"
import * as Read from "../run-dir/read.ts"
import { BadInvocation, RunFailed } from "./errors.ts"
import * as Load from "./load.ts"
import * as OutDir from "./out-dir.ts"
import { reporter } from "./progress.ts"

/** What every worker needs to run a stage of this run (a job's `spec`). */
export const Spec = Schema.Struct({
  /** The program module, as an absolute path every worker sees (a shared filesystem). */
  program: Schema.String,
  /**
   * SHA-256 of the module's file when submitted: a worker runs only the code
   * already on its machine, and only if it is that code (never code from the queue).
   */
  programSha256: Schema.String,
  scale: Schema.Literals(Program.scales),
  data: Schema.Record(Schema.String, Schema.String),
  /** The run directory, absolute, on the shared filesystem. */
  out: Schema.String,
  seeds: Schema.Array(Schema.Number),
})
export type Spec = typeof Spec.Type

const failed = (e: unknown) => new RunFailed({ message: e instanceof Error ? e.message : String(e) })
/** The parsed URL, once a server there answered: a bad URL, nobody there or a wrong password is one line. */
const connect = (url: string) =>
  Effect.gen(function* () {
    const conn = yield* Effect.try({
      try: () => Url.parse(url),
      catch: (e) => new BadInvocation({ message: (e as Error).message }),
    })
    yield* Effect.tryPromise({
      try: () => Url.check(conn),
      catch: (e) => new BadInvocation({ message: (e as Error).message }),
    })
    return conn
  })

/** `out/cluster.json`: the run's id on the engine. */
const ClusterJson = Schema.Struct({ run: Schema.String })

/** The run's id, kept in `out/cluster.json` so that `--resume` follows the same jobs. */
const runId = (out: string, name: string, resume: boolean): string => {
  const file = join(out, "cluster.json")
  if (resume && existsSync(file)) return Read.readJson(file, ClusterJson).run
  const run = `${name}-${randomBytes(4).toString("hex")}`
  writeFileSync(file, `${JSON.stringify({ run }, null, 2)}\n`)
  return run
}

const sha256 = (file: string): string => createHash("sha256").update(readFileSync(file)).digest("hex")

const sleep = (ms: number) => Effect.promise(() => new Promise((r) => setTimeout(r, ms)))

/**
 * `cmkg run --cluster`: submits the stages of every seed (the program is already
 * checked and `program.json` written by `run.ts`), follows them, printing each
 * change of state, and writes each seed's results and the summary once all are done.
 */
export const submitAndFollow = (o: {
  readonly cluster: string
  readonly program: Program.Program<Experiment.Experiment>
  readonly file: string
  readonly scale: Program.Scale
  readonly data: Readonly<Record<string, string>>
  readonly out: string
  readonly seeds: readonly number[]
  readonly resume: boolean
}) =>
  Effect.gen(function* () {
    const conn = yield* connect(o.cluster)
    const progress = reporter()
    const out = resolve(o.out)
    const run = yield* Effect.try({ try: () => runId(out, o.program.name, o.resume), catch: failed })
    const plan = Plan.plan(o.program.experiment!, o.seeds)
    const spec: Spec = {
      program: resolve(o.file),
      programSha256: sha256(resolve(o.file)),
      scale: o.scale,
      data: { ...o.data },
      out,
      seeds: [...o.seeds],
    }
    const added = yield* Effect.tryPromise({ try: () => Engine.submit(conn, run, plan, spec), catch: failed })
    progress.log(
      `submitted run ${run} to ${conn.display}: ${plan.length} stages (${o.seeds.length} seed(s)), ${added.length} ready now; start workers with: cmkg worker --cluster ${conn.display}`,
    )
    const queue = Engine.open(conn)
    yield* Effect.addFinalizer(() => Effect.promise(() => queue.close()))
    Engine.reportConnection([queue], conn, progress.log)
    const shown = new Map<string, string>()
    for (;;) {
      yield* Effect.tryPromise({ try: () => Engine.enqueueReady(queue, run, plan, spec), catch: failed })
      const nodes = yield* Effect.tryPromise({ try: () => Engine.status(queue, run, plan), catch: failed })
      const now = Date.now()
      for (const n of nodes) {
        const key = `${n.state} ${n.worker ?? ""}`
        if (shown.get(n.node) !== key && n.state !== "pending" && n.state !== "waiting") {
          shown.set(n.node, key)
          progress.log(Status.line(n, now))
        }
      }
      const bad = nodes.find((n) => n.state === "failed")
      if (bad !== undefined)
        return yield* new RunFailed({
          message: `${bad.label} failed on ${bad.worker ?? "a worker"}: ${bad.error ?? "no reason given"} (run ${run}; the other stages go on; fix and resubmit with --resume)`,
        })
      if (nodes.every((n) => n.state === "completed")) break
      yield* sleep(1000)
    }
    const results = o.seeds.map((seed) => StageRun.collectSeed(o.program, { out, seed }))
    const summary = Summary.aggregate(
      yield* Effect.try({ try: () => RunDir.seedResults(out), catch: failed }).pipe(
        Effect.map((all) => (all.length > 0 ? all : results)),
      ),
    )
    yield* OutDir.write(join(out, "summary.json"), `${JSON.stringify(summary, null, 2)}\n`)
    yield* OutDir.write(join(out, "summary.md"), Summary.markdown(summary))
    progress.log(`\n${Summary.markdown(summary)}`)
    progress.log(`run directory: ${o.out} (cmkg report ${o.out} draws the tables and plots)`)
  })

/** Throws naming `dir` when this machine cannot write there (the shared filesystem is not mounted, say). */
const writable = (dir: string, what: string) => {
  try {
    mkdirSync(dir, { recursive: true })
    accessSync(dir, constants.W_OK)
  } catch (e) {
    throw new Error(
      `${what} ${dir} is not writable on this machine (${(e as Error).message}): every worker must see the run directory (a shared filesystem)`,
    )
  }
}

/** Percent of a stage done, from the runner's progress report. */
const percent = (p: { epoch: number; epochs: number; step: number; steps: number }): number =>
  Math.min(100, (100 * (p.epoch * p.steps + p.step + 1)) / Math.max(1, p.epochs * p.steps))

/**
 * `cmkg worker`: pulls stages from the queue and runs them here, one at a time
 * (start one worker per core with `--threads 1`, or one per GPU). Ctrl-C
 * checkpoints the stage in hand and puts it back in the queue for any worker.
 */
export const worker = (o: {
  readonly cluster: string
  readonly backend: Tf.BackendPreference
  readonly threads: number | undefined
  readonly out: string | undefined
  /** How long a stage of a lost worker waits before another worker takes it over (default Engine.TIMING). */
  readonly lockSeconds: number | undefined
}) =>
  Effect.scoped(
    Effect.gen(function* () {
      const conn = yield* connect(o.cluster)
      if (o.lockSeconds !== undefined && !(o.lockSeconds >= 1))
        return yield* new BadInvocation({
          message: `--lock-seconds must be at least 1, got ${o.lockSeconds}`,
        })
      if (o.out !== undefined)
        yield* Effect.try({
          try: () => writable(resolve(o.out!), "--out"),
          catch: (e) => new BadInvocation({ message: (e as Error).message }),
        })
      const services = yield* Layer.build(
        Tf.backendLayer(o.backend, o.threads === undefined ? {} : { threads: o.threads }),
      )
      const backend = Context.get(services, Tf.Backend)
      const progress = reporter()
      const programs = new Map<string, Program.Program<Experiment.Experiment>>()
      const load = (spec: Spec) =>
        Effect.gen(function* () {
          const key = JSON.stringify([spec.program, spec.scale, spec.data])
          const known = programs.get(key)
          if (known !== undefined) return known
          const loaded = yield* Load.load(spec.program, { typecheck: false })
          const program = (yield* Load.resolveProgram(loaded, {
            scale: spec.scale,
            data: spec.data,
          })) as Program.Program<Experiment.Experiment>
          programs.set(key, program)
          return program
        })
      // Ctrl-C interrupts this command's fiber; its finalizer stops the stage in hand through this signal.
      const stop = new AbortController()
      const execute = async (task: Engine.Task, running: Engine.Running) => {
        const spec = Schema.decodeUnknownSync(Spec)(task.spec)
        writable(spec.out, "run directory")
        // Only code already on this machine runs, and only if it is the code the submitter checked.
        const here = existsSync(spec.program) ? sha256(spec.program) : "(no such file)"
        if (here !== spec.programSha256)
          throw new Error(
            `refusing ${task.run} ${task.node}: program ${spec.program} on this machine has SHA-256 ${here.slice(0, 16)}…, the submitter's had ${spec.programSha256.slice(0, 16)}… (every worker needs the same checkout)`,
          )
        const { seed, stage } = Plan.nodeOf(task.node)
        let last = 0
        const stageReporter = {
          log: (line: string) => progress.log(`[${task.run} ${task.node}] ${line}`),
          progress: (p: { epoch: number; epochs: number; step: number; steps: number }) => {
            if (Date.now() - last < 1000) return
            last = Date.now()
            running.progress(Math.floor(percent(p))).catch(() => undefined)
          },
        }
        await Effect.runPromise(
          Effect.gen(function* () {
            const program = yield* load(spec)
            yield* StageRun.runStage(program, { out: spec.out, seed, stage, reporter: stageReporter })
          }).pipe(Effect.provide(services)),
          // Stopped by Ctrl-C, or when the stage's lock is lost (another worker has it now).
          { signal: AbortSignal.any([stop.signal, running.lost]) },
        )
        await running.progress(100)
      }
      const w = yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: () =>
            Engine.work(conn, {
              capacity: 1,
              ...(o.lockSeconds === undefined
                ? {}
                : {
                    timing: {
                      ...Engine.TIMING,
                      lockDurationMs: o.lockSeconds * 1000,
                      stalledIntervalMs: o.lockSeconds * 500,
                    },
                  }),
              execute,
              log: (line) => progress.log(line),
              stopping: () => stop.signal.aborted,
            }),
          catch: failed,
        }),
        (w) =>
          Effect.promise(async () => {
            progress.log(
              "stopping: a stage in hand is checkpointed and handed back to the queue for any worker",
            )
            stop.abort()
            await w.close()
          }),
      )
      progress.log(
        `cmkg worker ${Engine.workerName()} · backend ${backend.name} (${backend.note}) · pulling stages from ${conn.display} (queue ${Engine.QUEUE}); a stage of a lost worker is taken over within ${1.5 * (o.lockSeconds ?? Engine.TIMING.lockDurationMs / 1000)} s; Ctrl-C stops`,
      )
      void w
      return yield* Effect.never
    }),
  )

/** `cmkg status`: the runs in the queue, or one run's stages. */
export const status = (o: { readonly cluster: string; readonly run: string | undefined }) =>
  Effect.scoped(
    Effect.gen(function* () {
      const conn = yield* connect(o.cluster)
      const runs = yield* Effect.tryPromise({ try: () => Engine.runs(conn), catch: failed })
      if (runs.length === 0) {
        console.log(`no runs in ${conn.display}`)
        return
      }
      const queue = Engine.open(conn)
      yield* Effect.addFinalizer(() => Effect.promise(() => queue.close()))
      const chosen = o.run === undefined ? runs : runs.filter((r) => r.run === o.run)
      if (chosen.length === 0)
        return yield* new BadInvocation({
          message: `no run "${o.run}" in ${conn.display}; runs there: ${runs.map((r) => r.run).join(", ")}`,
        })
      for (const r of chosen) {
        const nodes = yield* Effect.tryPromise({
          try: () => Engine.status(queue, r.run, r.plan),
          catch: failed,
        })
        const out = (r.spec as { out?: string }).out ?? "?"
        if (o.run === undefined) console.log(`${r.run}  ${Status.tally(nodes)}  (${out})`)
        else console.log(`${r.run} (${out})\n${Status.table(nodes, Date.now())}`)
      }
    }),
  )

/**
 * `cmkg run`: check the whole program statically, then train it with the tf
 * interpreter, one run directory per seed, and write the results.
 *
 * @module
 */
import { existsSync, rmSync } from "node:fs"
import { join } from "node:path"
import { Context, Effect, Layer } from "effect"
import type * as Data from "../dsl/Data.ts"
import type * as Experiment from "../dsl/Experiment.ts"
import type * as Program from "../dsl/Program.ts"
import * as ExperimentCheck from "../interpreters/shape-check/experiment.ts"
import * as Runner from "../interpreters/tf/experiment.ts"
import * as Tf from "../interpreters/tf/index.ts"
import * as RunDir from "../report/run-dir.ts"
import * as Summary from "../report/summary.ts"
import * as ProgramJson from "../run-dir/program-json.ts"
import * as Read from "../run-dir/read.ts"
import * as RunFiles from "../run-dir/schema.ts"
import * as Settings from "../settings.ts"
import { BadInvocation, ProgramRejected, RunFailed } from "./errors.ts"
import * as Load from "./load.ts"
import * as OutDir from "./out-dir.ts"
import { reporter } from "./progress.ts"

export interface RunArgs {
  readonly program: string
  readonly scale: Program.Scale
  readonly seeds: number
  /**
   * The first seed (default 1): seeds firstSeed … firstSeed + seeds − 1. Given, every seed runs in its own
   * `seed-N/` (as with several seeds), so processes that split the seeds can share one run directory.
   */
  readonly firstSeed?: number | undefined
  readonly backend: Tf.BackendPreference
  /** CPU threads for onnxruntime and oneDNN (default: every core). */
  readonly threads?: number | undefined
  readonly out: string | undefined
  readonly resume: boolean
  /**
   * With `resume`: where the run directory cannot be continued (another program or scale, no checkpoint that
   * loads), start over, removing its checkpoints and metrics, instead of refusing.
   */
  readonly restart?: boolean | undefined
  readonly data: string | undefined
  /** Type-check the program module before running it (default true; `--no-typecheck`). */
  readonly typecheck?: boolean
  /** The sweep engine's URL: submit the stages of every seed there and follow them (`cluster.ts`). */
  readonly cluster?: string | undefined
}

/** A word of a shell command, quoted when the shell would split or expand it. */
const shellWord = (w: string): string => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replaceAll("'", "'\\''")}'`)

/**
 * The command that continues this run where it stopped: every option that decides what runs and where
 * (Ctrl-C's hint). `out` is the run directory actually used.
 */
export const continueCommand = (args: RunArgs, out: string): string =>
  [
    "cmkg",
    "run",
    args.program,
    "--scale",
    args.scale,
    ...(args.seeds === 1 ? [] : ["--seeds", String(args.seeds)]),
    ...(args.firstSeed === undefined ? [] : ["--first-seed", String(args.firstSeed)]),
    ...(args.data === undefined ? [] : ["--data", args.data]),
    ...(args.backend === "auto" ? [] : ["--backend", args.backend]),
    ...(args.threads === undefined ? [] : ["--threads", String(args.threads)]),
    "--out",
    out,
    "--resume",
  ]
    .map(shellWord)
    .join(" ")

/** A seed whose run finished: its results.json is there and whole (a run killed while writing it is resumed). */
const finishedResults = (dir: string, seed: number): RunFiles.Results | undefined => {
  const file = join(dir, "results.json")
  if (!existsSync(file)) return undefined
  try {
    const results = Read.readJson(file, RunFiles.Results)
    return results.seed === seed ? results : undefined
  } catch {
    return undefined
  }
}

/** `rhd=/data/RHD,stb=/data/STB` → `{ rhd: "/data/RHD", stb: "/data/STB" }`. */
export const parseData = (arg: string | undefined): Effect.Effect<Record<string, string>, BadInvocation> =>
  Effect.gen(function* () {
    if (arg === undefined || arg === "") return {}
    const out: Record<string, string> = {}
    for (const part of arg.split(",")) {
      const m = /^(rhd|stb|freihand)=(.+)$/.exec(part.trim())
      if (m === null)
        return yield* new BadInvocation({
          message: `--data ${arg}: expected NAME=DIR[,NAME=DIR] with NAME one of rhd, stb, freihand; got "${part}"`,
        })
      out[m[1]!] = m[2]!
    }
    return out
  })

/** Real datasets' directories must exist before anything trains. */
const missingData = (specs: readonly Data.Spec[]): string[] => [
  ...new Set(
    specs.flatMap((s) =>
      s._tag === "Synthetic"
        ? []
        : existsSync(s.dir)
          ? []
          : [`${s._tag} data directory ${s.dir} does not exist`],
    ),
  ),
]

export const run = (args: RunArgs) =>
  Effect.gen(function* () {
    // cmkg's environment variables, each a one-line error naming it and its value when it is bad.
    yield* Settings.settings
    const data = yield* parseData(args.data)
    if (!Number.isInteger(args.seeds) || args.seeds < 1)
      return yield* new BadInvocation({ message: `--seeds must be a positive integer, got ${args.seeds}` })
    const firstSeed = args.firstSeed ?? 1
    if (!Number.isInteger(firstSeed) || firstSeed < 1)
      return yield* new BadInvocation({
        message: `--first-seed must be a positive integer, got ${firstSeed}`,
      })
    if (args.threads !== undefined && (!Number.isInteger(args.threads) || args.threads < 1))
      return yield* new BadInvocation({
        message: `--threads must be a positive integer (CPU threads for the native kernels), got ${args.threads}`,
      })
    const loaded = yield* Load.load(args.program, { typecheck: args.typecheck })
    const program = yield* Load.resolveProgram(loaded, { scale: args.scale, data })
    if (program.experiment === undefined)
      return yield* new BadInvocation({
        message: `${loaded.file}: program "${program.name}" declares networks but no experiment to run (try cmkg check)`,
      })
    const typed = program as Program.Program<Experiment.Any>

    // The static interpreter first: nothing trains unless the whole program is well-formed.
    const report = ExperimentCheck.checkAny(typed)
    const problems = [
      ...report.errors.map((e) => `${e.path}: ${e.message}`),
      ...missingData(ExperimentCheck.dataSpecs(typed)),
    ]
    if (problems.length > 0)
      return yield* new ProgramRejected({
        message: `${loaded.file}: ${problems.length} problem(s) in program "${program.name}", nothing was trained:\n${problems.map((p) => `  ${p}`).join("\n")}`,
      })

    const out = args.out ?? join("runs", `${program.name}-${args.scale}`)
    yield* OutDir.check(out)
    const perSeedDirectories = args.seeds > 1 || args.firstSeed !== undefined
    const parameters = Object.fromEntries(
      report.models.flatMap((m) =>
        m.summary.params.map((p) => [`${m.name}/${p.path}`, [...p.shape]] as const),
      ),
    )
    // Resuming continues the run in `out` only if it is this run: checked before anything there changes.
    let resume = args.resume
    let restarting: string | undefined
    const programFile = join(out, "program.json")
    if (resume && existsSync(programFile)) {
      const mismatch = (() => {
        try {
          const stored = ProgramJson.identity(Read.readJson(programFile, RunFiles.ResumableProgramJson))
          const now = {
            name: program.name,
            scale: args.scale,
            data,
            seedDirectories: perSeedDirectories,
            parameters,
          }
          const d = ProgramJson.difference(stored, now)
          return d === undefined ? undefined : `${programFile}: another run: ${d}`
        } catch (e) {
          if (e instanceof Read.RunFileError) return e.message
          throw e
        }
      })()
      if (mismatch !== undefined) {
        if (args.restart !== true)
          return yield* new BadInvocation({
            message: `--resume: ${mismatch}; nothing was changed (resume with that run's settings, or add --restart to start over, removing its checkpoints and metrics)`,
          })
        restarting = `--restart: ${mismatch}; starting over`
        resume = false
      }
    }

    if (args.cluster !== undefined) {
      yield* OutDir.create(out)
      yield* OutDir.write(
        join(out, "program.json"),
        `${JSON.stringify({ program: typed, options: { ...args, data }, parameters }, null, 2)}\n`,
      )
      const Cluster = yield* Effect.promise(() => import("./cluster.ts"))
      return yield* Cluster.submitAndFollow({
        cluster: args.cluster,
        program: typed as Program.Program<Experiment.Experiment>,
        file: loaded.file,
        scale: args.scale,
        data,
        out,
        seeds: Array.from({ length: args.seeds }, (_, i) => firstSeed + i),
        resume,
      })
    }

    // The backend the layer chose, for the rest of this command: its sessions are released when it ends.
    const services = yield* Layer.build(
      Tf.backendLayer(args.backend, args.threads === undefined ? {} : { threads: args.threads }),
    )
    const backend = Context.get(services, Tf.Backend)
    const progress = reporter()
    if (restarting !== undefined) progress.log(restarting)
    progress.log(
      `cmkg run ${program.name} · scale ${args.scale} · ${args.seeds} seed(s) · backend ${backend.name} (${backend.note}) · out ${out}`,
    )
    progress.log(
      `static check: ${report.models.length} networks, ${report.trainStages} training stages, ${(report.macsTotal / 1e12).toFixed(3)} T multiply-accumulates of training compute in all`,
    )
    if (restarting !== undefined) {
      // The runners start over in the directories they train in; those of another seed layout are removed here.
      rmSync(join(out, "checkpoints"), { recursive: true, force: true })
      rmSync(join(out, "metrics.jsonl"), { force: true })
    }
    yield* OutDir.create(out)
    yield* OutDir.write(
      join(out, "program.json"),
      `${JSON.stringify({ program: typed, options: { ...args, data }, parameters }, null, 2)}\n`,
    )

    // Ctrl-C interrupts this fiber (the platform runtime's signal handling): the runner writes a checkpoint as
    // it lets go of its world, and the process exits 130 after the line that says how to continue.
    let stoppedAt: string | undefined
    const results: RunFiles.Results[] = []
    yield* Effect.onInterrupt(
      Effect.gen(function* () {
        for (let seed = firstSeed; seed < firstSeed + args.seeds; seed++) {
          const dir = perSeedDirectories ? join(out, `seed-${seed}`) : out
          if (args.seeds > 1)
            progress.log(`— seed ${seed} (${seed - firstSeed + 1} of ${args.seeds}) → ${dir}`)
          // A resumed run with seeds in seed-N/ continues the seed that was interrupted: finished ones stay as they are.
          const finished = resume && perSeedDirectories ? finishedResults(dir, seed) : undefined
          if (finished !== undefined) {
            progress.log(`seed ${seed} finished earlier (${join(dir, "results.json")}): kept as it is`)
            results.push(finished)
            continue
          }
          const options: Runner.Options = {
            out: dir,
            seed,
            resume,
            restart: args.restart,
            reporter: progress,
            onStopped: (checkpoint) => {
              stoppedAt = checkpoint
            },
          }
          results.push(yield* Runner.run(typed, options).pipe(Effect.provide(services)))
        }
      }),
      () =>
        Effect.sync(() =>
          progress.log(
            `stopped${stoppedAt === undefined ? "" : `; checkpoint at ${stoppedAt}`}. Continue with: ${continueCommand(args, out)}`,
          ),
        ),
    )
    // Over every seed in the run directory: other processes may have run other seeds into it.
    const summary = Summary.aggregate(
      perSeedDirectories
        ? yield* Effect.try({
            try: () => RunDir.seedResults(out),
            catch: (e) => new RunFailed({ message: e instanceof Error ? e.message : String(e) }),
          })
        : results,
    )
    yield* OutDir.write(join(out, "summary.json"), `${JSON.stringify(summary, null, 2)}\n`)
    yield* OutDir.write(join(out, "summary.md"), Summary.markdown(summary))
    progress.log(`\n${Summary.markdown(summary)}`)
    progress.log(`run directory: ${out} (cmkg report ${out} draws the tables and plots)`)
    if (args.scale === "tiny")
      progress.log(
        `--scale tiny is a smoke test (small images, little data, few epochs); the tables in earnest: cmkg run ${args.program} --scale small --seeds 5`,
      )
  }).pipe(Effect.scoped)

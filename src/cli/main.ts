/**
 * The `cmkg` command line: `check`, `run`, `report`, `data preview`, and the
 * sweep engine's `worker` and `status`.
 *
 * Exit codes: 0 success; 1 an ill-formed program or a failed run; 2 a bad
 * invocation (missing file, not a program module, unknown flag).
 *
 * @module
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Cause, Console, Effect, Exit, Option, Runtime } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { BACKENDS } from "../backend-names.ts"
import * as Data from "../dsl/Data.ts"
import * as Program from "../dsl/Program.ts"
import { BadInvocation, exitCode, isCliError } from "./errors.ts"

// Each command loads its modules when it runs, so `cmkg --version` and
// `cmkg check` never load tfjs or the report stack (start-up time).
const lazy = <M>(load: () => Promise<M>): Effect.Effect<M> => Effect.promise(load)

const programArg = Argument.String("program").pipe(
  Argument.withDescription("A program module (.ts); programs/NAME.ts falls back to the built-in programs"),
)
const scaleFlag = Flag.Literals("scale", Program.scales).pipe(
  Flag.withDescription("Run size: tiny, small or paper"),
  Flag.withDefault("tiny" as Program.Scale),
)

const typecheckFlag = Flag.Boolean("typecheck").pipe(
  Flag.withDescription("Type-check the program module first (--no-typecheck skips it)"),
  Flag.withDefault(true),
)

const clusterFlag = Flag.String("cluster")
const backendFlag = Flag.Literals("backend", BACKENDS).pipe(
  Flag.withDescription("tfjs backend (auto: tfjs-node-gpu, tfjs-node, cmkg-cpu, wasm, cpu)"),
  Flag.withDefault("auto" as const),
)
const threadsFlag = Flag.Int("threads").pipe(
  Flag.withDescription("CPU threads for the native kernels (default: the machine's cores)"),
  Flag.optional,
)

const check = Command.make(
  "check",
  {
    program: programArg,
    typecheck: typecheckFlag,
    json: Flag.Boolean("json").pipe(Flag.withDescription("Print JSON"), Flag.withDefault(false)),
    scale: scaleFlag,
    estimate: Flag.Boolean("estimate").pipe(
      Flag.withDescription("For an experiment, measure the backend's throughput and estimate the wall time"),
      Flag.withDefault(false),
    ),
  },
  (a) =>
    Effect.flatMap(
      lazy(() => import("./check-command.ts")),
      (CheckCommand) => CheckCommand.check(a),
    ),
).pipe(
  Command.withDescription(
    "Check every shape statically and count parameters and MACs, without allocating a tensor",
  ),
)

const run = Command.make(
  "run",
  {
    program: programArg,
    typecheck: typecheckFlag,
    scale: scaleFlag,
    seeds: Flag.Int("seeds").pipe(
      Flag.withDescription("Number of seeds (1..N), results as mean ± std"),
      Flag.withDefault(1),
    ),
    backend: backendFlag,
    firstSeed: Flag.Int("first-seed").pipe(
      Flag.withDescription(
        "Seeds run are first-seed … first-seed + seeds − 1 (default 1). Given, each seed gets its own seed-N/ directory: processes that split the seeds can share one --out",
      ),
      Flag.optional,
    ),
    threads: threadsFlag,
    out: Flag.String("out").pipe(
      Flag.withDescription("Run directory (default runs/<program>-<scale>)"),
      Flag.optional,
    ),
    resume: Flag.Boolean("resume").pipe(
      Flag.withDescription("Continue from the run directory's last checkpoint"),
      Flag.withDefault(false),
    ),
    restart: Flag.Boolean("restart").pipe(
      Flag.withDescription(
        "With --resume: where the run directory cannot be continued (another program or scale, no checkpoint that loads), start over, removing its checkpoints and metrics",
      ),
      Flag.withDefault(false),
    ),
    data: Flag.String("data").pipe(
      Flag.withDescription("Real datasets: rhd=DIR,stb=DIR,freihand=DIR"),
      Flag.optional,
    ),
    cluster: clusterFlag.pipe(
      Flag.withDescription(
        "Submit the seeds' stages to the sweep engine at this Redis URL (redis://host:port) and follow them; cmkg worker runs them",
      ),
      Flag.optional,
    ),
  },
  (a) =>
    Effect.flatMap(
      lazy(() => import("./run.ts")),
      (Run) =>
        Run.run({
          program: a.program,
          scale: a.scale,
          seeds: a.seeds,
          firstSeed: Option.getOrUndefined(a.firstSeed),
          backend: a.backend,
          threads: Option.getOrUndefined(a.threads),
          out: Option.getOrUndefined(a.out),
          resume: a.resume,
          restart: a.restart,
          data: Option.getOrUndefined(a.data),
          typecheck: a.typecheck,
          cluster: Option.getOrUndefined(a.cluster),
        }),
    ),
).pipe(
  Command.withDescription(
    "Check a program statically, then train it and write a run directory with metrics, checkpoints and results",
  ),
)

const preview = Command.make(
  "preview",
  {
    domain: Flag.Literals("domain", Data.SYNTHETIC_DOMAINS).pipe(
      Flag.withDescription("One synthetic domain (default: all)"),
      Flag.optional,
    ),
    out: Flag.String("out").pipe(Flag.withDescription("Directory for the PNG grid")),
    count: Flag.Int("count").pipe(Flag.withDescription("Samples per domain"), Flag.withDefault(8)),
    size: Flag.Int("size").pipe(Flag.withDescription("Image size in pixels"), Flag.withDefault(128)),
  },
  (a) =>
    Effect.gen(function* () {
      const [Preview, OutDir] = yield* lazy(() =>
        Promise.all([import("../data/preview.ts"), import("./out-dir.ts")]),
      )
      yield* OutDir.create(a.out)
      const domain = Option.getOrUndefined(a.domain)
      const file = yield* Effect.try({
        try: () =>
          Preview.writePreview({
            out: a.out,
            count: a.count,
            imageSize: a.size,
            ...(domain === undefined ? {} : { domain }),
          }),
        catch: (e) =>
          new BadInvocation({ message: `data preview: ${e instanceof Error ? e.message : String(e)}` }),
      })
      yield* Console.log(`wrote ${file}`)
    }),
).pipe(Command.withDescription("Write a PNG grid of synthetic RGB/depth pairs with the 2D skeleton drawn"))

const data = Command.make("data").pipe(
  Command.withDescription("Look at the data"),
  Command.withSubcommands([preview]),
)

const report = Command.make(
  "report",
  { dir: Argument.String("run-dir").pipe(Argument.withDescription("A run directory written by cmkg run")) },
  (a) =>
    Effect.flatMap(
      lazy(() => import("./report-command.ts")),
      (Report) => Report.command(a.dir),
    ),
).pipe(Command.withDescription("Draw a run's tables and plots: SVG, PNG and one self-contained HTML page"))

const worker = Command.make(
  "worker",
  {
    cluster: clusterFlag.pipe(Flag.withDescription("The sweep engine's Redis URL (redis://host:port)")),
    backend: backendFlag,
    threads: threadsFlag,
    out: Flag.String("out").pipe(
      Flag.withDescription(
        "A run directory root to check for write access at start (runs must be on a filesystem every worker sees)",
      ),
      Flag.optional,
    ),
    lockSeconds: Flag.Int("lock-seconds").pipe(
      Flag.withDescription(
        "How long a stage of a lost worker waits before another worker takes it over (default 30; the lock is renewed between training steps, so keep it above the longest step)",
      ),
      Flag.optional,
    ),
  },
  (a) =>
    Effect.flatMap(
      lazy(() => import("./cluster.ts")),
      (Cluster) =>
        Cluster.worker({
          cluster: a.cluster,
          backend: a.backend,
          threads: Option.getOrUndefined(a.threads),
          out: Option.getOrUndefined(a.out),
          lockSeconds: Option.getOrUndefined(a.lockSeconds),
        }),
    ),
).pipe(
  Command.withDescription(
    "Run stages of cluster runs on this machine, one at a time (start one per core with --threads 1, or one per GPU)",
  ),
)

const status = Command.make(
  "status",
  {
    cluster: clusterFlag.pipe(Flag.withDescription("The sweep engine's Redis URL (redis://host:port)")),
    run: Argument.String("run").pipe(
      Argument.withDescription("A run id (default: every run)"),
      Argument.optional,
    ),
  },
  (a) =>
    Effect.flatMap(
      lazy(() => import("./cluster.ts")),
      (Cluster) => Cluster.status({ cluster: a.cluster, run: Option.getOrUndefined(a.run) }),
    ),
).pipe(Command.withDescription("Show each stage of cluster runs: state, worker, progress and time"))

const cmkg = Command.make("cmkg").pipe(
  Command.withDescription("Deep-learning experiments as typed program values"),
  Command.withSubcommands([check, run, report, data, worker, status]),
)

/** One line for the argument parser's failure (help was requested or forced by errors such as a missing argument). */
const describeParseFailure = (failure: unknown): string | undefined => {
  if (typeof failure !== "object" || failure === null) return undefined
  const f = failure as { _tag?: string; errors?: ReadonlyArray<Record<string, unknown>>; message?: string }
  const first = f.errors?.[0]
  if (first !== undefined) {
    const detail = Object.entries(first)
      .filter(([k]) => k !== "_tag" && !k.startsWith("~"))
      .map(([k, v]) => `${k} ${JSON.stringify(v)}`)
      .join(", ")
    return `${first._tag}${detail === "" ? "" : `: ${detail}`}`
  }
  return f.message
}

// `cmkg … | head` closes stdout early: that is the reader's choice, not an error.
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(0)
  throw e
})

const main = Command.runWith(cmkg, { version: "0.1.0", renderErrors: false })(process.argv.slice(2)).pipe(
  Effect.provide(NodeServices.layer),
)

// The platform runtime runs the CLI: SIGINT/SIGTERM interrupt its fiber (a run writes its checkpoint as it
// is interrupted, then the process exits 130), and each failure becomes one line and an exit code.
NodeRuntime.runMain(main as Effect.Effect<void, unknown>, {
  disableErrorReporting: true,
  teardown: (exit, onExit) => {
    if (Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause))
      return Runtime.defaultTeardown(exit, onExit)
    const failure = Cause.squash(exit.cause)
    if (isCliError(failure)) {
      console.error(`cmkg: ${failure.message}`)
      return onExit(exitCode(failure))
    }
    // Anything else is the argument parser's own complaint (it already printed help): a bad invocation.
    console.error(`cmkg: ${describeParseFailure(failure) ?? Cause.pretty(exit.cause).split("\n")[0]}`)
    onExit(2)
  },
})

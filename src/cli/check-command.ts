/**
 * `cmkg check`: every network's table, and for an experiment its compute
 * (MACs per training step of each stage × steps) and, with `--estimate`, a
 * wall-time estimate from the backend's measured throughput.
 *
 * @module
 */
import { Console, Effect } from "effect"
import type * as Experiment from "../dsl/Experiment.ts"
import * as Program from "../dsl/Program.ts"
import * as ExperimentCheck from "../interpreters/shape-check/experiment.ts"
import * as CheckView from "./check.ts"
import { BadInvocation, ProgramRejected } from "./errors.ts"
import * as Load from "./load.ts"

const human = (n: number) =>
  n >= 1e12
    ? `${(n / 1e12).toFixed(2)} T`
    : n >= 1e9
      ? `${(n / 1e9).toFixed(2)} G`
      : `${(n / 1e6).toFixed(2)} M`
const clock = (s: number) =>
  s >= 3600 ? `${(s / 3600).toFixed(1)} h` : s >= 60 ? `${(s / 60).toFixed(1)} min` : `${s.toFixed(0)} s`

export const check = (a: {
  readonly program: string
  readonly json: boolean
  readonly scale: Program.Scale
  readonly estimate: boolean
}) =>
  Effect.gen(function* () {
    const loaded = yield* Load.load(a.program)
    const resolved = yield* Effect.try({
      try: () => Program.resolve(loaded.value, { scale: a.scale, data: {} }),
      catch: (e) =>
        new BadInvocation({
          message: `${loaded.file}: building the program failed: ${e instanceof Error ? e.message : String(e)}`,
        }),
    })
    const report = ExperimentCheck.check(resolved as Program.Program<Experiment.Experiment>)
    let estimate: { backend: string; macsPerSecond: number; seconds: number } | undefined
    if (a.estimate && resolved.experiment !== undefined && report.errors.length === 0) {
      const firstTrained = (resolved.experiment as Experiment.Experiment).stages.find(
        (s) => s._tag === "Train",
      )
      const model =
        resolved.models.find(
          (m) =>
            firstTrained !== undefined &&
            firstTrained.step._tag === "Minimize" &&
            firstTrained.step.wrt.includes(m.name),
        ) ?? resolved.models[0]
      if (model !== undefined && firstTrained?._tag === "Train") {
        const Tf = yield* Effect.promise(() => import("../interpreters/tf/index.ts"))
        const Throughput = yield* Effect.promise(() => import("../interpreters/tf/throughput.ts"))
        const backend = yield* Effect.promise(() => Tf.ready("auto"))
        const macsPerSecond = Throughput.measure(model, firstTrained.batchSize)
        estimate = { backend: backend.name, macsPerSecond, seconds: report.macsTotal / macsPerSecond }
      }
    }
    if (a.json) {
      const experiment =
        resolved.experiment === undefined
          ? {}
          : {
              experiment: {
                stages: report.stages,
                macsTotal: report.macsTotal,
                ...(estimate === undefined ? {} : { estimate }),
              },
            }
      yield* Console.log(
        JSON.stringify(
          CheckView.json({ name: resolved.name, models: report.models, errors: report.errors }, experiment),
          null,
          2,
        ),
      )
    } else {
      for (const m of report.models) yield* Console.log(`${CheckView.table(m.name, m.summary)}\n`)
      if (resolved.experiment !== undefined) {
        yield* Console.log(
          "Experiment compute (training MACs: 3× forward for trained models, 1× for frozen ones):",
        )
        for (const s of report.stages)
          yield* Console.log(
            `  ${s.stage.padEnd(48)} ${String(s.steps).padStart(7)} steps × ${human(s.macsPerStep)}MACs = ${human(s.macs)}MACs`,
          )
        yield* Console.log(`  total ${human(report.macsTotal)}MACs (${human(2 * report.macsTotal)}FLOPs)`)
        if (estimate !== undefined)
          yield* Console.log(
            `  estimated wall time on ${estimate.backend} (measured ${human(estimate.macsPerSecond)}MACs/s): ${clock(estimate.seconds)}`,
          )
      }
    }
    if (report.errors.length > 0) {
      const lines = report.errors.map((e) => `  ${e.path}: ${e.message}`).join("\n")
      return yield* new ProgramRejected({
        message: `${loaded.file}: ${report.errors.length} error(s) in program "${resolved.name}":\n${lines}`,
      })
    }
  })

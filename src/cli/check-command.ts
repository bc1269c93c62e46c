/**
 * `cmkg check`: every network's table, and for an experiment its compute
 * (MACs per training step of each stage × steps), for a staged experiment
 * its stage graph (what each stage reads from which, its MACs, the critical
 * path) and, with `--estimate`, a wall-time estimate from the backend's
 * measured throughput.
 *
 * @module
 */
import { Console, Effect } from "effect"
import type * as Experiment from "../dsl/Experiment.ts"
import type * as Program from "../dsl/Program.ts"
import * as ExperimentCheck from "../interpreters/shape-check/experiment.ts"
import * as GraphCheck from "../interpreters/shape-check/stage-graph.ts"
import * as CheckView from "./check.ts"
import { ProgramRejected } from "./errors.ts"
import * as Load from "./load.ts"

const human = (n: number) =>
  n >= 1e12
    ? `${(n / 1e12).toFixed(2)} T`
    : n >= 1e9
      ? `${(n / 1e9).toFixed(2)} G`
      : `${(n / 1e6).toFixed(2)} M`
const clock = (s: number) =>
  s >= 3600 ? `${(s / 3600).toFixed(1)} h` : s >= 60 ? `${(s / 60).toFixed(1)} min` : `${s.toFixed(0)} s`

/** The model and batch size whose measured throughput estimates an experiment's wall time: the first one trained. */
const timedModel = (
  p: Program.Program<Experiment.Any>,
): { readonly model: Program.Model; readonly batchSize: number } | undefined => {
  const e = p.experiment!
  switch (e._tag) {
    case "Experiment": {
      const first = e.stages.find((s) => s._tag === "Train")
      if (first?._tag !== "Train") return undefined
      const model =
        p.models.find((m) => first.step._tag === "Minimize" && first.step.wrt.includes(m.name)) ?? p.models[0]
      return model === undefined ? undefined : { model, batchSize: first.batchSize }
    }
  }
}

export const check = (a: {
  readonly program: string
  readonly json: boolean
  readonly scale: Program.Scale
  readonly estimate: boolean
  readonly typecheck: boolean
}) =>
  Effect.gen(function* () {
    const loaded = yield* Load.load(a.program, { typecheck: a.typecheck })
    const resolved = yield* Load.resolveProgram(loaded, { scale: a.scale, data: {} })
    const typed = resolved as Program.Program<Experiment.Any>
    const report = ExperimentCheck.checkAny(typed)
    let estimate: { backend: string; macsPerSecond: number; seconds: number } | undefined
    const timed = typed.experiment === undefined ? undefined : timedModel(typed)
    if (a.estimate && timed !== undefined && report.errors.length === 0) {
      const Tf = yield* Effect.promise(() => import("../interpreters/tf/index.ts"))
      const Throughput = yield* Effect.promise(() => import("../interpreters/tf/throughput.ts"))
      const backend = yield* Effect.promise(() => Tf.ready("auto"))
      const macsPerSecond = Throughput.measure(timed.model, timed.batchSize)
      estimate = { backend: backend.name, macsPerSecond, seconds: report.macsTotal / macsPerSecond }
    }
    const loops = report.loops ?? []
    const graph =
      typed.experiment === undefined
        ? undefined
        : GraphCheck.graphReport(typed as Program.Program<Experiment.Experiment>, report)
    if (a.json) {
      const experiment =
        resolved.experiment === undefined
          ? {}
          : {
              experiment: {
                stages: report.stages,
                macsTotal: report.macsTotal,
                ...(loops.length === 0 ? {} : { loopCosts: loops }),
                ...(graph === undefined ? {} : { graph: CheckView.graphJson(graph) }),
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
      if (loops.length > 0) {
        yield* Console.log(
          "DIR-Net costs of a sample that exits after loop 1, 2, … (FE included; shape checker):",
        )
        for (const l of loops)
          yield* Console.log(
            `  ${l.model.padEnd(20)} GFLOPs ${l.costs.gflopsAtExit.map((g) => g.toPrecision(3)).join(", ")} · params ${l.costs.params.toLocaleString("en-US")} (No Iter. ${l.noIterParams.toLocaleString("en-US")})`,
          )
        yield* Console.log("")
      }
      if (resolved.experiment !== undefined) {
        yield* Console.log(
          "Experiment compute (training MACs: 3× forward for trained models, 1× for frozen ones):",
        )
        for (const s of report.stages)
          yield* Console.log(
            `  ${s.stage.padEnd(48)} ${String(s.steps).padStart(7)} steps × ${human(s.macsPerStep)}MACs = ${human(s.macs)}MACs${s.trainedParams === undefined ? "" : ` · trains ${s.trainedParams.toLocaleString("en-US")} params`}`,
          )
        yield* Console.log(`  total ${human(report.macsTotal)}MACs (${human(2 * report.macsTotal)}FLOPs)`)
        if (estimate !== undefined)
          yield* Console.log(
            `  estimated wall time on ${estimate.backend} (measured ${human(estimate.macsPerSecond)}MACs/s): ${clock(estimate.seconds)}`,
          )
        if (graph !== undefined) yield* Console.log(`\n${CheckView.graph(graph)}`)
      }
    }
    if (report.errors.length > 0) {
      const lines = report.errors.map((e) => `  ${e.path}: ${e.message}`).join("\n")
      return yield* new ProgramRejected({
        message: `${loaded.file}: ${report.errors.length} error(s) in program "${resolved.name}":\n${lines}`,
      })
    }
  })

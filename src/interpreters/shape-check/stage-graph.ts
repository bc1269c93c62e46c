/**
 * The shape checker's compute on the stage graph (`dsl/StageGraph.ts`): the
 * MACs of every stage of a staged experiment, and the graph with them, as
 * `cmkg check` prints it.
 *
 * A train stage costs what the experiment report counts for it (steps ×
 * batch × per-sample training MACs: 3× the forward MACs of every model the
 * step trains — forward and the two backward products — 1× for frozen ones,
 * plus a meta-step's inner and second-order passes; see `experiment.ts`). An
 * evaluate stage, and an exit evaluation, costs its data set's size × its model's forward MACs
 * (every loop, for an exit evaluation). A
 * stage whose data set's size is not known statically (a real dataset) has
 * no cost (`undefined`) and counts as 0 on the critical path.
 *
 * @module
 */
import type * as Experiment from "../../dsl/Experiment.ts"
import type * as Program from "../../dsl/Program.ts"
import * as StageGraph from "../../dsl/StageGraph.ts"
import { type ExperimentReport, sizeOf } from "./experiment.ts"

/** MACs of every stage, in program order (`undefined`: the data set's size is unknown). */
export const stageMacs = (
  e: Experiment.Experiment,
  report: Pick<ExperimentReport, "models" | "stages">,
): (number | undefined)[] => {
  const forward = new Map(report.models.map((m) => [m.name, m.summary.cost.macs]))
  // The report has one cost per train stage, in program order.
  let train = 0
  return e.stages.map((stage) => {
    const size = sizeOf(stage.data)
    // An exit evaluation runs every loop of its network once per sample, whatever its policy.
    if (stage._tag === "Evaluate" || stage._tag === "EvaluateExits")
      return size === undefined ? undefined : size * (forward.get(stage.model) ?? 0)
    const cost = report.stages[train++]
    if (cost?.stage !== stage.name)
      throw new Error(
        `the experiment report has no cost for train stage "${stage.name}" at position ${train}`,
      )
    return size === undefined ? undefined : cost.macs
  })
}

export interface GraphStage {
  readonly index: number
  readonly name: string
  readonly kind: Experiment.Stage["_tag"]
  readonly macs: number | undefined
  /** Each resource read and the stage that wrote it (`null`: its initial value). */
  readonly reads: readonly { readonly resource: StageGraph.Resource; readonly from: number | null }[]
  readonly writes: readonly StageGraph.Resource[]
  /** The stages it waits for in one shared world (`cmkg run`), and with per-stage versions. */
  readonly needs: { readonly shared: readonly number[]; readonly perStage: readonly number[] }
  /** Why, for each stage it waits for in a shared world: kind and resource. */
  readonly because: readonly StageGraph.Edge[]
}

export interface GraphReport {
  readonly stages: readonly GraphStage[]
  readonly macsTotal: number
  readonly criticalPath: {
    readonly shared: StageGraph.CriticalPath
    readonly perStage: StageGraph.CriticalPath
  }
}

/** The stage graph of a staged experiment with every stage's MACs and both critical paths. */
export const graphReport = (
  p: Program.Program<Experiment.Experiment>,
  report: Pick<ExperimentReport, "models" | "stages">,
): GraphReport | undefined => {
  const e = p.experiment
  if (e === undefined) return undefined
  const g = StageGraph.graph(e)
  const macs = stageMacs(e, report)
  const cost = macs.map((m) => m ?? 0)
  const shared = StageGraph.needs(g, "shared")
  const perStage = StageGraph.needs(g, "per-stage")
  return {
    stages: g.stages.map((s, i) => ({
      index: i,
      name: s.name,
      kind: s._tag,
      macs: macs[i],
      reads: g.inputs[i]!.map((x) => ({ resource: x.resource, from: x.writer ?? null })),
      writes: g.access[i]!.writes,
      needs: { shared: shared[i]!, perStage: perStage[i]! },
      because: g.edges.filter((x) => x.to === i),
    })),
    macsTotal: cost.reduce((a, b) => a + b, 0),
    criticalPath: {
      shared: StageGraph.criticalPath(g, cost, "shared"),
      perStage: StageGraph.criticalPath(g, cost, "per-stage"),
    },
  }
}

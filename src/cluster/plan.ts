/**
 * A staged experiment × seeds as the engine's nodes, and where each stage of
 * a cluster run keeps what it makes.
 *
 * Stages keep their results as their own versions (`StageGraph`'s
 * `"per-stage"` storage): stage k of seed s writes the parameters,
 * batch-norm statistics and φ it changed to `seed-s/stages/k/world/`, its
 * results row (an evaluation) to `seed-s/stages/k/row.json`, and its own
 * checkpoints and metrics to `seed-s/stages/k/` (so a worker that takes over
 * a lost stage resumes from them). A stage that reads a model takes the
 * version its last writer in program order left, exactly what the
 * single-process run hands it; so only read-after-write edges order stages,
 * and the rows of a table that reuse one model name still run side by side.
 *
 * @module
 */
import { join } from "node:path"
import type * as Experiment from "../dsl/Experiment.ts"
import * as StageGraph from "../dsl/StageGraph.ts"
import type * as Engine from "./engine.ts"

/** The node of stage `stage` of seed `seed`: `seed/stage`, as `StageGraph.sweep` names it. */
export const nodeOf = (id: string): { seed: number; stage: number } => {
  const [seed, stage] = id.split("/").map(Number)
  if (!Number.isInteger(seed) || !Number.isInteger(stage)) throw new Error(`not a stage node id: "${id}"`)
  return { seed: seed!, stage: stage! }
}

const stageLabel = (s: Experiment.Stage): string =>
  s._tag === "Train"
    ? `train ${s.name}`
    : s._tag === "Evaluate"
      ? `evaluate ${s.model} (${s.table} · ${s.row})`
      : `evaluate exits ${s.name}`

/** One node per seed × stage; each needs the stages whose results it reads. */
export const plan = (e: Experiment.Experiment, seeds: readonly number[]): Engine.Node[] => {
  const g = StageGraph.graph(e)
  return StageGraph.sweep(g, seeds, "per-stage").map((n) => ({
    id: n.id,
    needs: n.needs,
    label: `seed ${n.seed} · ${n.stage + 1}/${e.stages.length} ${stageLabel(e.stages[n.stage]!)}`,
  }))
}

/** The directory of a seed in a cluster run (always `seed-N/`: seeds run side by side). */
export const seedDir = (out: string, seed: number): string => join(out, `seed-${seed}`)
/** Where stage `stage` of a seed keeps its checkpoints, metrics, results and row. */
export const stageDir = (out: string, seed: number, stage: number): string =>
  join(seedDir(out, seed), "stages", String(stage))
/** The resources a stage changed, as the stages that read them load them. */
export const worldDir = (out: string, seed: number, stage: number): string =>
  join(stageDir(out, seed, stage), "world")
export const rowFile = (out: string, seed: number, stage: number): string =>
  join(stageDir(out, seed, stage), "row.json")

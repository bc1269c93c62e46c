/**
 * One stage of a cluster run on this machine (what `cmkg worker` does with a
 * job), and the seed's results assembled once all its stages are done.
 *
 * A stage starts from the versions of what it reads (`StageGraph`'s inputs:
 * each resource as its last writer in program order left it, loaded from that
 * stage's `world/`; a resource no stage wrote yet is made fresh by the runner,
 * as in a single-process run, from the seed and its path), runs through the
 * one runner (`interpreters/tf/experiment.ts`, `part`), and keeps what it
 * changed in its own `world/` and its rows in `row.json`. Its checkpoints and
 * metrics are in its own directory, so a worker that takes over a lost stage
 * resumes it where the lost one last checkpointed.
 *
 * @module
 */
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import type * as tf from "@tensorflow/tfjs-core"
import { Effect, Schema } from "effect"
import type * as Experiment from "../dsl/Experiment.ts"
import type * as Program from "../dsl/Program.ts"
import * as StageGraph from "../dsl/StageGraph.ts"
import * as Checkpoint from "../interpreters/tf/checkpoint.ts"
import * as Runner from "../interpreters/tf/experiment.ts"
import * as Read from "../run-dir/read.ts"
import * as RunFiles from "../run-dir/schema.ts"
import { writeFile } from "../run-dir/write-file.ts"
import * as Plan from "./plan.ts"

/** What a stage's `row.json` holds: its rows (one for an evaluation, none for training), its time and backend. */
export const StageRows = Schema.Struct({
  rows: Schema.Array(
    // An exit evaluation's row first (with its Figure 7 point when it is one): a staged row's schema
    // would accept it too, dropping the fields it does not know.
    Schema.Union([
      Schema.Struct({ ...RunFiles.DirnetRow.fields, point: Schema.optional(RunFiles.SweepPoint) }),
      RunFiles.StagedRow,
    ]),
  ),
  seconds: Schema.Number,
  backend: Schema.String,
})

type Tree = Record<string, tf.Tensor>

/** The world stage `stage` of `seed` starts from: each resource it reads as its writer left it. */
const inputWorld = (g: StageGraph.Graph, out: string, seed: number, stage: number): Checkpoint.World => {
  const loaded = new Map<number, Record<string, Tree>>()
  const groupsOf = (writer: number) => {
    let groups = loaded.get(writer)
    if (groups === undefined) {
      groups = Checkpoint.load(Plan.worldDir(out, seed, writer)).groups
      loaded.set(writer, groups)
    }
    return groups
  }
  const params: Record<string, Tree> = {}
  const state: Record<string, Tree> = {}
  const meta: Record<string, Tree> = {}
  for (const input of g.inputs[stage]!) {
    if (input.writer === undefined) continue
    const groups = groupsOf(input.writer)
    const { space, name } = input.resource
    const file = Plan.worldDir(out, seed, input.writer)
    if (space === "meta") {
      const tree = groups[`meta/${name}`]
      if (tree === undefined) throw Read.fileError(file, "", `holds no meta-parameters "${name}"`)
      meta[name] = tree
    } else {
      const tree = groups[`params/${name}`]
      if (tree === undefined) throw Read.fileError(file, "", `holds no parameters of "${name}"`)
      params[name] = tree
      // A network without batch norm has an empty state tree, which a checkpoint cannot hold.
      state[name] = groups[`state/${name}`] ?? {}
    }
  }
  // Tensors of the loaded checkpoints that this stage does not read are not needed.
  const kept = new Set([...Object.values(params), ...Object.values(state), ...Object.values(meta)])
  for (const groups of loaded.values())
    for (const tree of Object.values(groups))
      for (const t of Object.values(tree)) if (!kept.has(tree)) t.dispose()
  return { params, state, meta, opt: {} }
}

/** Keeps what the stage changed (its writes) as the version later stages read. */
const keepWrites = (
  g: StageGraph.Graph,
  out: string,
  seed: number,
  stage: number,
  world: Checkpoint.World,
) => {
  const groups: Record<string, Readonly<Tree>> = {}
  for (const { space, name } of g.access[stage]!.writes) {
    if (space === "meta") {
      const tree = world.meta[name]
      if (tree !== undefined) groups[`meta/${name}`] = tree
    } else {
      const p = world.params[name]
      if (p !== undefined) groups[`params/${name}`] = p
      const s = world.state[name]
      if (s !== undefined && Object.keys(s).length > 0) groups[`state/${name}`] = s
    }
  }
  Checkpoint.save(Plan.worldDir(out, seed, stage), groups, { seed, stage })
}

/**
 * Runs stage `stage` of `seed` of a staged experiment into the cluster run
 * directory `out` (resuming it from its own checkpoint if an earlier worker
 * left one).
 */
export const runStage = (
  program: Program.Program<Experiment.Experiment>,
  o: {
    readonly out: string
    readonly seed: number
    readonly stage: number
    readonly reporter: Runner.Reporter
  },
) =>
  Effect.gen(function* () {
    const e = program.experiment!
    const g = StageGraph.graph(e)
    const dir = Plan.stageDir(o.out, o.seed, o.stage)
    mkdirSync(dir, { recursive: true })
    const resume = existsSync(Checkpoint.directory(dir))
    // The stage's own rows as the runner made them (a DIR-Net run's results file regroups them).
    let rows: readonly unknown[] = []
    const results = yield* Runner.run(program, {
      out: dir,
      seed: o.seed,
      resume,
      restart: true,
      reporter: o.reporter,
      part: {
        stage: o.stage,
        world: () => inputWorld(g, o.out, o.seed, o.stage),
        done: (world, made) => {
          keepWrites(g, o.out, o.seed, o.stage, world)
          rows = made
        },
      },
    })
    writeFile(
      Plan.rowFile(o.out, o.seed, o.stage),
      `${JSON.stringify({ rows, seconds: results.seconds, backend: results.backend }, null, 2)}\n`,
    )
    return results
  })

/**
 * A seed's `results.json`, `results.md` and `metrics.jsonl` from its stages,
 * in program order (what the single-process run writes), and its saved
 * models under `models/`.
 */
export const collectSeed = (
  program: Program.Program<Experiment.Experiment>,
  o: { readonly out: string; readonly seed: number },
): RunFiles.Results => {
  const e = program.experiment!
  const seedDir = Plan.seedDir(o.out, o.seed)
  const rows: (typeof StageRows.Type)["rows"][number][] = []
  let seconds = 0
  const backends = new Set<string>()
  const metrics: string[] = []
  e.stages.forEach((_, k) => {
    const stageRows = Read.readJson(Plan.rowFile(o.out, o.seed, k), StageRows)
    rows.push(...stageRows.rows)
    seconds += stageRows.seconds
    backends.add(stageRows.backend)
    const m = join(Plan.stageDir(o.out, o.seed, k), "metrics.jsonl")
    if (existsSync(m)) metrics.push(readFileSync(m, "utf8"))
    const models = join(Plan.stageDir(o.out, o.seed, k), "models")
    if (existsSync(models))
      for (const name of readdirSync(models))
        cpSync(join(models, name), join(seedDir, "models", name), { recursive: true })
  })
  // Workers on different backends agree only within the backends' tolerance: say so.
  const base = { program: program.name, seed: o.seed, backend: [...backends].join(" + "), seconds }
  const { results, markdown } = Runner.seedResults(program, base, rows)
  writeFileSync(join(seedDir, "metrics.jsonl"), metrics.join(""))
  writeFile(join(seedDir, "results.json"), `${JSON.stringify(results, null, 2)}\n`)
  writeFile(join(seedDir, "results.md"), markdown)
  return results
}

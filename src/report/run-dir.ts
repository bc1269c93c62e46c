/**
 * Reading a run directory written by `cmkg run`: the program, the per-seed
 * results and metrics, the summary over seeds, and where the last checkpoint
 * and the evaluated models are.
 *
 * @module
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs"
import { join, resolve } from "node:path"
import { Data } from "effect"
import * as Names from "../run-dir/names.ts"
import * as Read from "../run-dir/read.ts"
import * as RunFiles from "../run-dir/schema.ts"
import * as Summary from "./summary.ts"

/** The directory is missing or is not the output of `cmkg run`; the message names the directory and what is missing. */
export class NotARunDirectory extends Data.TaggedError("NotARunDirectory")<{ readonly message: string }> {}

/** One line of `metrics.jsonl`: the position, then one number (null: not finite) per loss key. */
export type MetricsLine = RunFiles.MetricsLine

/** One seed's output: its own directory (the run directory itself when there is one seed). */
export interface Seed {
  readonly seed: number
  readonly dir: string
  readonly results: RunFiles.Results | undefined
  readonly metrics: readonly MetricsLine[]
  /** `checkpoints/NNNNNN` named by `checkpoints/LATEST`, when present. */
  readonly checkpoint: string | undefined
  /** `models/<slug>` directories holding a `model.json`. */
  readonly models: readonly { readonly slug: string; readonly dir: string }[]
}

export interface Run {
  readonly dir: string
  readonly program: {
    readonly name: string
    readonly description: string
    readonly metaParams: readonly { name: string; like: string }[]
  }
  readonly options: RunFiles.ProgramJson["options"]
  readonly seeds: readonly Seed[]
  /** Mean ± std over the seeds that have results (all of them, or those done so far in an interrupted run). */
  readonly summary: Summary.Summary | undefined
}

/** The lines of `metrics.jsonl` (none before the first step); a partial last line is dropped (`Read.readJsonLines`). */
const readMetrics = (path: string): MetricsLine[] =>
  existsSync(path) ? Read.readJsonLines(path, RunFiles.MetricsLine) : []

/** `models/<slug>` is named after its evaluate stage (as `interpreters/tf/experiment.ts` slugs it); order them as evaluated. */
const evaluationOrder = (results: RunFiles.Results | undefined, slug: string): number => {
  const i = results?.rows.findIndex((r) => Names.slug(r.stage) === slug) ?? -1
  return i < 0 ? Number.MAX_SAFE_INTEGER : i
}

/** The `seed-N/` directories of a run directory, by seed. */
const seedDirectories = (dir: string): { seed: number; dir: string }[] =>
  readdirSync(dir)
    .map((n) => /^seed-(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null && statSync(join(dir, m[0])).isDirectory())
    .map((m) => ({ seed: Number(m[1]), dir: join(dir, m[0]) }))
    .sort((a, b) => a.seed - b.seed)

/** The results of every finished seed under `seed-N/` of a run directory, by seed. */
export const seedResults = (dir: string): RunFiles.Results[] =>
  seedDirectories(dir).flatMap((s) => {
    const path = join(s.dir, "results.json")
    return existsSync(path) ? [Read.readJson(path, RunFiles.Results)] : []
  })

const readSeed = (seed: number, dir: string): Seed => {
  const resultsPath = join(dir, "results.json")
  const results = existsSync(resultsPath) ? Read.readJson(resultsPath, RunFiles.Results) : undefined
  const latest = join(dir, "checkpoints", "LATEST")
  const ckpt = existsSync(latest) ? join(dir, "checkpoints", readFileSync(latest, "utf8").trim()) : undefined
  const modelsDir = join(dir, "models")
  const models = existsSync(modelsDir)
    ? readdirSync(modelsDir)
        .filter((slug) => existsSync(join(modelsDir, slug, "model.json")))
        .map((slug) => ({ slug, dir: join(modelsDir, slug) }))
        .sort((a, b) => evaluationOrder(results, a.slug) - evaluationOrder(results, b.slug))
    : []
  return {
    seed,
    dir,
    results,
    metrics: readMetrics(join(dir, "metrics.jsonl")),
    checkpoint: ckpt !== undefined && existsSync(join(ckpt, "model.json")) ? ckpt : undefined,
    models,
  }
}

/**
 * Reads a run directory; throws {@link NotARunDirectory} when `dir` does not
 * exist, is not a directory, lacks `program.json`, or holds neither results
 * nor metrics (for one seed or under `seed-N/`).
 */
export const read = (dir: string): Run => {
  const abs = resolve(dir)
  if (!existsSync(abs))
    throw new NotARunDirectory({
      message: `${dir}: no such directory (expected a run directory written by cmkg run)`,
    })
  if (!statSync(abs).isDirectory())
    throw new NotARunDirectory({
      message: `${dir}: not a directory (expected a run directory written by cmkg run)`,
    })
  const programPath = join(abs, "program.json")
  if (!existsSync(programPath))
    throw new NotARunDirectory({
      message: `${dir}: not a cmkg run directory: program.json is missing (cmkg run writes it first, with results.json, metrics.jsonl and checkpoints/)`,
    })
  const programJson = Read.readJson(programPath, RunFiles.ProgramJson)
  const seedDirs = seedDirectories(abs)
  const seeds = seedDirs.length > 0 ? seedDirs.map((s) => readSeed(s.seed, s.dir)) : [readSeed(1, abs)]
  if (seeds.every((s) => s.results === undefined && s.metrics.length === 0))
    throw new NotARunDirectory({
      message: `${dir}: no results.json and no metrics.jsonl${seedDirs.length > 0 ? " in any seed-N/ directory" : ""}: the run has not trained a step yet`,
    })
  const results = seeds.flatMap((s) => (s.results === undefined ? [] : [s.results]))
  // From the seeds' results as they are now (a summary.json can predate seeds that other processes ran since).
  const summary = results.length > 0 ? Summary.aggregate(results) : undefined
  const p = programJson.program
  return {
    dir: abs,
    program: {
      name: p.name,
      description: p.description ?? "",
      metaParams: p.experiment?.metaParams ?? [],
    },
    options: programJson.options,
    seeds,
    summary,
  }
}

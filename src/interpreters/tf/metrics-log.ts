/**
 * A run directory's `metrics.jsonl`: one JSON line per training step (and per
 * gate step, exit or evaluation a runner reports). Every checkpoint records
 * the log's length, and a resumed run cuts the log back to it: the steps that
 * ran after that checkpoint run again, and are logged once.
 *
 * @module
 */
import { appendFileSync, existsSync, rmSync, statSync, truncateSync } from "node:fs"
import { join } from "node:path"

export interface MetricsLog {
  readonly path: string
  readonly append: (record: object) => void
  /** The log's length in bytes (what a checkpoint records). */
  readonly bytes: () => number
}

/**
 * The log of the run in `out`. `resumeAt` undefined: a fresh run, the log
 * starts empty. A number: a run resumed from a checkpoint that recorded that
 * length; anything written after it is cut.
 */
export const open = (out: string, resumeAt?: number): MetricsLog => {
  const path = join(out, "metrics.jsonl")
  const bytes = () => (existsSync(path) ? statSync(path).size : 0)
  if (resumeAt === undefined) rmSync(path, { force: true })
  else if (bytes() > resumeAt) truncateSync(path, resumeAt)
  return { path, append: (record) => appendFileSync(path, `${JSON.stringify(record)}\n`), bytes }
}

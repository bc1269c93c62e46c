/**
 * A run directory's journal, kept the same way by both runners (the staged
 * one and DIR-Net's): numbered checkpoints of the world with the runner's
 * position, and `metrics.jsonl`, one JSON line per step the runner reports.
 * Every checkpoint also records the wall time so far and the log's length;
 * resuming from it restores the clock and cuts the log back, so the steps
 * that ran after that checkpoint, and run again, are logged once.
 *
 * @module
 */
import { existsSync, rmSync, statSync, truncateSync } from "node:fs"
import { join } from "node:path"
import { appendFile } from "../../run-dir/write-file.ts"
import * as Checkpoint from "./checkpoint.ts"

/** What every runner's position carries for the journal (absent `metricsBytes`: an older checkpoint). */
export interface Progress {
  readonly seconds: number
  readonly metricsBytes?: number
}

export interface Journal<P extends Progress> {
  /** The checkpoint the run resumes from; undefined when it starts from the beginning. */
  readonly resumed:
    | { readonly world: Checkpoint.World; readonly position: P; readonly dir: string }
    | undefined
  /** Seconds of the run so far, across resumes. */
  readonly elapsed: () => number
  /** Appends one line to `metrics.jsonl`. */
  readonly log: (record: object) => void
  /** Writes the next numbered checkpoint: `world` at `position`, with the time and the log's length. */
  readonly checkpoint: (world: Checkpoint.World, position: P) => string
  /** The newest checkpoint, resumed from or written; undefined before the first. */
  readonly last: () => string | undefined
}

/**
 * The journal of the run in `out`. With `resume`, from the latest checkpoint
 * when there is one; otherwise the run starts from the beginning and earlier
 * checkpoints and metrics are removed.
 */
export const open = <P extends Progress>(out: string, resume: boolean): Journal<P> => {
  const loaded = resume ? Checkpoint.loadLatest<P>(out) : undefined
  const path = join(out, "metrics.jsonl")
  const bytes = () => (existsSync(path) ? statSync(path).size : 0)
  if (loaded === undefined) {
    rmSync(Checkpoint.directory(out), { recursive: true, force: true })
    rmSync(path, { force: true })
  } else {
    // Checkpoints written before they recorded the log's length keep the log whole.
    const keep = loaded.position.metricsBytes ?? Number.POSITIVE_INFINITY
    if (bytes() > keep) truncateSync(path, keep)
  }
  let serial = loaded?.serial ?? 0
  let last = loaded?.dir
  const started = Date.now() - (loaded?.position.seconds ?? 0) * 1000
  const elapsed = () => (Date.now() - started) / 1000
  return {
    resumed:
      loaded === undefined ? undefined : { world: loaded.world, position: loaded.position, dir: loaded.dir },
    elapsed,
    log: (record) => appendFile(path, `${JSON.stringify(record)}\n`),
    checkpoint: (world, position) => {
      serial += 1
      last = Checkpoint.saveNumbered(
        out,
        world,
        { ...position, seconds: elapsed(), metricsBytes: bytes() },
        serial,
      )
      return last
    },
    last: () => last,
  }
}

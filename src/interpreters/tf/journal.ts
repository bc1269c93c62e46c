/**
 * A run directory's journal, kept the same way by both runners (the staged
 * one and DIR-Net's): numbered checkpoints of the world with the runner's
 * position, and `metrics.jsonl`, one JSON line per step the runner reports.
 * Every checkpoint also records the wall time so far and the log's length;
 * resuming from it restores the clock and cuts the log back, so the steps
 * that ran after that checkpoint, and run again, are logged once.
 *
 * Resuming never removes a checkpoint or the log unless asked to
 * (`restart`): a checkpoint that does not load is skipped for the newest one
 * that does, saying why; new checkpoints are numbered past every existing
 * one, so a checkpoint written after `LATEST` was (a kill between the two)
 * or a `LATEST` pointed back never blocks the next one.
 *
 * @module
 */
import { existsSync, readFileSync, rmSync, statSync, truncateSync } from "node:fs"
import { join } from "node:path"
import { Data, type Schema } from "effect"
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

export interface Options {
  /** Continue from the newest checkpoint that loads. */
  readonly resume: boolean
  /**
   * With `resume`, when there is nothing to resume from but checkpoints or
   * metrics exist: start over, removing them (without it the journal refuses).
   */
  readonly restart?: boolean | undefined
  /** Where the journal says what it skipped, removed or found missing (one line each). */
  readonly note: (line: string) => void
  /** Decodes the runner's own fields of a checkpoint's position (the journal's own are always checked). */
  readonly position?: Schema.ConstraintDecoder<unknown> | undefined
}

/** `--resume` found checkpoints or metrics but nothing it can continue from, and `restart` was not given. */
export class CannotResume extends Data.TaggedError("CannotResume")<{ readonly message: string }> {}

const lineCount = (path: string): number =>
  existsSync(path)
    ? readFileSync(path, "utf8")
        .split("\n")
        .filter((l) => l.trim() !== "").length
    : 0

/**
 * The journal of the run in `out`. With `resume`, from the newest checkpoint
 * that loads; otherwise the run starts from the beginning and earlier
 * checkpoints and metrics are removed.
 */
export const open = <P extends Progress>(out: string, options: Options): Journal<P> => {
  const { note } = options
  const path = join(out, "metrics.jsonl")
  const bytes = () => (existsSync(path) ? statSync(path).size : 0)
  for (const dir of [Checkpoint.directory(out), join(out, "models")])
    for (const p of Checkpoint.removeLeftovers(dir))
      note(`removed ${p}: left half-written by a process that is no longer running`)
  const startOver = () => {
    rmSync(Checkpoint.directory(out), { recursive: true, force: true })
    rmSync(path, { force: true })
  }

  let loaded: Checkpoint.Numbered<P> | undefined
  if (options.resume) {
    const newest = Checkpoint.loadNewest<P>(out, options.position)
    loaded = newest.loaded
    for (const s of newest.skipped) note(`skipping ${s.dir}: ${s.why}`)
    if (loaded === undefined) {
      const existing = Checkpoint.numbers(out)
      const lines = lineCount(path)
      const found = [
        ...(existing.length > 0
          ? [`${existing.length} checkpoint(s), none of which loads (${newest.skipped[0]?.why ?? "?"})`]
          : []),
        ...(lines > 0 ? [`${path} with ${lines} line(s)`] : []),
      ].join(" and ")
      if (found !== "") {
        if (options.restart !== true)
          throw new CannotResume({
            message: `${out}: nothing to resume from, but it holds ${found}; nothing was removed (--restart starts over, removing them)`,
          })
        note(`--restart: nothing to resume from in ${out}; starting over, removing ${found}`)
      } else note(`--resume: no checkpoint in ${out}, starting from the beginning`)
      startOver()
    } else {
      if (newest.latest === undefined)
        note(
          `${join(Checkpoint.directory(out), "LATEST")} is missing: resuming from the newest checkpoint that loads`,
        )
      const serial = loaded.serial
      const newer = Checkpoint.numbers(out).filter((n) => n > serial)
      if (newer.length > 0)
        note(
          `${newer.map((n) => join(Checkpoint.directory(out), Checkpoint.numberName(n))).join(", ")}: newer than the checkpoint resumed from, left in place; the next checkpoint is ${Checkpoint.numberName(newer.at(-1)! + 1)}`,
        )
      // Checkpoints written before they recorded the log's length keep the log whole.
      const keep = loaded.position.metricsBytes
      if (keep !== undefined) {
        const size = bytes()
        if (!existsSync(path) && keep > 0)
          note(
            `${path} is missing: the training curves up to ${loaded.dir} are lost; it restarts with the steps after that checkpoint`,
          )
        else if (size < keep)
          note(
            `${path} holds ${size} bytes, ${keep} at ${loaded.dir}: some of the training curves up to that checkpoint are lost`,
          )
        else if (size > keep) truncateSync(path, keep)
      }
    }
  } else startOver()

  let previous = loaded?.serial
  let last = loaded?.dir
  const started = Date.now() - (loaded?.position.seconds ?? 0) * 1000
  const elapsed = () => (Date.now() - started) / 1000
  return {
    resumed:
      loaded === undefined ? undefined : { world: loaded.world, position: loaded.position, dir: loaded.dir },
    elapsed,
    log: (record) => appendFile(path, `${JSON.stringify(record)}\n`),
    checkpoint: (world, position) => {
      // Past every checkpoint on disk: a newer one left by a kill before LATEST was written never blocks this one.
      const serial = Math.max(previous ?? 0, ...Checkpoint.numbers(out)) + 1
      last = Checkpoint.saveNumbered(
        out,
        world,
        { ...position, seconds: elapsed(), metricsBytes: bytes() },
        serial,
        previous,
      )
      previous = serial
      return last
    },
    last: () => last,
  }
}

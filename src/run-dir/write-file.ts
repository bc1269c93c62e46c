/**
 * Writing a run directory's files so that a failure names the file. Node's
 * errors from the write itself carry no path (`ENOSPC: no space left on
 * device, write`): the disk filling up during a long run would otherwise
 * reach the user without saying where. Every failure becomes one line: the
 * file, what went wrong, and what to do.
 *
 * @module
 */
import { appendFileSync, writeFileSync } from "node:fs"
import { Data } from "effect"

/** Writing a file of the run directory failed; the message is one line naming the file and what to do. */
export class WriteFailed extends Data.TaggedError("WriteFailed")<{
  readonly path: string
  readonly code: string | undefined
  readonly message: string
}> {}

/** What the system's error code means, and what the user can do about it. */
const reasons: Record<string, readonly [what: string, todo: string]> = {
  ENOSPC: ["no space left on device", "free space on that disk or choose another --out"],
  EDQUOT: ["disk quota exceeded", "free space on that disk or choose another --out"],
  EROFS: ["read-only file system", "choose another --out"],
  EACCES: ["permission denied", "make it writable or choose another --out"],
  EPERM: ["operation not permitted", "make it writable or choose another --out"],
  EIO: ["input/output error", "check that disk or choose another --out"],
  ENOTDIR: ["a component of the path is not a directory", "choose another --out"],
  EEXIST: ["already exists and is not a directory", "choose another --out"],
}

/** One line for a system error `e` that happened on `path` (`verb`: what was being done). */
export const describe = (path: string, e: unknown, verb = "writing"): string => {
  const code = (e as NodeJS.ErrnoException | undefined)?.code
  const known = code === undefined ? undefined : reasons[code]
  if (known !== undefined) return `${path}: ${verb} failed: ${known[0]} (${code}); ${known[1]}`
  const why = e instanceof Error ? e.message : String(e)
  return `${path}: ${verb} failed: ${why}; choose another --out`
}

const failed = (path: string, e: unknown, verb: string): WriteFailed =>
  new WriteFailed({
    path,
    code: (e as NodeJS.ErrnoException | undefined)?.code,
    message: describe(path, e, verb),
  })

/** `writeFileSync`, failing with {@link WriteFailed}. */
export const writeFile = (path: string, data: string | NodeJS.ArrayBufferView): void => {
  try {
    writeFileSync(path, data)
  } catch (e) {
    throw failed(path, e, "writing")
  }
}

/** `appendFileSync`, failing with {@link WriteFailed}. */
export const appendFile = (path: string, text: string): void => {
  try {
    appendFileSync(path, text)
  } catch (e) {
    throw failed(path, e, "appending")
  }
}

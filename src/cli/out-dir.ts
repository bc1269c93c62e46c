/**
 * `--out`: refuse a path that cannot be a run directory before anything is
 * created, then create it.
 *
 * Node's recursive `mkdir` never returns on `/proc/x` (the kernel answers
 * ENOENT, Node retries the parent, forever), and a file where a directory
 * should be surfaces as a raw `ENOTDIR`/`EEXIST`. Here the path is walked up
 * to its nearest existing ancestor, which must be a directory, writable, and
 * on a real file system; the missing directories below it are then created
 * one at a time, each failure one line naming the path and what to do.
 *
 * @module
 */
import {
  accessSync,
  constants,
  lstatSync,
  mkdirSync,
  realpathSync,
  type Stats,
  statfsSync,
  statSync,
} from "node:fs"
import { basename, dirname, join, resolve } from "node:path"
import { Effect } from "effect"
import { describe, writeFile } from "../run-dir/write-file.ts"
import { BadInvocation, RunFailed } from "./errors.ts"

/** statfs(2) magic numbers of kernel file systems that hold no user files (linux/magic.h). */
const VIRTUAL: ReadonlyMap<number, string> = new Map([
  [0x9fa0, "proc"],
  [0x62656572, "sysfs"],
  [0x1cd1, "devpts"],
  [0x27e0eb, "cgroup"],
  [0x63677270, "cgroup2"],
  [0x64626720, "debugfs"],
  [0x74726163, "tracefs"],
  [0x73636673, "securityfs"],
  [0xcafe4a11, "bpf"],
  [0x6165676c, "pstore"],
  [0x62656570, "configfs"],
  [0x65735543, "fusectl"],
  [0x42494e4d, "binfmt_misc"],
  [0xde5e81e4, "efivarfs"],
  [0x19800202, "mqueue"],
  [0x6e736673, "nsfs"],
])

/** The kernel's trees by path: /dev is devtmpfs, which statfs reports as tmpfs (its /dev/shm is a real tmpfs). */
const KERNEL_TREES: ReadonlyArray<readonly [root: string, fs: string]> = [
  ["/proc", "proc"],
  ["/sys", "sysfs"],
  ["/dev", "devtmpfs"],
]
const virtualByPath = (real: string): string | undefined => {
  if (real === "/dev/shm" || real.startsWith("/dev/shm/")) return undefined
  return KERNEL_TREES.find(([root]) => real === root || real.startsWith(`${root}/`))?.[1]
}

/** An existing path with its stats, or why there is none to use. */
type Found =
  | { readonly _tag: "Found"; readonly path: string; readonly stats: Stats }
  | { readonly _tag: "Problem"; readonly message: string }

/** The nearest existing ancestor of `abs` (or `abs` itself) with its stats, following symbolic links. */
const nearestExisting = (abs: string): Found => {
  let p = abs
  for (;;) {
    try {
      lstatSync(p)
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      // ENOTDIR: an ancestor is a file; keep walking up to it.
      if ((code === "ENOENT" || code === "ENOTDIR") && dirname(p) !== p) {
        p = dirname(p)
        continue
      }
      return { _tag: "Problem", message: describe(p, e, "looking at it") }
    }
    try {
      return { _tag: "Found", path: p, stats: statSync(p) }
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      if (code === "ENOENT")
        return {
          _tag: "Problem",
          message: `${p} is a symbolic link to a missing target; choose another --out`,
        }
      return { _tag: "Problem", message: describe(p, e, "looking at it") }
    }
  }
}

/** Where a run directory `out` would go: its nearest existing ancestor, or why it cannot be one. */
const inspect = (out: string): Found => {
  const found = nearestExisting(resolve(out))
  if (found._tag === "Problem") return { _tag: "Problem", message: `--out ${out}: ${found.message}` }
  const { path, stats } = found
  if (!stats.isDirectory())
    return {
      _tag: "Problem",
      message:
        path === resolve(out)
          ? `--out ${out}: ${path} exists and is not a directory (EEXIST); choose another --out`
          : `--out ${out}: ${path} is a file, not a directory (ENOTDIR); choose another --out`,
    }
  let real = path
  try {
    real = realpathSync(path)
  } catch {}
  let type: string | undefined
  try {
    type = VIRTUAL.get(Number(statfsSync(real).type))
  } catch {}
  const kind = type ?? virtualByPath(real)
  if (kind !== undefined)
    return {
      _tag: "Problem",
      message: `--out ${out}: ${real} is on ${kind} (a virtual file system of the kernel), where no run directory can be written; choose another --out`,
    }
  try {
    accessSync(path, constants.W_OK | constants.X_OK)
  } catch (e) {
    return { _tag: "Problem", message: `--out ${out}: ${describe(path, e, "checking that it is writable")}` }
  }
  return found
}

/** Why `out` cannot be a run directory, or undefined when it can. Creates nothing. */
export const problem = (out: string): string | undefined => {
  const r = inspect(out)
  return r._tag === "Problem" ? r.message : undefined
}

/** Refuse an `--out` that cannot be a run directory, before anything is created. */
export const check = (out: string): Effect.Effect<void, BadInvocation> => {
  const why = problem(out)
  return why === undefined ? Effect.void : Effect.fail(new BadInvocation({ message: why }))
}

/** Check `out` again (it may have changed since), then create the directories it needs. */
export const create = (out: string): Effect.Effect<void, BadInvocation> =>
  Effect.gen(function* () {
    const found = inspect(out)
    if (found._tag === "Problem") return yield* new BadInvocation({ message: found.message })
    // One directory at a time: a non-recursive mkdir fails where the recursive one may loop.
    const missing: string[] = []
    for (let p = resolve(out); p !== found.path; p = dirname(p)) missing.unshift(basename(p))
    let p = found.path
    for (const name of missing) {
      p = join(p, name)
      try {
        mkdirSync(p)
      } catch (e) {
        return yield* new BadInvocation({ message: `--out ${out}: ${describe(p, e, "creating it")}` })
      }
    }
  })

/** Write one file of the run directory; a failure (a full disk) is one line naming the file. */
export const write = (path: string, text: string): Effect.Effect<void, RunFailed> =>
  Effect.try({
    try: () => writeFile(path, text),
    catch: (e) => new RunFailed({ message: e instanceof Error ? e.message : String(e) }),
  })

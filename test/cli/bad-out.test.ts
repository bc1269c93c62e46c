/**
 * `cmkg run --out` that cannot be a run directory, and `--threads` out of range: refused before
 * anything is created, in one line that names the path (or the flag) and says what to do. A full
 * disk while writing names the file. (Issue 16, items 7 and 8.)
 */
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  symlinkSync,
  writeFileSync,
} from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, it } from "node:test"
import { Cause, Effect, Exit } from "effect"
import * as OutDir from "../../src/cli/out-dir.ts"
import * as Run from "../../src/cli/run.ts"
import * as Checkpoint from "../../src/interpreters/tf/checkpoint.ts"
import * as Journal from "../../src/interpreters/tf/journal.ts"

const fixture = "test/fixtures/programs/tiny-experiment.ts"
const scratch = () => mkdtempSync(join(tmpdir(), "cmkg-bad-out-"))
/** `cmkg run` with a deadline: a hang is a failure, not a stuck suite. */
const cmkg = (args: readonly string[], options: { uid?: number; gid?: number } = {}) =>
  spawnSync(process.execPath, ["bin/cmkg.js", "run", fixture, ...args], {
    encoding: "utf8",
    timeout: 60_000,
    ...options,
  })
/** The one line the CLI printed, checked to be one line and to start with `cmkg: `. */
const oneLine = (stderr: string): string => {
  const lines = stderr.trim().split("\n")
  assert.equal(lines.length, 1, `one line expected, got:\n${stderr}`)
  assert.match(lines[0]!, /^cmkg: /)
  return lines[0]!
}
/** The message of the typed error `cmkg run` (in this process) fails with. */
const failure = async (args: Partial<Run.RunArgs>): Promise<string> => {
  const exit = await Effect.runPromiseExit(
    Run.run({
      program: fixture,
      scale: "tiny",
      seeds: 1,
      backend: "auto",
      out: undefined,
      resume: false,
      data: undefined,
      ...args,
    }),
  )
  assert.ok(Exit.isFailure(exit), "cmkg run succeeded")
  const error = Cause.squash(exit.cause) as { message?: string }
  return error.message ?? String(error)
}
const refusal = (out: string): string => {
  const why = OutDir.problem(out)
  assert.ok(why !== undefined, `${out} was accepted`)
  return why
}

describe("cmkg run --out", () => {
  it("/proc/… is refused at once (Node's recursive mkdir loops there forever)", () => {
    const r = cmkg(["--out", "/proc/cmkg-bad-out/run"])
    assert.equal(r.signal, null, "cmkg run hung on --out /proc/… and was killed")
    assert.equal(r.status, 2, r.stderr)
    const line = oneLine(r.stderr)
    assert.match(line, /--out \/proc\/cmkg-bad-out\/run: \/proc is on proc \(a virtual file system/)
    assert.match(line, /choose another --out/)
  })

  it("cmkg data preview --out /proc/… is refused at once too", () => {
    const r = spawnSync(
      process.execPath,
      ["bin/cmkg.js", "data", "preview", "--out", "/proc/cmkg-bad-out/p"],
      {
        encoding: "utf8",
        timeout: 60_000,
      },
    )
    assert.equal(r.signal, null, "cmkg data preview hung on --out /proc/… and was killed")
    assert.equal(r.status, 2, r.stderr)
    assert.match(oneLine(r.stderr), /--out \/proc\/cmkg-bad-out\/p: \/proc is on proc/)
  })

  it("/sys and /dev are refused too (by file system type and by path), /dev/shm and /tmp are not", () => {
    assert.match(refusal("/sys/cmkg-bad-out"), /\/sys is on sysfs/)
    assert.match(refusal("/proc/self/cmkg-bad-out"), /is on proc/)
    assert.match(refusal("/dev/cmkg-bad-out/run"), /\/dev is on devtmpfs/)
    assert.equal(existsSync("/dev/cmkg-bad-out"), false)
    if (existsSync("/dev/shm")) assert.equal(OutDir.problem("/dev/shm/cmkg-bad-out/run"), undefined)
    assert.equal(OutDir.problem(join(scratch(), "a", "b")), undefined)
  })

  it("a file where a directory is needed is named (ENOTDIR below it, EEXIST at it), a dangling link too", () => {
    const dir = scratch()
    const file = join(dir, "notes.txt")
    writeFileSync(file, "x")
    assert.equal(
      refusal(join(file, "run", "x")),
      `--out ${join(file, "run", "x")}: ${file} is a file, not a directory (ENOTDIR); choose another --out`,
    )
    assert.equal(
      refusal(file),
      `--out ${file}: ${file} exists and is not a directory (EEXIST); choose another --out`,
    )
    symlinkSync(join(dir, "missing"), join(dir, "link"))
    assert.match(
      refusal(join(dir, "link")),
      /link is a symbolic link to a missing target; choose another --out$/,
    )
    assert.match(refusal(join(dir, "link", "run")), /link is a symbolic link to a missing target/)
  })

  it("create makes every missing directory, and nothing when it refuses", async () => {
    const dir = scratch()
    await Effect.runPromise(OutDir.create(join(dir, "a", "b", "c")))
    assert.ok(existsSync(join(dir, "a", "b", "c")))
    writeFileSync(join(dir, "f"), "x")
    const exit = await Effect.runPromiseExit(OutDir.create(join(dir, "f", "g")))
    assert.ok(Exit.isFailure(exit))
    assert.deepEqual(readdirSync(dir).sort(), ["a", "f"])
  })

  it("a directory the user cannot write to is named before anything is created", () => {
    const dir = scratch()
    chmodSync(dir, 0o755)
    const locked = join(dir, "locked")
    mkdirSync(locked, 0o555)
    chmodSync(locked, 0o555)
    // root writes anywhere: run as nobody then.
    const asOther = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {}
    const r = cmkg(["--out", join(locked, "run")], asOther)
    assert.equal(r.status, 2, r.stderr)
    const line = oneLine(r.stderr)
    assert.ok(
      line.includes(
        `--out ${join(locked, "run")}: ${locked}: checking that it is writable failed: permission denied (EACCES)`,
      ),
      line,
    )
    assert.match(line, /choose another --out$/)
    assert.deepEqual(readdirSync(locked), [])
  })

  it("a full disk while writing names the file and says to free space or choose another --out", async () => {
    const out = scratch()
    // Writes through this link fail with ENOSPC: a real full device.
    symlinkSync("/dev/full", join(out, "program.json"))
    assert.equal(
      await failure({ out, backend: "cpu" }),
      `${join(out, "program.json")}: writing failed: no space left on device (ENOSPC); free space on that disk or choose another --out`,
    )
  })
})

describe("a full disk under the runner", () => {
  it("metrics.jsonl: the journal's append names the file", () => {
    const out = scratch()
    const journal = Journal.open(out, { resume: false, note: () => {} })
    symlinkSync("/dev/full", join(out, "metrics.jsonl"))
    assert.throws(
      () => journal.log({ step: 1 }),
      new RegExp(
        `^WriteFailed: ${join(out, "metrics.jsonl")}: appending failed: no space left on device \\(ENOSPC\\); free space on that disk or choose another --out$`,
      ),
    )
  })

  it("a checkpoint's small files (LATEST) name the file they were written to", () => {
    const out = scratch()
    const latest = join(out, "LATEST")
    symlinkSync("/dev/full", `${latest}.partial-${process.pid}`)
    assert.throws(
      () => Checkpoint.writeAtomically(latest, "000001"),
      (e: Error) =>
        e.message ===
        `${latest}.partial-${process.pid}: writing failed: no space left on device (ENOSPC); free space on that disk or choose another --out`,
    )
  })
})

describe("cmkg run --threads", () => {
  it("0 is refused as a --threads problem (it was blamed on --backend auto)", () => {
    const r = cmkg(["--threads", "0", "--out", join(scratch(), "run")])
    assert.equal(r.status, 2, r.stderr)
    assert.equal(
      oneLine(r.stderr),
      "cmkg: --threads must be a positive integer (CPU threads for the native kernels), got 0",
    )
  })

  it("a negative count is refused before anything loads", async () => {
    assert.equal(
      await failure({ program: "no-such-program.ts", threads: -3, out: join(scratch(), "run") }),
      "--threads must be a positive integer (CPU threads for the native kernels), got -3",
    )
  })
})

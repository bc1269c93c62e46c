/**
 * `cmkg run --resume` is safe (issue 16): it refuses a run directory that
 * holds another run before changing anything in it; checkpoint numbers
 * never jam (a checkpoint newer than LATEST, leftovers of dead processes);
 * and Ctrl-C's "Continue with" is the whole command, which resumes the seed
 * that was interrupted. One epoch per stage (CMKG_TEST_EPOCHS=1) keeps the
 * runs short; each scenario starts from a copy of one finished run.
 */
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { after, test } from "node:test"
import "@tensorflow/tfjs-backend-cpu"
import * as Checkpoint from "../../src/interpreters/tf/checkpoint.ts"
import { results, snapshot } from "./helpers.ts"

const fixture = "test/fixtures/programs/tiny-experiment.ts"
const env = { ...process.env, CMKG_TEST_EPOCHS: "1" }
const root = mkdtempSync(join(tmpdir(), "cmkg-resume-safety-"))
after(() => rmSync(root, { recursive: true, force: true }))
const cmkg = (...args: string[]) =>
  spawnSync(process.execPath, ["bin/cmkg.js", ...args], { encoding: "utf8", env })

/** A finished one-seed run, copied for each scenario. */
const base = join(root, "base")
let reference: unknown
const copy = (name: string): string => {
  assert.ok(reference !== undefined, "the reference run failed")
  const out = join(root, name)
  cpSync(base, out, { recursive: true })
  return out
}

test("the reference run", () => {
  const r = cmkg("run", fixture, "--out", base)
  assert.equal(r.status, 0, r.stderr)
  reference = results(base)
  assert.deepEqual(readdirSync(join(base, "checkpoints")).sort(), ["000001", "000002", "LATEST"])
})

test("--resume with another scale, program or parameter shapes is refused before anything in the run directory changes", () => {
  const out = copy("another-run")
  const before = snapshot(out)
  const cases: [string[], RegExp][] = [
    [
      [fixture, "--scale", "small"],
      /program\.json: another run: --scale tiny there, --scale small in the command;/,
    ],
    [
      ["test/fixtures/programs/tiny-dirnet.ts"],
      /program\.json: another run: program "tiny-experiment" there, "dirnet-stb" in the command;/,
    ],
    [
      ["test/fixtures/programs/tiny-experiment-wider.ts"],
      /program\.json: another run: parameter student\/conv1\/kernel is 3×3×3×4 there, 3×3×3×6 in the command's program;/,
    ],
  ]
  for (const [args, message] of cases) {
    const r = cmkg("run", ...args, "--out", out, "--resume")
    assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`)
    assert.match(r.stderr, message)
    assert.match(r.stderr, /nothing was changed .*--restart/)
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr)
    assert.deepEqual(snapshot(out), before, args.join(" "))
  }
})

test("--resume --restart over another run's directory starts over", () => {
  const out = copy("restart")
  const r = cmkg("run", fixture, "--scale", "small", "--out", out, "--resume", "--restart")
  assert.equal(r.status, 0, r.stderr)
  assert.match(
    r.stdout,
    /--restart: .*program\.json: another run: --scale tiny there, --scale small .*; starting over/,
  )
  assert.equal(JSON.parse(readFileSync(join(out, "program.json"), "utf8")).options.scale, "small")
  assert.deepEqual(results(out), reference)
})

test("a checkpoint newer than LATEST, and leftovers of a dead process, never jam the numbering", () => {
  const out = copy("newer")
  const dir = join(out, "checkpoints")
  // As after a kill between renaming 000002 into place and writing LATEST (or LATEST pointed back by hand).
  writeFileSync(join(dir, "LATEST"), "000001")
  const dead = spawnSync(process.execPath, ["-e", "0"]).pid!
  mkdirSync(join(dir, `000003.partial-${dead}`))
  writeFileSync(join(dir, `000003.partial-${dead}`, "weights.bin"), "half")
  writeFileSync(join(dir, `LATEST.partial-${dead}`), "0000")
  const r = cmkg("run", fixture, "--out", out, "--resume")
  assert.equal(r.status, 0, r.stderr)
  assert.ok(r.stdout.includes(`resuming from ${join(dir, "000001")}: `), r.stdout)
  assert.ok(
    r.stdout.includes(
      `${join(dir, "000002")}: newer than the checkpoint resumed from, left in place; the next checkpoint is 000003`,
    ),
    r.stdout,
  )
  assert.ok(r.stdout.includes(`removed ${join(dir, `000003.partial-${dead}`)}: left half-written`), r.stdout)
  assert.deepEqual(
    readdirSync(dir).filter((n) => n.includes(".partial-")),
    [],
  )
  assert.equal(readFileSync(join(dir, "LATEST"), "utf8"), "000003")
  for (const n of readdirSync(dir).filter((n) => /^\d{6}$/.test(n))) Checkpoint.load(join(dir, n))
  assert.deepEqual(results(out), reference)
})

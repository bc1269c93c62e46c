/**
 * `cmkg run` end to end on a tiny experiment: refusal of ill-formed programs
 * before training, resume after SIGKILL and after Ctrl-C giving the same
 * results as an uninterrupted run, and checkpoints never half-written.
 */
import assert from "node:assert/strict"
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { test } from "node:test"
import "@tensorflow/tfjs-backend-cpu"
import * as Checkpoint from "../../src/interpreters/tf/checkpoint.ts"
import { results, steps } from "./helpers.ts"

const fixture = "test/fixtures/programs/tiny-experiment.ts"
const scratch = () => mkdtempSync(join(tmpdir(), "cmkg-run-"))
const cmkg = (...args: string[]) =>
  spawnSync(process.execPath, ["bin/cmkg.js", ...args], { encoding: "utf8" })
const start = (...args: string[]): ChildProcess =>
  spawn(process.execPath, ["bin/cmkg.js", ...args], { stdio: ["ignore", "ignore", "pipe"] })

const lines = (file: string) =>
  existsSync(file) ? readFileSync(file, "utf8").trim().split("\n").filter(Boolean).length : 0
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const exited = (p: ChildProcess) => new Promise<number | null>((r) => p.on("exit", (code) => r(code)))
/** Waits until `metrics.jsonl` has at least `n` lines. */
const waitForSteps = async (out: string, n: number) => {
  while (lines(join(out, "metrics.jsonl")) < n) await sleep(100)
}

/** Every checkpoint under its final name loads completely (manifest sizes match the data). */
const assertCheckpointsWhole = (out: string) => {
  const dir = join(out, "checkpoints")
  const names = existsSync(dir) ? readdirSync(dir).filter((n) => /^\d{6}$/.test(n)) : []
  assert.ok(names.length > 0, `no checkpoint under ${dir}`)
  for (const name of names) {
    const loaded = Checkpoint.load(join(dir, name))
    assert.ok(Object.keys(loaded.groups).length > 0, name)
  }
  if (existsSync(join(dir, "LATEST")))
    assert.ok(existsSync(join(dir, readFileSync(join(dir, "LATEST"), "utf8").trim(), "model.json")))
}

let reference: unknown
let referenceSteps: unknown

test("an uninterrupted run writes metrics, checkpoints and results", () => {
  const out = scratch()
  const r = cmkg("run", fixture, "--out", out)
  assert.equal(r.status, 0, r.stderr)
  reference = results(out)
  referenceSteps = steps(out)
  for (const f of [
    "program.json",
    "metrics.jsonl",
    "results.json",
    "results.md",
    "summary.md",
    "checkpoints/LATEST",
  ])
    assert.ok(existsSync(join(out, f)), f)
  // 3 epochs × 6 steps for each of the two trained models.
  assert.equal(lines(join(out, "metrics.jsonl")), 36)
  assertCheckpointsWhole(out)
})

test("SIGKILL mid-training, then --resume, ends with the uninterrupted run's results; checkpoints are never half-written", async () => {
  const out = scratch()
  // Kill twice at different points (during the teacher, then during the student), checking checkpoints after each kill.
  for (const atStep of [9, 26]) {
    const p = start("run", fixture, "--out", out, ...(atStep === 9 ? [] : ["--resume"]))
    await waitForSteps(out, atStep)
    // The kill lands mid-run: the run is still going, dies of the signal, before its last step and results.
    assert.equal(p.exitCode, null, `the run had already exited at step ${atStep}`)
    p.kill("SIGKILL")
    assert.equal(await exited(p), null)
    assert.ok(lines(join(out, "metrics.jsonl")) < 36 && !existsSync(join(out, "results.json")))
    assertCheckpointsWhole(out)
  }
  const r = cmkg("run", fixture, "--out", out, "--resume")
  assert.equal(r.status, 0, r.stderr)
  assert.deepEqual(results(out), reference)
  // Steps re-run after each resume are logged once, with the uninterrupted run's losses.
  assert.deepEqual(steps(out), referenceSteps)
})

test("Ctrl-C stops after writing a checkpoint, and --resume completes identically", async () => {
  const out = scratch()
  const p = start("run", fixture, "--out", out)
  await waitForSteps(out, 4)
  p.kill("SIGINT")
  assert.equal(await exited(p), 130)
  assertCheckpointsWhole(out)
  const r = cmkg("run", fixture, "--out", out, "--resume")
  assert.equal(r.status, 0, r.stderr)
  // Where the signal lands depends on the machine's speed (later on a faster backend): any step of training.
  assert.match(r.stdout, /resuming from .*checkpoints\/\d{6}: stage [1-4]\/4, epoch \d+, step \d+/)
  assert.deepEqual(results(out), reference)
  assert.deepEqual(steps(out), referenceSteps)
})

test("processes that split the seeds (--first-seed) share one run directory; its summary covers every seed", () => {
  const out = scratch()
  for (const first of ["2", "1"]) {
    const r = cmkg("run", fixture, "--out", out, "--first-seed", first, "--seeds", "1")
    assert.equal(r.status, 0, r.stderr)
  }
  // Each seed in its own directory; seed 1 ends as the default layout's run did.
  assert.deepEqual(results(join(out, "seed-1")), reference)
  assert.ok(existsSync(join(out, "seed-2", "results.json")))
  const summary = JSON.parse(readFileSync(join(out, "summary.json"), "utf8"))
  assert.deepEqual(summary.seeds, [1, 2])
  assert.ok(summary.cells.length > 0 && summary.cells.every((c: { n: number }) => c.n === 2))
})

test("an ill-formed experiment exits 1 naming each problem, before any training", () => {
  const out = scratch()
  const r = cmkg("run", "test/fixtures/programs/bad-experiment.ts", "--out", out)
  assert.equal(r.status, 1)
  assert.match(
    r.stderr,
    /attention maps need equal spatial size, but tap "layer1" of "student" is 32×32 .* tap "layer2" of "teacher" is 16×16/,
  )
  assert.match(r.stderr, /"student"\/student: expects input 32×32×3, the data's "depth" is 32×32×1/)
  assert.match(r.stderr, /nothing was trained/)
  assert.ok(!existsSync(join(out, "metrics.jsonl")))
})

test("a missing data directory exits 1 naming it, before any training", () => {
  const out = scratch()
  const r = cmkg("run", "programs/cmkd-rhd.ts", "--data", "rhd=/no/such/RHD", "--out", out)
  assert.equal(r.status, 1)
  assert.match(r.stderr, /Rhd data directory \/no\/such\/RHD does not exist/)
  assert.ok(!existsSync(join(out, "metrics.jsonl")))
  const bad = cmkg("run", "programs/cmkd-rhd.ts", "--data", "mnist=/x")
  assert.equal(bad.status, 2)
})

test("a diverging stage stops the run naming the stage and step, keeping the last good checkpoint", () => {
  const out = scratch()
  const r = spawnSync(process.execPath, ["bin/cmkg.js", "run", fixture, "--out", out], {
    encoding: "utf8",
    env: { ...process.env, CMKG_TEST_EPOCHS: "1", CMKG_TEST_STUDENT_LR: "1e12" },
  })
  assert.equal(r.status, 1)
  const m =
    /stage "student", epoch 1, step (\d+): loss is not finite .*last good checkpoint kept at (\S+)/.exec(
      r.stderr,
    )
  assert.ok(m !== null, r.stderr)
  assertCheckpointsWhole(out)
  // The kept checkpoint is the one written after the teacher's epoch, and it loads.
  const kept = Checkpoint.load(m[2]!)
  assert.ok(Object.keys(kept.groups).includes("params/teacher"))
})

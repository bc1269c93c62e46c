/**
 * `cmkg run` of a DIR-Net program (test/fixtures/programs/tiny-dirnet.ts)
 * interrupted and resumed: SIGKILL in one phase, Ctrl-C in another (exit
 * 130 after a checkpoint), a resumed run that diverges (stops naming the
 * phase and step, keeping the last good checkpoint), then `--resume` ends
 * with the uninterrupted run's results and the same loss at every step;
 * checkpoints are never half-written.
 */
import assert from "node:assert/strict"
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { after, test } from "node:test"
import "@tensorflow/tfjs-backend-cpu"
import * as Checkpoint from "../../src/interpreters/tf/checkpoint.ts"

const fixture = "test/fixtures/programs/tiny-dirnet.ts"
const root = mkdtempSync(join(tmpdir(), "cmkg-run-dirnet-resume-"))
after(() => rmSync(root, { recursive: true, force: true }))

const cmkg = (args: readonly string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, ["bin/cmkg.js", ...args], { encoding: "utf8", env: { ...process.env, ...env } })
const start = (...args: string[]): ChildProcess =>
  spawn(process.execPath, ["bin/cmkg.js", ...args], { stdio: ["ignore", "ignore", "pipe"] })
const exited = (p: ChildProcess) => new Promise<number | null>((r) => p.on("exit", (code) => r(code)))
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const metrics = (out: string): Record<string, unknown>[] => {
  const file = join(out, "metrics.jsonl")
  if (!existsSync(file)) return []
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.endsWith("}"))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
}
/** Waits until `metrics.jsonl` has at least `n` lines. */
// Polled every 10 ms: with steps of a few tens of ms, a 100 ms poll let the Ctrl-C below land after the
// last training step, leaving the diverging copy nothing to train (seen on a quiet machine).
const waitForSteps = async (out: string, n: number) => {
  while (metrics(out).length < n) await sleep(10)
}
/** Every step's phase, epoch, step and loss (or the gate's −R̄), without the wall time. */
const losses = (out: string) => metrics(out).map(({ time: _, ...rest }) => rest)
/** results.json without the wall time. */
const results = (out: string) => {
  const { seconds: _, ...rest } = JSON.parse(readFileSync(join(out, "results.json"), "utf8"))
  return rest
}

/** Every checkpoint under its final name loads completely, and LATEST names one. */
const assertCheckpointsWhole = (out: string) => {
  const dir = join(out, "checkpoints")
  const names = readdirSync(dir).filter((n) => /^\d{6}$/.test(n))
  assert.ok(names.length > 0, `no checkpoint in ${dir}: ${readdirSync(dir).join(", ")}`)
  for (const name of names) {
    const loaded = Checkpoint.load(join(dir, name))
    assert.ok(Object.keys(loaded.groups).length > 0, name)
  }
  assert.ok(existsSync(join(dir, readFileSync(join(dir, "LATEST"), "utf8").trim(), "model.json")))
}

const latest = (out: string) =>
  join(out, "checkpoints", readFileSync(join(out, "checkpoints", "LATEST"), "utf8").trim())

let reference: { results: unknown; losses: unknown[] } | undefined

test("an uninterrupted DIR-Net run writes checkpoints beside its results", () => {
  const out = join(root, "reference")
  const r = cmkg(["run", fixture, "--out", out])
  assert.equal(r.status, 0, r.stderr)
  assertCheckpointsWhole(out)
  reference = { results: results(out), losses: losses(out) }
  // 8 training stages × 3 steps, and the gate's one full-batch step (its 20 updates).
  assert.equal(reference.losses.length, 8 * 3 + 1)
})

test("SIGKILL, then Ctrl-C (exit 130), then --resume: the uninterrupted run's results and losses; a diverging copy keeps its last good checkpoint", async () => {
  assert.ok(reference !== undefined, "the uninterrupted run failed")
  const out = join(root, "interrupted")
  // Metrics lines: stage 0 is 1–3, ir9-loop3's stages 4–9, ir9-loop3-no-amg's stages 10–15, ir9-loop4's
  // stage 0 16–18 and stages 19–24, the gate 25; then the rows and the sweep are evaluated.
  // SIGKILL during ir9-loop3's stage 1: its checkpoints hold the shared stage 0.
  const killed = start("run", fixture, "--out", out)
  await waitForSteps(out, 5)
  killed.kill("SIGKILL")
  await exited(killed)
  assertCheckpointsWhole(out)
  // As if killed while writing ir9-loop3's model and gate: the resumed run writes them again.
  for (const name of ["ir9-loop3", "ir9-loop3-gate"]) {
    mkdirSync(join(out, "models", name), { recursive: true })
    writeFileSync(join(out, "models", name, "model.json"), "{")
  }

  // Ctrl-C during ir9-loop4's stage 1: a checkpoint after the current step, exit 130.
  const interrupted = start("run", fixture, "--out", out, "--resume")
  // Lands in ir9-loop4's training (stage 7 or 8 of 25, depending on the machine's speed; the
  // assertions below hold for either).
  await waitForSteps(out, 20)
  interrupted.kill("SIGINT")
  assert.equal(await exited(interrupted), 130)
  assertCheckpointsWhole(out)
  const stoppedAt = latest(out)

  // From a copy of the stopped run, with a learning rate that diverges: the resumed run stops naming the
  // phase and step, keeping the last checkpoint written before the loss stopped being finite.
  const diverging = join(root, "diverging")
  cpSync(out, diverging, { recursive: true })
  const d = cmkg(["run", fixture, "--out", diverging, "--resume"], { CMKG_TEST_LR: "1e30" })
  assert.equal(d.status, 1, d.stderr)
  const m =
    /stage "ir9-loop4 · stage [12]", epoch 1, step (\d+): loss is not finite .*last good checkpoint kept at (\S+)/.exec(
      d.stderr,
    )
  assert.ok(m !== null, d.stderr)
  assert.equal(m[2], latest(diverging))
  assertCheckpointsWhole(diverging)
  assert.ok(Object.keys(Checkpoint.load(m[2]!).groups).includes("params/ir9-loop4-stage1"))

  // Resumed once more with the program's own settings, it ends as if never interrupted.
  const r = cmkg(["run", fixture, "--out", out, "--resume"])
  assert.equal(r.status, 0, r.stderr)
  assert.ok(r.stdout.includes(`resuming from ${stoppedAt}: `), r.stdout)
  assert.match(r.stdout, /resuming from .*: stage [78]\/25, epoch 1, step [1-3]\n/)
  assert.deepEqual(results(out), reference.results)
  assert.deepEqual(losses(out), reference.losses)
  for (const name of ["ir9-loop3", "ir9-loop3-gate"])
    assert.ok(Object.keys(Checkpoint.load(join(out, "models", name)).groups).length > 0, name)
})

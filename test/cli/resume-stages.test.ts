/**
 * Ctrl-C (SIGINT) during each kind of stage of a staged program
 * (test/fixtures/programs/tiny-meta.ts: a train stage, an evaluate stage, a
 * meta stage) interrupts the run, which writes a checkpoint of where it
 * stands and exits 130 after the line that says how to continue; resumed
 * from each, the run ends with the uninterrupted run's results and the same
 * loss at every step. The checkpoint is the interruption's own: its position
 * (mid-epoch, or at an evaluate stage) is one no epoch's end writes.
 */
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { after, test } from "node:test"
import { results, start, steps, waitForSteps } from "./helpers.ts"

const fixture = "test/fixtures/programs/tiny-meta.ts"
const root = mkdtempSync(join(tmpdir(), "cmkg-resume-stages-"))
after(() => rmSync(root, { recursive: true, force: true }))
const cmkg = (...args: string[]) =>
  spawnSync(process.execPath, ["bin/cmkg.js", ...args], { encoding: "utf8" })

// 2 epochs × 6 steps of the teacher (lines 1–12), then its evaluation, then 2 × 6 meta steps (lines 13–24).
const TEACHER_STEPS = 12

/** Starts `cmkg run` (resuming after the first), sends SIGINT once `metrics.jsonl` has `atStep` lines (and `wait` ms more). */
const interrupt = async (out: string, resume: boolean, atStep: number, wait = 0) => {
  const p = start(["run", fixture, "--out", out, ...(resume ? ["--resume"] : [])])
  await waitForSteps(out, atStep)
  if (wait > 0) await new Promise((r) => setTimeout(r, wait))
  assert.equal(p.child.exitCode, null, `the run had already exited at step ${atStep}`)
  p.child.kill("SIGINT")
  assert.equal(await p.closed, 130, p.output.stderr)
  const stopped = /stopped; checkpoint at (\S+)\. Continue with: (.*)\n/.exec(p.output.stdout)
  assert.ok(stopped !== null, p.output.stdout)
  assert.equal(stopped[2], `cmkg run ${fixture} --scale tiny --out ${out} --resume`)
  return { stdout: p.output.stdout, checkpoint: stopped[1]! }
}

/** The position a resumed run says it continues from: "stage S/4, epoch E, step N". */
const resumedAt = (stdout: string, checkpoint: string): string => {
  const m = new RegExp(`resuming from ${checkpoint.replaceAll(/[.*+?^${}()|[\]\\]/g, "\\$&")}: (.*)\n`).exec(
    stdout,
  )
  assert.ok(m !== null, stdout)
  return m[1]!
}

test("Ctrl-C in a train stage, an evaluate stage and a meta stage: each writes a checkpoint and exits 130; resumed, the run ends as if never interrupted", async () => {
  const reference = join(root, "reference")
  const r = cmkg("run", fixture, "--out", reference)
  assert.equal(r.status, 0, r.stderr)
  assert.equal(steps(reference).length, 2 * TEACHER_STEPS)

  const out = join(root, "interrupted")
  // In the teacher's training, mid-epoch.
  const inTeacher = await interrupt(out, false, 3)
  // In the teacher's evaluation: it starts after the teacher's last step and its epoch's checkpoint.
  const inEvaluation = await interrupt(out, true, TEACHER_STEPS, 100)
  assert.match(resumedAt(inEvaluation.stdout, inTeacher.checkpoint), /^stage 1\/4, epoch [12], step [1-6]$/)
  // In the meta stage, after two of its steps.
  const inMeta = await interrupt(out, true, TEACHER_STEPS + 2)
  assert.equal(resumedAt(inMeta.stdout, inEvaluation.checkpoint), "stage 2/4, epoch 1, step 0")

  const done = cmkg("run", fixture, "--out", out, "--resume")
  assert.equal(done.status, 0, done.stderr)
  assert.match(resumedAt(done.stdout, inMeta.checkpoint), /^stage 3\/4, epoch [12], step [1-6]$/)
  assert.deepEqual(results(out), results(reference))
  assert.deepEqual(steps(out), steps(reference))
})

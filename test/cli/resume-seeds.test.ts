/**
 * Ctrl-C's "Continue with" is the whole command (issue 16): with several
 * seeds it carries `--seeds`, and following it resumes the seed that was
 * interrupted, leaving the finished ones as they are. One epoch per stage
 * (CMKG_TEST_EPOCHS=1) keeps the runs short.
 */
import assert from "node:assert/strict"
import { spawn, spawnSync } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { after, test } from "node:test"
import { snapshot } from "./helpers.ts"

const fixture = "test/fixtures/programs/tiny-experiment.ts"
const env = { ...process.env, CMKG_TEST_EPOCHS: "1" }
const root = mkdtempSync(join(tmpdir(), "cmkg-resume-seeds-"))
after(() => rmSync(root, { recursive: true, force: true }))
const cmkg = (...args: string[]) =>
  spawnSync(process.execPath, ["bin/cmkg.js", ...args], { encoding: "utf8", env })

test("Ctrl-C during seed 2 of 2 prints the whole command, which resumes seed 2 and keeps seed 1", async () => {
  const out = join(root, "seeds")
  const p = spawn(process.execPath, ["bin/cmkg.js", "run", fixture, "--seeds", "2", "--out", out], {
    stdio: ["ignore", "pipe", "pipe"],
    env,
  })
  let stdout = ""
  p.stdout.on("data", (d) => {
    stdout += d
  })
  const metrics2 = join(out, "seed-2", "metrics.jsonl")
  while (!existsSync(metrics2) || readFileSync(metrics2, "utf8").length === 0)
    await new Promise((r) => setTimeout(r, 50))
  p.kill("SIGINT")
  // "close": the process has exited and its stdout (with the hint) is read to the end.
  assert.equal(await new Promise((r) => p.on("close", r)), 130)
  const hint = /Continue with: (.*)/.exec(stdout)
  assert.ok(hint !== null, stdout)
  assert.equal(hint[1], `cmkg run ${fixture} --scale tiny --seeds 2 --out ${out} --resume`)
  const seed1 = snapshot(join(out, "seed-1"))
  const r = cmkg(...hint[1]!.split(" ").slice(1))
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stdout, /seed 1 finished earlier .*: kept as it is/)
  assert.ok(r.stdout.includes(`resuming from ${join(out, "seed-2", "checkpoints")}`), r.stdout)
  assert.deepEqual(snapshot(join(out, "seed-1")), seed1)
  assert.ok(!existsSync(join(out, "results.json")))
  assert.deepEqual(JSON.parse(readFileSync(join(out, "summary.json"), "utf8")).seeds, [1, 2])
})

test("the continue command carries every option that decides what runs and where, quoted for a shell", async () => {
  const { continueCommand } = await import("../../src/cli/run.ts")
  assert.equal(
    continueCommand(
      {
        program: "programs/cmkd-rhd.ts",
        scale: "small",
        seeds: 3,
        firstSeed: 4,
        backend: "wasm",
        threads: 2,
        out: undefined,
        resume: false,
        data: "rhd=/data/my RHD",
      },
      "runs/x y",
    ),
    "cmkg run programs/cmkd-rhd.ts --scale small --seeds 3 --first-seed 4 --data 'rhd=/data/my RHD' --backend wasm --threads 2 --out 'runs/x y' --resume",
  )
})

/**
 * `cmkg run --cluster` end to end on a real Redis server: a worker lost in
 * the middle of a stage (frozen by SIGSTOP, as a machine that stops
 * answering) has its stage taken over by another, which resumes it from the
 * stage's last checkpoint, with the single-process run's results. (The
 * README's main job on three workers, one SIGKILLed, is in
 * test/programs/cmkg-stb.test.ts; a Redis restart in restart.test.ts.)
 */
import assert from "node:assert/strict"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { after, before, describe, test } from "node:test"
import { results, start } from "../cli/helpers.ts"
import { type Redis, redisSkip, startRedis } from "./redis.ts"

const PROGRAM = "test/fixtures/programs/tiny-meta.ts"
const env = { ...process.env, CMKG_TEST_EVAL_COUNT: "64" }

const skip = redisSkip()
describe("cmkg run --cluster", { skip }, () => {
  let redis: Redis
  let dir: string
  before(async () => {
    redis = await startRedis()
    dir = mkdtempSync(join(tmpdir(), "cmkg-cluster-run-"))
  })
  after(async () => {
    await redis?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  test("a worker lost mid-stage: another takes the stage over from its last checkpoint, results unchanged", async () => {
    // 20 steps an epoch, so that the stage is still running when its first epoch's checkpoint appears.
    const longer = { ...env, CMKG_TEST_TRAIN_COUNT: "320" }
    const common = [
      "--seeds",
      "1",
      "--first-seed",
      "1",
      "--backend",
      "cmkg-cpu",
      "--threads",
      "1",
      "--no-typecheck",
    ]
    const single = start(["run", PROGRAM, ...common, "--out", join(dir, "single-long")], longer)
    assert.equal(await single.closed, 0, single.output.stderr)

    const workerArgs = [
      "worker",
      "--cluster",
      redis.url,
      "--backend",
      "cmkg-cpu",
      "--threads",
      "1",
      "--lock-seconds",
      "2",
    ]
    const lost = start(workerArgs, longer)
    let rescuer: ReturnType<typeof start> | undefined
    try {
      const out = join(dir, "cluster-long")
      const cluster = start(["run", PROGRAM, ...common, "--out", out, "--cluster", redis.url], longer)
      const latest = join(out, "seed-1", "stages", "0", "checkpoints", "LATEST")
      while (!existsSync(latest)) {
        assert.equal(cluster.child.exitCode, null, cluster.output.stderr)
        await new Promise((r) => setTimeout(r, 10))
      }
      lost.child.kill("SIGSTOP")
      const stopped = Date.now()
      rescuer = start(workerArgs, longer)
      const r = rescuer
      await new Promise<void>((resolve) => {
        const seen = () => /\/0\] resuming from/.test(r.output.stdout)
        const poll = setInterval(() => {
          if (seen() || r.child.exitCode !== null) {
            clearInterval(poll)
            resolve()
          }
        }, 10)
      })
      // Taken over by the lock time given (2 s), not the default (30 s, then up to 15 s to notice).
      assert.ok(Date.now() - stopped < 30_000, `taken over after ${Date.now() - stopped} ms`)
      assert.equal(await cluster.closed, 0, `${cluster.output.stdout}\n${cluster.output.stderr}`)
      assert.match(rescuer.output.stdout, /\/0\] resuming from .*stage 1\/4, epoch 2/, rescuer.output.stdout)
      assert.match(rescuer.output.stdout, /taken over within 3 s/)
      assert.deepEqual(results(out, 1), results(join(dir, "single-long"), 1))
      // Steps the lost worker logged after its checkpoint were cut back: each step of the stage once.
      const steps = readFileSync(join(out, "seed-1", "stages", "0", "metrics.jsonl"), "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l))
        .map((m) => `${m.epoch}/${m.step}`)
      assert.equal(steps.length, 40)
      assert.equal(new Set(steps).size, 40)
    } finally {
      lost.child.kill("SIGKILL")
      rescuer?.child.kill("SIGINT")
      await Promise.all([lost.closed, rescuer?.closed])
    }
  })
})

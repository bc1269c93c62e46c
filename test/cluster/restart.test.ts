/**
 * The Redis server crashes and comes back in the middle of a sweep (SIGKILL,
 * then a restart on the same port and append-only file): the worker keeps its
 * stage in hand, says it lost the connection and that it is back, and
 * finishes; the follower says the same; a follower stopped afterwards and
 * resubmitted with `--resume` re-attaches to the same run, no stage is run
 * twice, and the results are the single-process run's, number for number.
 */
import assert from "node:assert/strict"
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { after, before, describe, test } from "node:test"
import { results, start, summary } from "../cli/helpers.ts"
import { type Redis, redisSkip, startRedis } from "./redis.ts"

const PROGRAM = "test/fixtures/programs/tiny-meta.ts"
// 10 steps an epoch: the first stage has a second epoch to run when its first checkpoint appears.
const env = { ...process.env, CMKG_TEST_EVAL_COUNT: "64", CMKG_TEST_TRAIN_COUNT: "160" }

/** Resolves once `read()` matches `pattern`, failing after `ms` with what was read. */
const waitFor = async (read: () => string, pattern: RegExp, ms: number) => {
  const until = Date.now() + ms
  while (!pattern.test(read())) {
    if (Date.now() > until) assert.fail(`no ${pattern} within ${ms} ms in:\n${read()}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

const skip = redisSkip()
describe("the Redis server restarted mid-sweep", { skip }, () => {
  let redis: Redis
  let dir: string
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "cmkg-cluster-restart-"))
    // Every write on disk before it is acknowledged, as a server that must survive a crash is run.
    redis = await startRedis(["--appendonly", "yes", "--appendfsync", "always", "--dir", dir])
  })
  after(async () => {
    await redis?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  test("worker and follower reconnect and say so; a resubmission re-attaches and redoes no stage; results unchanged", async () => {
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
    const single = join(dir, "single")
    const s = start(["run", PROGRAM, ...common, "--out", single], env)
    assert.equal(await s.closed, 0, s.output.stderr)

    const worker = start(["worker", "--cluster", redis.url, "--backend", "cmkg-cpu", "--threads", "1"], env)
    let first: ReturnType<typeof start> | undefined
    try {
      const out = join(dir, "cluster")
      first = start(["run", PROGRAM, ...common, "--out", out, "--cluster", redis.url], env)
      const latest = join(out, "seed-1", "stages", "0", "checkpoints", "LATEST")
      while (!existsSync(latest)) {
        assert.equal(first.child.exitCode, null, first.output.stderr)
        await new Promise((r) => setTimeout(r, 10))
      }
      await redis.restart(2000)

      for (const [who, p] of [
        ["worker", worker],
        ["follower", first],
      ] as const) {
        await waitFor(() => p.output.stdout, /lost the connection to redis:\/\/127\.0\.0\.1:\d+ \(/, 30_000)
        await waitFor(() => p.output.stdout, /connection to redis:\/\/127\.0\.0\.1:\d+ is back/, 30_000)
        assert.doesNotMatch(
          p.output.stderr,
          /ECONNREFUSED/,
          `${who} printed the raw error:\n${p.output.stderr}`,
        )
      }
      // Stop following (the stages go on without it), then submit again: it re-attaches to the same run.
      first.child.kill("SIGINT")
      await first.closed
      const again = start(["run", PROGRAM, ...common, "--out", out, "--cluster", redis.url, "--resume"], env)
      assert.equal(await again.closed, 0, `${again.output.stdout}\n${again.output.stderr}`)
      const run = /submitted run (tiny-meta-\w+)/.exec(first.output.stdout)![1]
      assert.match(again.output.stdout, new RegExp(`submitted run ${run} `))

      assert.deepEqual(results(out, 1), results(single, 1))
      assert.deepEqual(summary(out), summary(single))
      // Each of the four stages was started once, by the one worker: nothing finished was redone.
      const started = [...worker.output.stdout.matchAll(/^(tiny-meta-\w+\/\d+\/\d+) · .*: started/gm)].map(
        (m) => m[1],
      )
      assert.deepEqual(started.sort(), [0, 1, 2, 3].map((k) => `${run}/1/${k}`).sort(), worker.output.stdout)
    } finally {
      first?.child.kill("SIGKILL")
      worker.child.kill("SIGINT")
      await Promise.all([worker.closed, first?.closed])
    }
  })
})

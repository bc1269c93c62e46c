/**
 * The sweep engine's bad input, each a one-line error naming the problem:
 * nobody at the `--cluster` URL, a wrong password (never printed), a run
 * directory a worker cannot write, and a program module that changed
 * between submission and the worker (refused naming both hashes, nothing of
 * the stage written).
 */
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import { appendFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { after, before, describe, test } from "node:test"
import { start } from "../cli/helpers.ts"
import { type Redis, redisSkip, startRedis } from "./redis.ts"

const cmkg = (args: readonly string[], env: NodeJS.ProcessEnv = process.env) =>
  spawnSync(process.execPath, ["bin/cmkg.js", ...args], { encoding: "utf8", env, timeout: 60_000 })

const closedPort = (): Promise<number> =>
  new Promise((done) => {
    const s = createServer()
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port
      s.close(() => done(port))
    })
  })

const skip = redisSkip()
describe("the sweep engine's bad input", { skip }, () => {
  let redis: Redis
  let secured: Redis
  let dir: string
  before(async () => {
    redis = await startRedis()
    secured = await startRedis(["--requirepass", "s3cret-pass"])
    dir = mkdtempSync(join(tmpdir(), "cmkg-cluster-bad-"))
  })
  after(async () => {
    await redis?.stop()
    await secured?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  test("a URL nobody answers is one line naming it, at once", async () => {
    const url = `redis://127.0.0.1:${await closedPort()}`
    const r = cmkg(["status", "--cluster", url])
    assert.equal(r.status, 2, r.stdout + r.stderr)
    assert.match(
      r.stderr,
      new RegExp(`^cmkg: --cluster ${url}: cannot use the Redis server: .*ECONNREFUSED.*\\n$`),
    )
  })

  test("a wrong password is one line that says so, and the password is never printed", () => {
    const url = secured.url.replace("redis://", "redis://:wrong-pass@")
    const r = cmkg(["status", "--cluster", url])
    assert.equal(r.status, 2, r.stdout + r.stderr)
    assert.match(r.stderr, /password is wrong or missing/)
    assert.ok(!r.stderr.includes("wrong-pass"), r.stderr)
    const ok = cmkg(["status", "--cluster", secured.url], {
      ...process.env,
      CMKG_CLUSTER_PASSWORD: "s3cret-pass",
    })
    assert.equal(ok.status, 0, ok.stderr)
    assert.match(ok.stdout, /no runs in/)
  })

  test("a worker that cannot write the run directory says so at start", () => {
    const file = join(dir, "a-file")
    writeFileSync(file, "")
    const r = cmkg(["worker", "--cluster", redis.url, "--out", join(file, "runs")])
    assert.equal(r.status, 2, r.stdout + r.stderr)
    assert.match(r.stderr, /--out .*a-file\/runs is not writable on this machine .*shared filesystem/)
  })

  test("a program changed after submission is refused naming both hashes, and nothing of the stage is written", async () => {
    const program = join(dir, "program.ts")
    const fixture = resolve("test/fixtures/programs/tiny-meta.ts")
    writeFileSync(program, `export { default } from ${JSON.stringify(fixture)}\n`)
    const out = join(dir, "run")
    const env = { ...process.env, CMKG_TEST_EVAL_COUNT: "64" }
    const run = start(["run", program, "--out", out, "--cluster", redis.url, "--no-typecheck"], env)
    while (!run.output.stdout.includes("submitted run")) {
      assert.equal(run.child.exitCode, null, run.output.stderr)
      await new Promise((r) => setTimeout(r, 20))
    }
    appendFileSync(program, "// changed on the way\n")
    const worker = start(["worker", "--cluster", redis.url, "--backend", "cpu"], env)
    try {
      assert.equal(await run.closed, 1, run.output.stdout)
      assert.match(
        run.output.stderr,
        /refusing tiny-meta-\w+ 1\/0: program .*program\.ts on this machine has SHA-256 [0-9a-f]{16}…, the submitter's had [0-9a-f]{16}…/,
      )
      assert.ok(!existsSync(join(out, "seed-1", "stages")), "no stage directory was made")
    } finally {
      worker.child.kill("SIGINT")
      await worker.closed
    }
  })
})

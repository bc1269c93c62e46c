/**
 * The sweep engine on a real Redis server with real worker processes (a
 * stand-in executor, `test/fixtures/cluster/worker.ts`): every node runs
 * once, after everything it needs; independent nodes run at the same time on
 * free workers; a SIGKILLed worker's stage is picked up by another worker; a
 * Redis outage longer than the lock time makes the worker stop the stage it
 * no longer holds, and the stage runs again, told to resume.
 */
import assert from "node:assert/strict"
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { after, before, beforeEach, describe, test } from "node:test"
import * as Engine from "../../src/cluster/engine.ts"
import * as Url from "../../src/cluster/url.ts"
import { type Redis, redisSkip, startRedis } from "./redis.ts"

const WORKER = join(import.meta.dirname, "../fixtures/cluster/worker.ts")
const sleep = (t: number) => new Promise((r) => setTimeout(r, t))

const startWorker = (
  url: string,
  dir: string,
  args: readonly (string | number)[],
  env: Record<string, string> = {},
): Promise<ChildProcess> => {
  const child = spawn(process.execPath, ["--import", "tsx", WORKER, url, dir, ...args.map(String)], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, ...env },
  })
  return new Promise((resolve, reject) => {
    child.stdout!.once("data", () => resolve(child))
    child.once("exit", (code) => reject(new Error(`worker exited (${code}) before it was ready`)))
  })
}
const stopWorker = (w: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (w.exitCode !== null || w.signalCode !== null) return resolve()
    w.once("exit", () => resolve())
    w.kill("SIGTERM")
  })

interface Line {
  readonly kind: string
  readonly node: string
  readonly attempt: number
  readonly pid: number
  readonly at: number
}
const lines = (dir: string): Line[] =>
  existsSync(join(dir, "log"))
    ? readFileSync(join(dir, "log"), "utf8")
        .trim()
        .split("\n")
        .map((l, at) => {
          const [kind, node, a, b] = l.split(" ") // start <node> <attempt> <pid> | end|lost <node> <pid>
          return kind === "start"
            ? { kind, node: node!, attempt: Number(a), pid: Number(b), at }
            : { kind: kind!, node: node!, attempt: 0, pid: Number(a), at }
        })
    : []

/** Polls until every node of the run completed (enqueueing what is ready, as the follower does), or fails. */
const follow = async (url: string, run: string, plan: readonly Engine.Node[], timeoutMs: number) => {
  const queue = Engine.open(Url.parse(url))
  try {
    const until = Date.now() + timeoutMs
    for (;;) {
      await Engine.enqueueReady(queue, run, plan, {})
      const s = await Engine.status(queue, run, plan)
      const failed = s.filter((n) => n.state === "failed")
      assert.deepEqual(failed, [], "no stage fails")
      if (s.every((n) => n.state === "completed")) return s
      assert.ok(
        Date.now() < until,
        `run ${run} not done in ${timeoutMs} ms: ${JSON.stringify(s.map((n) => [n.node, n.state]))}`,
      )
      await sleep(100)
    }
  } finally {
    await queue.close()
  }
}

// A diamond: a → {b, c} → d. After a, exactly two nodes are ready, so two free workers must run them side by side.
const plan: Engine.Node[] = [
  { id: "a", needs: [], label: "a" },
  { id: "b", needs: ["a"], label: "b" },
  { id: "c", needs: ["a"], label: "c" },
  { id: "d", needs: ["b", "c"], label: "d" },
]

const skip = redisSkip()
describe("the sweep engine on BullMQ", { skip }, () => {
  let redis: Redis
  const dirs: string[] = []
  const workers: ChildProcess[] = []
  before(async () => {
    redis = await startRedis()
  })
  after(async () => {
    await Promise.all(workers.map(stopWorker))
    await redis.stop()
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  })
  // Each test starts with no worker left over from another (a failed assertion skips a test's own cleanup).
  beforeEach(async () => {
    await Promise.all(workers.splice(0).map(stopWorker))
  })
  const tempDir = () => {
    const d = mkdtempSync(join(tmpdir(), "cmkg-cluster-"))
    dirs.push(d)
    return d
  }

  test("every node runs once, after what it needs, and independent nodes run side by side on free workers", async () => {
    const dir = tempDir()
    // b and c wait for each other to start (MEET), so that a slow machine cannot make them look sequential.
    for (let i = 0; i < 2; i++) workers.push(await startWorker(redis.url, dir, [1, 400], { MEET: "b,c" }))
    const added = await Engine.submit(Url.parse(redis.url), "diamond", plan, {})
    assert.deepEqual(added, ["a"], "only the node that needs nothing is queued at first")
    const s = await follow(redis.url, "diamond", plan, 30_000)
    const log = lines(dir)
    // Every assertion below names the stages' log and the workers' own, to tell a slow machine from a bug.
    const seen = `\nlog: ${readFileSync(join(dir, "log"), "utf8")}\nworkers: ${readFileSync(join(dir, "events"), "utf8")}`
    const starts = log.filter((l) => l.kind === "start")
    assert.deepEqual(starts.map((l) => l.node).sort(), ["a", "b", "c", "d"], `each node started once${seen}`)
    const end = (n: string) => log.find((l) => l.kind === "end" && l.node === n)!.at
    const start = (n: string) => log.find((l) => l.kind === "start" && l.node === n)!.at
    for (const n of plan)
      for (const need of n.needs)
        assert.ok(end(need) < start(n.id), `${n.id} starts after ${need} ends${seen}`)
    // b and c need only a: with two free workers they overlap (each starts before the other ends).
    assert.ok(start("b") < end("c") && start("c") < end("b"), `b and c ran side by side${seen}`)
    assert.equal(new Set(starts.map((l) => l.pid)).size, 2, `both workers took stages${seen}`)
    assert.ok(
      s.every((n) => n.worker !== undefined && n.finishedAt !== undefined && n.progress === 100),
      `status names each node's worker, end and progress: ${JSON.stringify(s)}${seen}`,
    )
    await Promise.all(workers.splice(0).map(stopWorker))
  })

  test("a stage whose worker is killed is taken up by another worker, which is told it resumes", async () => {
    const dir = tempDir()
    const chain: Engine.Node[] = [
      { id: "long", needs: [], label: "long" },
      { id: "next", needs: ["long"], label: "next" },
    ]
    // Short locks so that the lost worker's stage waits again within ~2 s (TIMING in production: 45 s).
    const doomed = await startWorker(redis.url, dir, [1, 20_000, 1000, 500])
    workers.push(doomed)
    await Engine.submit(Url.parse(redis.url), "killed", chain, {})
    const until = Date.now() + 20_000
    while (!lines(dir).some((l) => l.kind === "start" && l.node === "long")) {
      assert.ok(Date.now() < until, "the first worker started the stage")
      await sleep(50)
    }
    doomed.kill("SIGKILL")
    const rescuer = await startWorker(redis.url, dir, [1, 300, 1000, 500])
    workers.push(rescuer)
    // The rescuer's stand-in stage takes 300 ms; the doomed one would have taken 20 s.
    await follow(redis.url, "killed", chain, 30_000)
    const starts = lines(dir).filter((l) => l.kind === "start" && l.node === "long")
    assert.equal(starts.length, 2, `started twice: ${JSON.stringify(starts)}`)
    assert.equal(starts[0]!.pid, doomed.pid)
    assert.equal(starts[1]!.pid, rescuer.pid)
    assert.ok(starts[1]!.attempt >= 1, "the second worker is told a previous attempt was lost (resume)")
    assert.ok(
      !lines(dir).some((l) => l.kind === "end" && l.pid === doomed.pid),
      "the killed worker never finished it",
    )
    await Promise.all(workers.splice(0).map(stopWorker))
  })

  test("a --cluster value that is not a Redis URL is refused naming it", () => {
    assert.throws(() => Url.parse("http://x:1"), /--cluster "http:\/\/x:1": unsupported scheme "http"/)
    assert.throws(() => Url.parse("redis://h:1/x"), /database "x"/)
    assert.equal(Url.parse("redis://:secret@h:7/2").display, "redis://:***@h:7/2")
  })
})

describe("a Redis outage longer than the lock time", { skip }, () => {
  let redis: Redis
  let dir: string
  let worker: ChildProcess | undefined
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "cmkg-cluster-outage-"))
    // Kept on disk (append-only, every write), so that the restarted server has the queue.
    redis = await startRedis(["--appendonly", "yes", "--appendfsync", "always", "--dir", dir])
  })
  after(async () => {
    if (worker !== undefined) await stopWorker(worker)
    await redis.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  test("the worker stops the stage whose lock expired meanwhile, and the stage runs again, told to resume", async () => {
    const one: Engine.Node[] = [{ id: "long", needs: [], label: "long" }]
    // A 1 s lock, checked every 0.5 s; the stage takes 4 s; the server is down for 3 s.
    worker = await startWorker(redis.url, dir, [1, 4000, 1000, 500])
    await Engine.submit(Url.parse(redis.url), "outage", one, {})
    const until = Date.now() + 20_000
    while (!lines(dir).some((l) => l.kind === "start")) {
      assert.ok(Date.now() < until, "the worker started the stage")
      await sleep(20)
    }
    await redis.restart(3000)
    await follow(redis.url, "outage", one, 60_000)
    const log = lines(dir)
    assert.deepEqual(
      log.map((l) => l.kind),
      ["start", "lost", "start", "end"],
      `stopped once its lock was lost, then run again to its end: ${JSON.stringify(log)}`,
    )
    assert.equal(log[0]!.attempt, 0)
    assert.ok(log[2]!.attempt >= 1, "the second run is told a previous attempt was lost (resume)")
    const events = readFileSync(join(dir, "events"), "utf8")
    assert.match(events, /lost the connection to redis:\/\/127\.0\.0\.1:\d+ /)
    assert.match(events, /outage\/long: lost its lock .*; stopping it here/)
    assert.match(events, /outage\/long · long: stopped here, its lock was lost/)
  })
})

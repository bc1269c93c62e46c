/**
 * The sweep engine's own cost per stage, in milliseconds: a Redis server on a
 * free port, two worker processes whose stages do nothing but sleep (the
 * stand-in executor of the engine's tests), and a plan of seeds × a chain and
 * a fan-out. Prints, over all stages: from a stage's job being added to a
 * worker starting it (queue → start, workers idle), and from the last of a
 * stage's needs finishing to the stage starting (finish → dependent start:
 * the completion, the readiness check, the add and the pull).
 *   node --import tsx bench/cluster-overhead.ts [SEEDS=10] [STAGE_MS=200]
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Engine from "../src/cluster/engine.ts"
import * as Url from "../src/cluster/url.ts"
import { startRedis } from "../test/cluster/redis.ts"

const seeds = Number(process.argv[2] ?? 10)
const stageMs = Number(process.argv[3] ?? 200)
const redis = await startRedis()
const dir = mkdtempSync(join(tmpdir(), "cmkg-cluster-bench-"))
const worker = (): Promise<ChildProcess> =>
  new Promise((resolve) => {
    const c = spawn(
      process.execPath,
      ["--import", "tsx", "test/fixtures/cluster/worker.ts", redis.url, dir, "1", String(stageMs)],
      { stdio: ["ignore", "pipe", "inherit"] },
    )
    c.stdout!.once("data", () => resolve(c))
  })
const workers = await Promise.all([worker(), worker()])
// Per seed: teacher → {kd-a, kd-b} → eval-a, eval-b (the shape of cmkd-rhd's rows).
const plan: Engine.Node[] = Array.from({ length: seeds }, (_, s) => [
  { id: `${s}/0`, needs: [], label: "teacher" },
  { id: `${s}/1`, needs: [`${s}/0`], label: "kd-a" },
  { id: `${s}/2`, needs: [`${s}/0`], label: "kd-b" },
  { id: `${s}/3`, needs: [`${s}/1`], label: "eval-a" },
  { id: `${s}/4`, needs: [`${s}/2`], label: "eval-b" },
]).flat()
const conn = Url.parse(redis.url)
const started = Date.now()
await Engine.submit(conn, "bench", plan, {})
const queue = Engine.open(conn)
let nodes: Engine.NodeStatus[] = []
for (;;) {
  // No follower re-check here: dependents are added by the workers alone.
  nodes = await Engine.status(queue, "bench", plan)
  if (nodes.every((n) => n.state === "completed")) break
  await new Promise((r) => setTimeout(r, 100))
}
const wall = Date.now() - started
const at = new Map(nodes.map((n) => [n.node, n]))
const queued = nodes.map((n) => n.startedAt! - n.addedAt!)
const handover = plan
  .filter((n) => n.needs.length > 0)
  .map((n) => at.get(n.id)!.startedAt! - Math.max(...n.needs.map((m) => at.get(m)!.finishedAt!)))
const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return `median ${s[Math.floor(s.length / 2)]} ms, min ${s[0]}, max ${s[s.length - 1]} (${s.length} stages)`
}
console.log(`${plan.length} stages of ${stageMs} ms on 2 workers: ${wall} ms wall`)
console.log(`added → started (a worker free): ${stats(queued.filter((_, i) => plan[i]!.needs.length === 0))}`)
console.log(`needs finished → started:         ${stats(handover)}`)
await queue.close()
// Stand-in workers hold nothing worth a clean close: stop them before the server they would reconnect to.
await Promise.all(workers.map((w) => new Promise((r) => w.once("exit", r).kill("SIGKILL"))))
await redis.stop()
rmSync(dir, { recursive: true, force: true })

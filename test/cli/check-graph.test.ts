/** `cmkg check` prints an experiment's stage graph after its compute, as text and in `--json`. */
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import { test } from "node:test"

const cmkg = (...args: string[]) => {
  const r = spawnSync(process.execPath, ["bin/cmkg.js", ...args], { encoding: "utf8" })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

test("cmkd-rhd: the stage graph section lists every stage with its MACs, reads and waits, and the critical path", () => {
  const r = cmkg("check", "programs/cmkd-rhd.ts", "--scale", "tiny")
  assert.equal(r.code, 0, r.stderr)
  // The existing output is still there, the graph after it.
  const compute = r.stdout.indexOf("Experiment compute")
  const graph = r.stdout.indexOf("Stage graph")
  assert.ok(compute >= 0 && graph > compute, r.stdout)
  const section = r.stdout.slice(graph)
  assert.match(section, /^\s+5\s+kd: L_ACT\s+[\d.]+ GMACs\s+teacher ← 1\s+1$/m)
  assert.match(section, /^\s+3\s+rgb baseline\s+[\d.]+ GMACs\s+—\s+—$/m)
  assert.match(section, /^\s+6\s+evaluate kd-act\s+[\d.]+ MMACs\s+kd-act ← 5\s+5$/m)
  assert.match(section, /critical path in one shared world: 1 → 5 → 6: [\d.]+ GMACs, [\d.]+ % of the total/)
})

test("cmkg-stb: a row that reuses the target model waits for the previous row's evaluations in one shared world", () => {
  const r = cmkg("check", "programs/cmkg-stb.ts", "--scale", "tiny")
  assert.equal(r.code, 0, r.stderr)
  assert.match(
    r.stdout,
    /^\s+10\s+stb: default ℓ1, σ = 1e-4 .* 7 \(WAW target-student\), 8 \(WAR target-student\), 9 \(WAR target-student\)$/m,
  )
  assert.match(r.stdout, /^\s+15\s+stb: R \(ℓ1 form\) .*phi-l1 ← 5 /m)
})

test("--json: experiment.graph holds stages numbered from 1, their reads, needs and the critical paths", () => {
  const r = cmkg("check", "programs/cmkd-rhd.ts", "--scale", "tiny", "--json")
  assert.equal(r.code, 0, r.stderr)
  const g = JSON.parse(r.stdout).experiment.graph
  assert.equal(g.stages.length, 10)
  const kd = g.stages[4]
  assert.deepEqual([kd.number, kd.name, kd.kind], [5, "kd: L_ACT", "Train"])
  assert.deepEqual(kd.reads, [{ space: "params", name: "teacher", from: 1 }])
  assert.deepEqual(kd.writes, [{ space: "params", name: "kd-act" }])
  assert.deepEqual(kd.needs, { shared: [1], perStage: [1] })
  assert.deepEqual(kd.dependencies, [{ from: 1, kind: "read-after-write", space: "params", name: "teacher" }])
  assert.ok(kd.macs > 0)
  assert.equal(
    g.macsTotal,
    g.stages.reduce((a: number, s: { macs: number }) => a + s.macs, 0),
  )
  assert.deepEqual(g.criticalPath.shared.stages, [1, 5, 6])
  assert.ok(g.criticalPath.shared.share > 0 && g.criticalPath.shared.share < 1)
})

test("a program without an experiment prints no stage graph", () => {
  const r = cmkg("check", "programs/resnet18-imagenet.ts")
  assert.equal(r.code, 0, r.stderr)
  assert.doesNotMatch(r.stdout, /Stage graph/)
  const j = cmkg("check", "programs/resnet18-imagenet.ts", "--json")
  assert.equal(JSON.parse(j.stdout).experiment, undefined)
})

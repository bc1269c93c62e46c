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
  assert.match(
    section,
    /^\s+7\s+fine-tune: L_ACT \(sum\)\s+[\d.]+ GMACs\s+rgb-regression-phase ← 3, teacher ← 1\s+1, 3$/m,
  )
  assert.match(
    section,
    /^\s+5\s+rgb baseline \(L_REG fine-tuning\)\s+[\d.]+ GMACs\s+rgb-regression-phase ← 3\s+3$/m,
  )
  assert.match(section, /^\s+8\s+evaluate KD student \(L_ACT, sum\)\s+[\d.]+ MMACs\s+kd-student ← 7\s+7$/m)
  // The next KD row reuses the student's name: in one shared world it waits for the previous row (WAW, WAR).
  assert.match(
    section,
    /^\s+10\s+fine-tune: KD student .* 1, 3, 7 \(WAW kd-student\), 8 \(WAR kd-student\), 9 \(WAR kd-student\)$/m,
  )
  assert.match(
    section,
    /critical path in one shared world: 1 → 7 → [\d →]+: [\d.]+ GMACs, [\d.]+ % of the total/,
  )
  assert.match(
    section,
    /critical path if each stage keeps its writes as its own version \(read after write only\): 1 → 7 → 8: [\d.]+ GMACs, [\d.]+ % of the total/,
  )
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
  assert.equal(g.stages.length, 36)
  const kd = g.stages[9]
  assert.deepEqual([kd.number, kd.kind], [10, "Train"])
  assert.match(kd.name, /^fine-tune: KD student \(L_ACT \+ L_ATT, sum, paper L_ATT, λ = 1e3\)$/)
  assert.deepEqual(kd.writes, [{ space: "params", name: "kd-student" }])
  assert.deepEqual(kd.needs, { shared: [1, 3, 7, 8, 9], perStage: [1, 3] })
  assert.ok(kd.macs > 0)
  assert.equal(
    g.macsTotal,
    g.stages.reduce((a: number, s: { macs: number }) => a + s.macs, 0),
  )
  assert.deepEqual(g.criticalPath.perStage.stages, [1, 7, 8])
  assert.ok(g.criticalPath.shared.share > 0 && g.criticalPath.shared.share < 1)
})

test("a program without an experiment prints no stage graph", () => {
  const r = cmkg("check", "programs/resnet18-imagenet.ts")
  assert.equal(r.code, 0, r.stderr)
  assert.doesNotMatch(r.stdout, /Stage graph/)
  const j = cmkg("check", "programs/resnet18-imagenet.ts", "--json")
  assert.equal(JSON.parse(j.stdout).experiment, undefined)
})

test("dirnet-stb: exit evaluations cost every loop of their network over the test set; the gate waits for its network", () => {
  // `cmkg check` of DIR-Net once threw here: the graph took exit evaluations for train stages.
  const r = cmkg("check", "programs/dirnet-stb.ts", "--scale", "tiny", "--json")
  assert.equal(r.code, 0, r.stderr)
  const json = JSON.parse(r.stdout)
  const g = json.experiment.graph
  const byName = (name: string) => g.stages.find((s: { name: string }) => s.name === name)
  const forward = json.networks.find((m: { name: string }) => m.name === "ir9-loop3").macs
  for (const name of ["Table 3: recursive refinement · Iter. w/ AMG + 𝒢", "Figure 7 · τ_var quantile 0.5"])
    assert.equal(byName(name).macs, 128 * forward, name)
  const gate = byName("ir9-loop3 · gate (REINFORCE)")
  assert.ok(byName("Table 3: recursive refinement · Iter. w/ AMG + 𝒢").needs.shared.includes(gate.number))
})

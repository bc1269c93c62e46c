/**
 * The stage graphs of the built-in programs have the dependencies a reader of
 * the programs expects, at every scale: students after their teacher, rows of
 * a table independent of each other (in cmkg-stb, whose rows reuse one model
 * name, only once each stage keeps its own version), fine-tuning after its
 * pre-training; `cmkg check`'s per-stage MACs add up to the experiment
 * report's; programs without an experiment have no graph.
 */
import assert from "node:assert/strict"
import { test } from "node:test"
import type * as Experiment from "../../src/dsl/Experiment.ts"
import * as Program from "../../src/dsl/Program.ts"
import * as StageGraph from "../../src/dsl/StageGraph.ts"
import * as ExperimentCheck from "../../src/interpreters/shape-check/experiment.ts"
import * as GraphCheck from "../../src/interpreters/shape-check/stage-graph.ts"
import cmkdRhd from "../../src/programs/cmkd-rhd.ts"
import cmkgStb from "../../src/programs/cmkg-stb.ts"
import resnet18 from "../../src/programs/resnet18-imagenet.ts"
import resnet50 from "../../src/programs/resnet50-imagenet.ts"
import supervisionTransfer from "../../src/programs/supervision-transfer.ts"

const resolve = (value: Program.Program<unknown> | Program.Family<unknown>, scale: Program.Scale) =>
  Program.resolve(value, { scale, data: {} }) as Program.Program<Experiment.Experiment>

/** The graph, with helpers that name stages by name. */
const graphOf = (value: Program.Program<unknown> | Program.Family<unknown>, scale: Program.Scale) => {
  const p = resolve(value, scale)
  const g = StageGraph.graph(p.experiment!)
  const index = (name: string) => {
    const i = g.stages.findIndex((s) => s.name === name)
    assert.ok(i >= 0, `no stage "${name}"`)
    return i
  }
  const names = (is: readonly number[]) => is.map((i) => g.stages[i]!.name)
  const needs = (storage: StageGraph.Storage) => {
    const n = StageGraph.needs(g, storage)
    return (name: string) => names(n[index(name)]!)
  }
  /** Whether stage `to` waits, directly or not, for stage `from`. */
  const after = (storage: StageGraph.Storage) => {
    const n = StageGraph.needs(g, storage)
    const reach = (to: number, from: number): boolean => n[to]!.some((i) => i === from || reach(i, from))
    return (to: string, from: string) => reach(index(to), index(from))
  }
  return { p, g, index, needs, after, trains: g.stages.filter((s) => s._tag === "Train").map((s) => s.name) }
}

const scales: readonly Program.Scale[] = ["tiny", "small", "paper"]

for (const scale of scales)
  test(`cmkd-rhd (${scale}): the baseline waits for the L_REG phase, every KD fine-tuning for the phase and the teacher; per-stage, no row for another`, () => {
    const { needs, after, trains } = graphOf(cmkdRhd, scale)
    const kd = trains.filter((t) => t.startsWith("fine-tune: "))
    assert.ok(kd.length >= 6, `the grid's rows: ${kd.length}`)
    const rows = ["rgb baseline (L_REG fine-tuning)", ...kd]
    for (const storage of ["shared", "per-stage"] as const) {
      const n = needs(storage)
      assert.deepEqual(n("teacher"), [])
      assert.deepEqual(n("L_REG phase"), [])
      assert.deepEqual(n("evaluate depth teacher"), ["teacher"])
      assert.deepEqual(n("rgb baseline (L_REG fine-tuning)"), ["L_REG phase"])
      // Each KD row copies the phase's student and distils from the teacher (the paper's schedule).
      for (const k of kd)
        for (const first of ["teacher", "L_REG phase"]) assert.ok(n(k).includes(first), `${k} ← ${first}`)
    }
    // With per-stage versions the rows of Table 1 are independent, although the KD rows share one model name.
    for (const x of rows)
      for (const y of rows) if (x !== y) assert.ok(!after("per-stage")(x, y), `${x} after ${y}`)
    // In one shared world they are not: each KD row overwrites the student the previous one left.
    assert.ok(after("shared")(kd[1]!, kd[0]!))
  })

for (const scale of scales)
  test(`cmkg-stb (${scale}): meta-training after teacher and student; target rows independent given per-stage versions`, () => {
    const { g, needs, after, trains, index } = graphOf(cmkgStb, scale)
    const metaTrains = trains.filter((t) => t.startsWith("meta-train"))
    const targets = trains.filter((t) => t.includes(": "))
    assert.equal(metaTrains.length, scale === "tiny" ? 2 : 4)
    assert.equal(targets.length, scale === "tiny" ? 5 : 18)
    const perStage = needs("per-stage")
    for (const m of metaTrains)
      assert.deepEqual(perStage(m), ["teacher (source depth)", "student pre-training (source RGB)"])
    for (const t of targets) {
      // A meta-learned regulariser's row reads its φ from the meta-training stage that learned it; the others read nothing.
      const row = t.slice(t.indexOf(": ") + 2)
      assert.deepEqual(perStage(t), row.startsWith("R ") ? [`meta-train φ (${row})`] : [], t)
      for (const u of targets) if (u !== t) assert.ok(!after("per-stage")(t, u), `${t} after ${u}`)
    }
    // Every evaluation reads the row trained just before it.
    for (const [i, s] of g.stages.entries())
      if (s._tag === "Evaluate" && s.model === "target-student") {
        const writer = g.inputs[i]![0]!.writer!
        assert.ok(targets.includes(g.stages[writer]!.name) && writer < i)
        assert.ok(g.stages.slice(writer + 1, i).every((x) => x._tag === "Evaluate"))
      }
    // In one shared world the rows reuse "target-student": each row's training must wait until the
    // previous row's evaluations have read it, so the rows run one after another.
    const shared = needs("shared")
    for (const [k, t] of targets.entries())
      if (k > 0) assert.ok(after("shared")(t, targets[k - 1]!), `${t} after ${targets[k - 1]}`)
    assert.ok(shared(targets[1]!).includes(targets[0]!))
    assert.ok(index(targets[1]!) > index(targets[0]!))
  })

for (const scale of scales)
  test(`supervision-transfer (${scale}): fine-tuning after its pre-training, the RGB copy after the RGB network, rows independent`, () => {
    const { needs, after, trains } = graphOf(supervisionTransfer, scale)
    for (const storage of ["shared", "per-stage"] as const) {
      const n = needs(storage)
      assert.deepEqual(n("rgb network (labels)"), [])
      assert.deepEqual(n("depth-scratch: fine-tune on few labels"), [])
      assert.deepEqual(n("depth-copy-rgb: fine-tune on few labels"), ["rgb network (labels)"])
      for (const l of ["layer2", "layer3", "layer4"]) {
        assert.deepEqual(n(`depth-transfer-${l}: transfer ${l} over paired images`), ["rgb network (labels)"])
        // Keep: the fine-tuning continues from the transferred parameters.
        assert.deepEqual(n(`depth-transfer-${l}: fine-tune on few labels`), [
          `depth-transfer-${l}: transfer ${l} over paired images`,
        ])
      }
      const fineTunes = trains.filter((t) => t.endsWith("fine-tune on few labels"))
      for (const x of fineTunes)
        for (const y of fineTunes) if (x !== y) assert.ok(!after(storage)(x, y), `${x} after ${y}`)
    }
  })

test("cmkg-stb (small): the β = 3e-2 variants reuse one model: ordered in one world, independent with versions", () => {
  const { after } = graphOf(cmkgStb, "small")
  const x = "meta-train φ (R (ℓ2), β = 3e-2)"
  const y = "meta-train φ (R (ℓ2), φ ≥ 0, β = 3e-2)"
  assert.ok(after("shared")(y, x))
  assert.ok(!after("per-stage")(y, x))
})

test("cmkd-rhd (tiny): stage MACs add up to the report's training MACs plus test size × forward MACs per evaluation", () => {
  const p = resolve(cmkdRhd, "tiny")
  const report = ExperimentCheck.check(p)
  const g = GraphCheck.graphReport(p, report)!
  const forward = Object.fromEntries(report.models.map((m) => [m.name, m.summary.cost.macs]))
  const trains = g.stages.filter((s) => s.kind === "Train")
  assert.deepEqual(
    trains.map((s) => s.macs),
    report.stages.map((s) => s.macs),
  )
  for (const s of g.stages.filter((x) => x.kind === "Evaluate")) {
    const stage = p.experiment!.stages[s.index] as Experiment.Evaluate
    assert.equal(s.macs, ExperimentCheck.sizeOf(stage.data)! * forward[stage.model]!)
    assert.ok(s.macs! > 0)
  }
  assert.equal(
    g.macsTotal,
    g.stages.reduce((a, s) => a + s.macs!, 0),
  )
  // The teacher (costlier than the L_REG phase) → a KD fine-tuning → its evaluation is the longest chain; all KD
  // fine-tunings cost alike, so the first wins the tie.
  assert.ok(g.stages[0]!.macs! > g.stages.find((x) => x.name === "L_REG phase")!.macs!)
  assert.deepEqual(
    g.criticalPath.perStage.stages.map((i) => g.stages[i]!.name),
    ["teacher", "fine-tune: L_ACT (sum)", "evaluate KD student (L_ACT, sum)"],
  )
  const [t, kd, ev] = g.criticalPath.perStage.stages.map((i) => g.stages[i]!.macs!)
  assert.equal(g.criticalPath.perStage.cost, t! + kd! + ev!)
})

test("resnet18/resnet50 declare no experiment: no stage graph", () => {
  for (const value of [resnet18, resnet50]) {
    const p = resolve(value, "tiny")
    assert.equal(GraphCheck.graphReport(p, ExperimentCheck.checkAny(p)), undefined)
  }
})

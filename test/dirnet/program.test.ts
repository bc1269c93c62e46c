/**
 * The built-in DIR-Net program (src/programs/dirnet-stb.ts) at every scale:
 * a well-formed staged `Experiment` value with the paper's rows, statically
 * (no training), and the shape checker's schedule and per-loop costs.
 */
import assert from "node:assert/strict"
import { test } from "node:test"
import * as Dirnet from "../../src/dsl/dirnet.ts"
import type * as Exits from "../../src/dsl/Exits.ts"
import type * as Experiment from "../../src/dsl/Experiment.ts"
import * as Optimizer from "../../src/dsl/Optimizer.ts"
import * as Program from "../../src/dsl/Program.ts"
import * as ExperimentCheck from "../../src/interpreters/shape-check/experiment.ts"
import dirnetStb, { dirnetSettings } from "../../src/programs/dirnet-stb.ts"

const at = (scale: Program.Scale) =>
  Program.resolve(dirnetStb, { scale, data: {} }) as Program.Program<Experiment.Experiment>

const exitStages = (e: Experiment.Experiment): Exits.Evaluate[] =>
  e.stages.flatMap((s) => (s._tag === "EvaluateExits" ? [s] : []))

for (const scale of Program.scales)
  test(`dirnet-stb at scale ${scale} is a well-formed staged experiment with Tables 3 and 2 and the Figure 7 sweep`, () => {
    const p = at(scale)
    const e = p.experiment!
    assert.equal(e._tag, "Experiment")
    const report = ExperimentCheck.checkAny(p)
    assert.deepEqual(report.errors, [])
    const rows = (table: string) =>
      exitStages(e).flatMap((s) =>
        s.into._tag === "Row" && s.into.table.startsWith(table)
          ? [[s.into.row, s.into.variant, s.into.label._tag]]
          : [],
      )
    assert.deepEqual(rows("Table 3"), [
      ["No Iter.", "ir9-loop3", "NoIter"],
      ["Iter. w/out AMG", "ir9-loop3-no-amg", "Last"],
      ["Iter. w/ AMG", "ir9-loop3", "Last"],
      ["Iter. w/ AMG + 𝒢", "ir9-loop3", "Gate"],
    ])
    assert.deepEqual(
      rows("Table 2").map((r) => r[0]),
      ["(1)", "(2)", "(3)", "(4)"],
    )
    assert.deepEqual(rows("Exits of the loop-point-3 network"), [
      ...Array.from({ length: dirnetSettings(scale).iterations }, (_, k) => [
        `after loop ${k + 1}`,
        "ir9-loop3",
        "Loop",
      ]),
      ["oracle", "ir9-loop3", "Oracle"],
    ])
    assert.deepEqual(e.references, {
      "Table 3: recursive refinement": "No Iter.",
      "Table 2: loop points": "(1)",
      "Exits of the loop-point-3 network: fixed depth and oracle": "after loop 1",
    })
    const sweep = (series: string) =>
      exitStages(e).filter((s) => s.into._tag === "Sweep" && s.into.series === series).length
    assert.ok(sweep("τ_gate") >= 3 && sweep("τ_var") >= 3)
    // Every stage's network of every variant (the last stage's named after the variant), and the gate.
    const names = p.models.map((m) => m.name)
    for (const v of [
      "ir9-loop3",
      "ir9-loop3-no-amg",
      "ir9-loop1",
      "ir9-loop2",
      "ir9-loop4",
      "ir9-loop3-gate",
    ])
      assert.ok(names.includes(v), `${v} in ${names.join(", ")}`)
    const loops = report.loops!
    assert.equal(loops.length, 5)
    for (const l of loops) {
      const g = l.costs.gflopsAtExit
      for (let k = 1; k < g.length; k++) assert.ok(g[k]! > g[k - 1]!, `${l.model}: GFLOPs grow with loops`)
    }
    // The loop points share no stage 0 (their parameters differ), with and without AMG do.
    assert.equal(report.stages.filter((s) => s.stage.endsWith("stage 0")).length, 4)
    assert.ok(report.stages.some((s) => s.stage === "ir9-loop3 + ir9-loop3-no-amg · stage 0"))
  })

test("the paper scale is the paper's STB model: 224×224, 32 base channels, 512-unit heads, l_max = 5", () => {
  const p = at("paper")
  for (const point of [1, 2, 3, 4] as const) {
    const m = p.models.find((x) => x.name === `ir9-loop${point}`)!
    assert.deepEqual(m.input, [224, 224, 3])
    assert.deepEqual(
      m.net,
      Dirnet.dirnet({ width: 32, hidden: 512, iterations: 6, loopPoint: point }),
      `ir9-loop${point}`,
    )
  }
  const train = p.experiment!.stages.flatMap((s) =>
    s._tag === "Train" && s.step._tag === "Minimize" ? [s] : [],
  )
  assert.ok(train.filter((s) => s.name.endsWith("stage 0")).every((s) => s.epochs === 50))
  assert.ok(train.filter((s) => !s.name.endsWith("stage 0")).every((s) => s.epochs === 20))
  const first = train[0]!.step as Extract<(typeof train)[0]["step"], { _tag: "Minimize" }>
  assert.equal(Optimizer.learningRate(first.optimizer as Optimizer.Chain), 1e-3)
})

test("a program missing a model its stages train is refused, naming the stage", () => {
  const p = at("tiny")
  const broken = Program.program({ ...p, models: p.models.filter((m) => m.name !== "ir9-loop4") })
  const errors = ExperimentCheck.checkAny(broken as Program.Program<Experiment.Experiment>).errors
  assert.ok(
    errors.some((x) => /"ir9-loop4 · stage 2"/.test(x.path) && /"ir9-loop4"/.test(x.message)),
    JSON.stringify(errors),
  )
})

test("training compute: after stage 0 the backward pass stops before FE (3× forward − 2× FE per sample)", () => {
  const p = at("tiny")
  const report = ExperimentCheck.checkAny(p)
  const c = report.loops!.find((l) => l.model === "ir9-loop3")!.costs
  const fe = c.macsAtExit[0]! - c.macsPerIteration[0]!
  const batch = (p.experiment!.stages.find((s) => s._tag === "Train") as Experiment.Train).batchSize
  for (const k of [1, 2]) {
    const stage = report.stages.find((s) => s.stage === `ir9-loop3 · stage ${k}`)!
    assert.equal(stage.macsPerStep, batch * (3 * c.macsAtExit[k]! - 2 * fe), `stage ${k}`)
  }
  const stage0 = report.stages.find((s) => s.stage === "ir9-loop3 + ir9-loop3-no-amg · stage 0")!
  assert.equal(stage0.macsPerStep, batch * 3 * c.macsAtExit[0]!)
})

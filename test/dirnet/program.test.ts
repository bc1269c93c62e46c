/**
 * The built-in DIR-Net program (src/programs/dirnet-stb.ts) at every scale:
 * a well-formed `DirNetExperiment` value with the paper's rows, statically
 * (no training), and the shape checker's schedule and per-loop costs.
 */
import assert from "node:assert/strict"
import { test } from "node:test"
import type * as Dirnet from "../../src/dsl/dirnet.ts"
import * as Program from "../../src/dsl/Program.ts"
import * as DirnetCheck from "../../src/interpreters/shape-check/dirnet-experiment.ts"
import * as ExperimentCheck from "../../src/interpreters/shape-check/experiment.ts"
import dirnetStb from "../../src/programs/dirnet-stb.ts"

const at = (scale: Program.Scale) =>
  Program.resolve(dirnetStb, { scale, data: {} }) as Program.Program<Dirnet.Experiment>

for (const scale of Program.scales)
  test(`dirnet-stb at scale ${scale} is a well-formed DIR-Net experiment with Tables 3 and 2 and the Figure 7 sweep`, () => {
    const p = at(scale)
    const e = p.experiment!
    assert.equal(e._tag, "DirNetExperiment")
    const report = ExperimentCheck.checkAny(p)
    assert.deepEqual(report.errors, [])
    const rows = (table: string) => e.rows.filter((r) => r.table.startsWith(table))
    assert.deepEqual(
      rows("Table 3").map((r) => [r.row, r.model, r.evaluate._tag]),
      [
        ["No Iter.", "ir9-loop3", "NoIter"],
        ["Iter. w/out AMG", "ir9-loop3-no-amg", "Last"],
        ["Iter. w/ AMG", "ir9-loop3", "Last"],
        ["Iter. w/ AMG + 𝒢", "ir9-loop3", "Gate"],
      ],
    )
    assert.deepEqual(
      rows("Table 2").map((r) => r.row),
      ["(1)", "(2)", "(3)", "(4)"],
    )
    assert.ok(e.sweep !== undefined && e.sweep.tauGate.length >= 3 && e.sweep.tauVarQuantiles.length >= 3)
    // cmkg check shows every variant (and the No Iter. network) with its per-loop costs.
    assert.deepEqual(
      p.models.map((m) => m.name),
      ["ir9-loop3-no-iter", "ir9-loop3", "ir9-loop3-no-amg", "ir9-loop1", "ir9-loop2", "ir9-loop4"],
    )
    const loops = (report as DirnetCheck.Report).loops
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
  const e = at("paper").experiment!
  assert.equal(e.imageSize, 224)
  for (const v of e.variants) {
    assert.equal(v.options.width, 32)
    assert.equal(v.options.hidden, 512)
    assert.equal(v.options.iterations, 6)
  }
  assert.deepEqual(e.epochs, { first: 50, later: 20 })
  assert.equal(e.lr, 1e-3)
})

test("a program whose models do not match its variants is refused, naming the variant", () => {
  const p = at("tiny")
  const broken = Program.program({ ...p, models: p.models.filter((m) => m.name !== "ir9-loop4") })
  const errors = DirnetCheck.check(broken as Program.Program<Dirnet.Experiment>).errors
  assert.ok(
    errors.some(
      (x) => x.path === "experiment/variants/ir9-loop4" && /must declare model "ir9-loop4"/.test(x.message),
    ),
    JSON.stringify(errors),
  )
})

/**
 * `cmkg run` of a DIR-Net program end to end (src/programs/dirnet-stb.ts at
 * a test size, test/fixtures/programs/tiny-dirnet.ts): the run directory;
 * every Table 3 row with a finite AUC and the shape checker's GFLOPs in the
 * paper's order; Table 2; the Figure 7 sweep; `cmkg report`'s Figure 7 plot
 * and cost columns; and refusals before any training. Checkpoints and
 * --resume: run-dirnet-resume.test.ts.
 */
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { after, before, test } from "node:test"
import type * as Experiment from "../../src/dsl/Experiment.ts"
import * as Program from "../../src/dsl/Program.ts"
import * as ExperimentCheck from "../../src/interpreters/shape-check/experiment.ts"
import * as Report from "../../src/report/index.ts"
import type * as RunFiles from "../../src/run-dir/schema.ts"
import fixtureModule from "../fixtures/programs/tiny-dirnet.ts"

const fixture = "test/fixtures/programs/tiny-dirnet.ts"
const root = mkdtempSync(join(tmpdir(), "cmkg-run-dirnet-"))
const out = join(root, "run")
const cmkg = (args: readonly string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, ["bin/cmkg.js", ...args], {
    encoding: "utf8",
    env: { ...process.env, ...env },
  })

let stdout = ""
let results: RunFiles.DirnetResults
const program = Program.resolve(fixtureModule, {
  scale: "tiny",
  data: {},
}) as Program.Program<Experiment.Experiment>
const statics = ExperimentCheck.check(program)

before(() => {
  const r = cmkg(["run", fixture, "--out", out])
  assert.equal(r.status, 0, r.stderr)
  stdout = r.stdout
  results = JSON.parse(readFileSync(join(out, "results.json"), "utf8")) as RunFiles.DirnetResults
})
after(() => rmSync(root, { recursive: true, force: true }))

const T3 = "Table 3: recursive refinement"
const row = (table: string, name: string) => {
  const r = results.rows.find((x) => x.table === table && x.row === name)
  assert.ok(r !== undefined, `no row "${name}" in ${table}: ${results.rows.map((x) => x.row).join(", ")}`)
  return r
}

test("writes the run directory: program, metrics per step, trained models, results and summary", () => {
  for (const f of [
    "program.json",
    "metrics.jsonl",
    "results.json",
    "results.md",
    "summary.json",
    "summary.md",
    "models/ir9-loop3/model.json",
    "models/ir9-loop3-gate/model.json",
  ])
    assert.ok(existsSync(join(out, f)), f)
  const program = JSON.parse(readFileSync(join(out, "program.json"), "utf8"))
  assert.equal(program.program.experiment._tag, "Experiment")
  assert.equal(program.options.scale, "tiny")
  // One line per training step of every phase (3 steps of 16 from 48 samples, 1 epoch), then the gate's
  // one full-batch step (its 20 updates), logging −R̄.
  const lines = readFileSync(join(out, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l))
  const phases = statics.stages.filter((p) => !p.stage.includes("gate"))
  assert.deepEqual(
    [...new Set(lines.filter((l) => "minimize" in l).map((l) => l.stage))],
    phases.map((p) => p.stage),
  )
  assert.equal(lines.filter((l) => "minimize" in l).length, phases.length * 3)
  assert.deepEqual(
    lines.filter((l) => "reinforce" in l).map((l) => l.stage),
    ["ir9-loop3 · gate (REINFORCE)"],
  )
  assert.ok(lines.every((l) => Number.isFinite(l.minimize ?? l.reinforce)))
  const md = readFileSync(join(out, "results.md"), "utf8")
  assert.match(md, /## Figure 7/)
  assert.match(
    md,
    /## Closing note\n\nir9-loop3: 3 loops change 3D AUC by [+−]\d\.\d{3} against no iteration .* the gate cuts average GFLOPs: (yes|no)/,
  )
  assert.match(stdout, /Iter\. w\/ AMG \+ 𝒢 .* avg GFLOPs|\| Iter\. w\/ AMG \+ 𝒢 \|/)
})

test("Table 3: every row, finite AUC and GFLOPs; no-iter < iterations at l_max, gate ≤ full loop", () => {
  const names = ["No Iter.", "Iter. w/out AMG", "Iter. w/ AMG", "Iter. w/ AMG + 𝒢"]
  assert.deepEqual(
    results.rows.filter((r) => r.table === T3).map((r) => r.row),
    names,
  )
  for (const n of names) {
    const r = row(T3, n)
    for (const k of ["auc20to50", "epe", "gflops", "params"] as const)
      assert.ok(Number.isFinite(r[k]) && r[k] >= 0, `${n}: ${k} = ${r[k]}`)
    assert.ok(r.auc20to50 <= 1)
    assert.ok(Math.abs(r.exits.reduce((a, b) => a + b, 0) - 1) < 1e-9, `${n}: exit distribution`)
  }
  const [noIter, withoutAmg, withAmg, gate] = names.map((n) => row(T3, n))
  assert.deepEqual(
    [noIter, withoutAmg, withAmg, gate].map((r) => r!.evaluate._tag),
    ["NoIter", "Last", "Last", "Gate"],
  )
  assert.ok(noIter!.gflops < withAmg!.gflops, `${noIter!.gflops} < ${withAmg!.gflops}`)
  assert.ok(noIter!.gflops < withoutAmg!.gflops)
  assert.ok(gate!.gflops <= withAmg!.gflops, `${gate!.gflops} ≤ ${withAmg!.gflops}`)
  assert.equal(noIter!.meanExit, 0)
  assert.equal(withAmg!.meanExit, 2)
  // AMG's convolution is what the loop with AMG adds over the one without; the gate adds its own.
  assert.ok(noIter!.params < withoutAmg!.params && withoutAmg!.params < withAmg!.params)
  assert.equal(gate!.params, withAmg!.params + results.gateParams)
})

test("GFLOPs and parameters are the shape checker's count per loop", () => {
  assert.deepEqual(statics.errors, [])
  const loops = new Map(statics.loops!.map((l) => [l.model, l]))
  for (const r of results.rows) {
    const l = loops.get(r.model)!
    const expected = r.exits.reduce((a, p, k) => a + p * l.costs.gflopsAtExit[k]!, 0)
    assert.ok(Math.abs(r.gflops - expected) <= 1e-12, `${r.row}: ${r.gflops} vs ${expected}`)
  }
  const withAmg = row(T3, "Iter. w/ AMG")
  assert.equal(withAmg.gflops, loops.get("ir9-loop3")!.costs.gflopsAtExit.at(-1))
  assert.equal(withAmg.params, loops.get("ir9-loop3")!.costs.params)
  assert.equal(row(T3, "No Iter.").params, loops.get("ir9-loop3")!.noIterParams)
})

test("Table 2: a later loop point loops over less of the network, so costs fewer GFLOPs", () => {
  const t2 = results.rows.filter((r) => r.table === "Table 2: loop points")
  assert.deepEqual(
    t2.map((r) => r.row),
    ["(3)", "(4)"],
  )
  assert.ok(t2.every((r) => Number.isFinite(r.auc20to50)))
  assert.ok(t2[0]!.gflops > t2[1]!.gflops)
})

const DEPTHS = "Exits of the loop-point-3 network: fixed depth and oracle"

test("fixed depths and the oracle: each depth's cost is the shape checker's, the last depth is Table 3's full loop, the oracle beats every depth", () => {
  const depths = results.rows.filter((r) => r.table === DEPTHS)
  assert.deepEqual(
    depths.map((r) => [r.row, r.evaluate]),
    [
      ["after loop 1", { _tag: "Loop", loop: 0 }],
      ["after loop 2", { _tag: "Loop", loop: 1 }],
      ["after loop 3", { _tag: "Loop", loop: 2 }],
      ["oracle", { _tag: "Oracle" }],
    ],
  )
  const costs = statics.loops!.find((l) => l.model === "ir9-loop3")!.costs.gflopsAtExit
  depths.slice(0, 3).forEach((r, k) => {
    assert.equal(r.gflops, costs[k])
    assert.equal(r.meanExit, k)
  })
  // The same trained network, every sample after its last loop.
  const full = row(T3, "Iter. w/ AMG")
  assert.deepEqual([depths[2]!.epe, depths[2]!.auc20to50], [full.epe, full.auc20to50])
  const oracle = depths[3]!
  for (const d of depths.slice(0, 3))
    assert.ok(oracle.epe <= d.epe, `oracle ${oracle.epe} > ${d.row} ${d.epe}`)
  assert.ok(oracle.gflops >= costs[0]! && oracle.gflops <= costs[2]!)
  const md = readFileSync(join(out, "results.md"), "utf8")
  assert.match(md, /ir9-loop3: every sample at its best loop \(the oracle\) reaches 3D AUC \d\.\d{3}/)
})

test("summary.json pairs each table's rows with its reference row, GFLOPs included", () => {
  const summary = JSON.parse(readFileSync(join(out, "summary.json"), "utf8")) as RunFiles.Summary
  const cell = (table: string, name: string) =>
    summary.cells.find((c) => c.table === table && c.row === name)!
  assert.equal(cell(T3, "No Iter.").paired, undefined)
  const gate = cell(T3, "Iter. w/ AMG + 𝒢").paired!
  assert.equal(gate.reference, "No Iter.")
  assert.equal(gate.n, 1)
  const [gateRow, noIter] = [row(T3, "Iter. w/ AMG + 𝒢"), row(T3, "No Iter.")]
  assert.equal(gate.epe.mean, gateRow.epe - noIter.epe)
  assert.equal(gate.gflops!.mean, gateRow.gflops - noIter.gflops)
  const oracle = cell(DEPTHS, "oracle").paired!
  assert.equal(oracle.reference, "after loop 1")
  assert.ok(oracle.epe.mean <= 0)
  assert.equal(cell("Table 2: loop points", "(4)").paired!.reference, "(3)")
  assert.match(readFileSync(join(out, "summary.md"), "utf8"), /Δ GFLOPs \|/)
})

test("Figure 7: τ_var and τ_gate sweeps of one network; GFLOPs fall as τ_var grows", () => {
  const sweep = results.sweep!
  assert.equal(sweep.model, "ir9-loop3")
  const byVar = sweep.points.filter((p) => p.series === "τ_var")
  const byGate = sweep.points.filter((p) => p.series === "τ_gate")
  assert.deepEqual(
    byVar.map((p) => p.quantile),
    [0, 0.5, 1],
  )
  assert.deepEqual(
    byGate.map((p) => p.tau),
    [0.5, 1, 4],
  )
  for (const p of sweep.points) assert.ok(Number.isFinite(p.auc20to50) && Number.isFinite(p.gflops), p.series)
  for (let i = 1; i < byVar.length; i++) assert.ok(byVar[i]!.gflops <= byVar[i - 1]!.gflops)
  const costs = results.loops.find((l) => l.model === "ir9-loop3")!.gflopsAtExit
  for (const p of sweep.points) assert.ok(p.gflops >= costs[0]! - 1e-15 && p.gflops <= costs.at(-1)! + 1e-15)
})

test("cmkg report draws Figure 7 (one series per exit rule) and the cost columns", async () => {
  const { files } = await Report.report(out)
  const svgPath = join(out, "report", "dirnet-tradeoff.svg")
  assert.ok(files.includes(svgPath) && files.includes(join(out, "report", "dirnet-tradeoff.png")))
  const svg = readFileSync(svgPath, "utf8")
  const texts = [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]!)
  for (const t of ["τ_var", "τ_gate", "fixed depth", "oracle", "loop 2", "3D AUC (20–50 mm)"])
    assert.ok(texts.includes(t), `${t} in ${texts.join(" | ")}`)
  const html = readFileSync(join(out, "report", "index.html"), "utf8")
  assert.match(html, /<figure id="fig-dirnet-tradeoff"[^>]*><svg /)
  assert.match(html, /<th>avg GFLOPs ↓<\/th><th>#params<\/th>/)
  assert.match(html, /<th scope="row">Iter\. w\/out AMG<\/th>/)
})

test("an ill-formed DIR-Net program exits 1 naming the problem, before any training", () => {
  const bad = join(root, "bad")
  const r = cmkg(["run", fixture, "--out", bad], { CMKG_TEST_IMAGE_SIZE: "48" })
  assert.equal(r.status, 1, r.stderr)
  // 48 is no multiple of 32: the loop's feedback (RF's output shuffled up) misses FE's size.
  assert.match(
    r.stderr,
    /ir9-loop3\/loop\/feedback: loop feedback gives 8×8×8 but must match the loop input 6×6×8/,
  )
  assert.match(r.stderr, /nothing was trained/)
  assert.ok(!existsSync(join(bad, "metrics.jsonl")))
})

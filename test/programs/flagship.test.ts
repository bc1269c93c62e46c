/**
 * The flagship programs, run as a user runs them (`cmkg run … --scale tiny`),
 * not only type-checked: every evaluation the program declares is in
 * results.json with finite numbers, every table's reference row is paired in
 * the summary, and cmkg-stb's tiny run shows the papers' premise (the depth
 * teacher clearly better than the RGB student), which is what the README's
 * main command shows a newcomer.
 */
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import { mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { test } from "node:test"
import type * as Experiment from "../../src/dsl/Experiment.ts"
import * as Program from "../../src/dsl/Program.ts"
import cmkgStb from "../../src/programs/cmkg-stb.ts"
import supervisionTransfer from "../../src/programs/supervision-transfer.ts"

interface Row {
  readonly table: string
  readonly row: string
  readonly column: string
  readonly epe: number
  readonly auc20to50: number
}

/** Runs a built-in program at tiny scale; its results rows, its summary and what it printed. */
const runTiny = (name: string) => {
  const out = mkdtempSync(join(tmpdir(), `cmkg-${name}-`))
  const r = spawnSync(
    process.execPath,
    ["bin/cmkg.js", "run", `programs/${name}.ts`, "--scale", "tiny", "--out", out],
    {
      encoding: "utf8",
    },
  )
  assert.equal(r.status, 0, `${name}: exit ${r.status}\n${r.stderr}`)
  const results = JSON.parse(readFileSync(join(out, "results.json"), "utf8")) as { rows: Row[] }
  const summary = JSON.parse(readFileSync(join(out, "summary.json"), "utf8")) as {
    cells: { table: string; row: string; column: string; paired?: unknown }[]
  }
  return { rows: results.rows, summary, printed: `${r.stdout}\n${r.stderr}` }
}

/** The (table, row, column) of every evaluation the program declares at tiny scale. */
const declared = (value: Program.Program | Program.Family) => {
  const p = Program.resolve(value, { scale: "tiny", data: {} }) as Program.Program<Experiment.Experiment>
  const evaluations = p.experiment!.stages.filter((s): s is Experiment.Evaluate => s._tag === "Evaluate")
  return {
    keys: evaluations.map((e) => `${e.table} | ${e.row} | ${e.column}`).sort(),
    references: p.experiment!.references ?? {},
  }
}

const checkAgainstProgram = (value: Program.Program | Program.Family, run: ReturnType<typeof runTiny>) => {
  const { keys, references } = declared(value)
  assert.deepEqual(run.rows.map((r) => `${r.table} | ${r.row} | ${r.column}`).sort(), keys)
  for (const r of run.rows)
    assert.ok(
      Number.isFinite(r.epe) && Number.isFinite(r.auc20to50) && r.epe > 0,
      `${r.table} / ${r.row}: EPE ${r.epe}, AUC ${r.auc20to50}`,
    )
  // Every row of a table with a reference row is paired with it in the summary.
  for (const [table, reference] of Object.entries(references))
    for (const cell of run.summary.cells.filter((c) => c.table === table && c.row !== reference))
      assert.ok(cell.paired !== undefined, `${table} / ${cell.row}: not paired with "${reference}"`)
  assert.match(run.printed, /--scale tiny is a smoke test/)
}

test("supervision-transfer --scale tiny: scratch, RGB copy and transfer at every layer, each evaluated", () => {
  const run = runTiny("supervision-transfer")
  checkAgainstProgram(supervisionTransfer, run)
  assert.ok(run.rows.some((r) => /supervision transfer at layer/.test(r.row)))
})

test("cmkg-stb --scale tiny: every row of Tables 2 and 3 evaluated, and the depth teacher clearly beats the RGB student", () => {
  const run = runTiny("cmkg-stb")
  checkAgainstProgram(cmkgStb, run)
  const epe = (row: string) => run.rows.find((r) => r.table === "Source" && r.row === row)!.epe
  // The papers' premise: depth is the privileged modality (65 mm against 98 mm on this machine).
  assert.ok(
    epe("depth teacher") + 10 < epe("RGB student"),
    `teacher ${epe("depth teacher")}, student ${epe("RGB student")}`,
  )
})

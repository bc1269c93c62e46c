/** Runs the built-in programs at tiny scale as a user does, and checks their results against the program value. */
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type * as Experiment from "../../src/dsl/Experiment.ts"
import * as Program from "../../src/dsl/Program.ts"
import { results, summary } from "../cli/helpers.ts"

export interface Row {
  readonly table: string
  readonly row: string
  readonly column: string
  readonly epe: number
  readonly auc20to50: number
}

/** A seed's results rows in run directory `out` (`seed` for a run whose seeds are in `seed-N/`). */
export const rowsOf = (out: string, seed?: number): Row[] => results(out, seed)

export interface Summary {
  readonly cells: readonly { table: string; row: string; column: string; paired?: unknown }[]
}

/** Runs a built-in program at tiny scale (with `extra` options); its run directory, summary and what it printed. */
export const runTiny = (name: string, extra: readonly string[] = []) => {
  const out = mkdtempSync(join(tmpdir(), `cmkg-${name}-`))
  const r = spawnSync(
    process.execPath,
    ["bin/cmkg.js", "run", `programs/${name}.ts`, "--scale", "tiny", "--out", out, ...extra],
    { encoding: "utf8" },
  )
  assert.equal(r.status, 0, `${name}: exit ${r.status}\n${r.stderr}`)
  return { out, summary: summary(out) as Summary, printed: `${r.stdout}\n${r.stderr}` }
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

/**
 * Every evaluation the program declares is in `rows` with finite numbers, every row of a table with a
 * reference row is paired with it in the summary, and the run ended saying that tiny is a smoke test.
 */
export const checkAgainstProgram = (
  value: Program.Program | Program.Family,
  rows: readonly Row[],
  run: { readonly summary: Summary; readonly printed: string },
) => {
  const { keys, references } = declared(value)
  assert.deepEqual(rows.map((r) => `${r.table} | ${r.row} | ${r.column}`).sort(), keys)
  for (const r of rows)
    assert.ok(
      Number.isFinite(r.epe) && Number.isFinite(r.auc20to50) && r.epe > 0,
      `${r.table} / ${r.row}: EPE ${r.epe}, AUC ${r.auc20to50}`,
    )
  for (const [table, reference] of Object.entries(references))
    for (const cell of run.summary.cells.filter((c) => c.table === table && c.row !== reference))
      assert.ok(cell.paired !== undefined, `${table} / ${cell.row}: not paired with "${reference}"`)
  assert.match(run.printed, /--scale tiny is a smoke test/)
}

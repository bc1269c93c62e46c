/**
 * supervision-transfer run as a user runs it (`cmkg run … --scale tiny`), not
 * only type-checked: every evaluation the program declares is in results.json
 * with finite numbers and every table's reference row is paired in the
 * summary. (cmkg-stb, the README's main job, is in cmkg-stb.test.ts.)
 */
import assert from "node:assert/strict"
import { test } from "node:test"
import supervisionTransfer from "../../src/programs/supervision-transfer.ts"
import { checkAgainstProgram, rowsOf, runTiny } from "./helpers.ts"

test("supervision-transfer --scale tiny: scratch, RGB copy and transfer at every layer, each evaluated", () => {
  const run = runTiny("supervision-transfer")
  const rows = rowsOf(run.out)
  checkAgainstProgram(supervisionTransfer, rows, run)
  assert.ok(rows.some((r) => /supervision transfer at layer/.test(r.row)))
})

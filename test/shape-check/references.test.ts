// An experiment's reference rows must be rows of their tables: the shape checker says which and why.
import assert from "node:assert/strict"
import { test } from "node:test"
import type * as Experiment from "../../src/dsl/Experiment.ts"
import * as Check from "../../src/interpreters/shape-check/experiment.ts"
import { formatError } from "../../src/interpreters/shape-check/index.ts"
import program from "../fixtures/programs/paired-rows.ts"

const withReferences = (references: Record<string, string>) => {
  const e = program.experiment as Experiment.Experiment
  return Check.check({ ...program, experiment: { ...e, references } }).errors.map(formatError)
}

test("a reference row of its table passes", () => {
  assert.deepEqual(withReferences({ T: "A" }), [])
})

test("a reference naming no table, or no row of its table, is an error naming both", () => {
  assert.deepEqual(withReferences({ U: "A" }), [
    'references/U: names table "U", which no evaluate stage fills',
  ])
  assert.deepEqual(withReferences({ T: "Z" }), [
    'references/T: reference row "Z" is not a row of the table (its rows: "A", "B", "A again")',
  ])
})

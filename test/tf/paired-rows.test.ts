/**
 * Paired comparisons (common random numbers): a stage's randomness depends on
 * what it is (its split, its network, the seed), never on its place in the
 * program. `cmkg run` of a fixture with rows A, B, "A again", and of the same
 * fixture with a row X inserted between A and B (same seed, same backend):
 * - every row present in both runs has bit-identical results, per-step
 *   losses and saved weights;
 * - "A again" (A's training under another model name, later in the program)
 *   is bit-identical to A: rows share their initialisation and batch order.
 */
import assert from "node:assert/strict"
import { spawn } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { after, before, test } from "node:test"
import { slug } from "../../src/run-dir/names.ts"

const fixture = "test/fixtures/programs/paired-rows.ts"
const root = mkdtempSync(join(tmpdir(), "cmkg-paired-rows-"))
const plain = join(root, "a-b")
const inserted = join(root, "a-x-b")
after(() => rmSync(root, { recursive: true, force: true }))

/** `cmkg run` of the fixture, asynchronously so that the two runs overlap. */
const run = (out: string, insert: boolean) =>
  new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, ["bin/cmkg.js", "run", fixture, "--out", out], {
      env: { ...process.env, CMKG_TEST_INSERT_ROW: insert ? "1" : "0" },
      stdio: ["ignore", "ignore", "pipe"],
    })
    let stderr = ""
    child.stderr.on("data", (d) => {
      stderr += String(d)
    })
    child.on("exit", (code) =>
      code === 0 ? resolve() : reject(new Error(`cmkg run exited ${code}: ${stderr}`)),
    )
  })

before(() => Promise.all([run(plain, false), run(inserted, true)]))

interface Row {
  readonly stage: string
  readonly row: string
  readonly model: string
  readonly [k: string]: unknown
}
const rows = (out: string): Row[] => JSON.parse(readFileSync(join(out, "results.json"), "utf8")).rows
const rowOf = (out: string, name: string): Row => {
  const r = rows(out).find((x) => x.row === name)
  assert.ok(r !== undefined, `${out}: no row "${name}"`)
  return r
}
/** A row's numbers, without what names it. */
const numbers = ({ stage: _s, row: _r, model: _m, ...rest }: Row) => rest
/** The logged steps of one stage, without their wall time. */
const steps = (out: string, stage: string) =>
  readFileSync(join(out, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { stage: string; time: number })
    .filter((l) => l.stage === stage)
    .map(({ time: _, ...rest }) => rest)
const weights = (out: string, evaluateStage: string) =>
  readFileSync(join(out, "models", slug(evaluateStage), "weights.bin"))

test("inserting row X leaves every other row's results, losses and weights bit-identical", () => {
  assert.deepEqual(
    rows(inserted).map((r) => r.row),
    ["A", "X", "B", "A again"],
  )
  for (const name of ["A", "B", "A again"]) {
    // JSON numbers print the shortest text that round-trips a double: equal text is equal bits.
    assert.equal(JSON.stringify(rowOf(inserted, name)), JSON.stringify(rowOf(plain, name)), name)
    const stage = `train ${name}`
    assert.ok(steps(plain, stage).length > 0, stage)
    assert.deepEqual(steps(inserted, stage), steps(plain, stage), stage)
    assert.ok(weights(inserted, `evaluate ${name}`).equals(weights(plain, `evaluate ${name}`)), name)
  }
  // X really trained something else: otherwise the test could not tell an inserted row from none.
  assert.notEqual(rowOf(inserted, "X").epe, rowOf(inserted, "A").epe)
})

test("rows share initialisation and batch order within a seed: A's training repeated later is A", () => {
  for (const out of [plain, inserted]) {
    assert.deepEqual(numbers(rowOf(out, "A again")), numbers(rowOf(out, "A")))
    assert.deepEqual(
      steps(out, "train A again").map(({ stage: _, ...rest }) => rest),
      steps(out, "train A").map(({ stage: _, ...rest }) => rest),
    )
    assert.ok(weights(out, "evaluate A again").equals(weights(out, "evaluate A")))
  }
})

test("the summary pairs each row with the reference row A", () => {
  const summary = JSON.parse(readFileSync(join(inserted, "summary.json"), "utf8")) as {
    cells: {
      row: string
      epe: { mean: number }
      paired?: { reference: string; n: number; epe: { mean: number } }
    }[]
  }
  const cell = (row: string) => summary.cells.find((c) => c.row === row)!
  assert.equal(cell("A").paired, undefined)
  for (const row of ["X", "B", "A again"]) {
    assert.equal(cell(row).paired?.reference, "A")
    assert.equal(cell(row).paired?.n, 1)
    assert.equal(cell(row).paired?.epe.mean, cell(row).epe.mean - cell("A").epe.mean)
  }
  assert.equal(cell("A again").paired?.epe.mean, 0)
})

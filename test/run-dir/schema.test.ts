/**
 * A run directory read back through its schemas (`src/run-dir/`): the files
 * of a real run decode; a file that does not is one line naming the file, the
 * line (metrics.jsonl) and the path inside it, through `cmkg report` (exit 1).
 */
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { after, before, describe, it } from "node:test"
import * as RunDir from "../../src/report/run-dir.ts"
import * as Read from "../../src/run-dir/read.ts"
import * as RunFiles from "../../src/run-dir/schema.ts"

const root = mkdtempSync(join(tmpdir(), "cmkg-run-dir-"))
const run = join(root, "run")
after(() => rmSync(root, { recursive: true, force: true }))

before(() => {
  const r = spawnSync(
    process.execPath,
    ["bin/cmkg.js", "run", "test/fixtures/programs/tiny-experiment.ts", "--out", run],
    { encoding: "utf8", env: { ...process.env, CMKG_TEST_EPOCHS: "1" } },
  )
  assert.equal(r.status, 0, r.stderr)
})

let copies = 0
/** A copy of the run directory with `edit` applied to it. */
const copyWith = (edit: (dir: string) => void): string => {
  const dir = join(root, `copy-${++copies}`)
  cpSync(run, dir, { recursive: true })
  edit(dir)
  return dir
}

const editJson = (file: string, f: (value: any) => void) => {
  const value = JSON.parse(readFileSync(file, "utf8"))
  f(value)
  writeFileSync(file, JSON.stringify(value, null, 2))
}

/** `cmkg report dir` fails with exit 1 and one line of stderr; returns that line. */
const reportFails = (dir: string): string => {
  const r = spawnSync(process.execPath, ["bin/cmkg.js", "report", dir], { encoding: "utf8" })
  assert.equal(r.status, 1, `exit ${r.status}: ${r.stderr}`)
  const lines = r.stderr.trim().split("\n")
  assert.equal(lines.length, 1, r.stderr)
  return lines[0]!
}

/** Decoding `value` with `schema` fails with `message` (as found in `file`). */
const fails = (schema: Parameters<typeof Read.decode>[1], value: unknown, message: string) =>
  assert.throws(
    () => Read.decode("results.json", schema, value),
    (e: unknown) => {
      assert.ok(e instanceof Read.RunFileError, String(e))
      assert.equal(e.message, message)
      return true
    },
  )

describe("a run directory as cmkg run writes it", () => {
  it("decodes: program.json, metrics.jsonl, results.json, summary.json, model.json", () => {
    const r = RunDir.read(run)
    assert.equal(r.program.name, "tiny-experiment")
    assert.equal(r.seeds[0]!.metrics.length, 12)
    assert.deepEqual(
      r.seeds[0]!.results?.rows.map((x) => x.row),
      ["teacher", "student"],
    )
    const summary = Read.readJson(join(run, "summary.json"), RunFiles.Summary)
    assert.deepEqual(summary.seeds, [1])
    const checkpoint = join(
      run,
      "checkpoints",
      readFileSync(join(run, "checkpoints", "LATEST"), "utf8").trim(),
    )
    assert.ok(Read.readJson(join(checkpoint, "model.json"), RunFiles.ModelJson).weightsManifest.length > 0)
  })

  it("keeps a null loss (how JSON writes a non-finite one) and drops a partial last line", () => {
    const dir = copyWith((d) => {
      const file = join(d, "metrics.jsonl")
      const first = JSON.parse(readFileSync(file, "utf8").split("\n")[0]!)
      appendFileSync(file, `${JSON.stringify({ ...first, minimize: null })}\n{"stage":"tea`)
    })
    const metrics = RunDir.read(dir).seeds[0]!.metrics
    assert.equal(metrics.length, 13)
    assert.equal(metrics[12]!.minimize, null)
  })
})

describe("a file that does not decode is one line naming the file and the path inside it", () => {
  it("results.json with a null EPE", () => {
    const dir = copyWith((d) =>
      editJson(join(d, "results.json"), (r) => {
        r.rows[1].epe = null
      }),
    )
    const line = reportFails(dir)
    assert.ok(
      line.startsWith(`cmkg: ${join(dir, "results.json")}: rows[1].epe: expected number, got null (`),
      line,
    )
  })

  it("metrics.jsonl with a bad line: its number, the key, the value", () => {
    const dir = copyWith((d) => {
      const file = join(d, "metrics.jsonl")
      const lines = readFileSync(file, "utf8").split("\n")
      lines[2] = lines[2]!.replace(/"minimize":[^,}]+/, '"minimize":"NaN"')
      writeFileSync(file, lines.join("\n"))
    })
    const line = reportFails(dir)
    assert.ok(
      line.startsWith(
        `cmkg: ${join(dir, "metrics.jsonl")}: line 3: minimize: expected number | null, got "NaN" (`,
      ),
      line,
    )
  })

  it("results.json that is not JSON", () => {
    const dir = copyWith((d) => writeFileSync(join(d, "results.json"), "garbage{\n"))
    const line = reportFails(dir)
    assert.match(line, new RegExp(`^cmkg: ${join(dir, "results.json")}: not valid JSON \\(.*\\) \\(`))
  })

  it("a metrics.jsonl line that is not JSON, before the last", () => {
    const dir = copyWith((d) => {
      const file = join(d, "metrics.jsonl")
      const lines = readFileSync(file, "utf8").split("\n")
      lines[4] = lines[4]!.slice(0, 10)
      writeFileSync(file, lines.join("\n"))
    })
    assert.throws(
      () => RunDir.read(dir),
      (e: unknown) =>
        e instanceof Read.RunFileError &&
        e.message.startsWith(`${join(dir, "metrics.jsonl")}: line 5: not valid JSON (`),
    )
  })

  it("program.json and a saved model's metadata", () => {
    const dir = copyWith((d) =>
      editJson(join(d, "program.json"), (p) => {
        p.program.experiment.metaParams = [{ name: "phi", like: 3 }]
      }),
    )
    assert.throws(
      () => RunDir.read(dir),
      (e: unknown) =>
        e instanceof Read.RunFileError &&
        e.message ===
          `${join(dir, "program.json")}: program.experiment.metaParams[0].like: expected string, got 3`,
    )
    assert.throws(
      () =>
        Read.decode(
          "model.json",
          RunFiles.ModelMeta,
          { row: null },
          { path: ["userDefinedMetadata", "cmkg"] },
        ),
      { message: "model.json: userDefinedMetadata.cmkg.row: expected string, got null" },
    )
  })
})

describe("results.json is tagged by experiment kind", () => {
  const staged = () => JSON.parse(readFileSync(join(run, "results.json"), "utf8"))
  /** The staged run's results as a DIR-Net run writes its own: `kind`, the cost columns, four rows. */
  const dirnet = () => {
    const s = staged()
    const rows = [...s.rows, ...s.rows].map((r: object, i: number) => ({
      ...r,
      evaluate: i === 0 ? { _tag: "NoIter" } : { _tag: "Gate", temperature: 1, seed: 0 },
      gflops: 0.5,
      params: 1000,
      meanExit: 0.5,
      exits: [0.5, 0.5],
    }))
    return { kind: "DirNetExperiment", ...s, rows, loops: [], gateParams: 10 }
  }

  it("decodes both kinds, each as its own", () => {
    assert.equal(Read.decode("results.json", RunFiles.Results, staged()).kind, undefined)
    const d = Read.decode("results.json", RunFiles.Results, dirnet())
    assert.equal(d.kind === "DirNetExperiment" ? d.rows[3]!.params : undefined, 1000)
  })

  it("reports a DIR-Net file's mismatch inside DIR-Net's schema, not against the staged one", () => {
    const d = dirnet()
    d.rows[3] = { ...d.rows[3], epe: null }
    fails(RunFiles.Results, d, "results.json: rows[3].epe: expected number, got null")
    fails(
      RunFiles.Results,
      { ...dirnet(), gateParams: "10" },
      'results.json: gateParams: expected number, got "10"',
    )
    // A staged file has no cost columns: a row without them is only an error in a DIR-Net file.
    const { evaluate: _, ...noEvaluate } = dirnet().rows[2]!
    const withoutEvaluate = dirnet()
    withoutEvaluate.rows[2] = noEvaluate as (typeof withoutEvaluate.rows)[number]
    fails(RunFiles.Results, withoutEvaluate, "results.json: rows[2].evaluate: missing")
  })

  it("rejects an unknown kind and a value that is not results at all", () => {
    fails(
      RunFiles.Results,
      { ...staged(), kind: "Other" },
      'results.json: kind: expected "DirNetExperiment" or no kind (a staged experiment), got "Other"',
    )
    fails(
      RunFiles.Results,
      [1, 2],
      'results.json: expected the results of a staged experiment or of a DIR-Net one (kind "DirNetExperiment"), got [1,2]',
    )
  })
})

/**
 * `cmkg run --resume` falls back, never wipes (issue 16): a newest
 * checkpoint that does not load is skipped for its predecessor, saying why;
 * a missing LATEST resumes from the newest checkpoint; when nothing loads,
 * nothing is removed without `--restart`, and each skipped checkpoint's
 * reason is one line naming the file (and the path inside model.json); a
 * deleted metrics.jsonl is reported. One epoch per stage
 * (CMKG_TEST_EPOCHS=1); each scenario starts from a copy of one finished run.
 */
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { after, test } from "node:test"
import { results, snapshot, steps } from "./helpers.ts"

const fixture = "test/fixtures/programs/tiny-experiment.ts"
const env = { ...process.env, CMKG_TEST_EPOCHS: "1" }
const root = mkdtempSync(join(tmpdir(), "cmkg-resume-fallback-"))
after(() => rmSync(root, { recursive: true, force: true }))
const cmkg = (...args: string[]) =>
  spawnSync(process.execPath, ["bin/cmkg.js", ...args], { encoding: "utf8", env })

const base = join(root, "base")
let reference: { results: unknown; steps: unknown } | undefined
const copy = (name: string): string => {
  assert.ok(reference !== undefined, "the reference run failed")
  const out = join(root, name)
  cpSync(base, out, { recursive: true })
  return out
}
const checkpoint = (out: string, n: string) => join(out, "checkpoints", n)

test("the reference run", () => {
  const r = cmkg("run", fixture, "--out", base)
  assert.equal(r.status, 0, r.stderr)
  reference = { results: results(base), steps: steps(base) }
  assert.deepEqual(readdirSync(join(base, "checkpoints")).sort(), ["000001", "000002", "LATEST"])
})

test("a newest checkpoint that does not load is skipped for its predecessor, saying which and why", () => {
  const out = copy("truncated")
  const bin = join(checkpoint(out, "000002"), "weights.bin")
  const size = readFileSync(bin).byteLength
  writeFileSync(bin, readFileSync(bin).subarray(0, 1000))
  const r = cmkg("run", fixture, "--out", out, "--resume")
  assert.equal(r.status, 0, r.stderr)
  assert.ok(
    r.stdout.includes(
      `skipping ${checkpoint(out, "000002")}: ${bin}: 1000 bytes, the manifest in model.json needs ${size}\n`,
    ),
    r.stdout,
  )
  assert.ok(r.stdout.includes(`resuming from ${checkpoint(out, "000001")}: `), r.stdout)
  assert.deepEqual(results(out), reference!.results)
  assert.deepEqual(steps(out), reference!.steps)
})

test("--resume without LATEST resumes from the newest checkpoint and keeps the checkpoints and metrics", () => {
  const out = copy("no-latest")
  rmSync(join(out, "checkpoints", "LATEST"))
  const r = cmkg("run", fixture, "--out", out, "--resume")
  assert.equal(r.status, 0, r.stderr)
  assert.ok(
    r.stdout.includes(
      `${join(out, "checkpoints", "LATEST")} is missing: resuming from the newest checkpoint that loads`,
    ),
    r.stdout,
  )
  assert.ok(r.stdout.includes(`resuming from ${checkpoint(out, "000002")}: `), r.stdout)
  assert.deepEqual(steps(out), reference!.steps)
  assert.deepEqual(results(out), reference!.results)
})

test("when no checkpoint loads, --resume removes nothing and names each file and path; --restart starts over", () => {
  const out = copy("none-loads")
  writeFileSync(join(checkpoint(out, "000002"), "model.json"), "garbage{\n  more")
  const json1 = join(checkpoint(out, "000001"), "model.json")
  const m = JSON.parse(readFileSync(json1, "utf8"))
  delete m.userDefinedMetadata.cmkg
  writeFileSync(json1, JSON.stringify(m))
  const before = snapshot(out)
  const r = cmkg("run", fixture, "--out", out, "--resume")
  assert.equal(r.status, 1, r.stderr)
  assert.match(
    r.stdout,
    new RegExp(
      `skipping ${checkpoint(out, "000002")}: ${join(checkpoint(out, "000002"), "model.json")}: not valid JSON \\(Unexpected token[^\\n]*\\)\\n`,
    ),
  )
  assert.ok(
    r.stdout.includes(`skipping ${checkpoint(out, "000001")}: ${json1}: userDefinedMetadata.cmkg: missing\n`),
    r.stdout,
  )
  assert.ok(
    r.stderr.startsWith(
      `cmkg: ${out}: nothing to resume from, but it holds 2 checkpoint(s), none of which loads (`,
    ),
    r.stderr,
  )
  assert.match(
    r.stderr,
    /metrics\.jsonl with 12 line\(s\); nothing was removed \(--restart starts over, removing them\)\n$/,
  )
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr)
  // Nothing is touched (program.json is rewritten with this command's options before the runner starts).
  const { "program.json": _, ...after } = snapshot(out)
  const { "program.json": __, ...expected } = before
  assert.deepEqual(after, expected)

  const again = cmkg("run", fixture, "--out", out, "--resume", "--restart")
  assert.equal(again.status, 0, again.stderr)
  assert.match(
    again.stdout,
    /--restart: nothing to resume from in .*; starting over, removing 2 checkpoint\(s\)/,
  )
  assert.deepEqual(results(out), reference!.results)
  assert.deepEqual(steps(out), reference!.steps)
})

test("a metrics.jsonl deleted before --resume is reported: the early training curves are lost", () => {
  const out = copy("no-metrics")
  rmSync(join(out, "metrics.jsonl"))
  const r = cmkg("run", fixture, "--out", out, "--resume")
  assert.equal(r.status, 0, r.stderr)
  assert.ok(
    r.stdout.includes(
      `${join(out, "metrics.jsonl")} is missing: the training curves up to ${checkpoint(out, "000002")} are lost; it restarts with the steps after that checkpoint\n`,
    ),
    r.stdout,
  )
  assert.ok(
    !existsSync(join(out, "metrics.jsonl")) || readFileSync(join(out, "metrics.jsonl"), "utf8") === "",
  )
})

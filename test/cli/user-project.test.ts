/**
 * cmkg as a dependency of a user's own npm project, outside this repository:
 * packed as `npm pack` packs it, installed into a fresh project without a
 * `"type"` field (a default CommonJS folder), then a program written against
 * `import … from "cmkg"` is type-checked, checked and run there, and the laws
 * kit's documented example (`import * as Laws from "cmkg/laws"`) runs there too.
 */
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { test } from "node:test"
import { bundleIsFresh } from "../../scripts/source-hash.mjs"

const repo = resolve(".")
const fixtures = join(repo, "test", "fixtures", "user-project")

const sh = (cwd: string, command: string, args: readonly string[], env: Record<string, string> = {}) => {
  // Without node:test's marker, so that a test run inside the project reports as it would in a terminal.
  const { NODE_TEST_CONTEXT: _, ...outside } = process.env
  const r = spawnSync(command, args, { cwd, encoding: "utf8", env: { ...outside, ...env } })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, all: `${r.stdout}\n${r.stderr}` }
}

test("a scratch npm project installs the packed cmkg, and check, run and a law work there", {
  timeout: 900_000,
}, () => {
  // The package ships dist/: make sure it is the build of the sources under test.
  if (!bundleIsFresh(repo)) {
    const built = sh(repo, process.execPath, ["scripts/build.mjs"])
    assert.equal(built.code, 0, built.all)
  }
  const packs = mkdtempSync(join(tmpdir(), "cmkg-pack-"))
  const packed = sh(repo, "npm", ["pack", "--ignore-scripts", "--pack-destination", packs])
  assert.equal(packed.code, 0, packed.all)
  const tarball = join(packs, readdirSync(packs).find((f) => f.endsWith(".tgz"))!)

  const project = mkdtempSync(join(tmpdir(), "cmkg-user-"))
  // No "type" field: Node treats the project's .ts files as CommonJS (what `npm init` made before npm 11).
  writeFileSync(
    join(project, "package.json"),
    JSON.stringify({ name: "my-research", version: "1.0.0", private: true }),
  )
  const installed = sh(
    project,
    "npm",
    ["install", "--prefer-offline", "--no-audit", "--no-fund", tarball],
    // onnxruntime-node's installer would fetch CUDA files when it sees nvcc (unreachable here);
    // the oneDNN addon is optional and slow to compile, so this install skips both.
    { ONNXRUNTIME_NODE_INSTALL: "skip", CMKG_DNNL: "0" },
  )
  assert.equal(installed.code, 0, installed.all)
  for (const f of readdirSync(fixtures)) copyFileSync(join(fixtures, f), join(project, f))

  const version = sh(project, "npx", ["cmkg", "--version"])
  assert.equal(version.code, 0, version.all)
  assert.match(version.stdout, /cmkg v\d+\.\d+\.\d+/)
  assert.doesNotMatch(version.stderr, /npm warn/i)

  const checked = sh(project, "npx", ["cmkg", "check", "my-exp.ts"])
  assert.equal(checked.code, 0, checked.all)
  assert.match(checked.stdout, /Total params: 1,931/)

  // A loss naming an undeclared tap is a type error: refused before anything runs, as tsc prints it.
  const wrong = sh(project, "npx", ["cmkg", "check", "wrong-tap.ts"])
  assert.equal(wrong.code, 1, wrong.all)
  assert.match(
    wrong.stderr,
    /wrong-tap\.ts:12:\d+ - error TS2322: Type '"nope"' is not assignable to type '"feat"'/,
  )

  const run = sh(project, "npx", ["cmkg", "run", "my-exp.ts", "--scale", "tiny", "--out", "runs/my-exp"], {
    CMKG_DNNL: "0",
  })
  assert.equal(run.code, 0, run.all)
  const results = JSON.parse(readFileSync(join(project, "runs", "my-exp", "results.json"), "utf8")) as {
    rows: { row: string; epe: number }[]
  }
  const student = results.rows.find((r) => r.row === "student")
  assert.ok(student !== undefined && Number.isFinite(student.epe), JSON.stringify(results.rows))

  // The laws kit's documented example, verbatim from docs/laws-kit.md, importing "cmkg" and "cmkg/laws".
  const doc = readFileSync(join(repo, "docs", "laws-kit.md"), "utf8")
  const example = /## Example[\s\S]*?```ts\n([\s\S]*?)```/.exec(doc)
  assert.ok(example !== null, "docs/laws-kit.md has a ```ts block under ## Example")
  assert.match(example[1]!, /from "cmkg\/laws"/)
  writeFileSync(join(project, "my-block.test.ts"), example[1]!)
  const law = sh(project, process.execPath, [
    "--import",
    "tsx",
    "--test",
    "--test-reporter=tap",
    "my-block.test.ts",
  ])
  assert.equal(law.code, 0, law.all)
  assert.match(law.stdout, /# pass 2\b/)
  assert.match(law.stdout, /# fail 0\b/)
})

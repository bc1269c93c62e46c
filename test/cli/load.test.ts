/**
 * Loading a program module from anywhere: a folder without `"type": "module"`
 * above it, type errors refused as tsc prints them, a value that only looks
 * like a program refused naming what is wrong, and `cmkg --version` /
 * `cmkg check` loading nothing of tfjs (start-up time).
 */
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { test } from "node:test"

const bin = resolve("bin/cmkg.js")
const cmkg = (args: readonly string[], cwd = process.cwd(), nodeArgs: readonly string[] = []) => {
  const r = spawnSync(process.execPath, [...nodeArgs, bin, ...args], { cwd, encoding: "utf8" })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

test('a program in a folder without "type": "module" loads (it failed with \'Cannot require() ES Module … in a cycle\')', () => {
  const dir = mkdtempSync(join(tmpdir(), "cmkg-cjs-"))
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "plain", version: "1.0.0" }))
  const src = resolve("src")
  writeFileSync(
    join(dir, "my-exp.ts"),
    [
      `import * as Program from ${JSON.stringify(join(src, "dsl", "Program.ts"))}`,
      `import * as Zoo from ${JSON.stringify(join(src, "dsl", "zoo.ts"))}`,
      `export default Program.program({`,
      `  name: "my-net",`,
      `  description: "a small ResNet on 64×64 RGB",`,
      `  models: [Program.model("net", Zoo.smallResNet({ outputs: 63 }), [64, 64, 3])],`,
      `})`,
    ].join("\n"),
  )
  const r = cmkg(["check", "my-exp.ts", "--json"], dir)
  assert.equal(r.code, 0, r.stderr)
  assert.equal(JSON.parse(r.stdout).program, "my-net")
})

test("a type error is refused as tsc prints it, nothing run; --no-typecheck skips the check", () => {
  const r = cmkg(["check", "test/fixtures/programs/type-error.ts"])
  assert.equal(r.code, 1, r.stderr)
  assert.match(
    r.stderr,
    /type-error\.ts: 1 type error\(s\), nothing was run[^\n]*\n {2}test\/fixtures\/programs\/type-error\.ts:6:7 - error TS2322: Type 'string' is not assignable to type 'number'\./,
  )
  assert.equal(r.stdout, "")
  const skipped = cmkg(["check", "test/fixtures/programs/type-error.ts", "--no-typecheck", "--json"])
  assert.equal(skipped.code, 0, skipped.stderr)
  assert.equal(JSON.parse(skipped.stdout).program, "type-error")
})

test("a value that only looks like a program is refused in one line naming the path (was: 'program.models is not iterable')", () => {
  const r = cmkg(["check", "test/fixtures/programs/fake-program.ts"])
  assert.equal(r.code, 2, r.stderr)
  assert.equal(
    r.stderr.trim(),
    "cmkg: test/fixtures/programs/fake-program.ts: not a valid program value: models: expected array, got 3",
  )
})

// Loaded CommonJS modules are in require.cache when the process exits (tfjs's Node builds are CommonJS).
const probe = (dir: string): string => {
  const file = join(dir, "probe.cjs")
  writeFileSync(
    file,
    `process.on("exit", () => { const tf = Object.keys(require.cache).filter((k) => k.includes("@tensorflow")); process.stderr.write("\\nloaded-tfjs:" + tf.length + "\\n") })`,
  )
  return file
}

test("`cmkg --version` and `cmkg check` load no tfjs module; `cmkg run` does (the probe sees it)", () => {
  const dir = mkdtempSync(join(tmpdir(), "cmkg-probe-"))
  const require = ["--require", probe(dir)]
  const version = cmkg(["--version"], process.cwd(), require)
  assert.equal(version.code, 0, version.stderr)
  assert.match(version.stderr, /loaded-tfjs:0\n/)
  const check = cmkg(["check", "programs/resnet18-imagenet.ts"], process.cwd(), require)
  assert.equal(check.code, 0, check.stderr)
  assert.match(check.stderr, /loaded-tfjs:0\n/)
  // The probe can see tfjs: a run that gets as far as choosing its backend has loaded it.
  const run = cmkg(
    ["run", "test/fixtures/programs/bad-experiment.ts", "--out", join(dir, "out"), "--no-typecheck"],
    process.cwd(),
    require,
  )
  assert.match(run.stderr, /loaded-tfjs:[1-9]/, run.stderr)
})

/**
 * cmkg's environment variables (`src/settings.ts`, read through Effect
 * Config): a bad value stops `cmkg run` before anything is created, in one
 * line naming the variable and its value (exit 2); an empty one counts as
 * unset.
 */
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { after, test } from "node:test"
import * as Settings from "../../src/settings.ts"

const root = mkdtempSync(join(tmpdir(), "cmkg-settings-"))
after(() => rmSync(root, { recursive: true, force: true }))
const fixture = "test/fixtures/programs/tiny-experiment.ts"

const run = (env: Record<string, string>, out: string) =>
  spawnSync(process.execPath, ["bin/cmkg.js", "run", fixture, "--out", out], {
    encoding: "utf8",
    env: { ...process.env, ...env },
    timeout: 60_000,
  })

test("a bad CMKG_BACKEND, CMKG_DNNL or CMKG_CACHE_DIR is one line naming the variable and value, before anything is created", () => {
  const file = join(root, "a-file")
  writeFileSync(file, "")
  const cases: [Record<string, string>, string][] = [
    [
      { CMKG_BACKEND: "cuda" },
      "cmkg: CMKG_BACKEND=cuda: expected one of auto, tensorflow-gpu, tensorflow, cmkg-cpu, wasm, cpu",
    ],
    [{ CMKG_DNNL: "no" }, "cmkg: CMKG_DNNL=no: expected 0 (oneDNN kernels off) or 1 (on)"],
    [
      { CMKG_CACHE_DIR: file },
      `cmkg: CMKG_CACHE_DIR=${file}: not a directory; name a directory for cmkg's data cache (created if missing)`,
    ],
  ]
  for (const [env, line] of cases) {
    const out = join(root, Object.keys(env)[0]!)
    const r = run(env, out)
    assert.equal(r.status, 2, r.stderr)
    assert.equal(r.stderr, `${line}\n`)
    assert.ok(!existsSync(out), `${out} was created`)
  }
})

test("the settings as the library reads them: an empty variable is unset; a bad one throws its BadSetting", () => {
  const saved = { ...process.env }
  try {
    process.env.CMKG_BACKEND = ""
    process.env.CMKG_DNNL = "0"
    process.env.CMKG_CACHE_DIR = root
    assert.deepEqual(Settings.read(Settings.settings), { backend: undefined, dnnl: false, cacheDir: root })
    process.env.CMKG_BACKEND = "wasm"
    assert.equal(Settings.read(Settings.backend), "wasm")
    process.env.CMKG_DNNL = "yes"
    assert.throws(() => Settings.read(Settings.dnnl), {
      _tag: "BadSetting",
      variable: "CMKG_DNNL",
      value: "yes",
    })
    assert.throws(() => Settings.read(Settings.settings), { _tag: "BadSetting", variable: "CMKG_DNNL" })
  } finally {
    for (const k of ["CMKG_BACKEND", "CMKG_DNNL", "CMKG_CACHE_DIR"])
      if (saved[k] === undefined) delete process.env[k]
      else process.env[k] = saved[k]
  }
})

/** Boundaries of the architecture: the algebra stays pure data. */
import assert from "node:assert/strict"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { test } from "node:test"

const files = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  )

test("src/dsl imports neither tfjs nor any interpreter, data reader or Node I/O", () => {
  for (const f of files("src/dsl")) {
    const imports = [...readFileSync(f, "utf8").matchAll(/from\s+"([^"]+)"/g)].map((m) => m[1]!)
    for (const i of imports) {
      assert.ok(!i.startsWith("@tensorflow"), `${f} imports ${i}`)
      assert.ok(
        !i.includes("interpreters/") && !i.includes("../data/") && !i.startsWith("node:"),
        `${f} imports ${i}`,
      )
    }
  }
})

test("only src/interpreters/tf, src/backend, src/laws (and the bench) touch tfjs", () => {
  for (const dir of [
    "src/dsl",
    "src/interpreters/shape-check",
    "src/interpreters/reference",
    "src/data",
    "src/programs",
    "src/cli",
    "src/report",
    "src/run-dir",
  ])
    for (const f of files(dir))
      assert.ok(!/from\s+"@tensorflow/.test(readFileSync(f, "utf8")), `${f} imports tfjs`)
})

test("src/backend is a tfjs backend below the interpreters: it imports none of them", () => {
  for (const f of files("src/backend"))
    for (const m of readFileSync(f, "utf8").matchAll(/from\s+"([^"]+)"/g))
      assert.ok(!m[1]!.includes("interpreters/"), `${f} imports ${m[1]}`)
})

test("src/report reads run directories through src/run-dir's schemas, not the tf interpreter's types", () => {
  for (const f of files("src/report"))
    for (const m of readFileSync(f, "utf8").matchAll(/from\s+"([^"]+)"/g))
      assert.ok(!m[1]!.includes("interpreters/tf"), `${f} imports ${m[1]}`)
})

test("src/run-dir (what a run directory holds) depends on no interpreter and not on the report", () => {
  for (const f of files("src/run-dir"))
    for (const m of readFileSync(f, "utf8").matchAll(/from\s+"([^"]+)"/g))
      assert.ok(!m[1]!.includes("interpreters/") && !m[1]!.includes("report/"), `${f} imports ${m[1]}`)
})

test("the sweep engine's queue layer (src/cluster but the stage runner) loads neither tfjs nor an interpreter", () => {
  for (const f of files("src/cluster").filter((f) => !f.endsWith("stage-run.ts")))
    for (const m of readFileSync(f, "utf8").matchAll(/from\s+"([^"]+)"/g))
      assert.ok(!m[1]!.startsWith("@tensorflow") && !m[1]!.includes("interpreters/"), `${f} imports ${m[1]}`)
})

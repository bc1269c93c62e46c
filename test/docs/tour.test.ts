/**
 * docs/tour.md runs as written: each `ts` block is written to the file its
 * first line names, each `sh` block is run in order (`npx cmkg` as this
 * checkout's bin), and every line of the `text` block after a command must
 * appear in what it printed. The files live in a scratch folder inside the
 * repository, so `import … from "cmkg"` resolves to this package itself.
 */
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join, resolve } from "node:path"
import { test } from "node:test"

interface Block {
  readonly lang: string
  readonly body: string
}

const blocks = (markdown: string): Block[] =>
  [...markdown.matchAll(/```(\w+)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1]!, body: m[2]! }))

test("docs/tour.md: every block type-checks and runs, printing what the tour says", {
  timeout: 600_000,
}, () => {
  const tour = blocks(readFileSync("docs/tour.md", "utf8"))
  assert.ok(tour.filter((b) => b.lang === "sh").length >= 4, "the tour has its commands")
  const dir = resolve(".scratch", `tour-${process.pid}`)
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  const bin = resolve("bin/cmkg.js")
  // Without node:test's marker, so that the tour's own test run reports as in a terminal.
  const { NODE_TEST_CONTEXT: _, ...env } = process.env
  let printed: string | undefined
  try {
    for (const block of tour) {
      if (block.lang === "ts") {
        const name = /^\/\/ (\S+)\n/.exec(block.body)?.[1]
        assert.ok(name !== undefined, `a ts block names its file on its first line:\n${block.body}`)
        writeFileSync(join(dir, name), block.body)
      } else if (block.lang === "sh") {
        for (const line of block.body.trim().split("\n")) {
          const words = line.trim().split(/\s+/)
          const [command, ...args] =
            words[0] === "npx" && words[1] === "cmkg" ? [bin, ...words.slice(2)] : words
          const r = spawnSync(
            command === "node" || command === bin ? process.execPath : command!,
            command === bin ? [bin, ...args] : args,
            {
              cwd: dir,
              encoding: "utf8",
              env,
            },
          )
          assert.equal(r.status, 0, `${line} exited ${r.status}:\n${r.stdout}\n${r.stderr}`)
          printed = `${r.stdout}\n${r.stderr}`
        }
      } else if (block.lang === "text") {
        assert.ok(printed !== undefined, "a text block follows a command")
        for (const expected of block.body.trim().split("\n"))
          assert.ok(
            printed.includes(expected.trim()),
            `the tour says the output contains "${expected}":\n${printed}`,
          )
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

#!/usr/bin/env node
// `npm test`: type-check, then every test and law file under node:test.
// Node 20's --test takes no globs, so the files are listed here.
import { spawn, spawnSync } from "node:child_process"
import { readdirSync, statSync } from "node:fs"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { bundleIsFresh } from "./source-hash.mjs"

const roots = ["test", "laws"]
const files = []
const walk = (dir) => {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) walk(p)
    else if (p.endsWith(".test.ts")) files.push(p)
  }
}
for (const r of roots) walk(r)
const only = process.argv.slice(2)
const selected = only.length > 0 ? files.filter((f) => only.some((o) => f.includes(o))) : files

const run = (cmd, args) => spawnSync(cmd, args, { stdio: "inherit" }).status ?? 1
// The CLI tests run bin/cmkg.js, which runs the compiled bundle only when it matches src/:
// build it first, so that what the tests exercise is what the package ships.
if (!bundleIsFresh(process.cwd())) if (run(process.execPath, ["scripts/build.mjs"]) !== 0) process.exit(1)
if (only.length === 0) {
  console.log("# typecheck: tsc --noEmit")
  if (run(process.execPath, ["node_modules/typescript/bin/tsc", "--noEmit", "-p", "."]) !== 0) process.exit(1)
}
// The TAP stream passes through; every skipped test or suite is named again at the end, with its
// reason (node's own summary does not count skipped suites), so a skip is never silent.
const child = spawn(process.execPath, ["--import", "tsx", "--test", "--test-reporter=tap", ...selected], {
  stdio: ["inherit", "pipe", "inherit"],
})
const skipped = []
createInterface({ input: child.stdout }).on("line", (line) => {
  process.stdout.write(`${line}\n`)
  const m = /^\s*ok \d+ - (.*) # SKIP ?(.*)$/.exec(line)
  if (m !== null) skipped.push(`${m[1]}: ${m[2] || "(no reason given)"}`)
})
child.on("close", (code) => {
  console.log(`# skipped tests and suites: ${skipped.length}`)
  for (const s of skipped) console.log(`#   ${s}`)
  process.exit(code ?? 1)
})

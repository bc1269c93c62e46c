// A missing or non-run directory fails, naming the directory and what is missing.
import * as assert from "node:assert/strict"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { after, describe, it } from "node:test"
import { Cause, Effect, Exit } from "effect"
import { BadInvocation } from "../../src/cli/errors.ts"
import { command } from "../../src/cli/report-command.ts"
import * as Report from "../../src/report/index.ts"

const root = mkdtempSync(join(tmpdir(), "cmkg-report-errors-"))
after(() => rmSync(root, { recursive: true, force: true }))

const rejects = (dir: string, what: RegExp) =>
  assert.rejects(Report.report(dir), (e: unknown) => {
    assert.ok(e instanceof Report.NotARunDirectory, String(e))
    assert.ok(e.message.startsWith(`${dir}: `), e.message)
    assert.match(e.message, what)
    return true
  })

describe("report of something that is not a run directory", () => {
  it("fails for a missing directory", () => rejects(join(root, "nope"), /no such directory/))

  it("fails for a file", () => {
    const f = join(root, "file")
    writeFileSync(f, "")
    return rejects(f, /not a directory/)
  })

  it("fails without program.json", () => {
    const d = join(root, "empty")
    mkdirSync(d)
    return rejects(d, /program\.json is missing/)
  })

  it("fails when nothing has been trained or evaluated", () => {
    const d = join(root, "fresh")
    mkdirSync(d)
    writeFileSync(join(d, "program.json"), JSON.stringify({ program: { name: "p" }, options: {} }))
    return rejects(d, /no results\.json and no metrics\.jsonl/)
  })

  it("is a bad invocation for the CLI", async () => {
    const exit = await Effect.runPromiseExit(command(join(root, "nope")))
    assert.ok(Exit.isFailure(exit))
    const failure = Cause.squash(exit.cause)
    assert.ok(failure instanceof BadInvocation, String(failure))
    assert.match(failure.message, /nope: no such directory/)
  })
})

/**
 * cmkg-stb, the README's main job, at `--scale tiny` with two seeds, run as a
 * user runs it:
 * - in one process: every row of Tables 2 and 3 evaluated with finite
 *   numbers and paired with its reference row in the summary, and the papers'
 *   premise (the depth teacher clearly better than the RGB student), which is
 *   what the README's main command shows a newcomer;
 * - on the sweep engine (a real Redis server, three `cmkg worker` processes
 *   on this 2-core machine), one worker SIGKILLed while it runs a training
 *   stage: another worker takes the stage over, the sweep completes, and its
 *   results and summary.json equal the single-process run's, number for
 *   number; `cmkg status` shows every stage done and who ran it.
 */
import assert from "node:assert/strict"
import { execFileSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { after, before, describe, test } from "node:test"
import type * as Experiment from "../../src/dsl/Experiment.ts"
import * as Program from "../../src/dsl/Program.ts"
import cmkgStb from "../../src/programs/cmkg-stb.ts"
import { start, summary } from "../cli/helpers.ts"
import { type Redis, redisSkip, startRedis } from "../cluster/redis.ts"
import { checkAgainstProgram, rowsOf, runTiny } from "./helpers.ts"

const COMMON = ["--seeds", "2", "--backend", "cmkg-cpu", "--threads", "1"]

let single: ReturnType<typeof runTiny> | undefined

test("cmkg-stb --scale tiny --seeds 2: every row of Tables 2 and 3 evaluated, and the depth teacher clearly beats the RGB student", () => {
  single = runTiny("cmkg-stb", COMMON)
  for (const seed of [1, 2]) checkAgainstProgram(cmkgStb, rowsOf(single.out, seed), single)
  // The papers' premise: depth is the privileged modality (65 mm against 98 mm on this machine, seed 1).
  const epe = (row: string) => rowsOf(single!.out, 1).find((r) => r.table === "Source" && r.row === row)!.epe
  assert.ok(
    epe("depth teacher") + 10 < epe("RGB student"),
    `teacher ${epe("depth teacher")}, student ${epe("RGB student")}`,
  )
})

describe("cmkg-stb --scale tiny --seeds 2 on the sweep engine", { skip: redisSkip() }, () => {
  let redis: Redis
  let out: string
  before(async () => {
    redis = await startRedis()
    out = mkdtempSync(join(tmpdir(), "cmkg-stb-cluster-"))
  })
  after(async () => {
    await redis?.stop()
    rmSync(out, { recursive: true, force: true })
  })

  test("three workers, one SIGKILLed mid-stage: the sweep completes with the single-process results and summary", async () => {
    assert.ok(single !== undefined, "the single-process run above did not run")
    const workerArgs = ["worker", "--cluster", redis.url, "--backend", "cmkg-cpu", "--threads", "1"]
    const workers = [0, 1, 2].map(() => start([...workerArgs, "--lock-seconds", "2"]))
    try {
      const run = start([
        "run",
        "programs/cmkg-stb.ts",
        "--scale",
        "tiny",
        "--out",
        out,
        ...COMMON,
        "--cluster",
        redis.url,
      ])
      // The first worker to start a training stage is killed while it runs it.
      const trainStarted = /^(cmkg-stb-\w+\/\d+\/\d+) · (seed \d+ · \d+\/\d+ train [^\n]*): started$/m
      let victim: (typeof workers)[number] | undefined
      let started: RegExpExecArray | null = null
      while (victim === undefined) {
        assert.equal(run.child.exitCode, null, `${run.output.stdout}\n${run.output.stderr}`)
        for (const w of workers) {
          started = trainStarted.exec(w.output.stdout)
          if (started !== null) {
            victim = w
            break
          }
        }
        await new Promise((r) => setTimeout(r, 5))
      }
      victim.child.kill("SIGKILL")
      await victim.closed
      const [, job, label] = started!
      assert.doesNotMatch(
        victim.output.stdout,
        new RegExp(`${job} · .*: done`),
        "the kill landed after the stage",
      )

      assert.equal(await run.closed, 0, `${run.output.stdout}\n${run.output.stderr}`)
      for (const seed of [1, 2]) assert.deepEqual(rowsOf(out, seed), rowsOf(single.out, seed))
      assert.deepEqual(summary(out), summary(single.out))

      const runId = /submitted run (cmkg-stb-\w+) /.exec(run.output.stdout)![1]!
      const tally = execFileSync(process.execPath, ["bin/cmkg.js", "status", "--cluster", redis.url], {
        encoding: "utf8",
      })
      const stages =
        2 *
        (Program.resolve(cmkgStb, { scale: "tiny", data: {} }) as Program.Program<Experiment.Experiment>)
          .experiment!.stages.length
      assert.match(tally, new RegExp(`${runId} {2}${stages} stages: ${stages} done`))
      const detail = execFileSync(
        process.execPath,
        ["bin/cmkg.js", "status", "--cluster", redis.url, runId],
        {
          encoding: "utf8",
        },
      )
      const done = [...detail.matchAll(/ done on (\S+)/g)].map((m) => m[1])
      assert.equal(done.length, stages, detail)
      // The killed worker's stage was finished by another worker.
      const line = detail.split("\n").find((l) => l.includes(label!))
      assert.ok(line !== undefined, `no "${label}" in:\n${detail}`)
      assert.match(line, / done on \S+/)
      assert.doesNotMatch(line, new RegExp(`:${victim.child.pid} `), line)
    } finally {
      const alive = workers.filter((w) => w.child.exitCode === null && w.child.signalCode === null)
      for (const w of alive) w.child.kill("SIGINT")
      await Promise.all(alive.map((w) => w.closed))
    }
  })
})

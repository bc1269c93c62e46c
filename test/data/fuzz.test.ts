/**
 * Fuzzing the dataset readers (issue 16): every format's fixtures (PNG, JPEG,
 * MAT, pickle, JSON) are mutated by truncation, bit flips, byte overwrites
 * and header-field edits, and each outcome must be a decode that keeps the
 * reader's promises or an Error whose one-line message names the file — never
 * a crash, a hang or an unnamed error — with the peak RSS rising by less than
 * `RSS_BOUND_MB`. See test/data/fuzz-run.ts for the mutations and checks.
 *
 * Seeded: the seed is printed; `FC_SEED=<n>` replays it (the cases are the
 * same in the same order; how many run depends on the machine's speed).
 * Bounded in time: `FUZZ_MS` (default 4000 ms) of cases, plus the child's start.
 */
import assert from "node:assert/strict"
import { spawn } from "node:child_process"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { test } from "node:test"

const RUNNER = join(import.meta.dirname, "fuzz-run.ts")
const SEED = process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : Date.now() % 2 ** 31
const MS = Number(process.env.FUZZ_MS ?? 4000)
// A case that makes no progress for this long is a hang (cases take milliseconds).
const HANG_MS = 20_000
// The readers bound what a file of each format may allocate (images by their dataset's size, MAT
// files by 10× STB's handPara). Measured rise of the fuzzer's peak RSS: 5–57 MB in 4 s runs,
// 32–101 MB in 40–60 s runs (3,500–9,000 cases).
const RSS_BOUND_MB = 128

interface Result {
  readonly runs: number
  readonly failed: boolean
  readonly error?: string
  readonly peakRssBeforeMB: number
  readonly peakRssAfterMB: number
  readonly perFile: Record<string, { runs: number; decoded: number; rejected: number }>
}

test("fuzz: mutated fixtures of every format give a named error or a correct decode (seed printed; FC_SEED replays)", async () => {
  console.log(`fuzz seed ${SEED} (FC_SEED=${SEED} replays), ${MS} ms`)
  // A child process: its hang can be stopped, its crash seen, its peak RSS read.
  const child = spawn(process.execPath, ["--import", "tsx", RUNNER, String(SEED), String(MS)], {
    stdio: ["ignore", "pipe", "pipe"],
  })
  let last = "(no case started)"
  let result: Result | undefined
  let stderr = ""
  child.stderr.on("data", (d) => {
    stderr += d
  })
  let hung = false
  let watchdog = setTimeout(() => {}, 0)
  const arm = () => {
    clearTimeout(watchdog)
    watchdog = setTimeout(() => {
      hung = true
      child.kill("SIGKILL")
    }, HANG_MS)
  }
  arm()
  createInterface({ input: child.stdout }).on("line", (line) => {
    arm()
    if (!line.startsWith("{")) return // a library writing to stdout
    const msg = JSON.parse(line)
    if (msg.result === true) result = msg
    else last = line
  })
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on("close", (c, s) => resolve([c, s])),
  )
  clearTimeout(watchdog)
  assert.ok(!hung, `hang: no progress for ${HANG_MS} ms on ${last} (seed ${SEED})`)
  assert.ok(
    code === 0 && result !== undefined,
    `crash: exit ${code} ${signal ?? ""} during ${last} (seed ${SEED}): ${stderr.slice(-2000)}`,
  )
  assert.ok(!result.failed, `seed ${SEED}: ${result.error}`)
  const rise = result.peakRssAfterMB - result.peakRssBeforeMB
  console.log(
    `fuzz: ${result.runs} cases, peak RSS ${result.peakRssBeforeMB} → ${result.peakRssAfterMB} MB; ` +
      Object.entries(result.perFile)
        .map(([f, c]) => `${f} ${c.decoded}/${c.runs} decoded`)
        .join(", "),
  )
  assert.ok(rise < RSS_BOUND_MB, `peak RSS rose ${rise} MB (bound ${RSS_BOUND_MB} MB)`)
  // Every fixture was fuzzed (the cases take the 15 fixtures in turn).
  assert.equal(
    Object.keys(result.perFile).length,
    15,
    `fuzzed only ${Object.keys(result.perFile).join(", ")}`,
  )
})

/**
 * `npm run bench`: the workloads of ../shared/bench/workloads.md, images/s of
 * cmkg beside PyTorch (bench/torch_ref.py) on the same machine with the same
 * thread count.
 *
 *   npm run bench -- [--rounds 9] [--steps 3] [--round-seconds 3] [--warmup 1] [--threads N]
 *                    [--backend auto|cmkg-cpu|wasm|cpu] [--workloads tiny-64-train,…]
 *                    [--no-torch] [--python /usr/bin/python3] [--no-handwritten] [--out latest.json | --out /abs/path.json]
 *                    [--leak-steps 1000 [--leak-every 100] [--leak-batch 8] [--leak-size 32]]
 *                    [--compare earlier.json] [--profile [--profile-steps 1]]
 *
 * Each workload runs in two processes built once: cmkg's (bench/worker.ts: the
 * DSL column, i.e. the program stage's step run by `StepRun.run` as `cmkg run`
 * runs it, and the hand-written tfjs column where one exists) and PyTorch's
 * (`torch_ref.py --serve`). They take turns in rounds — cmkg, PyTorch, cmkg,
 * PyTorch, … — each round `--warmup` untimed then `--steps` timed steps (more
 * for a fast workload: as many as fill `--round-seconds` of cmkg's time,
 * measured on two steps after a warm-up first, so that a round is not a
 * second of noise); one
 * process waits while the other runs. The ratio cmkg ÷ PyTorch (images/s) is
 * computed per round and reported as its median and min–max over rounds, and
 * likewise DSL ÷ hand-written tfjs (the DSL's own overhead), measured in each
 * round apart, the two sides taking turns step by step. Peak RSS of both
 * processes is recorded. `--leak-steps N` runs the meta workload at a small
 * size (cmkg-stb's tiny backbone) N steps and records the live tensors every
 * `--leak-every` steps. `--compare FILE` (relative to bench/results, like --out) prints how far each median ratio is
 * from FILE's (two back-to-back runs should agree within 5 %). `--profile`
 * then times one more step (`--profile-steps` of them, averaged) on each side
 * with every kernel timed — cmkg's tfjs kernels, PyTorch's aten ops under
 * torch.profiler — and prints where the step's time goes by kernel class
 * (bench/breakdown.ts), ms per step and share on each side and PyTorch ÷ cmkg
 * per class; the rows go into the result file as `breakdown`.
 *
 * Writes bench/results/latest.json (or `--out`: relative to bench/results, or
 * absolute), with this machine's absolute paths removed.
 */
import { type ChildProcessByStdio, spawn } from "node:child_process"
import { accessSync, constants, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { cpus } from "node:os"
import { dirname, join, resolve } from "node:path"
import { createInterface } from "node:readline"
import type { Readable, Writable } from "node:stream"
import { fileURLToPath } from "node:url"
import {
  type BreakdownRow,
  type ByClass,
  breakdownRows,
  breakdownTable,
  byClass,
  type Profile,
  tfjsClass,
  topKernels,
  torchClass,
} from "./breakdown.ts"
import { WORKLOAD_NAMES, WORKLOADS, type WorkloadName } from "./dsl.ts"
import { HANDWRITTEN } from "./handwritten.ts"
import { median, perRoundRatio, relativeDifference, type Spread, scrubJson, spread } from "./stats.ts"
import { PYTHON as DEFAULT_PYTHON, torchProblem as findTorchProblem, skipMessage } from "./torch.ts"

const here = dirname(fileURLToPath(import.meta.url))
const root = dirname(here)
const args = process.argv.slice(2)
const opt = (name: string, dflt: string): string => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 && args[i + 1] !== undefined ? (args[i + 1] as string) : dflt
}
const flag = (name: string): boolean => args.includes(`--${name}`)
const refuse = (message: string): never => {
  console.error(`npm run bench: ${message}`)
  process.exit(2)
}
const count = (name: string, dflt: string, min: number): number => {
  const v = Number(opt(name, dflt))
  return Number.isInteger(v) && v >= min
    ? v
    : refuse(`--${name} ${opt(name, dflt)}: expected an integer ≥ ${min}`)
}

const rounds = count("rounds", "9", 1)
const steps = count("steps", "3", 1)
const roundSeconds = Number(opt("round-seconds", "3"))
const warmup = count("warmup", "1", 0)
const threads = count("threads", String(cpus().length), 1)
const backend = opt("backend", "auto")
const profileSteps = flag("profile") ? count("profile-steps", "1", 1) : 0
const leakSteps = count("leak-steps", "0", 0)
const leakEvery = count("leak-every", "100", 1)
const leakBatch = count("leak-batch", "8", 1)
const leakSize = count("leak-size", "32", 8)
const workloads = opt("workloads", WORKLOAD_NAMES.join(","))
  .split(",")
  .filter((w) => w !== "" && w !== "none")
for (const w of workloads)
  if (!(WORKLOAD_NAMES as readonly string[]).includes(w))
    refuse(`--workloads: unknown workload "${w}"; expected some of ${WORKLOAD_NAMES.join(", ")}`)

// The output file is checked before anything runs: an absolute path, or one relative to bench/results.
const outPath = resolve(join(here, "results"), opt("out", "latest.json"))
if (existsSync(outPath) && statSync(outPath).isDirectory())
  refuse(`--out ${outPath}: is a directory; name a file`)
{
  let dir = dirname(outPath)
  while (!existsSync(dir)) dir = dirname(dir)
  try {
    accessSync(dir, constants.W_OK)
  } catch {
    refuse(`--out ${outPath}: cannot write in ${dir}; choose another path`)
  }
}
// Like --out: relative to bench/results (absolute paths as they are).
const compareWith = args.includes("--compare")
  ? resolve(join(here, "results"), opt("compare", ""))
  : undefined
if (compareWith !== undefined && !existsSync(compareWith))
  refuse(
    `--compare ${compareWith}: no such file; pass an earlier bench result (a name in bench/results, e.g. latest.json, or an absolute path)`,
  )

// ---- PyTorch: available, or why not and how to get it ----------------------------------------------

const PYTHON = opt("python", DEFAULT_PYTHON)
const torchProblem = flag("no-torch") ? "--no-torch" : findTorchProblem(PYTHON)
if (torchProblem !== undefined && torchProblem !== "--no-torch")
  console.log(skipMessage(torchProblem, PYTHON))

// ---- the two processes of a workload -------------------------------------------------------------

type Json = Record<string, unknown>

/** A process that answers one JSON line per line it is sent (bench/worker.ts, torch_ref.py --serve). */
class Peer {
  private readonly lines: AsyncIterator<string>
  private readonly child: ChildProcessByStdio<Writable, Readable, null>
  constructor(
    readonly label: string,
    command: string,
    argv: readonly string[],
  ) {
    this.child = spawn(command, argv, { cwd: root, stdio: ["pipe", "pipe", "inherit"] })
    this.lines = createInterface({ input: this.child.stdout })[Symbol.asyncIterator]()
  }
  /** The next JSON line it prints (other lines are passed through). */
  async read(): Promise<Json> {
    for (;;) {
      const next = await this.lines.next()
      if (next.done === true) {
        const code = await new Promise<number | null>((ok) =>
          this.child.exitCode !== null ? ok(this.child.exitCode) : this.child.once("exit", (c) => ok(c)),
        )
        throw new Error(`${this.label} ended (exit ${code}) without answering; its messages are above`)
      }
      if (next.value.startsWith("{")) return JSON.parse(next.value) as Json
      console.log(`${this.label}: ${next.value}`)
    }
  }
  async ask(message: unknown): Promise<Json> {
    this.child.stdin.write(`${typeof message === "string" ? message : JSON.stringify(message)}\n`)
    const r = await this.read()
    if (typeof r.error === "string") throw new Error(`${this.label}: ${r.error}`)
    return r
  }
  /** Ends it; its final answer (peak RSS, counters). */
  async close(): Promise<Json> {
    const r = await this.ask("exit")
    this.child.stdin.end()
    return r
  }
  kill(): void {
    if (this.child.exitCode === null) this.child.kill()
  }
}

const cmkgWorker = (name: string, extra: readonly string[] = []): Peer =>
  new Peer("cmkg", process.execPath, [
    "--import",
    "tsx",
    join(here, "worker.ts"),
    name,
    "--threads",
    String(threads),
    "--backend",
    backend,
    ...extra,
  ])

const torchWorker = (name: string): Peer =>
  new Peer("torch", PYTHON, [join(here, "torch_ref.py"), "--threads", String(threads), "--serve", name])

// ---- one workload ------------------------------------------------------------------------------------

interface Side {
  readonly ms_per_step: readonly number[]
  /** CPU time (all threads) per step, per round: less sensitive than wall time to other processes on the machine. */
  readonly cpu_ms_per_step: readonly number[]
  readonly images_per_s_median: number
  readonly peak_rss_mb?: number
}

interface Row {
  workload: string
  batch: number
  threads: number
  backend: string
  /** Timed steps per round on each side (`--steps`, or more to fill `--round-seconds`). */
  steps_per_round?: number
  /** What the cmkg column runs: the program stage's step through `StepRun.run`, as `cmkg run`. */
  cmkg_source: string
  cmkg: Side | null
  /** The same workload written directly against tfjs (no DSL), where it exists. */
  tfjs: Side | null
  torch: Side | null
  /** cmkg ÷ PyTorch images/s per round: median, min, max. */
  ratio: Spread | null
  /**
   * The same ratio from CPU time (PyTorch's CPU ms ÷ cmkg's): a check on a busy machine, where
   * wall time counts waiting for the CPU; with more than one thread it also counts spin-waiting.
   */
  cpu_ratio: Spread | null
  /** DSL ÷ hand-written tfjs ms per step − 1 per round (0.03 = the DSL costs 3 % more). */
  dsl_overhead: Spread | null
  /** The same from CPU time. */
  dsl_overhead_cpu: Spread | null
  live_tensors: { before: number; after: number } | null
  /** With `--profile`: one step's time by kernel class on each side (ms per step), and the table's rows. */
  breakdown?: { cmkg: ByClass; torch: ByClass | null; rows: BreakdownRow[] }
  error?: string
}

const SOURCES: Record<WorkloadName, string> = {
  "tiny-64-train": 'cmkd-rhd stage "rgb baseline (L_REG fine-tuning)" (scale paper), network zoo.smallResNet',
  "resnet18-128-train": 'cmkd-rhd stage "rgb baseline (L_REG fine-tuning)" (scale paper)',
  "cmkd-resnet18-128": "cmkd-rhd's main-row fine-tuning stage (scale paper)",
  "cmkg-meta-resnet18-128": 'cmkg-stb stage "meta-train φ (R (ℓ2 form, Eq. 10))" (scale paper)',
}

let backendName = backend
let backendNote = ""
const workerStats: Record<string, Json> = {}

const side = (ms: readonly number[], cpuMs: readonly number[], batch: number, rss?: number): Side => ({
  ms_per_step: ms.map((m) => Math.round(m * 10) / 10),
  cpu_ms_per_step: cpuMs.map((m) => Math.round(m * 10) / 10),
  images_per_s_median: Math.round((batch / (median(ms) / 1000)) * 100) / 100,
  ...(rss === undefined ? {} : { peak_rss_mb: rss }),
})

const runWorkload = async (name: WorkloadName): Promise<Row> => {
  const batch = WORKLOADS[name].batch
  const row: Row = {
    workload: name,
    batch,
    threads,
    backend: backendName,
    cmkg_source: SOURCES[name],
    cmkg: null,
    tfjs: null,
    torch: null,
    ratio: null,
    cpu_ratio: null,
    dsl_overhead: null,
    dsl_overhead_cpu: null,
    live_tensors: null,
  }
  const hasHand = HANDWRITTEN[name] !== undefined && !flag("no-handwritten")
  const peers: Peer[] = []
  try {
    const cmkg = cmkgWorker(name, hasHand ? [] : ["--no-handwritten"])
    peers.push(cmkg)
    const hello = await cmkg.read()
    backendName = String(hello.backend)
    backendNote = String(hello.backend_note)
    row.backend = backendName
    // Built one after the other: PyTorch starts building once cmkg's side is built and waiting.
    const torch = torchProblem === undefined ? torchWorker(name) : undefined
    if (torch !== undefined) {
      peers.push(torch)
      await torch.read()
    }
    // Two steps after a warm-up one (the first step compiles and allocates) size the rounds: at least
    // `steps`, and enough to fill `roundSeconds` of cmkg's time.
    const probe = Number((await cmkg.ask({ side: "dsl", warmup: 1, steps: 2 })).ms_per_step)
    const stepsHere = Math.max(steps, Math.ceil((roundSeconds * 1000) / Math.max(probe, 1)))
    row.steps_per_round = stepsHere
    const dslMs: number[] = []
    const torchMs: number[] = []
    const cpu = { dsl: [] as number[], torch: [] as number[] }
    // The DSL and hand-written sides measured step by step in turn (the DSL's overhead).
    const pairedMs = { dsl: [] as number[], hand: [] as number[] }
    const pairedCpu = { dsl: [] as number[], hand: [] as number[] }
    for (let r = 0; r < rounds; r++) {
      const a = await cmkg.ask({ side: "dsl", warmup, steps: stepsHere })
      dslMs.push(Number(a.ms_per_step))
      cpu.dsl.push(Number(a.cpu_ms_per_step))
      row.live_tensors = { before: Number(a.live_tensors_before), after: Number(a.live_tensors_after) }
      if (hasHand) {
        // The DSL's overhead over hand-written tfjs is a few per cent, less than the machine's drift
        // between two blocks of steps; so it is measured apart, the two sides taking turns step by step.
        const pair = await cmkg.ask({ interleave: true, warmup, steps: stepsHere })
        const [d, h] = [pair.dsl as Json, pair.hand as Json]
        pairedMs.dsl.push(Number(d.ms_per_step))
        pairedMs.hand.push(Number(h.ms_per_step))
        pairedCpu.dsl.push(Number(d.cpu_ms_per_step))
        pairedCpu.hand.push(Number(h.cpu_ms_per_step))
      }
      if (torch !== undefined) {
        const a = await torch.ask({ warmup, steps: stepsHere })
        torchMs.push(Number(a.ms_per_step))
        cpu.torch.push(Number(a.cpu_ms_per_step))
      }
      const last = (xs: number[]) => (xs.length === 0 ? "-" : `${xs[xs.length - 1]!.toFixed(0)} ms`)
      console.log(
        `${name} round ${r + 1}/${rounds}: cmkg ${last(dslMs)}/step, tfjs ${last(pairedMs.hand)} (beside the DSL's ${last(pairedMs.dsl)}), torch ${last(torchMs)}`,
      )
    }
    if (profileSteps > 0) {
      const profile = (await cmkg.ask({ profile: profileSteps })) as unknown as Profile
      const c = byClass(profile, tfjsClass)
      // Where cmkg's elementwise and reduction time goes, by kernel (its gap to PyTorch at two threads).
      const top = topKernels(profile, tfjsClass, ["elementwise", "reduction"])
      const t =
        torch === undefined
          ? undefined
          : byClass((await torch.ask({ profile: profileSteps })) as unknown as Profile, torchClass)
      const rows = breakdownRows(c, t)
      // Rounded to 1 µs (ms with 3 decimals, shares to 0.1 ‰) for the result file.
      row.breakdown = JSON.parse(
        JSON.stringify({ cmkg: c, torch: t ?? null, rows, cmkg_elementwise_kernels: top }, (_k, v) =>
          typeof v === "number" ? Math.round(v * 1000) / 1000 : v,
        ),
      )
      console.log(
        `\n${name}, batch ${batch}, ${threads} thread${threads === 1 ? "" : "s"}: one step by kernel class (${profileSteps} profiled step${profileSteps === 1 ? "" : "s"} a side, after the rounds)\n${breakdownTable(rows)}\n`,
      )
      console.log(
        `cmkg's elementwise and reduction kernels, slowest first:\n${top.map((k) => `  ${k.kernel.padEnd(26)} ${k.ms.toFixed(1).padStart(8)} ms ${String(k.calls).padStart(6)} calls`).join("\n")}\n`,
      )
    }
    const end = await cmkg.close()
    workerStats[name] = end
    const torchEnd = torch === undefined ? undefined : await torch.close()
    row.cmkg = side(dslMs, cpu.dsl, batch, Number(end.peak_rss_mb))
    if (hasHand) {
      row.tfjs = side(pairedMs.hand, pairedCpu.hand, batch)
      row.dsl_overhead = spread(perRoundRatio(pairedMs.hand, pairedMs.dsl).map((x) => x - 1))
      row.dsl_overhead_cpu = spread(perRoundRatio(pairedCpu.hand, pairedCpu.dsl).map((x) => x - 1))
    }
    if (torchEnd !== undefined) {
      row.torch = side(torchMs, cpu.torch, batch, Number(torchEnd.peak_rss_mb))
      row.ratio = spread(perRoundRatio(dslMs, torchMs))
      row.cpu_ratio = spread(perRoundRatio(cpu.dsl, cpu.torch))
    }
  } catch (e) {
    row.error = e instanceof Error ? e.message : String(e)
  } finally {
    for (const p of peers) p.kill()
  }
  return row
}

const rows: Row[] = []
for (const name of workloads as WorkloadName[]) {
  const row = await runWorkload(name)
  rows.push(row)
  console.log(JSON.stringify(row))
}

// ---- leak check: the meta workload at a small size -----------------------------------------------------

let leak: Json | undefined
if (leakSteps > 0) {
  const w = cmkgWorker("cmkg-meta-resnet18-128", [
    "--scale",
    "tiny",
    "--batch",
    String(leakBatch),
    "--image-size",
    String(leakSize),
    "--no-handwritten",
  ])
  try {
    const hello = await w.read()
    backendName = String(hello.backend)
    backendNote = String(hello.backend_note)
    const r = await w.ask({ leak: leakSteps, every: leakEvery })
    const end = await w.close()
    leak = {
      workload: "cmkg-meta-resnet18-128 with cmkg-stb's tiny backbone",
      batch: leakBatch,
      image_size: leakSize,
      steps: leakSteps,
      every: leakEvery,
      live_tensors: r.live_tensors,
      s_per_step: Math.round(Number(r.s_per_step) * 1000) / 1000,
      peak_rss_mb: end.peak_rss_mb,
    }
    console.log(
      `leak check: live tensors every ${leakEvery} steps: ${(r.live_tensors as number[]).join(" ")}`,
    )
  } catch (e) {
    leak = { error: e instanceof Error ? e.message : String(e) }
  } finally {
    w.kill()
  }
}

// ---- against an earlier run ----------------------------------------------------------------------------

let comparison: Json | undefined
if (compareWith !== undefined) {
  const earlier = JSON.parse(readFileSync(compareWith, "utf8")) as { workloads?: Row[] }
  const per: Record<string, Json> = {}
  for (const r of rows) {
    const then = earlier.workloads?.find((w) => w.workload === r.workload)?.ratio?.median
    const now = r.ratio?.median
    if (then === undefined || now === undefined) continue
    const d = relativeDifference(now, then)
    const cpuThen = earlier.workloads?.find((w) => w.workload === r.workload)?.cpu_ratio?.median
    const cpuNow = r.cpu_ratio?.median
    const cpuDifference =
      cpuThen === undefined || cpuNow === undefined
        ? {}
        : { cpu_ratio_difference: Math.round(relativeDifference(cpuNow, cpuThen) * 1000) / 1000 }
    per[r.workload] = {
      ...cpuDifference,
      this_run: now,
      earlier: then,
      difference: Math.round(d * 1000) / 1000,
      within_5_percent: d <= 0.05,
    }
    console.log(
      `${r.workload}: median ratio ${now} now, ${then} in ${compareWith}: ${(d * 100).toFixed(1)} % apart${d <= 0.05 ? "" : " (more than 5 %)"}` +
        ("cpu_ratio_difference" in cpuDifference
          ? `; CPU-time ratio ${cpuNow} against ${cpuThen}, ${(cpuDifference.cpu_ratio_difference * 100).toFixed(1)} % apart`
          : ""),
    )
  }
  comparison = { file: compareWith, workloads: per }
}

const out = scrubJson(
  {
    date: new Date().toISOString(),
    command: `npm run bench -- ${args.join(" ")}`.trim(),
    backend: backendName,
    backend_note: backendNote,
    threads,
    rounds,
    steps_per_round: steps,
    warmup_steps_per_round: warmup,
    torch_available: torchProblem === undefined,
    ...(torchProblem === undefined
      ? {}
      : { torch_skipped: torchProblem === "--no-torch" ? torchProblem : skipMessage(torchProblem, PYTHON) }),
    workloads: rows,
    ...(leak === undefined ? {} : { leak }),
    ...(comparison === undefined ? {} : { compare: comparison }),
    cmkg_process: workerStats,
  },
  root,
)
mkdirSync(dirname(outPath), { recursive: true })
writeFileSync(outPath, `${JSON.stringify(out, null, 2)}\n`)

const pad = (s: string, n: number): string => s.padEnd(n)
const range = (s: Spread | null, pct = false): string =>
  s === null
    ? "-"
    : pct
      ? `${(s.median * 100).toFixed(1)} % [${(s.min * 100).toFixed(1)}, ${(s.max * 100).toFixed(1)}]`
      : `${s.median.toFixed(3)} [${s.min.toFixed(3)}, ${s.max.toFixed(3)}]`
console.log(
  `\n${pad("workload", 24)}${pad("cmkg img/s", 12)}${pad("tfjs img/s", 12)}${pad("torch img/s", 13)}${pad("ratio [min, max]", 24)}${pad("CPU-time ratio", 24)}${pad("DSL overhead [min, max]", 27)}${pad("(CPU time)", 27)}peak RSS cmkg/torch`,
)
for (const r of rows)
  console.log(
    `${pad(r.workload, 24)}${pad(r.cmkg?.images_per_s_median.toFixed(2) ?? "-", 12)}${pad(r.tfjs?.images_per_s_median.toFixed(2) ?? "-", 12)}${pad(r.torch?.images_per_s_median.toFixed(2) ?? "-", 13)}${pad(range(r.ratio), 24)}${pad(range(r.cpu_ratio), 24)}${pad(range(r.dsl_overhead, true), 27)}${pad(range(r.dsl_overhead_cpu, true), 27)}${r.cmkg?.peak_rss_mb ?? "-"}/${r.torch?.peak_rss_mb ?? "-"} MB${r.error === undefined ? "" : `  (${r.error})`}`,
  )
console.log(
  `${rounds} rounds of ${warmup} warm-up + ${rows.map((r) => r.steps_per_round ?? steps).join("/")} timed steps per side (per workload: at least ${steps}, and ${roundSeconds} s of cmkg's time); backend ${backendName}, ${threads} threads; written to ${outPath}`,
)

/**
 * `npm run bench`: the workloads of /work/shared/bench/workloads.md, images/s of
 * cmkg beside PyTorch (bench/torch_ref.py, run in the same run with the same
 * thread count when `/usr/bin/python3 -c "import torch"` works).
 *
 *   npm run bench -- [--steps 5] [--threads N] [--backend auto|cmkg-cpu|wasm|cpu]
 *                    [--workloads tiny-64-train,resnet18-128-train,...] [--no-torch]
 *                    [--leak-steps 1000] [--no-dsl] [--no-handwritten] [--out latest.json]
 *
 * The cmkg column is the DSL program (cmkg's zoo) run through the tf interpreter
 * where one exists (tiny-64-train, resnet18-128-train); the same network written
 * directly against tfjs (bench/nets.ts) runs beside it, so cmkg ÷ tfjs is the
 * DSL's own overhead. Writes bench/results/latest.json.
 */
import { spawnSync } from "node:child_process"
import { mkdirSync, writeFileSync } from "node:fs"
import { cpus } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import * as tf from "@tensorflow/tfjs-core"
import {
  type BackendPreference,
  dnnlCalls,
  dnnlUnavailable,
  dnnlVersion,
  fallbackCalls,
  fastPathCalls,
  liveTensors,
} from "../src/backend/index.ts"
import { pooledBytes } from "../src/backend/pool.ts"
import { ready } from "../src/interpreters/tf/index.ts"
import { dslTrain } from "./dsl.ts"
import { distLoss, fusedAdam, mse, type Net, resnet18, tiny } from "./nets.ts"

const here = dirname(fileURLToPath(import.meta.url))
const args = process.argv.slice(2)
const opt = (name: string, dflt: string): string => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 && args[i + 1] !== undefined ? (args[i + 1] as string) : dflt
}
const flag = (name: string): boolean => args.includes(`--${name}`)

const steps = Number(opt("steps", "5"))
const threads = Number(opt("threads", String(cpus().length)))
const backendPref = opt("backend", "auto") as BackendPreference
const ALL = ["tiny-64-train", "resnet18-128-train", "cmkd-resnet18-128", "cmkg-meta-resnet18-128"]
const workloads = opt("workloads", ALL.join(","))
  .split(",")
  .filter((w) => w !== "" && w !== "none")
const leakSteps = Number(opt("leak-steps", "0"))

tf.env().set("PROD", true)
const selected = await ready(backendPref, { threads })
console.log(`backend: ${selected.name} (${selected.note}); threads ${threads}; steps ${steps}`)

let peakRss = 0
const sample = (): void => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss)
}

interface Workload {
  readonly batch: number
  /** Build the workload; returns one training step (which disposes everything it makes) and a dispose. */
  make(batch: number): { step: () => number; dispose: () => void }
}

/** The hand-written step: the same kernels as the DSL's (fused batch norm, fused Adam). */
const trainStep = (net: Net, x: tf.Tensor4D, y: tf.Tensor2D): { step: () => number; dispose: () => void } => {
  const optimizer = fusedAdam(
    net.params.map((p) => p.v),
    2.5e-4,
  )
  return {
    step: () => {
      const updates: Array<() => void> = []
      const loss = optimizer.step(() => mse(net.forward(x, "train", updates).y, y))
      for (const u of updates) u()
      return loss
    },
    dispose: optimizer.dispose,
  }
}

const disposeNet = (n: Net): void => {
  for (const p of n.params) p.v.dispose()
}

/** A one-network training workload on random `size`×`size`×3 inputs and random 63-d targets. */
const singleNetwork = (net: Net, b: number, size: number) => {
  const x = tf.randomNormal([b, size, size, 3]) as tf.Tensor4D
  const y = tf.randomNormal([b, 63]) as tf.Tensor2D
  const t = trainStep(net, x, y)
  return {
    step: t.step,
    dispose: () => {
      t.dispose()
      disposeNet(net)
      tf.dispose([x, y])
    },
  }
}

const W: Record<string, Workload> = {
  "tiny-64-train": { batch: 64, make: (b) => singleNetwork(tiny(3, 63), b, 64) },
  "resnet18-128-train": { batch: 32, make: (b) => singleNetwork(resnet18(3, 63), b, 128) },
  "cmkd-resnet18-128": {
    batch: 32,
    make(b) {
      const student = resnet18(3, 63)
      const teacher = resnet18(1, 63, false)
      const x = tf.randomNormal([b, 128, 128, 3]) as tf.Tensor4D
      const xd = tf.randomNormal([b, 128, 128, 1]) as tf.Tensor4D
      const y = tf.randomNormal([b, 63]) as tf.Tensor2D
      const optimizer = tf.train.adam(2.5e-4)
      const vars = student.params.map((p) => p.v)
      const step = (): number => {
        const updates: Array<() => void> = []
        const ta = tf.tidy(() => teacher.forward(xd, "eval", []).taps)
        const cost = optimizer.minimize(
          () => {
            const s = student.forward(x, "train", updates)
            return tf.add(mse(s.y, y), distLoss(s.taps, ta))
          },
          true,
          vars,
        )
        const loss = (cost as tf.Scalar).dataSync()[0] as number
        cost?.dispose()
        tf.dispose(ta)
        for (const u of updates) u()
        return loss
      }
      return {
        step,
        dispose: () => {
          disposeNet(student)
          disposeNet(teacher)
          tf.dispose([x, xd, y])
        },
      }
    },
  },
}

interface Row {
  workload: string
  batch: number
  threads: number
  backend: string
  cmkg_images_per_s: number | null
  cmkg_ms_per_step: number | null
  /** What the cmkg column ran: the DSL program through the tf interpreter, or hand-written tfjs. */
  cmkg_source: "dsl" | "hand-written tfjs"
  /** The same network written directly against tfjs, on the same backend. */
  tfjs_images_per_s: number | null
  /** cmkg ÷ hand-written tfjs: the DSL's own overhead (1 = none). */
  dsl_vs_tfjs: number | null
  torch_images_per_s: number | null
  ratio: number | null
  live_tensors_before: number | null
  live_tensors_after: number | null
  error?: string
}

const torchOk =
  !flag("no-torch") && spawnSync("/usr/bin/python3", ["-c", "import torch"], { stdio: "ignore" }).status === 0
const torch = (workload: string): number | null => {
  if (!torchOk) return null
  const r = spawnSync(
    "/usr/bin/python3",
    [
      join(here, "torch_ref.py"),
      "--threads",
      String(threads),
      "--steps",
      String(steps),
      "--workloads",
      workload,
    ],
    { encoding: "utf8" },
  )
  const line = r.stdout.split("\n").find((l) => l.startsWith("{"))
  return line === undefined ? null : (JSON.parse(line) as { images_per_s: number }).images_per_s
}

const DSL: Record<string, () => { step: () => number; dispose: () => void }> = {
  "tiny-64-train": () => dslTrain("tiny", 64, 64),
  "resnet18-128-train": () => dslTrain("resnet18", 32, 128),
}

/** Warm-up step (builds the onnxruntime sessions), then `steps` timed steps. */
const measure = (made: { step: () => number; dispose: () => void }, batch: number) => {
  made.step()
  sample()
  const before = liveTensors()
  const t0 = performance.now()
  for (let i = 0; i < steps; i++) {
    made.step()
    sample()
  }
  const ms = (performance.now() - t0) / steps
  const after = liveTensors()
  made.dispose()
  return { ms: Math.round(ms * 10) / 10, ips: Math.round((batch / (ms / 1000)) * 100) / 100, before, after }
}

const rows: Array<Row> = []
for (const name of workloads) {
  const w = W[name]
  const dsl = flag("no-dsl") ? undefined : DSL[name]
  const torchIps = torch(name)
  const row: Row = {
    workload: name,
    batch: w?.batch ?? 0,
    threads,
    backend: selected.name,
    cmkg_images_per_s: null,
    cmkg_ms_per_step: null,
    cmkg_source: dsl === undefined ? "hand-written tfjs" : "dsl",
    tfjs_images_per_s: null,
    dsl_vs_tfjs: null,
    torch_images_per_s: torchIps,
    ratio: null,
    live_tensors_before: null,
    live_tensors_after: null,
  }
  if (w === undefined) {
    row.error = "not implemented in this bench yet (needs second-order gradients through the whole ResNet)"
  } else {
    try {
      const hand = flag("no-handwritten") && dsl !== undefined ? undefined : measure(w.make(w.batch), w.batch)
      const main = dsl === undefined ? hand : measure(dsl(), w.batch)
      if (main !== undefined) {
        row.cmkg_ms_per_step = main.ms
        row.cmkg_images_per_s = main.ips
        row.live_tensors_before = main.before
        row.live_tensors_after = main.after
        if (torchIps !== null) row.ratio = Math.round((main.ips / torchIps) * 1000) / 1000
      }
      if (hand !== undefined) {
        row.tfjs_images_per_s = hand.ips
        if (main !== undefined) row.dsl_vs_tfjs = Math.round((main.ips / hand.ips) * 1000) / 1000
      }
    } catch (e) {
      row.error = e instanceof Error ? e.message : String(e)
    }
  }
  rows.push(row)
  console.log(JSON.stringify(row))
}

let leak: { steps: number; batch: number; live_tensors: Array<number> } | undefined
if (leakSteps > 0) {
  // The tiny-64-train workload itself (the DSL path users run), `leakSteps` steps: live tensors must stay flat.
  const batch = 64
  const w = dslTrain("tiny", batch, 64)
  w.step()
  const counts = [liveTensors()]
  const every = Math.max(1, Math.floor(leakSteps / 10))
  const started = performance.now()
  for (let i = 1; i <= leakSteps; i++) {
    w.step()
    if (i % every === 0) {
      counts.push(liveTensors())
      const s = (performance.now() - started) / 1000
      console.log(
        `leak check: step ${i}/${leakSteps}, live tensors ${liveTensors()}, ${(s / i).toFixed(2)} s/step`,
      )
    }
    sample()
  }
  w.dispose()
  leak = { steps: leakSteps, batch, live_tensors: counts }
  console.log(`leak check: live tensors every ${Math.floor(leakSteps / 10)} steps: ${counts.join(" ")}`)
}

const mem = process.memoryUsage()
const out = {
  date: new Date().toISOString(),
  command: `npm run bench -- ${args.join(" ")}`.trim(),
  backend: selected.name,
  backend_note: selected.note,
  threads,
  steps,
  torch_available: torchOk,
  workloads: rows,
  live_tensors_end: liveTensors(),
  peak_rss_mb: Math.round(peakRss / 2 ** 20),
  heap_used_mb: Math.round(mem.heapUsed / 2 ** 20),
  pooled_buffer_mb: Math.round(pooledBytes() / 2 ** 20),
  fast_path_calls: { ...fastPathCalls },
  fallback_calls: { ...fallbackCalls },
  onednn: dnnlVersion() ?? `not used: ${dnnlUnavailable()}`,
  onednn_calls: { ...dnnlCalls },
  ...(leak === undefined ? {} : { leak }),
}
mkdirSync(join(here, "results"), { recursive: true })
writeFileSync(join(here, "results", opt("out", "latest.json")), `${JSON.stringify(out, null, 2)}\n`)

const pad = (s: string, n: number): string => s.padEnd(n)
console.log(`\n${pad("workload", 26)}${pad("cmkg img/s", 12)}${pad("torch img/s", 13)}ratio`)
for (const r of rows) {
  console.log(
    `${pad(r.workload, 26)}${pad(r.cmkg_images_per_s?.toFixed(2) ?? "-", 12)}${pad(r.torch_images_per_s?.toFixed(2) ?? "-", 13)}${r.ratio?.toFixed(3) ?? "-"}${r.error === undefined ? "" : `  (${r.error})`}`,
  )
}
console.log(
  `live tensors at end ${out.live_tensors_end}; peak RSS ${out.peak_rss_mb} MB; heap ${out.heap_used_mb} MB; backend ${selected.name}, ${threads} threads`,
)

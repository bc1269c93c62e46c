/**
 * The cmkg side of one bench workload, in its own process (bench/run.ts starts
 * it): builds the workload's DSL side (bench/dsl.ts) and its hand-written tfjs
 * side (bench/handwritten.ts) once, then runs the rounds asked on stdin, one
 * JSON line each, and answers on stdout:
 *
 *   → {"side": "dsl" | "hand", "warmup": W, "steps": S}
 *   ← {"ms_per_step": x, "cpu_ms_per_step": c, "live_tensors_before": n, "live_tensors_after": m}
 *     (c: CPU time of all its threads per step)
 *   → {"interleave": true, "warmup": W, "steps": S}   (both sides, step by step: dsl, hand, hand, dsl, …)
 *   ← {"dsl": {…as above}, "hand": {…as above}}
 *   → {"profile": N}                 (the DSL side, N steps with every kernel timed: bench/kernelTimer.ts)
 *   ← {"step_ms": x, "kernels": [{kernel, context, ms, calls}, …], "gc_ms": g}  (means per step)
 *   → {"leak": N, "every": K}        (the DSL side, N steps; live tensors every K)
 *   ← {"live_tensors": [n0, nK, n2K, …], "s_per_step": x}
 *   → "exit"
 *   ← {"peak_rss_mb": m, …kernel counts}
 *
 * Between lines it only waits, so the bench never runs it beside PyTorch.
 *
 *   node --import tsx bench/worker.ts WORKLOAD --threads N --backend B
 *        [--batch B] [--image-size S] [--scale tiny|small|paper] [--no-handwritten]
 *
 * @module
 */
import { createInterface } from "node:readline"
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
import type * as Program from "../src/dsl/Program.ts"
import { ready } from "../src/interpreters/tf/index.ts"
import { WORKLOAD_NAMES, WORKLOADS, type WorkloadName } from "./dsl.ts"
import { HANDWRITTEN } from "./handwritten.ts"
import { installKernelTimer, type KernelTimer } from "./kernelTimer.ts"

const args = process.argv.slice(2)
const opt = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? args[i + 1] : undefined
}
const name = args[0] as WorkloadName
if (!WORKLOAD_NAMES.includes(name)) {
  console.error(
    `bench/worker.ts: unknown workload ${JSON.stringify(args[0])}; expected one of ${WORKLOAD_NAMES.join(", ")}`,
  )
  process.exit(2)
}
const spec = WORKLOADS[name]
const batch = Number(opt("batch") ?? spec.batch)
const imageSize = Number(opt("image-size") ?? spec.imageSize)
const scale = opt("scale") as Program.Scale | undefined

tf.env().set("PROD", true)
const selected = await ready((opt("backend") ?? "auto") as BackendPreference, {
  threads: Number(opt("threads") ?? 2),
})

const dsl =
  name === "cmkg-meta-resnet18-128"
    ? WORKLOADS[name].dsl({ batch, imageSize, ...(scale === undefined ? {} : { scale }) })
    : WORKLOADS[name].dsl({ batch, imageSize })
const handMaker = args.includes("--no-handwritten") ? undefined : HANDWRITTEN[name]
const hand = handMaker?.(batch, imageSize)
const sides = { dsl: () => dsl.step(), hand: hand === undefined ? undefined : () => hand.step() }

const reply = (o: unknown): void => {
  process.stdout.write(`${JSON.stringify(o)}\n`)
}
reply({
  ready: name,
  batch,
  image_size: imageSize,
  backend: selected.name,
  backend_note: selected.note,
  handwritten: hand !== undefined,
})

let timer: KernelTimer | undefined
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === "exit") break
  const r = JSON.parse(line) as {
    side?: "dsl" | "hand"
    interleave?: boolean
    warmup?: number
    steps?: number
    leak?: number
    every?: number
    profile?: number
  }
  if (r.profile !== undefined) {
    // Installed on the first request only: the timed rounds before it run unwrapped kernels.
    timer ??= installKernelTimer(selected.name)
    dsl.step()
    reply(await timer.profile(() => dsl.step(), r.profile))
    continue
  }
  if (r.leak !== undefined) {
    const every = r.every ?? 100
    const counts: number[] = []
    dsl.step()
    counts.push(liveTensors())
    const t0 = performance.now()
    for (let i = 1; i <= r.leak; i++) {
      dsl.step()
      if (i % every === 0) {
        counts.push(liveTensors())
        console.error(`leak check: step ${i}/${r.leak}, live tensors ${liveTensors()}`)
      }
    }
    reply({ live_tensors: counts, s_per_step: (performance.now() - t0) / 1000 / r.leak })
    continue
  }
  if (r.interleave === true) {
    // Step by step, so that a drift of the machine's speed within a round (another process, the VM's
    // neighbours, the heap growing) falls on both sides alike: the DSL's overhead is a few per cent,
    // less than the drift between two blocks of steps a few seconds apart.
    const handStep = sides.hand
    if (handStep === undefined) {
      reply({ error: `no hand side for ${name}` })
      continue
    }
    for (let i = 0; i < (r.warmup ?? 1); i++) {
      sides.dsl()
      handStep()
    }
    const before = liveTensors()
    const timed = { dsl: { ms: 0, cpu: 0 }, hand: { ms: 0, cpu: 0 } }
    const time = (side: "dsl" | "hand") => {
      const c0 = process.cpuUsage()
      const t0 = performance.now()
      ;(side === "dsl" ? sides.dsl : handStep)()
      timed[side].ms += performance.now() - t0
      const c = process.cpuUsage(c0)
      timed[side].cpu += (c.user + c.system) / 1000
    }
    const steps = r.steps ?? 1
    // Which side goes first alternates, so that neither always runs on the other's leftovers.
    for (let i = 0; i < steps; i++)
      for (const side of i % 2 === 0 ? (["dsl", "hand"] as const) : (["hand", "dsl"] as const)) time(side)
    const after = liveTensors()
    const of = (t: { ms: number; cpu: number }) => ({
      ms_per_step: t.ms / steps,
      cpu_ms_per_step: t.cpu / steps,
      live_tensors_before: before,
      live_tensors_after: after,
    })
    reply({ dsl: of(timed.dsl), hand: of(timed.hand) })
    continue
  }
  const run = r.side === "hand" ? sides.hand : sides.dsl
  if (run === undefined) {
    reply({ error: `no ${r.side} side for ${name}` })
    continue
  }
  for (let i = 0; i < (r.warmup ?? 1); i++) run()
  const before = liveTensors()
  const steps = r.steps ?? 1
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  for (let i = 0; i < steps; i++) run()
  const ms = (performance.now() - t0) / steps
  const cpu = process.cpuUsage(c0)
  reply({
    ms_per_step: ms,
    cpu_ms_per_step: (cpu.user + cpu.system) / 1000 / steps,
    live_tensors_before: before,
    live_tensors_after: liveTensors(),
  })
}

dsl.dispose()
hand?.dispose()
reply({
  peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
  live_tensors_end: liveTensors(),
  pooled_buffer_mb: Math.round(pooledBytes() / 2 ** 20),
  fast_path_calls: { ...fastPathCalls },
  fallback_calls: { ...fallbackCalls },
  onednn: dnnlVersion() ?? `not used: ${dnnlUnavailable()}`,
  onednn_calls: { ...dnnlCalls },
})

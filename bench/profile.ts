/**
 * Per-kernel time of one training step on a backend: wraps every kernel
 * registered for the backend with a timer. `--dsl` profiles the workload's
 * DSL side (bench/dsl.ts: the program stage's step through `StepRun.run`)
 * instead of its hand-written tfjs side (bench/handwritten.ts).
 *   node --import tsx bench/profile.ts [WORKLOAD] [batch] [backend] [--dsl] [--threads N] [--top K]
 */
import * as tf from "@tensorflow/tfjs-core"
import type { BackendPreference } from "../src/backend/index.ts"
import { ready } from "../src/interpreters/tf/index.ts"
import { WORKLOAD_NAMES, WORKLOADS, type WorkloadName } from "./dsl.ts"
import { HANDWRITTEN } from "./handwritten.ts"

const dslMode = process.argv.includes("--dsl")
const option = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : undefined
}
const threads = option("threads")
const top = Number(option("top") ?? 25)
const positional = process.argv
  .slice(2)
  .filter((a, i, all) => !a.startsWith("--") && !all[i - 1]?.startsWith("--t"))
const [which = "tiny-64-train", batchS = "16", backend = "cmkg-cpu"] = positional
if (!(WORKLOAD_NAMES as readonly string[]).includes(which)) {
  console.error(`bench/profile.ts: unknown workload "${which}"; expected one of ${WORKLOAD_NAMES.join(", ")}`)
  process.exit(2)
}
tf.env().set("PROD", true)
const sel = await ready(
  backend as BackendPreference,
  threads === undefined ? {} : { threads: Number(threads) },
)
const stats = new Map<string, { n: number; ms: number; detail: Map<string, { ms: number; n: number }> }>()
for (const k of tf.getKernelsForBackend(sel.name)) {
  const f = k.kernelFunc
  tf.unregisterKernel(k.kernelName, sel.name)
  tf.registerKernel({
    ...k,
    kernelFunc: (a) => {
      const t = performance.now()
      const r = f(a)
      const dt = performance.now() - t
      const s = stats.get(k.kernelName) ?? { n: 0, ms: 0, detail: new Map() }
      s.n++
      s.ms += dt
      const shapes = Object.values(a.inputs)
        .map((i) => (i === undefined ? "" : `[${i.shape}]`))
        .join(" ")
      const d = s.detail.get(shapes) ?? { ms: 0, n: 0 }
      d.ms += dt
      d.n++
      s.detail.set(shapes, d)
      stats.set(k.kernelName, s)
      return r
    },
  })
}
const b = Number(batchS)
const spec = WORKLOADS[which as WorkloadName]
const hand = HANDWRITTEN[which]
if (!dslMode && hand === undefined) {
  console.error(`bench/profile.ts: ${which} has no hand-written side; pass --dsl`)
  process.exit(2)
}
const step: () => unknown = dslMode
  ? spec.dsl({ batch: b, imageSize: spec.imageSize }).step
  : hand!(b, spec.imageSize).step
step()
stats.clear()
const t0 = performance.now()
step()
const total = performance.now() - t0
const sorted = [...stats.entries()].sort((a, b) => b[1].ms - a[1].ms)
console.log(
  `${which}${dslMode ? " (DSL)" : ""} batch ${b} on ${sel.name}: step ${total.toFixed(0)} ms; kernels ${sorted.reduce((a, [, s]) => a + s.ms, 0).toFixed(0)} ms`,
)
for (const [k, s] of sorted.slice(0, top)) {
  const shapes = [...s.detail.entries()]
    .sort((a, b) => b[1].ms - a[1].ms)
    .slice(0, 3)
    .map(([sh, d]) => `${sh}×${d.n}:${d.ms.toFixed(0)}`)
    .join(" | ")
  console.log(`${k.padEnd(28)} n=${String(s.n).padEnd(4)} ${s.ms.toFixed(1).padStart(8)} ms   ${shapes}`)
}

/**
 * Per-kernel time of one training step on a backend: wraps every kernel
 * registered for the backend with a timer. `--dsl` profiles the cmkg DSL
 * program (bench/dsl.ts) instead of the network written against tfjs.
 *   node --import tsx bench/profile.ts [tiny|resnet18] [batch] [backend] [--dsl]
 */
import * as tf from "@tensorflow/tfjs-core"
import type { BackendPreference } from "../src/backend/index.ts"
import { ready } from "../src/interpreters/tf/index.ts"
import { dslTrain } from "./dsl.ts"
import { mse, resnet18, tiny } from "./nets.ts"

const dslMode = process.argv.includes("--dsl")
const [which = "tiny", batchS = "16", backend = "cmkg-cpu"] = process.argv
  .slice(2)
  .filter((a) => a !== "--dsl")
tf.env().set("PROD", true)
const sel = await ready(backend as BackendPreference)
const stats = new Map<string, { n: number; ms: number; detail: Map<string, number> }>()
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
      s.detail.set(shapes, (s.detail.get(shapes) ?? 0) + dt)
      stats.set(k.kernelName, s)
      return r
    },
  })
}
const b = Number(batchS)
const size = which === "tiny" ? 64 : 128
const step = dslMode ? dslStep() : tfjsStep()

function dslStep(): () => void {
  const w = dslTrain(which === "tiny" ? "tiny" : "resnet18", b, size)
  return () => {
    w.step()
  }
}

function tfjsStep(): () => void {
  const net = which === "tiny" ? tiny(3, 63) : resnet18(3, 63)
  const x = tf.randomNormal([b, size, size, 3]) as tf.Tensor4D
  const y = tf.randomNormal([b, 63]) as tf.Tensor2D
  const opt = tf.train.adam(2.5e-4)
  return () => {
    const u: Array<() => void> = []
    const c = opt.minimize(
      () => mse(net.forward(x, "train", u).y, y),
      true,
      net.params.map((p) => p.v),
    )
    c?.dataSync()
    c?.dispose()
    for (const f of u) f()
  }
}
step()
stats.clear()
const t0 = performance.now()
step()
const total = performance.now() - t0
const sorted = [...stats.entries()].sort((a, b) => b[1].ms - a[1].ms)
console.log(
  `${which}${dslMode ? " (DSL)" : ""} batch ${b} on ${sel.name}: step ${total.toFixed(0)} ms; kernels ${sorted.reduce((a, [, s]) => a + s.ms, 0).toFixed(0)} ms`,
)
for (const [k, s] of sorted.slice(0, 25)) {
  const top = [...s.detail.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 2)
    .map(([sh, ms]) => `${sh}:${ms.toFixed(0)}`)
    .join(" | ")
  console.log(`${k.padEnd(28)} n=${String(s.n).padEnd(4)} ${s.ms.toFixed(1).padStart(8)} ms   ${top}`)
}

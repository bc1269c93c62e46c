/**
 * Backend selection for the tf interpreter.
 *
 * `selectBackend("auto")` tries, in order: `@tensorflow/tfjs-node-gpu`,
 * `@tensorflow/tfjs-node` (both optional dependencies that usually fail to
 * install), `cmkg-cpu` (tfjs cpu + onnxruntime kernels), `wasm` (with the
 * training kernels it lacks bridged to cpu), `cpu`. Every failure falls through
 * to the next; `note` says why a backend was skipped.
 */
import { createRequire } from "node:module"
import { cpus } from "node:os"
import { dirname, join } from "node:path"
import * as tf from "@tensorflow/tfjs-core"
import "@tensorflow/tfjs-backend-cpu"
import type { BackendPreference } from "../backend-names.ts"
import { registerCmkgCpu } from "./cmkgCpu.ts"
import { dnnlUnavailable, dnnlVersion, setDnnlThreads } from "./dnnl.ts"
import { ensureGradients } from "./gradients.ts"
import { setOrtThreads } from "./ort.ts"
import { bridgeMissingKernels } from "./wasmBridge.ts"

export type { BackendPreference } from "../backend-names.ts"
export { CMKG_CPU, fallbackCalls, fastPathCalls, registerCmkgCpu, resetCallCounts } from "./cmkgCpu.ts"
export { dnnlCalls, dnnlDeclined, dnnlUnavailable, dnnlVersion, useDnnl } from "./dnnl.ts"
export { MIN_ELEMENTS, setMinElements } from "./elementwise.ts"
export { ensureGradients } from "./gradients.ts"
export { clearSessions, ortAvailable, ortThreads, sessionCount, setOrtThreads } from "./ort.ts"
export { bridgeMissingKernels } from "./wasmBridge.ts"
export interface Selected {
  readonly name: string
  readonly note: string
}

const ORDER: ReadonlyArray<Exclude<BackendPreference, "auto">> = [
  "tensorflow-gpu",
  "tensorflow",
  "cmkg-cpu",
  "wasm",
  "cpu",
]

const message = (e: unknown): string =>
  (e instanceof Error ? e.message : String(e)).split("\n")[0]?.slice(0, 200) ?? String(e)

/** For tests: make a candidate fail as if its package were missing. */
export const simulatedFailures = new Set<Exclude<BackendPreference, "auto">>()

const attempt = async (which: Exclude<BackendPreference, "auto">): Promise<string> => {
  if (simulatedFailures.has(which)) throw new Error(`${which} disabled (simulated failure)`)
  switch (which) {
    case "tensorflow-gpu":
    case "tensorflow": {
      const pkg = which === "tensorflow" ? "@tensorflow/tfjs-node" : "@tensorflow/tfjs-node-gpu"
      await import(pkg)
      if (!(await tf.setBackend("tensorflow")))
        throw new Error(`${pkg} imported but the tensorflow backend did not initialise`)
      return "tensorflow"
    }
    case "cmkg-cpu": {
      if (!registerCmkgCpu()) throw new Error("onnxruntime-node's native binding did not load")
      if (!(await tf.setBackend("cmkg-cpu"))) throw new Error("cmkg-cpu did not initialise")
      const dnnl = dnnlVersion()
      return dnnl === undefined
        ? `cmkg-cpu (onnxruntime kernels; oneDNN not used: ${dnnlUnavailable()})`
        : `cmkg-cpu (oneDNN ${dnnl} convolutions and batch norm, onnxruntime elementwise)`
    }
    case "wasm": {
      const wasm = await import("@tensorflow/tfjs-backend-wasm")
      const require = createRequire(import.meta.url)
      const dist = dirname(require.resolve("@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm"))
      wasm.setWasmPaths(`${join(dist, "/")}`)
      bridgeMissingKernels("wasm")
      if (!(await tf.setBackend("wasm"))) throw new Error("wasm backend did not initialise")
      return "wasm"
    }
    case "cpu": {
      if (!(await tf.setBackend("cpu"))) throw new Error("cpu backend did not initialise")
      return "cpu"
    }
  }
}

/**
 * Pick and activate a tfjs backend (also registering tfjs-core's gradients). With a
 * specific preference, that backend is tried first and the automatic order follows.
 */
export const selectBackend = async (
  preference: BackendPreference = "auto",
  opts: { readonly threads?: number } = {},
): Promise<Selected> => {
  await ensureGradients()
  if (opts.threads !== undefined) {
    setOrtThreads(opts.threads)
    setDnnlThreads(opts.threads)
  }
  const order = preference === "auto" ? ORDER : [preference, ...ORDER.filter((o) => o !== preference)]
  const skipped: Array<string> = []
  for (const which of order) {
    try {
      const described = await attempt(which)
      const name = described.split(" ")[0] as string
      const note =
        skipped.length === 0 ? `${described}: first choice` : `${described}; skipped ${skipped.join("; ")}`
      return { name, note }
    } catch (e) {
      skipped.push(`${which} (${message(e)})`)
    }
  }
  throw new Error(`no tfjs backend initialised: ${skipped.join("; ")}`)
}

/** Live tensors on the active engine. */
export const liveTensors = (): number => tf.memory().numTensors

/** The machine's core count (the default onnxruntime thread count). */
export const cores = (): number => Math.max(1, cpus().length)

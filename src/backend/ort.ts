/**
 * Synchronous onnxruntime sessions for tfjs kernels.
 *
 * tfjs kernel functions are synchronous, so this uses onnxruntime-node's native
 * binding (`onnxruntime-node/dist/binding`, not public API; the package is pinned
 * at exactly 1.30.0 and `test/backend/ort.test.ts` checks the binding's shape).
 * Sessions are built once per model key and cached; inputs are ort Tensors over
 * the caller's Float32Arrays (zero copy) and outputs are preallocated
 * Float32Arrays handed to onnxruntime as fetches (zero copy back).
 */
import { createRequire } from "node:module"
import { cpus } from "node:os"
import { encodeModel, type OnnxGraph } from "./onnx.ts"
import { alloc } from "./pool.ts"

interface BindingSession {
  loadModel(buffer: ArrayBuffer, byteOffset: number, byteLength: number, options: object): void
  run(
    feeds: Record<string, unknown>,
    fetches: Record<string, unknown>,
    options: object,
  ): Record<string, { data: unknown }>
  dispose(): void
}
interface Binding {
  readonly InferenceSession: new () => BindingSession
}
type TensorCtor = new (type: "float32", data: Float32Array, dims: ReadonlyArray<number>) => unknown

interface Ort {
  readonly binding: Binding
  readonly Tensor: TensorCtor
}

let ort: Ort | undefined
let loadError: unknown

/** Load onnxruntime's native binding; throws (and remembers why) when it cannot. */
export const loadOrt = (): Ort => {
  if (ort !== undefined) return ort
  if (loadError !== undefined) throw loadError
  try {
    const require = createRequire(import.meta.url)
    const b = require("onnxruntime-node/dist/binding") as { binding: Binding; initOrt: () => void }
    const common = require("onnxruntime-common") as { Tensor: TensorCtor; env: { logLevel?: string } }
    // Warnings (e.g. about unused initializers) are not for our users.
    if (common.env.logLevel === undefined || common.env.logLevel === "warning") common.env.logLevel = "error"
    b.initOrt()
    if (typeof b.binding.InferenceSession !== "function")
      throw new Error("onnxruntime binding has no InferenceSession")
    ort = { binding: b.binding, Tensor: common.Tensor }
    return ort
  } catch (e) {
    loadError = e
    throw e
  }
}

/** True when onnxruntime's native binding loads. */
export const ortAvailable = (): boolean => {
  try {
    loadOrt()
    return true
  } catch {
    return false
  }
}

let threads = Math.max(1, cpus().length)

/** Intra-op thread count for sessions built from now on (default: the machine's core count). */
export const setOrtThreads = (n: number): void => {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`threads must be a positive integer, got ${n}`)
  if (n !== threads) {
    threads = n
    clearSessions()
  }
}
export const ortThreads = (): number => threads

export interface Session {
  readonly inputs: ReadonlyArray<string>
  readonly outputs: ReadonlyArray<{
    readonly name: string
    readonly size: number
    readonly shape: ReadonlyArray<number>
  }>
  /** Run with the given input arrays (in `inputs` order); returns fresh output arrays (in `outputs` order). */
  run(inputs: ReadonlyArray<Float32Array>): Array<Float32Array>
}

const sessions = new Map<string, Session>()

export const clearSessions = (): void => {
  sessions.clear()
}
export const sessionCount = (): number => sessions.size

const runOptions = {}

/** The cached session for `key`, building it from `build()` on first use. */
export const session = (key: string, build: () => OnnxGraph): Session => {
  const hit = sessions.get(key)
  if (hit !== undefined) return hit
  const { binding, Tensor } = loadOrt()
  const graph = build()
  const bytes = encodeModel(graph)
  const s = new binding.InferenceSession()
  s.loadModel(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
    enableCpuMemArena: true,
    enableMemPattern: true,
    executionProviders: [{ name: "cpu" }],
    logSeverityLevel: 3,
    // Every session owns a thread pool; spinning idle workers of hundreds of sessions starve the JS thread on few cores.
    extra: { session: { intra_op: { allow_spinning: "0" }, inter_op: { allow_spinning: "0" } } },
  })
  const inputs = graph.inputs.map((v) => v.name)
  const inputShapes = graph.inputs.map((v) => v.shape)
  const outputs = graph.outputs.map((v) => ({
    name: v.name,
    shape: v.shape,
    size: v.shape.reduce((a, b) => a * b, 1),
  }))
  const made: Session = {
    inputs,
    outputs,
    run(arrays) {
      const feeds: Record<string, unknown> = {}
      for (let i = 0; i < inputs.length; i++)
        feeds[inputs[i] as string] = new Tensor(
          "float32",
          arrays[i] as Float32Array,
          inputShapes[i] as ReadonlyArray<number>,
        )
      const fetches: Record<string, unknown> = {}
      const results: Array<Float32Array> = []
      for (const o of outputs) {
        const data = alloc(o.size)
        results.push(data)
        fetches[o.name] = new Tensor("float32", data, o.shape)
      }
      s.run(feeds, fetches, runOptions)
      return results
    },
  }
  sessions.set(key, made)
  return made
}

/**
 * Training kernels the tfjs wasm backend lacks (Conv2DBackpropFilter and the
 * depthwise backprops, among others), bridged to the cpu kernels: inputs are
 * copied out of the wasm heap into a private cpu backend, the cpu kernel runs,
 * and the result is copied back into a wasm output.
 */

import { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu"
import type { KernelFunc, TensorInfo } from "@tensorflow/tfjs-core"
import * as tf from "@tensorflow/tfjs-core"

export const BRIDGED = [
  "Conv2DBackpropFilter",
  "DepthwiseConv2dNativeBackpropFilter",
  "DepthwiseConv2dNativeBackpropInput",
  "UnsortedSegmentSum",
  "Einsum",
] as const

interface WasmLike {
  readSync(dataId: object): ArrayLike<number>
  makeOutput(shape: ReadonlyArray<number>, dtype: string): TensorInfo
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array
}

let cpu: MathBackendCPU | undefined

const bridge =
  (name: string): KernelFunc =>
  ({ inputs, backend, attrs }) => {
    const w = backend as unknown as WasmLike
    cpu ??= new MathBackendCPU()
    const c = cpu
    const k = tf.getKernel(name, "cpu")
    if (k === undefined) throw new Error(`cpu kernel ${name} is not registered`)
    const cpuInputs: Record<string, TensorInfo> = {}
    const made: Array<TensorInfo> = []
    for (const [key, t] of Object.entries(inputs)) {
      if (t === undefined) continue
      const values = w.readSync(t.dataId) as Float32Array
      const ti = c.makeTensorInfo(t.shape, t.dtype, values.slice())
      made.push(ti)
      cpuInputs[key] = ti
    }
    const res = k.kernelFunc({ inputs: cpuInputs, backend: c, ...(attrs === undefined ? {} : { attrs }) })
    const outs = Array.isArray(res) ? res : [res]
    const wasmOuts = outs.map((o) => {
      const out = w.makeOutput(o.shape, o.dtype)
      w.typedArrayFromHeap(out).set(c.readSync(o.dataId) as Float32Array)
      c.disposeData(o.dataId)
      return out
    })
    for (const t of made) c.disposeData(t.dataId)
    return Array.isArray(res) ? wasmOuts : (wasmOuts[0] as TensorInfo)
  }

/** Register the bridged kernels for `backendName` (skipping any it already has). Returns the names bridged. */
export const bridgeMissingKernels = (backendName = "wasm"): Array<string> => {
  const done: Array<string> = []
  for (const name of BRIDGED) {
    if (tf.getKernel(name, backendName) !== undefined || tf.getKernel(name, "cpu") === undefined) continue
    tf.registerKernel({ kernelName: name, backendName, kernelFunc: bridge(name) })
    done.push(name)
  }
  return done
}

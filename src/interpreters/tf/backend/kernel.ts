/** Shared plumbing for `cmkg-cpu` kernels: call counters and the fast-or-fallback wrapper. */

import type { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu"
import type { KernelFunc, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from "@tensorflow/tfjs-core"
import * as tf from "@tensorflow/tfjs-core"

/** How many times each kernel took the fast (onnxruntime) path since load. */
export const fastPathCalls: Record<string, number> = {}
/** How many times each overridden kernel fell back to the cpu kernel. */
export const fallbackCalls: Record<string, number> = {}

export const resetCallCounts = (): void => {
  for (const k of Object.keys(fastPathCalls)) delete fastPathCalls[k]
  for (const k of Object.keys(fallbackCalls)) delete fallbackCalls[k]
}

const bump = (r: Record<string, number>, k: string): void => {
  r[k] = (r[k] ?? 0) + 1
}

export type Args = { inputs: NamedTensorInfoMap; backend: unknown; attrs?: NamedAttrMap }

/** Float32 values of a cpu-backend tensor (no copy). */
export const valuesOf = (b: MathBackendCPU, t: TensorInfo): Float32Array =>
  b.data.get(t.dataId).values as Float32Array

export const cpuKernel = (name: string): KernelFunc => {
  const k = tf.getKernel(name, "cpu")
  if (k === undefined) throw new Error(`cpu kernel ${name} is not registered`)
  return k.kernelFunc
}

/** A kernel that tries `fast` and falls back to the cpu kernel when it returns undefined. */
export const withFallback =
  (name: string, fast: (a: Args, b: MathBackendCPU) => TensorInfo | TensorInfo[] | undefined): KernelFunc =>
  (args) => {
    const b = args.backend as MathBackendCPU
    const out = fast(args as Args, b)
    if (out !== undefined) {
      bump(fastPathCalls, name)
      return out
    }
    bump(fallbackCalls, name)
    return cpuKernel(name)(args)
  }

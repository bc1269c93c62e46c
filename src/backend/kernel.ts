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

/**
 * Float32 values of a cpu-backend tensor (no copy when they are a Float32Array). A float32
 * tensor may still hold another typed array (tfjs's cpu Cast shares an int32 tensor's
 * Int32Array with its float32 result); onnxruntime and oneDNN take only a Float32Array, so
 * such values are copied into one.
 */
export const valuesOf = (b: MathBackendCPU, t: TensorInfo): Float32Array => {
  const v = b.data.get(t.dataId).values
  return v instanceof Float32Array ? v : Float32Array.from(v as ArrayLike<number>)
}

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

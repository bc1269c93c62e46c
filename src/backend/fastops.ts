/**
 * Non-convolution fast kernels for `cmkg-cpu`: matrix products through
 * onnxruntime (MLAS GEMM).
 */

import type { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu"
import type { KernelConfig, KernelFunc, TensorInfo } from "@tensorflow/tfjs-core"
import { valuesOf, withFallback } from "./kernel.ts"
import type { OnnxNode } from "./onnx.ts"
import { int } from "./onnx.ts"
import { session } from "./ort.ts"

const f32 = (name: string, shape: ReadonlyArray<number>) => ({ name, dtype: "float32" as const, shape })

const matmulShape = (
  a: ReadonlyArray<number>,
  b: ReadonlyArray<number>,
  ta: boolean,
  tb: boolean,
): Array<number> | undefined => {
  if (a.length !== b.length || a.length < 2) return undefined
  const r = a.length
  const m = ta ? a[r - 1] : a[r - 2]
  const ka = ta ? a[r - 2] : a[r - 1]
  const kb = tb ? b[r - 1] : b[r - 2]
  const n = tb ? b[r - 2] : b[r - 1]
  if (ka !== kb || m === undefined || n === undefined) return undefined
  for (let i = 0; i < r - 2; i++) if (a[i] !== b[i]) return undefined
  return [...a.slice(0, r - 2), m, n]
}

type Act = "linear" | "relu"

const matmul = (
  b: MathBackendCPU,
  a: TensorInfo,
  bt: TensorInfo,
  ta: boolean,
  tb: boolean,
  bias: TensorInfo | undefined,
  act: Act,
): TensorInfo | undefined => {
  if (a.dtype !== "float32" || bt.dtype !== "float32" || (bias !== undefined && bias.dtype !== "float32"))
    return undefined
  const out = matmulShape(a.shape, bt.shape, ta, tb)
  if (out === undefined) return undefined
  const n = out[out.length - 1] as number
  if (bias !== undefined && !(bias.shape.length === 1 && bias.shape[0] === n)) return undefined
  const r = a.shape.length
  const size = out.reduce((x, y) => x * y, 1)
  // Tiny products are faster in JS than a native round trip.
  if (size * (ta ? a.shape[r - 2] : a.shape[r - 1])! < 4096) return undefined
  const key = `mm:${a.shape}:${bt.shape}:${ta}:${tb}:${bias !== undefined}:${act}`
  const s = session(key, () => {
    const nodes: Array<OnnxNode> = []
    let last = "y0"
    if (r === 2) {
      nodes.push({
        op: "Gemm",
        inputs: bias === undefined ? ["a", "b"] : ["a", "b", "bias"],
        outputs: ["y0"],
        attrs: { transA: int(ta ? 1 : 0), transB: int(tb ? 1 : 0) },
      })
    } else {
      const perm = [...Array(r - 2).keys(), r - 1, r - 2]
      let ai = "a"
      let bi = "b"
      if (ta) {
        ai = "at"
        nodes.push({
          op: "Transpose",
          inputs: ["a"],
          outputs: [ai],
          attrs: { perm: { kind: "ints", value: perm } },
        })
      }
      if (tb) {
        bi = "bt"
        nodes.push({
          op: "Transpose",
          inputs: ["b"],
          outputs: [bi],
          attrs: { perm: { kind: "ints", value: perm } },
        })
      }
      nodes.push({ op: "MatMul", inputs: [ai, bi], outputs: ["y0"] })
      if (bias !== undefined) {
        nodes.push({ op: "Add", inputs: ["y0", "bias"], outputs: ["y1"] })
        last = "y1"
      }
    }
    if (act === "relu") {
      nodes.push({ op: "Relu", inputs: [last], outputs: ["y2"] })
      last = "y2"
    }
    nodes.push({ op: "Identity", inputs: [last], outputs: ["y"] })
    return {
      nodes,
      inputs: [
        f32("a", a.shape),
        f32("b", bt.shape),
        ...(bias === undefined ? [] : [f32("bias", bias.shape)]),
      ],
      outputs: [f32("y", out)],
    }
  })
  const ins = [valuesOf(b, a), valuesOf(b, bt)]
  if (bias !== undefined) ins.push(valuesOf(b, bias))
  return b.makeTensorInfo(out, "float32", s.run(ins)[0] as Float32Array)
}

const batchMatMul: KernelFunc = withFallback("BatchMatMul", ({ inputs, attrs }, b) => {
  const { a, b: bt } = inputs as { a: TensorInfo; b: TensorInfo }
  const { transposeA, transposeB } = attrs as { transposeA: boolean; transposeB: boolean }
  return matmul(b, a, bt, transposeA, transposeB, undefined, "linear")
})

const fusedMatMul: KernelFunc = withFallback("_FusedMatMul", ({ inputs, attrs }, b) => {
  const {
    a,
    b: bt,
    bias,
    preluActivationWeights,
  } = inputs as { a: TensorInfo; b: TensorInfo; bias?: TensorInfo; preluActivationWeights?: TensorInfo }
  const { transposeA, transposeB, activation } = attrs as {
    transposeA: boolean
    transposeB: boolean
    activation: string
  }
  if (preluActivationWeights !== undefined || (activation !== "linear" && activation !== "relu"))
    return undefined
  return matmul(b, a, bt, transposeA, transposeB, bias, activation)
})

export const fastKernels = (backendName: string): Array<KernelConfig> => [
  { kernelName: "BatchMatMul", backendName, kernelFunc: batchMatMul },
  { kernelName: "_FusedMatMul", backendName, kernelFunc: fusedMatMul },
]

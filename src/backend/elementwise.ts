/**
 * Elementwise, broadcasting and reduction kernels for `cmkg-cpu`.
 *
 * tfjs's cpu backend computes broadcasting binary ops, reductions over leading
 * axes and Tile with per-element index arithmetic (tens of ns per element).
 * Here float32 ones of at least `MIN_ELEMENTS()` elements run through
 * onnxruntime (vectorised, multi-threaded), smaller ones through compiled JS
 * loops (`loops.ts`). Relu, relu's gradient and Adam's update run on the native
 * addon when it is built (`dnnl.ts`), else on loops here.
 */

import type { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu"
import { backend_util, type KernelConfig, type TensorInfo, util } from "@tensorflow/tfjs-core"
import * as Dnnl from "./dnnl.ts"
import { valuesOf, withFallback } from "./kernel.ts"
import * as Loops from "./loops.ts"
import { type AttrValue, int, ints, type OnnxGraph, type OnnxNode } from "./onnx.ts"
import { type AdamConstants, SCALE_BY_ADAM } from "./ops/adam.ts"
import { RELU_GRAD } from "./ops/relu.ts"
import { session } from "./ort.ts"
import { alloc } from "./pool.ts"

/** Below this many output elements the cpu kernel is used (a native call costs ~10 µs). */
let minElements = 8192
export const MIN_ELEMENTS = (): number => minElements
/** Change the size threshold (tests use 1 to exercise the fast path on small shapes). */
export const setMinElements = (n: number): void => {
  minElements = n
}

const size = (s: ReadonlyArray<number>): number => s.reduce((a, b) => a * b, 1)
const f32 = (name: string, shape: ReadonlyArray<number>) => ({ name, dtype: "float32" as const, shape })

/** Run a cached one-output model over the given tensors. */
const runOrt = (
  b: MathBackendCPU,
  key: string,
  ins: ReadonlyArray<TensorInfo>,
  out: ReadonlyArray<number>,
  nodes: () => { nodes: Array<OnnxNode>; initializers?: OnnxGraph["initializers"] },
): TensorInfo => {
  const s = session(`${key}|${ins.map((t) => t.shape.join("x")).join(",")}`, () => {
    const g = nodes()
    return {
      nodes: g.nodes,
      inputs: ins.map((t, i) => f32(`i${i}`, t.shape)),
      outputs: [f32("y", out)],
      ...(g.initializers === undefined ? {} : { initializers: g.initializers }),
    }
  })
  return b.makeTensorInfo([...out], "float32", s.run(ins.map((t) => valuesOf(b, t)))[0] as Float32Array)
}

const isF32 = (...ts: ReadonlyArray<TensorInfo | undefined>): boolean =>
  ts.every((t) => t === undefined || t.dtype === "float32")

// ------------------------------------------------------------------ binary

const binary = (kernelName: string, body: (a: string, b: string) => Array<OnnxNode>) =>
  withFallback(kernelName, ({ inputs }, b) => {
    const { a, b: c } = inputs as { a: TensorInfo; b: TensorInfo }
    if (!isF32(a, c)) return undefined
    // Large operands: onnxruntime (SIMD, two threads) is ~3× faster than a JS loop here; small ones: the loop.
    const out = backend_util.assertAndGetBroadcastShape(a.shape, c.shape)
    if (size(out) >= minElements) {
      // The native addon's loop into a pooled array where the broadcast is one it knows.
      if (kernelName in NATIVE_BINARY) {
        const aBig = size(a.shape) >= size(c.shape)
        const [big, small] = aBig ? [a, c] : [c, a]
        const p = Loops.pattern(big.shape, small.shape)
        if (p !== undefined && size(big.shape) === size(out)) {
          const y = Dnnl.binary(kernelName as Dnnl.BinaryOp, p, aBig, valuesOf(b, big), valuesOf(b, small))
          if (y !== undefined) return b.makeTensorInfo(out, "float32", y)
        }
      }
      return runOrt(b, kernelName, [a, c], out, () => ({ nodes: body("i0", "i1") }))
    }
    return kernelName in Loops.ops ? Loops.binary(b, a, c, kernelName as keyof typeof Loops.ops) : undefined
  })

const NATIVE_BINARY: Readonly<Record<string, true>> = {
  Add: true,
  Sub: true,
  Multiply: true,
  RealDiv: true,
  SquaredDifference: true,
}

const simple =
  (op: string) =>
  (a: string, c: string): Array<OnnxNode> => [{ op, inputs: [a, c], outputs: ["y"] }]

/** A binary kernel with only the loop fast path (no onnxruntime model for it). */
const binaryLoop = (kernelName: keyof typeof Loops.ops) =>
  withFallback(kernelName, ({ inputs }, b) => {
    const { a, b: c } = inputs as { a: TensorInfo; b: TensorInfo }
    return Loops.binary(b, a, c, kernelName)
  })

// ------------------------------------------------------------------ unary

/** onnxruntime graphs of the unary kernels, over input `i0` into `y`, NaN-preserving like tfjs. */
const unaryGraphs: Record<keyof typeof Loops.unaryOps, () => Array<OnnxNode>> = {
  Square: () => [{ op: "Mul", inputs: ["i0", "i0"], outputs: ["y"] }],
  Rsqrt: () => [
    { op: "Sqrt", inputs: ["i0"], outputs: ["s"] },
    { op: "Reciprocal", inputs: ["s"], outputs: ["y"] },
  ],
  Sqrt: () => [{ op: "Sqrt", inputs: ["i0"], outputs: ["y"] }],
  Neg: () => [{ op: "Neg", inputs: ["i0"], outputs: ["y"] }],
  // onnxruntime's Relu maps NaN to 0; tfjs keeps NaN (a diverging run must stay visible).
  Relu: () => [
    { op: "Relu", inputs: ["i0"], outputs: ["r"] },
    { op: "IsNaN", inputs: ["i0"], outputs: ["nan"] },
    { op: "Where", inputs: ["nan", "i0", "r"], outputs: ["y"] },
  ],
}

const unaryLoop = (kernelName: keyof typeof Loops.unaryOps) =>
  withFallback(kernelName, ({ inputs }, b) => {
    const { x } = inputs as { x: TensorInfo }
    if (kernelName === "Relu" && isF32(x)) {
      const y = Dnnl.relu(valuesOf(b, x))
      if (y !== undefined) return b.makeTensorInfo(x.shape.slice(), "float32", y)
    }
    if (isF32(x) && size(x.shape) >= minElements) {
      if (Dnnl.isUnaryOp(kernelName)) {
        const y = Dnnl.unary(kernelName, valuesOf(b, x))
        if (y !== undefined) return b.makeTensorInfo(x.shape.slice(), "float32", y)
      }
      return runOrt(b, kernelName, [x], x.shape, () => ({ nodes: unaryGraphs[kernelName]() }))
    }
    return Loops.unary(b, x, kernelName)
  })

/** Step with tfjs's `alpha` (the value for non-positive inputs; NaN stays NaN). */
const stepKernel = withFallback("Step", ({ inputs, attrs }, b) => {
  const { x } = inputs as { x: TensorInfo }
  if (!isF32(x)) return undefined
  const alpha = (attrs as { alpha?: number } | undefined)?.alpha ?? 0
  if (size(x.shape) >= minElements)
    return runOrt(b, `Step:${alpha}`, [x], x.shape, () => ({
      nodes: [
        { op: "Greater", inputs: ["i0", "zero"], outputs: ["positive"] },
        { op: "Where", inputs: ["positive", "one", "alpha"], outputs: ["s"] },
        { op: "IsNaN", inputs: ["i0"], outputs: ["nan"] },
        { op: "Where", inputs: ["nan", "i0", "s"], outputs: ["y"] },
      ],
      initializers: [
        { name: "zero", dtype: "float32", shape: [], values: [0] },
        { name: "one", dtype: "float32", shape: [], values: [1] },
        { name: "alpha", dtype: "float32", shape: [], values: [alpha] },
      ],
    }))
  const src = valuesOf(b, x)
  const dst = alloc(src.length)
  for (let i = 0; i < src.length; i++) {
    const v = src[i]!
    dst[i] = v > 0 ? 1 : Number.isNaN(v) ? v : alpha
  }
  return b.makeTensorInfo(x.shape, "float32", dst)
})

/** dy · step(x) in one pass (see ../relu.ts). */
const reluGradKernel = withFallback(RELU_GRAD, ({ inputs }, b) => {
  const { dy, x } = inputs as { dy: TensorInfo; x: TensorInfo }
  if (!isF32(dy, x) || size(dy.shape) !== size(x.shape)) return undefined
  const d = valuesOf(b, dy)
  const v = valuesOf(b, x)
  const native = Dnnl.reluBackward(d, v)
  if (native !== undefined) return b.makeTensorInfo(x.shape.slice(), "float32", native)
  const out = alloc(v.length)
  for (let i = 0; i < v.length; i++) {
    const s = v[i]!
    out[i] = d[i]! * (s > 0 ? 1 : Number.isNaN(s) ? s : 0)
  }
  return b.makeTensorInfo(x.shape.slice(), "float32", out)
})

/** Adam's moments and update in one pass (see ../adam.ts). */
const scaleByAdamKernel = withFallback(SCALE_BY_ADAM, ({ inputs, attrs }, b) => {
  const { g, mu, nu } = inputs as { g: TensorInfo; mu: TensorInfo; nu: TensorInfo }
  if (!isF32(g, mu, nu)) return undefined
  const k = attrs as unknown as AdamConstants
  const [gv, mv, nv] = [valuesOf(b, g), valuesOf(b, mu), valuesOf(b, nu)]
  let out = Dnnl.scaleByAdam(gv, mv, nv, k)
  if (out === undefined) {
    out = [alloc(gv.length), alloc(gv.length), alloc(gv.length)]
    const [u, m2, v2] = out
    const [b1, b2, ob1, ob2] = [
      Math.fround(k.b1),
      Math.fround(k.b2),
      Math.fround(1 - k.b1),
      Math.fround(1 - k.b2),
    ]
    for (let i = 0; i < gv.length; i++) {
      const x = gv[i]!
      const m = Math.fround(Math.fround(mv[i]! * b1) + Math.fround(x * ob1))
      const v = Math.fround(Math.fround(nv[i]! * b2) + Math.fround(Math.fround(x * x) * ob2))
      m2[i] = m
      v2[i] = v
      u[i] = m / k.c1 / (Math.sqrt(v / k.c2) + k.eps)
    }
  }
  return out.map((values) => b.makeTensorInfo(g.shape.slice(), "float32", values))
})

// ------------------------------------------------------------------ reductions

const reduce = (kernelName: string, axisAttr: string, onnx: "ReduceSum" | "ReduceMean" | "ReduceMax") =>
  withFallback(kernelName, ({ inputs, attrs }, b) => {
    const { x } = inputs as { x: TensorInfo }
    const a = attrs as Record<string, unknown>
    if (onnx !== "ReduceMax") {
      // Large inputs: the native addon's chunked loop (vectorised, every thread), same float64 sums.
      const loop = Loops.reduce(
        b,
        x,
        a[axisAttr] as number | number[],
        a.keepDims === true,
        onnx === "ReduceMean",
        size(x.shape) >= minElements ? Dnnl.sumRows : undefined,
      )
      if (loop !== undefined) return loop
    }
    if (!isF32(x) || size(x.shape) < minElements) return undefined
    const axes = util.parseAxisParam(a[axisAttr] as number | Array<number>, x.shape).sort((p, q) => p - q)
    if (axes.length === 0) return undefined
    const keepDims = a.keepDims === true
    const [outShape] = backend_util.computeOutAndReduceShapes(x.shape, axes)
    const out = keepDims ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : outShape
    return runOrt(b, `${kernelName}:${axes}:${keepDims}`, [x], out, () => {
      const attrs: Record<string, AttrValue> = { keepdims: int(keepDims ? 1 : 0) }
      if (onnx === "ReduceSum") {
        return {
          nodes: [{ op: onnx, inputs: ["i0", "axes"], outputs: ["y"], attrs }],
          initializers: [{ name: "axes", dtype: "int64", shape: [axes.length], values: axes }],
        }
      }
      return { nodes: [{ op: onnx, inputs: ["i0"], outputs: ["y"], attrs: { ...attrs, axes: ints(axes) } }] }
    })
  })

const tile = withFallback("Tile", ({ inputs, attrs }, b) => {
  const { x } = inputs as { x: TensorInfo }
  const reps = (attrs as { reps: Array<number> }).reps
  if (!isF32(x) || reps.length !== x.shape.length) return undefined
  const out = x.shape.map((d, i) => d * (reps[i] as number))
  if (size(out) < minElements) return undefined
  return runOrt(b, `Tile:${reps}`, [x], out, () => ({
    nodes: [{ op: "Tile", inputs: ["i0", "reps"], outputs: ["y"] }],
    initializers: [{ name: "reps", dtype: "int64", shape: [reps.length], values: reps }],
  }))
})

// ------------------------------------------------------------------ batch norm

/** y = (x - mean) * scale / sqrt(variance + eps) + offset, per last-axis channel. */
const fusedBatchNorm = withFallback("FusedBatchNorm", ({ inputs, attrs }, b) => {
  const { x, mean, variance, offset, scale } = inputs as {
    x: TensorInfo
    mean: TensorInfo
    variance: TensorInfo
    offset?: TensorInfo
    scale?: TensorInfo
  }
  if (!isF32(x, mean, variance, offset, scale)) return undefined
  const c = x.shape[x.shape.length - 1] as number
  const perChannel = (t: TensorInfo | undefined): boolean =>
    t === undefined || size(t.shape) === c || size(t.shape) === 1
  if (!(perChannel(mean) && perChannel(variance) && perChannel(offset) && perChannel(scale))) return undefined
  const eps = (attrs as { varianceEpsilon?: number }).varianceEpsilon ?? 0.001
  const get = (t: TensorInfo | undefined, dflt: number): ((i: number) => number) => {
    if (t === undefined) return () => dflt
    const v = valuesOf(b, t)
    return v.length === 1 ? () => v[0] as number : (i) => v[i] as number
  }
  const m = get(mean, 0)
  const v = get(variance, 1)
  const o = get(offset, 0)
  const s = get(scale, 1)
  const mul = new Float32Array(c)
  const add = new Float32Array(c)
  for (let i = 0; i < c; i++) {
    // Same association as the cpu kernel: offset + (x - mean) * scale * rsqrt(var + eps).
    mul[i] = s(i) / Math.sqrt(v(i) + eps)
    add[i] = m(i)
  }
  const src = valuesOf(b, x)
  const dst = alloc(src.length)
  for (let base = 0; base < src.length; base += c) {
    for (let i = 0; i < c; i++) dst[base + i] = (src[base + i]! - add[i]!) * mul[i]! + o(i)
  }
  return b.makeTensorInfo(x.shape, "float32", dst)
})

export const elementwiseKernels = (backendName: string): Array<KernelConfig> => [
  { kernelName: "Add", backendName, kernelFunc: binary("Add", simple("Add")) },
  { kernelName: "Sub", backendName, kernelFunc: binary("Sub", simple("Sub")) },
  { kernelName: "Multiply", backendName, kernelFunc: binary("Multiply", simple("Mul")) },
  { kernelName: "RealDiv", backendName, kernelFunc: binary("RealDiv", simple("Div")) },
  {
    kernelName: "SquaredDifference",
    backendName,
    kernelFunc: binary("SquaredDifference", (a, c) => [
      { op: "Sub", inputs: [a, c], outputs: ["d"] },
      { op: "Mul", inputs: ["d", "d"], outputs: ["y"] },
    ]),
  },
  { kernelName: "Square", backendName, kernelFunc: unaryLoop("Square") },
  { kernelName: "Rsqrt", backendName, kernelFunc: unaryLoop("Rsqrt") },
  { kernelName: "Sqrt", backendName, kernelFunc: unaryLoop("Sqrt") },
  { kernelName: "Neg", backendName, kernelFunc: unaryLoop("Neg") },
  { kernelName: "Maximum", backendName, kernelFunc: binaryLoop("Maximum") },
  { kernelName: "Minimum", backendName, kernelFunc: binaryLoop("Minimum") },
  { kernelName: "Step", backendName, kernelFunc: stepKernel },
  { kernelName: "Relu", backendName, kernelFunc: unaryLoop("Relu") },
  { kernelName: RELU_GRAD, backendName, kernelFunc: reluGradKernel },
  { kernelName: SCALE_BY_ADAM, backendName, kernelFunc: scaleByAdamKernel },
  { kernelName: "Sum", backendName, kernelFunc: reduce("Sum", "axis", "ReduceSum") },
  { kernelName: "Mean", backendName, kernelFunc: reduce("Mean", "axis", "ReduceMean") },
  { kernelName: "Tile", backendName, kernelFunc: tile },
  { kernelName: "FusedBatchNorm", backendName, kernelFunc: fusedBatchNorm },
]

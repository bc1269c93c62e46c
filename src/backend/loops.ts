/**
 * Plain-loop fast paths for the elementwise and reduction patterns a conv
 * net's training step is made of: same-shape binary ops, a scalar operand,
 * and per-channel operands broadcast along the last axis (batch norm's
 * statistics and affine parameters); reductions over every axis but the last
 * (batch norm's statistics and their gradients) or over everything.
 *
 * tfjs's cpu kernels compute broadcast indices per element; onnxruntime pays a
 * native call per op. A tight loop over the Float32Arrays does neither. Any
 * other pattern returns undefined and falls through to the next kernel.
 *
 * @module
 */
import type { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu"
import { type TensorInfo, util } from "@tensorflow/tfjs-core"
import { valuesOf } from "./kernel.ts"
import { alloc } from "./pool.ts"

const size = (s: ReadonlyArray<number>): number => s.reduce((a, b) => a * b, 1)

/** An operation as a JavaScript expression over `x` and `y`. */
type Expression = string

export const ops = {
  Add: "x + y",
  Sub: "x - y",
  Multiply: "x * y",
  RealDiv: "x / y",
  SquaredDifference: "(x - y) * (x - y)",
  Maximum: "(x !== x || y !== y) ? NaN : (x > y ? x : y)",
  Minimum: "(x !== x || y !== y) ? NaN : (x < y ? x : y)",
} satisfies Record<string, Expression>

/** How `small` broadcasts against `big`: the same shape, a scalar, or a last-axis vector. */
export const pattern = (
  big: readonly number[],
  small: readonly number[],
): "same" | "scalar" | "channel" | undefined => {
  if (big.length === small.length && big.every((d, i) => d === small[i])) return "same"
  const n = size(small)
  if (small.length > big.length) return undefined
  if (n === 1) return "scalar"
  const c = big[big.length - 1]
  if (n === c && small[small.length - 1] === c) return "channel"
  return undefined
}

type Loop = (big: Float32Array, small: Float32Array, out: Float32Array) => void

/**
 * One loop per (operation, pattern, operand order), compiled from source so
 * the operation is inlined: a shared loop calling an operation closure is
 * megamorphic in V8 and an order of magnitude slower.
 */
const compile = (e: Expression, p: "same" | "scalar" | "channel", bigFirst: boolean): Loop => {
  const expr = bigFirst ? e : e.replace(/\bx\b/g, "T").replace(/\by\b/g, "x").replace(/\bT\b/g, "y")
  const body =
    p === "same"
      ? `for (let i = 0; i < a.length; i++) { const x = a[i], y = b[i]; o[i] = ${expr} }`
      : p === "scalar"
        ? `const y = b[0]; for (let i = 0; i < a.length; i++) { const x = a[i]; o[i] = ${expr} }`
        : `const c = b.length; for (let i = 0; i < a.length; i += c) for (let j = 0; j < c; j++) { const x = a[i + j], y = b[j]; o[i + j] = ${expr} }`
  return new Function("a", "b", "o", body) as Loop
}

const loops = new Map<string, Loop>()

/** `op(a, b)` for the supported broadcast patterns, or undefined. */
export const binary = (
  b: MathBackendCPU,
  a: TensorInfo,
  c: TensorInfo,
  op: keyof typeof ops,
): TensorInfo | undefined => {
  if (a.dtype !== "float32" || c.dtype !== "float32") return undefined
  const aBig = size(a.shape) >= size(c.shape)
  const [big, small] = aBig ? [a, c] : [c, a]
  const p = pattern(big.shape, small.shape)
  if (p === undefined) return undefined
  const key = `${op}/${p}/${aBig}`
  let loop = loops.get(key)
  if (loop === undefined) {
    loop = compile(ops[op], p, aBig)
    loops.set(key, loop)
  }
  const x = valuesOf(b, big)
  const out = alloc(x.length)
  loop(x, valuesOf(b, small), out)
  return b.makeTensorInfo(big.shape.slice(), "float32", out)
}

/** Σ over the rows of `channels` values each, per channel, in float64 (1 channel: the sum of everything). */
export type SumRows = (values: Float32Array, channels: number) => Float64Array | undefined

/** The JS loop of {@link SumRows}. */
export const sumRows = (src: Float32Array, c: number): Float64Array => {
  const acc = new Float64Array(c)
  if (c === 1) {
    let s = 0
    for (let i = 0; i < src.length; i++) s += src[i]!
    acc[0] = s
  } else for (let i = 0; i < src.length; i += c) for (let j = 0; j < c; j++) acc[j]! += src[i + j]!
  return acc
}

/**
 * Sum or mean over `axes` when they are every axis but the last, or all axes; otherwise undefined.
 * Accumulated in float64 (batch-norm statistics over many rows lose precision in float32), by
 * `native` when given and it takes the call, else by the JS loop.
 */
export const reduce = (
  b: MathBackendCPU,
  x: TensorInfo,
  axisAttr: number | number[],
  keepDims: boolean,
  mean: boolean,
  native?: SumRows,
): TensorInfo | undefined => {
  if (x.dtype !== "float32") return undefined
  const rank = x.shape.length
  const axes = util.parseAxisParam(axisAttr, x.shape).sort((p, q) => p - q)
  const all = axes.length === rank
  const leading = axes.length === rank - 1 && axes.every((a, i) => a === i)
  if (!all && !leading) return undefined
  const src = valuesOf(b, x)
  const c = all ? 1 : x.shape[rank - 1]!
  const acc = native?.(src, c) ?? sumRows(src, c)
  const rows = all ? Math.max(1, src.length) : src.length / c
  const out = new Float32Array(c)
  for (let j = 0; j < c; j++) out[j] = mean ? acc[j]! / rows : acc[j]!
  // Kept dims are 1 except the channels a leading-axes reduction keeps.
  const shape = keepDims ? x.shape.map((d, i) => (!all && i === rank - 1 ? d : 1)) : all ? [] : [c]
  return b.makeTensorInfo(shape, "float32", out)
}

/** An elementwise function as a JavaScript expression over `v`. */
export const unaryOps = {
  Square: "v * v",
  Rsqrt: "1 / Math.sqrt(v)",
  Sqrt: "Math.sqrt(v)",
  Neg: "-v",
  Relu: "v > 0 ? v : (v !== v ? v : 0)",
} satisfies Record<string, string>

const unaryLoops = new Map<string, (a: Float32Array, o: Float32Array) => void>()

/** A unary map, compiled per operation like the binary loops. */
export const unary = (
  b: MathBackendCPU,
  x: TensorInfo,
  op: keyof typeof unaryOps,
): TensorInfo | undefined => {
  if (x.dtype !== "float32") return undefined
  let loop = unaryLoops.get(op)
  if (loop === undefined) {
    loop = new Function(
      "a",
      "o",
      `for (let i = 0; i < a.length; i++) { const v = a[i]; o[i] = ${unaryOps[op]} }`,
    ) as (a: Float32Array, o: Float32Array) => void
    unaryLoops.set(op, loop)
  }
  const src = valuesOf(b, x)
  const out = alloc(src.length)
  loop(src, out)
  return b.makeTensorInfo(x.shape.slice(), "float32", out)
}

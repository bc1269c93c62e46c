/**
 * oneDNN kernels (the CPU engine PyTorch uses) through the project's own
 * N-API addon `native/dnnl`, built at `npm ci` when Debian's `libdnnl-dev` is
 * installed (`scripts/build-native.mjs`). Convolutions run on NHWC activations
 * and HWIO filters as tfjs keeps them, so no layout transposes; batch norm runs
 * on channel-last data. Where the addon is absent (no oneDNN on the machine,
 * `CMKG_DNNL=0`) or oneDNN rejects a problem, callers use onnxruntime instead.
 *
 * @module
 */
import { existsSync } from "node:fs"
import { createRequire } from "node:module"
import { join } from "node:path"
import type { backend_util } from "@tensorflow/tfjs-core"
import { packageRoot } from "../package-root.ts"
import * as Settings from "../settings.ts"
import { alloc } from "./pool.ts"

type Conv2DInfo = backend_util.Conv2DInfo

interface Addon {
  convForward(x: Float32Array, w: Float32Array, y: Float32Array, geometry: Int32Array): void
  convBackwardData(dy: Float32Array, w: Float32Array, dx: Float32Array, geometry: Int32Array): void
  convBackwardWeights(x: Float32Array, dy: Float32Array, dw: Float32Array, geometry: Int32Array): void
  batchNormForward(
    x: Float32Array,
    gamma: Float32Array,
    beta: Float32Array,
    y: Float32Array,
    mean: Float32Array,
    variance: Float32Array,
    geometry: Int32Array,
    eps: number,
  ): void
  batchNormBackward(
    x: Float32Array,
    gamma: Float32Array,
    dy: Float32Array,
    mean: Float32Array,
    variance: Float32Array,
    dx: Float32Array,
    dgamma: Float32Array,
    dbeta: Float32Array,
    geometry: Int32Array,
    eps: number,
  ): void
  binary(
    op: number,
    pattern: number,
    bigFirst: number,
    big: Float32Array,
    small: Float32Array,
    out: Float32Array,
  ): void
  unary(op: number, x: Float32Array, y: Float32Array): void
  relu(x: Float32Array, y: Float32Array): void
  reluBackward(dy: Float32Array, x: Float32Array, dx: Float32Array): void
  maxPool(x: Float32Array, y: Float32Array, geometry: Int32Array): void
  maxPoolBackward(dy: Float32Array, x: Float32Array, dx: Float32Array, geometry: Int32Array): void
  scaleByAdam(
    g: Float32Array,
    mu: Float32Array,
    nu: Float32Array,
    update: Float32Array,
    mu2: Float32Array,
    nu2: Float32Array,
    b1: number,
    b2: number,
    eps: number,
    c1: number,
    c2: number,
  ): void
  sumRows(x: Float32Array, out: Float64Array): void
  setThreads(n: number): void
  setParallelAbove(n: number): void
  version(): string
}

export const ADDON_PATH = join(packageRoot, "native", "dnnl", "build", "Release", "cmkg_dnnl.node")

let addon: Addon | undefined
let why: string | undefined
let enabled = true

/** Turn the oneDNN kernels off or on (tests run both paths; off, callers use onnxruntime). */
export const useDnnl = (on: boolean): void => {
  enabled = on
}

const load = (): Addon | undefined => {
  if (addon !== undefined || why !== undefined) return addon
  if (!Settings.read(Settings.dnnl)) {
    why = "disabled by CMKG_DNNL=0"
    return undefined
  }
  if (!existsSync(ADDON_PATH)) {
    why = "the oneDNN addon is not built (install Debian's libdnnl-dev, then npm ci)"
    return undefined
  }
  // OpenMP threads that spin between oneDNN calls take the cores from onnxruntime's threads and
  // the JS thread, which run the kernels in between (libgomp reads this when the addon loads it).
  process.env.OMP_WAIT_POLICY ??= "passive"
  try {
    addon = createRequire(import.meta.url)(ADDON_PATH) as Addon
  } catch (e) {
    why = `the oneDNN addon did not load: ${e instanceof Error ? e.message : String(e)}`
  }
  return addon
}

/** oneDNN's thread count (OpenMP), when the addon is in use. */
export const setDnnlThreads = (n: number): void => load()?.setThreads(n)

/** The element count from which cmkg's native elementwise kernels use every thread. */
export const setDnnlParallelAbove = (n: number): void => load()?.setParallelAbove(n)

/** oneDNN's version when the addon loaded, else undefined. */
export const dnnlVersion = (): string | undefined => load()?.version()
/** Why the addon is not in use (undefined when it is). */
export const dnnlUnavailable = (): string | undefined => (load() === undefined ? why : undefined)

/** How often oneDNN ran a kernel, and how often it declined one (the caller then used onnxruntime). */
export const dnnlCalls: Record<string, number> = {}
export const dnnlDeclined: Record<string, number> = {}

const bump = (r: Record<string, number>, k: string): void => {
  r[k] = (r[k] ?? 0) + 1
}

/** A convolution's whole geometry, in the order the addon reads it: N H W C, OH OW OC, KH KW, SH SW, DH DW, PT PL PB PR. */
export const geometry = (c: Conv2DInfo): Int32Array =>
  Int32Array.of(
    c.batchSize,
    c.inHeight,
    c.inWidth,
    c.inChannels,
    c.outHeight,
    c.outWidth,
    c.outChannels,
    c.filterHeight,
    c.filterWidth,
    c.strideHeight,
    c.strideWidth,
    c.dilationHeight,
    c.dilationWidth,
    c.padInfo.top,
    c.padInfo.left,
    c.padInfo.bottom,
    c.padInfo.right,
  )

/** Run `f` on the addon; undefined (counted as declined) when it is absent or rejects the problem. */
const attempt = <A>(name: string, f: (d: Addon) => A): A | undefined => {
  const d = enabled ? load() : undefined
  if (d === undefined) return undefined
  try {
    const r = f(d)
    bump(dnnlCalls, name)
    return r
  } catch (e) {
    // Bad arguments are our bug: surface them. oneDNN declining a shape is not.
    if ((e as { code?: string }).code === "CMKG_DNNL_INPUT") throw e
    bump(dnnlDeclined, name)
    return undefined
  }
}

const size = (c: Conv2DInfo, which: "in" | "out" | "filter"): number =>
  which === "in"
    ? c.batchSize * c.inHeight * c.inWidth * c.inChannels
    : which === "out"
      ? c.batchSize * c.outHeight * c.outWidth * c.outChannels
      : c.filterHeight * c.filterWidth * c.inChannels * c.outChannels

/** y = conv(x, w) for a dense (ungrouped) NHWC convolution, or undefined. */
export const convForward = (c: Conv2DInfo, x: Float32Array, w: Float32Array): Float32Array | undefined =>
  attempt("Conv2D", (d) => {
    const y = alloc(size(c, "out"))
    d.convForward(x, w, y, geometry(c))
    return y
  })

/** The input gradient of a dense NHWC convolution, or undefined. */
export const convBackwardData = (
  c: Conv2DInfo,
  dy: Float32Array,
  w: Float32Array,
): Float32Array | undefined =>
  attempt("Conv2DBackpropInput", (d) => {
    const dx = alloc(size(c, "in"))
    d.convBackwardData(dy, w, dx, geometry(c))
    return dx
  })

/** The filter gradient (HWIO) of a dense NHWC convolution, or undefined. */
export const convBackwardWeights = (
  c: Conv2DInfo,
  x: Float32Array,
  dy: Float32Array,
): Float32Array | undefined =>
  attempt("Conv2DBackpropFilter", (d) => {
    const dw = alloc(size(c, "filter"))
    d.convBackwardWeights(x, dy, dw, geometry(c))
    return dw
  })

/** [N, H, W, C] of channel-last data of this shape (other ranks as [rows, 1, 1, C]). */
const nhwc = (shape: ReadonlyArray<number>): Int32Array => {
  const c = shape[shape.length - 1] ?? 1
  if (shape.length === 4) return Int32Array.from(shape)
  return Int32Array.of(shape.reduce((a, b) => a * b, 1) / c, 1, 1, c)
}

/** Training-mode batch norm over channel-last data: [y, mean, biased variance], or undefined. */
export const batchNormForward = (
  x: Float32Array,
  shape: ReadonlyArray<number>,
  gamma: Float32Array,
  beta: Float32Array,
  eps: number,
): [Float32Array, Float32Array, Float32Array] | undefined =>
  attempt("BatchNormTrain", (d) => {
    const channels = gamma.length
    const y = alloc(x.length)
    const mean = new Float32Array(channels)
    const variance = new Float32Array(channels)
    d.batchNormForward(x, gamma, beta, y, mean, variance, nhwc(shape), eps)
    return [y, mean, variance] as [Float32Array, Float32Array, Float32Array]
  })

/** Its backward pass: [dx, dγ, dβ], or undefined. */
export const batchNormBackward = (
  x: Float32Array,
  shape: ReadonlyArray<number>,
  gamma: Float32Array,
  dy: Float32Array,
  mean: Float32Array,
  variance: Float32Array,
  eps: number,
): [Float32Array, Float32Array, Float32Array] | undefined =>
  attempt("BatchNormTrainGrad", (d) => {
    const channels = gamma.length
    const dx = alloc(x.length)
    const dgamma = new Float32Array(channels)
    const dbeta = new Float32Array(channels)
    d.batchNormBackward(x, gamma, dy, mean, variance, dx, dgamma, dbeta, nhwc(shape), eps)
    return [dx, dgamma, dbeta] as [Float32Array, Float32Array, Float32Array]
  })

const BINARY_OPS = { Add: 0, Sub: 1, Multiply: 2, RealDiv: 3, SquaredDifference: 4 } as const
export type BinaryOp = keyof typeof BINARY_OPS
/** How the smaller operand broadcasts: the same length, one value, or a vector along the last axis. */
export type Broadcast = "same" | "scalar" | "channel"
const PATTERNS: Record<Broadcast, number> = { same: 0, scalar: 1, channel: 2 }

/**
 * op(big, small) (op(small, big) when `bigFirst` is false) in float32 with `small` broadcast as
 * `pattern` says, into a pooled array, or undefined: one native pass instead of onnxruntime's
 * session run into a fresh array.
 */
export const binary = (
  op: BinaryOp,
  pattern: Broadcast,
  bigFirst: boolean,
  big: Float32Array,
  small: Float32Array,
): Float32Array | undefined =>
  attempt(op, (d) => {
    const out = alloc(big.length)
    d.binary(BINARY_OPS[op], PATTERNS[pattern], bigFirst ? 1 : 0, big, small, out)
    return out
  })

const UNARY_OPS = { Square: 0, Neg: 1, Sqrt: 2, Rsqrt: 3 } as const
export type UnaryOp = keyof typeof UNARY_OPS
export const isUnaryOp = (op: string): op is UnaryOp => op in UNARY_OPS

/** op(x) in float32 (Rsqrt: 1 / sqrt(x), each rounded), into a pooled array, or undefined. */
export const unary = (op: UnaryOp, x: Float32Array): Float32Array | undefined =>
  attempt(op, (d) => {
    const y = alloc(x.length)
    d.unary(UNARY_OPS[op], x, y)
    return y
  })

/** relu(x), NaN-preserving like tfjs, or undefined. */
export const relu = (x: Float32Array): Float32Array | undefined =>
  attempt("Relu", (d) => {
    const y = alloc(x.length)
    d.relu(x, y)
    return y
  })

/** dy · step(x) (tfjs's relu gradient, step(NaN) = NaN), or undefined. */
export const reluBackward = (dy: Float32Array, x: Float32Array): Float32Array | undefined =>
  attempt("ReluGrad", (d) => {
    const dx = alloc(x.length)
    d.reluBackward(dy, x, dx)
    return dx
  })

const poolGeometry = (p: backend_util.Conv2DInfo): Int32Array =>
  Int32Array.of(
    p.batchSize,
    p.inHeight,
    p.inWidth,
    p.inChannels,
    p.outHeight,
    p.outWidth,
    p.filterHeight,
    p.filterWidth,
    p.strideHeight,
    p.strideWidth,
    p.padInfo.top,
    p.padInfo.left,
  )

/** Max pooling with tfjs's semantics (in-bounds positions, first strict maximum), or undefined. */
export const maxPool = (p: backend_util.Conv2DInfo, x: Float32Array): Float32Array | undefined =>
  attempt("MaxPool", (d) => {
    const y = alloc(p.batchSize * p.outHeight * p.outWidth * p.outChannels)
    d.maxPool(x, y, poolGeometry(p))
    return y
  })

/** Its gradient: dy routed to the position the forward pass picked, or undefined. */
export const maxPoolBackward = (
  p: backend_util.Conv2DInfo,
  dy: Float32Array,
  x: Float32Array,
): Float32Array | undefined =>
  attempt("MaxPoolGrad", (d) => {
    const dx = alloc(x.length)
    d.maxPoolBackward(dy, x, dx, poolGeometry(p))
    return dx
  })

/** Adam's fused moment update (see ../adam.ts): [update, μ', ν'], or undefined. */
export const scaleByAdam = (
  g: Float32Array,
  mu: Float32Array,
  nu: Float32Array,
  k: { b1: number; b2: number; eps: number; c1: number; c2: number },
): [Float32Array, Float32Array, Float32Array] | undefined =>
  attempt("ScaleByAdam", (d) => {
    const out: [Float32Array, Float32Array, Float32Array] = [
      alloc(g.length),
      alloc(g.length),
      alloc(g.length),
    ]
    d.scaleByAdam(g, mu, nu, ...out, k.b1, k.b2, k.eps, k.c1, k.c2)
    return out
  })

/**
 * Σ over every axis but the last of `x` viewed as rows of `channels` values (1: the sum of
 * everything), accumulated in float64 (in fixed chunks, whatever the thread count), or undefined.
 */
export const sumRows = (x: Float32Array, channels: number): Float64Array | undefined =>
  attempt("Sum", (d) => {
    const out = new Float64Array(channels)
    d.sumRows(x, out)
    return out
  })

/**
 * The float64 reference interpreter: a small, obviously-correct oracle.
 *
 * A total fold over {@link Net.Node} on plain `Float64Array`s with naive
 * loops, for small inputs only; the TensorFlow.js interpreter is tested
 * against it. Parameters and state are keyed by the same paths as the
 * shape checker's `ParamSpec.path` / `StateSpec.path` (built with
 * {@link Net.children} and {@link Net.childPath}). Ill-formed networks or
 * missing/mis-shaped parameters throw an `Error` naming the node's path.
 *
 * @module
 */
import * as Net from "../../dsl/Net.ts"
import type * as Shape from "../../dsl/Shape.ts"
import { mulberry32 } from "../../random.ts"
import { check, formatError } from "../shape-check/index.ts"
import { fill, formatShape, sameShape, size, type Tensor } from "./Tensor.ts"

export type { Tensor } from "./Tensor.ts"
export * as Tensors from "./Tensor.ts"

/** Trainable parameters keyed by `ParamSpec.path`, e.g. `layer1/0/conv1/kernel`. */
export type Params = Readonly<Record<string, Tensor>>
/** Batch-norm running statistics keyed by `StateSpec.path`, e.g. `bn1/mean`, `bn1/variance`. */
export type State = Readonly<Record<string, Tensor>>
/** `train`: batch norms use batch statistics and update their running ones; `eval`: running ones, state unchanged. */
export type Mode = "train" | "eval"

export interface Applied {
  readonly y: Tensor
  /** Every tap reached, with its batch dimension; inside a loop `t@k` per iteration and `t` for the last. */
  readonly taps: Record<string, Tensor>
  /** The state after the pass (a new record; the input state is never mutated). */
  readonly state: State
}

// ---- apply ------------------------------------------------------------------------

interface Context {
  readonly params: Params
  readonly state: Record<string, Tensor>
  readonly taps: Record<string, Tensor>
  readonly mode: Mode
}

/** Runs `net` on the batch `x` (batch axis first). */
export const apply = (net: Net.AnyNet, params: Params, state: State, x: Tensor, mode: Mode): Applied => {
  if (x.shape.length < 1 || x.data.length !== size(x.shape))
    throw new Error(`input of shape ${formatShape(x.shape)} with ${x.data.length} values is not a batch`)
  const ctx: Context = { params, state: { ...state }, taps: {}, mode }
  const y = Net.fold(rules(ctx))(net, x)
  return { y, taps: ctx.taps, state: ctx.state }
}

const fail = (path: string, message: string): never => {
  throw new Error(`${path === "" ? "<root>" : path}: ${message}`)
}

const lookup = (
  table: Readonly<Record<string, Tensor>>,
  what: string,
  path: string,
  key: string,
  shape: readonly number[],
): Tensor => {
  const t = table[key]
  if (t === undefined) return fail(path, `missing ${what} ${key}`)
  if (!sameShape(t.shape, shape))
    return fail(path, `${what} ${key} has shape ${formatShape(t.shape)}, expected ${formatShape(shape)}`)
  return t
}
const param = (ctx: Context, path: string, key: string, shape: readonly number[]): Tensor =>
  lookup(ctx.params, "parameter", path, key, shape)

/** Per-sample spatial geometry of a window op along one axis. */
interface Window {
  /** Padding cells before the first input cell. */
  readonly before: number
  readonly out: number
}

/**
 * Output size and leading padding along one axis. `same` is TensorFlow's rule:
 * out = ceil(in / stride), total = max((out − 1)·stride + (k − 1)·dilation + 1 − in, 0),
 * before = floor(total / 2) (the extra cell, if any, goes after).
 */
const window = (
  path: string,
  input: number,
  kernel: number,
  stride: number,
  dilation: number,
  padding: Net.Padding,
  axis: 0 | 1,
): Window => {
  if (!(kernel >= 1 && stride >= 1 && dilation >= 1))
    return fail(path, `kernel ${kernel}, stride ${stride} and dilation ${dilation} must be positive`)
  const effective = (kernel - 1) * dilation + 1
  let before: number
  let out: number
  if (padding === "same") {
    out = Math.ceil(input / stride)
    const total = Math.max((out - 1) * stride + effective - input, 0)
    before = Math.floor(total / 2)
  } else if (padding === "valid") {
    before = 0
    out = Math.floor((input - effective) / stride) + 1
  } else {
    const [b, a] = padding[axis]
    before = b
    out = Math.floor((input + b + a - effective) / stride) + 1
  }
  if (out < 1)
    return fail(path, `window ${kernel} (dilation ${dilation}) does not fit an input of size ${input}`)
  return { before, out }
}

const image = (path: string, what: string, x: Tensor): readonly [number, number, number, number] =>
  x.shape.length === 4
    ? (x.shape as [number, number, number, number])
    : fail(path, `${what} expects a batch of images B×H×W×C, got ${formatShape(x.shape)}`)

const elementwise = (path: string, a: Tensor, b: Tensor, op: (u: number, v: number) => number): Tensor => {
  if (!sameShape(a.shape, b.shape))
    return fail(path, `shapes ${formatShape(a.shape)} and ${formatShape(b.shape)} differ`)
  const y = fill(a.shape)
  for (let i = 0; i < y.data.length; i++) y.data[i] = op(a.data[i]!, b.data[i]!)
  return y
}

const map = (x: Tensor, f: (v: number) => number): Tensor => {
  const y = fill(x.shape)
  for (let i = 0; i < y.data.length; i++) y.data[i] = f(x.data[i]!)
  return y
}

/** The float64 meaning of every node kind; parameters, state and taps through `ctx`. */
const rules = (ctx: Context): Net.Rules<Tensor> => ({
  Conv2d: (n, x, at) => conv2d(n, x, at.path, ctx),
  BatchNorm: (n, x, at) => batchNorm(n, x, at, ctx),
  Relu: (_, x) => map(x, (v) => Math.max(v, 0)),
  Sigmoid: (_, x) => map(x, (v) => 1 / (1 + Math.exp(-v))),
  Identity: (_, x) => x,
  Tap: (n, x, at) => {
    for (const key of Net.tapKeys(n.name, at)) ctx.taps[key] = x
    return x
  },
  Pool: (n, x, at) => pool(n, x, at.path),
  GlobalAvgPool: (_, x, { path }) => {
    const [B, H, W, C] = image(path, "global average pool", x)
    const y = fill([B, C])
    for (let b = 0; b < B; b++)
      for (let c = 0; c < C; c++) {
        let s = 0
        for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) s += x.data[((b * H + h) * W + w) * C + c]!
        y.data[b * C + c] = s / (H * W)
      }
    return y
  },
  Dense: (n, x, { path }) => {
    if (x.shape.length !== 2)
      return fail(path, `dense expects a batch of vectors B×D, got ${formatShape(x.shape)}`)
    const [B, D] = x.shape as [number, number]
    if (n.inFeatures !== undefined && n.inFeatures !== D)
      return fail(path, `expects ${n.inFeatures} input features, got ${D}`)
    const U = n.units
    const kernel = param(ctx, path, Net.join(path, "kernel"), [D, U])
    const bias = n.bias ? param(ctx, path, Net.join(path, "bias"), [U]) : undefined
    const y = fill([B, U])
    for (let b = 0; b < B; b++)
      for (let u = 0; u < U; u++) {
        let s = bias === undefined ? 0 : bias.data[u]!
        for (let d = 0; d < D; d++) s += x.data[b * D + d]! * kernel.data[d * U + u]!
        y.data[b * U + u] = s
      }
    return y
  },
  Flatten: (_, x) => {
    const B = x.shape[0]!
    return { shape: [B, size(x.shape.slice(1))], data: x.data }
  },
  Reshape: (n, x, { path }) => {
    const B = x.shape[0]!
    const total = size(x.shape.slice(1))
    const free = n.shape.filter((d) => d === -1).length
    const known = size(n.shape.filter((d) => d !== -1))
    if (free > 1 || n.shape.some((d) => !Number.isInteger(d) || d === 0 || d < -1))
      return fail(path, `invalid reshape target ${n.shape.join("×")}`)
    const target = n.shape.map((d) => (d === -1 ? total / known : d))
    if (!Number.isInteger(size(target)) || size(target) !== total || !target.every(Number.isInteger))
      return fail(
        path,
        `cannot reshape ${formatShape(x.shape.slice(1))} (${total} elements) to ${n.shape.join("×")}`,
      )
    return { shape: [B, ...target], data: x.data }
  },
  PixelShuffle: (n, x, { path }) => {
    const [B, H, W, C] = image(path, "pixel shuffle", x)
    const r = n.factor
    if (!Number.isInteger(r) || r < 1 || C % (r * r) !== 0)
      return fail(path, `pixel shuffle by ${r} needs channels divisible by ${r * r}, got ${C}`)
    const Co = C / (r * r)
    const Ho = H * r
    const Wo = W * r
    const y = fill([B, Ho, Wo, Co])
    // output (b, h·r + i, w·r + j, c) = input (b, h, w, (i·r + j)·Co + c)
    for (let b = 0; b < B; b++)
      for (let h = 0; h < H; h++)
        for (let w = 0; w < W; w++)
          for (let i = 0; i < r; i++)
            for (let j = 0; j < r; j++)
              for (let c = 0; c < Co; c++)
                y.data[((b * Ho + h * r + i) * Wo + w * r + j) * Co + c] =
                  x.data[((b * H + h) * W + w) * C + (i * r + j) * Co + c]!
    return y
  },
  Seq: (_, x, __, children) => Net.sequence(x, children),
  Scope: (_, x, __, child) => child(x),
  Residual: (_, x, { path }, body, shortcut) =>
    elementwise(path, body(x), shortcut === undefined ? x : shortcut(x), (u, v) => u + v),
  Parallel: (n, x, { path }, branches) => {
    const ys = branches.map((branch) => branch(x))
    if (ys.length === 0) return fail(path, `${n.combine} of no branches`)
    switch (n.combine) {
      case "add":
        return ys.reduce((a, b) => elementwise(path, a, b, (u, v) => u + v))
      case "mul":
        return ys.reduce((a, b) => elementwise(path, a, b, (u, v) => u * v))
      case "concat":
        return concatLast(path, ys)
      default: {
        const _: never = n.combine
        return _
      }
    }
  },
  Loop: (n, x, at, iteration) => {
    if (!Number.isInteger(n.iterations) || n.iterations < 1)
      return fail(at.path, `loop needs a positive integer number of iterations, got ${n.iterations}`)
    if (at.iteration !== undefined) return fail(at.path, "loops cannot be nested")
    const feedbackPath = Net.join(at.path, "feedback")
    return Net.unroll(n, x, iteration, (x, m) => elementwise(feedbackPath, x, m, (u, v) => u * v))
  },
})

const conv2d = (n: Net.Conv2d, x: Tensor, path: string, ctx: Context): Tensor => {
  const [B, H, W, C] = image(path, "conv2d", x)
  if (n.inChannels !== undefined && n.inChannels !== C)
    return fail(path, `expects ${n.inChannels} input channels, got ${C}`)
  const G = n.groups
  const F = n.filters
  if (!Number.isInteger(G) || G < 1 || C % G !== 0 || F % G !== 0)
    return fail(path, `groups=${G} must divide both input channels (${C}) and filters (${F})`)
  const Cg = C / G // input channels per group
  const Fg = F / G // filters per group
  const [kh, kw] = n.kernel
  const [sh, sw] = n.stride
  const [dh, dw] = n.dilation
  const rows = window(path, H, kh, sh, dh, n.padding, 0)
  const cols = window(path, W, kw, sw, dw, n.padding, 1)
  const kernel = param(ctx, path, Net.join(path, "kernel"), [kh, kw, Cg, F])
  const bias = n.bias ? param(ctx, path, Net.join(path, "bias"), [F]) : undefined
  const Ho = rows.out
  const Wo = cols.out
  const y = fill([B, Ho, Wo, F])
  for (let b = 0; b < B; b++)
    for (let oh = 0; oh < Ho; oh++)
      for (let ow = 0; ow < Wo; ow++)
        for (let f = 0; f < F; f++) {
          const g = Math.floor(f / Fg) // filter f belongs to group g, which sees input channels g·Cg … g·Cg + Cg − 1
          let s = bias === undefined ? 0 : bias.data[f]!
          for (let i = 0; i < kh; i++) {
            const ih = oh * sh - rows.before + i * dh
            if (ih < 0 || ih >= H) continue // zero padding
            for (let j = 0; j < kw; j++) {
              const iw = ow * sw - cols.before + j * dw
              if (iw < 0 || iw >= W) continue
              for (let c = 0; c < Cg; c++)
                s +=
                  x.data[((b * H + ih) * W + iw) * C + g * Cg + c]! *
                  kernel.data[((i * kw + j) * Cg + c) * F + f]!
            }
          }
          y.data[((b * Ho + oh) * Wo + ow) * F + f] = s
        }
  return y
}

const pool = (n: Net.Pool, x: Tensor, path: string): Tensor => {
  const [B, H, W, C] = image(path, `${n.op} pool`, x)
  const [kh, kw] = n.kernel
  const [sh, sw] = n.stride
  const rows = window(path, H, kh, sh, 1, n.padding, 0)
  const cols = window(path, W, kw, sw, 1, n.padding, 1)
  const Ho = rows.out
  const Wo = cols.out
  const y = fill([B, Ho, Wo, C])
  for (let b = 0; b < B; b++)
    for (let oh = 0; oh < Ho; oh++)
      for (let ow = 0; ow < Wo; ow++)
        for (let c = 0; c < C; c++) {
          let max = Number.NEGATIVE_INFINITY
          let sum = 0
          let count = 0 // non-padded cells in the window
          for (let i = 0; i < kh; i++) {
            const ih = oh * sh - rows.before + i
            if (ih < 0 || ih >= H) continue
            for (let j = 0; j < kw; j++) {
              const iw = ow * sw - cols.before + j
              if (iw < 0 || iw >= W) continue
              const v = x.data[((b * H + ih) * W + iw) * C + c]!
              max = Math.max(max, v)
              sum += v
              count++
            }
          }
          if (count === 0) return fail(path, `a ${n.op} pool window lies entirely in the padding`)
          y.data[((b * Ho + oh) * Wo + ow) * C + c] = n.op === "max" ? max : sum / count
        }
  return y
}

/**
 * Batch norm over the last axis. The owner path gets `@k` inside a loop with
 * per-iteration batch norms — for the batch norms of the loop's body (feedback
 * and readout share theirs), the rule of `Net.batchNormOwner`.
 */
const batchNorm = (n: Net.BatchNorm, x: Tensor, at: Net.At, ctx: Context): Tensor => {
  const path = at.path
  if (x.shape.length < 2)
    return fail(path, `batch norm needs a batch with at least one axis, got ${formatShape(x.shape)}`)
  const owner = Net.batchNormOwner(at)
  const C = x.shape[x.shape.length - 1]!
  const count = x.data.length / C // reduced elements per channel (batch included)
  const gamma = param(ctx, path, Net.join(owner, "gamma"), [C])
  const beta = param(ctx, path, Net.join(owner, "beta"), [C])
  const runningMean = lookup(ctx.state, "state", path, Net.join(owner, "mean"), [C])
  const runningVariance = lookup(ctx.state, "state", path, Net.join(owner, "variance"), [C])
  let mean: Float64Array
  let variance: Float64Array
  if (ctx.mode === "train") {
    if (count < 2)
      return fail(path, `batch norm in train mode needs more than one value per channel, got ${count}`)
    mean = new Float64Array(C)
    variance = new Float64Array(C)
    for (let i = 0; i < x.data.length; i++) mean[i % C]! += x.data[i]!
    for (let c = 0; c < C; c++) mean[c]! /= count
    for (let i = 0; i < x.data.length; i++) variance[i % C]! += (x.data[i]! - mean[i % C]!) ** 2
    for (let c = 0; c < C; c++) variance[c]! /= count // biased, for normalising
    const m = n.momentum
    const newMean = fill([C])
    const newVariance = fill([C])
    for (let c = 0; c < C; c++) {
      newMean.data[c] = (1 - m) * runningMean.data[c]! + m * mean[c]!
      newVariance.data[c] = (1 - m) * runningVariance.data[c]! + m * variance[c]! * (count / (count - 1)) // unbiased
    }
    ctx.state[Net.join(owner, "mean")] = newMean
    ctx.state[Net.join(owner, "variance")] = newVariance
  } else {
    mean = runningMean.data
    variance = runningVariance.data
  }
  const y = fill(x.shape)
  for (let i = 0; i < x.data.length; i++) {
    const c = i % C
    y.data[i] = ((x.data[i]! - mean[c]!) / Math.sqrt(variance[c]! + n.eps)) * gamma.data[c]! + beta.data[c]!
  }
  return y
}

const concatLast = (path: string, ys: readonly Tensor[]): Tensor => {
  const first = ys[0]!
  const lead = first.shape.slice(0, -1)
  if (first.shape.length < 2 || !ys.every((t) => sameShape(t.shape.slice(0, -1), lead)))
    return fail(
      path,
      `concat needs equal shapes but the last axis, got ${ys.map((t) => formatShape(t.shape)).join(", ")}`,
    )
  const widths = ys.map((t) => t.shape[t.shape.length - 1]!)
  const C = widths.reduce((a, b) => a + b, 0)
  const outer = size(lead)
  const y = fill([...lead, C])
  for (let o = 0; o < outer; o++) {
    let offset = 0
    ys.forEach((t, k) => {
      const w = widths[k]!
      for (let c = 0; c < w; c++) y.data[o * C + offset + c] = t.data[o * w + c]!
      offset += w
    })
  }
  return y
}

// ---- gradient ----------------------------------------------------------------------

/**
 * Central finite differences in float64: `∂f/∂p ≈ (f(p + h) − f(p − h)) / ((p + h) − (p − h))`
 * for every element of every parameter (the denominator is the step actually
 * taken, after rounding). `params` is never mutated; `f` sees perturbed copies.
 */
export const gradient = (f: (params: Params) => number, params: Params, h = 1e-5): Params => {
  const work: Record<string, Tensor> = {}
  for (const [key, t] of Object.entries(params))
    work[key] = { shape: [...t.shape], data: Float64Array.from(t.data) }
  const grads: Record<string, Tensor> = {}
  for (const [key, t] of Object.entries(work)) {
    const g = fill(t.shape)
    for (let i = 0; i < t.data.length; i++) {
      const v = t.data[i]!
      const up = v + h
      const down = v - h
      t.data[i] = up
      const fUp = f(work)
      t.data[i] = down
      const fDown = f(work)
      t.data[i] = v
      g.data[i] = (fUp - fDown) / (up - down)
    }
    grads[key] = g
  }
  return grads
}

// ---- init ------------------------------------------------------------------------------

export { mulberry32 } from "../../random.ts"

/**
 * Deterministic small random parameters for tests: kernels and biases uniform
 * in ±1/√fanIn, γ = 1 + U(±0.1), β = U(±0.1); state mean 0, variance 1. The
 * parameters and state are exactly those the shape checker declares for
 * `net` on one sample of shape `inputShape` (throws if it reports errors).
 */
export const init = (
  net: Net.AnyNet,
  inputShape: Shape.Shape,
  seed: number,
): { params: Params; state: State } => {
  const checked = check(net, inputShape)
  if (!checked.ok) throw new Error(checked.errors.map(formatError).join("\n"))
  const next = mulberry32(seed)
  const uniform = (bound: number) => (2 * next() - 1) * bound
  const params: Record<string, Tensor> = {}
  for (const p of checked.summary.params) {
    const t = fill(p.shape)
    for (let i = 0; i < t.data.length; i++) {
      switch (p.role) {
        case "kernel":
        case "bias":
          t.data[i] = uniform(1 / Math.sqrt(p.fanIn))
          break
        case "gamma":
          t.data[i] = 1 + uniform(0.1)
          break
        case "beta":
          t.data[i] = uniform(0.1)
          break
        default: {
          const _: never = p.role
          return _
        }
      }
    }
    params[p.path] = t
  }
  const state: Record<string, Tensor> = {}
  for (const s of checked.summary.state) state[s.path] = fill(s.shape, s.role === "variance" ? 1 : 0)
  return { params, state }
}

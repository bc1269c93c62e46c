/**
 * `apply`: the training meaning of a network, as a pure function of tensors.
 *
 * `apply(net, params, state, x, mode)` returns the output, every tap and the
 * new batch-norm state. Parameters are ordinary tensors passed in (never
 * variables read from a model), so `apply` can be differentiated with respect
 * to them by `tf.grad`, also nested: meta-learning evaluates the network at
 * parameters that are themselves computed from other parameters.
 *
 * Every op used here has a gradient (and a second-order gradient once
 * `registerHigherOrderGradients` has run): pixel shuffle is lowered to
 * reshape/transpose because `depthToSpace` has no gradient in tfjs.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core"
import { Data } from "effect"
import { batchNormTrain } from "../../backend/ops/batchNorm.ts"
import * as Net from "../../dsl/Net.ts"
import type { Tree } from "./init.ts"

/**
 * How batch norm behaves: `train` normalises with batch statistics and
 * updates the running ones; `eval` normalises with the running statistics;
 * `batch-stats` normalises with batch statistics and leaves the running ones
 * unchanged (e.g. inside a meta-learning inner step).
 */
export type Mode = "train" | "eval" | "batch-stats"

export interface Applied {
  readonly y: tf.Tensor
  readonly taps: Readonly<Record<string, tf.Tensor>>
  /** The state after this pass: updated running statistics in `train` mode, the input state otherwise. */
  readonly state: Tree
}

interface Context {
  readonly params: Tree
  readonly state: Tree
  readonly newState: Record<string, tf.Tensor>
  readonly taps: Record<string, tf.Tensor>
  readonly mode: Mode
}

/** A missing or wrong-shaped parameter: names the path. */
export class ParameterError extends Data.TaggedError("ParameterError")<{ readonly message: string }> {}

const param = (tree: Tree, path: string): tf.Tensor => {
  const t = tree[path]
  if (t === undefined) throw new ParameterError({ message: `${path}: no such parameter or state entry` })
  return t
}

/** Applies `net` to the batch `x` (`[B, ...input]`). */
export const apply = (net: Net.AnyNet, params: Tree, state: Tree, x: tf.Tensor, mode: Mode): Applied => {
  const ctx: Context = { params, state, newState: {}, taps: {}, mode }
  const y = Net.fold(rules(ctx))(net, x)
  return { y, taps: ctx.taps, state: { ...state, ...ctx.newState } }
}

/** The tf meaning of every node kind; parameters, state and taps through `ctx`. */
const rules = (ctx: Context): Net.Rules<tf.Tensor> => ({
  Conv2d: (n, x, at) => conv2d(n, x, at.path, ctx),
  BatchNorm: (n, x, at) => batchNorm(n, x, at, ctx),
  Relu: (_, x) => tf.relu(x),
  Sigmoid: (_, x) => tf.sigmoid(x),
  Identity: (_, x) => x,
  Tap: (n, x, at) => {
    for (const key of Net.tapKeys(n.name, at)) ctx.taps[key] = x
    return x
  },
  Pool: (n, x) => pool(n, x),
  GlobalAvgPool: (_, x) => tf.mean(x, [1, 2]),
  Dense: (n, x, at) => {
    const y = tf.matMul(x as tf.Tensor2D, param(ctx.params, Net.join(at.path, "kernel")) as tf.Tensor2D)
    return n.bias ? tf.add(y, param(ctx.params, Net.join(at.path, "bias"))) : y
  },
  Flatten: (_, x) => tf.reshape(x, [x.shape[0]!, -1]),
  Reshape: (n, x) => tf.reshape(x, [x.shape[0]!, ...n.shape]),
  PixelShuffle: (n, x) => {
    const [b, h, w, c] = x.shape as [number, number, number, number]
    const r = n.factor
    const c2 = c / (r * r)
    return tf.reshape(tf.transpose(tf.reshape(x, [b, h, w, r, r, c2]), [0, 1, 3, 2, 4, 5]), [
      b,
      h * r,
      w * r,
      c2,
    ])
  },
  Seq: (_, x, __, children) => Net.sequence(x, children),
  Scope: (_, x, __, child) => child(x),
  Residual: (_, x, __, body, shortcut) => tf.add(body(x), shortcut === undefined ? x : shortcut(x)),
  Parallel: (n, x, _, branches) => {
    const ys = branches.map((branch) => branch(x))
    if (n.combine === "concat") return tf.concat(ys, -1)
    return ys.slice(1).reduce((a, b) => (n.combine === "add" ? tf.add(a, b) : tf.mul(a, b)), ys[0]!)
  },
  Loop: (n, x, _, iteration) => Net.unroll(n, x, iteration, tf.mul),
})

const explicitPads = (
  p: Net.ExplicitPadding,
): [[number, number], [number, number], [number, number], [number, number]] => [
  [0, 0],
  [p[0][0], p[0][1]],
  [p[1][0], p[1][1]],
  [0, 0],
]

const conv2d = (n: Net.Conv2d, x: tf.Tensor, path: string, ctx: Context): tf.Tensor => {
  const kernel = param(ctx.params, Net.join(path, "kernel")) as tf.Tensor4D
  const pad = n.padding === "same" || n.padding === "valid" ? n.padding : explicitPads(n.padding)
  // tfjs refuses stride > 1 together with dilation > 1: convolve densely, then subsample.
  const both = (n.stride[0] > 1 || n.stride[1] > 1) && (n.dilation[0] > 1 || n.dilation[1] > 1)
  const strides: [number, number] = both ? [1, 1] : [n.stride[0], n.stride[1]]
  const one = (input: tf.Tensor4D, k: tf.Tensor4D) =>
    tf.conv2d(input, k, strides, pad === "same" && both ? "same" : pad, "NHWC", [
      n.dilation[0],
      n.dilation[1],
    ])
  let y: tf.Tensor4D
  if (n.groups === 1) y = one(x as tf.Tensor4D, kernel)
  else {
    // Grouped convolution as a concat of per-group convolutions (works on every backend).
    const xs = tf.split(x as tf.Tensor4D, n.groups, 3)
    const ks = tf.split(kernel, n.groups, 3)
    y = tf.concat(
      xs.map((xi, g) => one(xi as tf.Tensor4D, ks[g]! as tf.Tensor4D)),
      3,
    )
  }
  if (both) {
    if (pad === "same") {
      // TF's `same` for the strided conv keeps the same top-left alignment as the dense one: subsample from the start.
      const [, h, w] = x.shape as number[]
      const [ho, wo] = [Math.ceil(h! / n.stride[0]), Math.ceil(w! / n.stride[1])]
      y = sameStridedSubsample(y, n, [h!, w!], [ho, wo])
    } else y = tf.stridedSlice(y, [0, 0, 0, 0], y.shape, [1, n.stride[0], n.stride[1], 1]) as tf.Tensor4D
  }
  return n.bias ? tf.add(y, param(ctx.params, Net.join(path, "bias"))) : y
}

/**
 * For `same` padding, a strided conv pads `total = (out−1)·s + eff − in`
 * while the dense conv pads `eff − 1`; the strided output's first window
 * starts `before_dense − before_strided` cells into the dense output.
 */
const sameStridedSubsample = (
  y: tf.Tensor4D,
  n: Net.Conv2d,
  input: [number, number],
  out: [number, number],
): tf.Tensor4D => {
  const offset = [0, 1].map((a) => {
    const eff = (n.kernel[a]! - 1) * n.dilation[a]! + 1
    const beforeDense = Math.floor((eff - 1) / 2)
    const totalStrided = Math.max((out[a]! - 1) * n.stride[a]! + eff - input[a]!, 0)
    return beforeDense - Math.floor(totalStrided / 2)
  })
  const end = [
    y.shape[0],
    offset[0]! + (out[0] - 1) * n.stride[0] + 1,
    offset[1]! + (out[1] - 1) * n.stride[1] + 1,
    y.shape[3],
  ]
  return tf.stridedSlice(y, [0, offset[0]!, offset[1]!, 0], end, [
    1,
    n.stride[0],
    n.stride[1],
    1,
  ]) as tf.Tensor4D
}

const batchNorm = (n: Net.BatchNorm, x: tf.Tensor, at: Net.At, ctx: Context): tf.Tensor => {
  const path = at.path
  const owner = Net.batchNormOwner(at)
  const gamma = param(ctx.params, Net.join(owner, "gamma"))
  const beta = param(ctx.params, Net.join(owner, "beta"))
  const meanPath = Net.join(owner, "mean")
  const variancePath = Net.join(owner, "variance")
  // A shared batch norm used several times in a loop sees the statistics its previous use wrote.
  const runningMean = ctx.newState[meanPath] ?? param(ctx.state, meanPath)
  const runningVariance = ctx.newState[variancePath] ?? param(ctx.state, variancePath)
  // The per-channel factor γ/√(σ² + ε) is formed first so that only two full-size ops touch the activation.
  if (ctx.mode === "eval")
    return tf.add(
      tf.mul(tf.sub(x, runningMean), tf.mul(gamma, tf.rsqrt(tf.add(runningVariance, n.eps)))),
      beta,
    )
  // Training and batch-stats modes normalise with the batch's statistics (one fused op where the backend has it).
  const { y, mean, variance } = batchNormTrain(x, gamma, beta, n.eps)
  if (ctx.mode === "train") {
    const count = x.size / x.shape[x.shape.length - 1]!
    if (count < 2)
      throw new ParameterError({
        message: `${path}: batch norm in train mode needs more than one value per channel, got ${count}`,
      })
    // Running statistics are side outputs: no loss depends on them, so no gradient flows through them.
    const m = n.momentum
    const superseded = [ctx.newState[meanPath], ctx.newState[variancePath]]
    ctx.newState[meanPath] = tf.keep(tf.add(tf.mul(runningMean, 1 - m), tf.mul(mean, m)))
    ctx.newState[variancePath] = tf.keep(
      tf.add(tf.mul(runningVariance, 1 - m), tf.mul(variance, (m * count) / (count - 1))),
    )
    for (const t of superseded) t?.dispose()
  }
  return y
}

const pool = (n: Net.Pool, x: tf.Tensor): tf.Tensor => {
  const x4 = x as tf.Tensor4D
  const kernel: [number, number] = [n.kernel[0], n.kernel[1]]
  const strides: [number, number] = [n.stride[0], n.stride[1]]
  if (n.padding === "same" || n.padding === "valid")
    return n.op === "max"
      ? tf.maxPool(x4, kernel, strides, n.padding)
      : tf.avgPool(x4, kernel, strides, n.padding)
  const pads = explicitPads(n.padding)
  const [[top, bottom], [left, right]] = n.padding
  // The same padding on every side: the pool's own padding, whose out-of-image cells never win
  // (= a −∞ pad) without materialising the padded tensor and its gradient.
  if (n.op === "max" && top === bottom && top === left && top === right && top < Math.min(...kernel))
    return tf.maxPool(x4, kernel, strides, top)
  if (n.op === "max") return tf.maxPool(tf.pad(x4, pads, Number.NEGATIVE_INFINITY), kernel, strides, "valid")
  // Average over the cells inside the image only: window sums divided by window counts.
  const sums = tf.avgPool(tf.pad(x4, pads), kernel, strides, "valid")
  const ones = tf.ones([1, x4.shape[1], x4.shape[2], 1])
  const counts = tf.avgPool(tf.pad(ones, pads) as tf.Tensor4D, kernel, strides, "valid")
  return tf.div(sums, counts)
}

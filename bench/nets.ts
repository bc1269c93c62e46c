/**
 * The workloads of workloads.md written directly against tfjs (no cmkg DSL):
 * the hand-written column that measures the DSL's own overhead. NHWC;
 * explicit paddings match torchvision's.
 */
import * as tf from "@tensorflow/tfjs-core"
import { scaleByAdam } from "../src/backend/ops/adam.ts"
import { batchNormTrain } from "../src/backend/ops/batchNorm.ts"

export interface Param {
  readonly name: string
  readonly v: tf.Variable
}

export interface Bn {
  readonly gamma: tf.Variable
  readonly beta: tf.Variable
  readonly mean: tf.Variable
  readonly variance: tf.Variable
}

let seed = 1
const he = (shape: ReadonlyArray<number>, fanIn: number): tf.Tensor =>
  tf.randomNormal([...shape], 0, Math.sqrt(2 / fanIn), "float32", seed++)

export class Builder {
  readonly params: Array<Param> = []
  constructor(readonly trainable = true) {}
  variable(name: string, init: tf.Tensor, trainable = this.trainable): tf.Variable {
    const v = tf.variable(init, trainable, `${name}_${seed++}`)
    init.dispose()
    if (trainable) this.params.push({ name, v })
    return v
  }
  conv(name: string, k: number, cin: number, cout: number): tf.Variable {
    return this.variable(name, he([k, k, cin, cout], k * k * cin))
  }
  bn(name: string, c: number): Bn {
    return {
      gamma: this.variable(`${name}.gamma`, tf.ones([c])),
      beta: this.variable(`${name}.beta`, tf.zeros([c])),
      mean: this.variable(`${name}.mean`, tf.zeros([c]), false),
      variance: this.variable(`${name}.var`, tf.ones([c]), false),
    }
  }
}

export type Mode = "train" | "eval"

/** Batch norm over N, H, W; training mode uses batch statistics (and returns updates to apply after the step). */
export const batchNorm = (x: tf.Tensor4D, p: Bn, mode: Mode, updates: Array<() => void>): tf.Tensor4D => {
  if (mode === "eval")
    return tf.batchNorm4d(
      x,
      p.mean as tf.Tensor1D,
      p.variance as tf.Tensor1D,
      p.beta as tf.Tensor1D,
      p.gamma as tf.Tensor1D,
      1e-5,
    )
  // The same training-mode op the interpreter uses (fused where the backend has it), so the
  // DSL-vs-tfjs ratio measures the DSL's overhead and not a different batch norm.
  const { y, mean, variance } = batchNormTrain(x, p.gamma, p.beta, 1e-5)
  const m = tf.keep(tf.clone(mean))
  const v = tf.keep(tf.clone(variance))
  updates.push(() => {
    tf.tidy(() => {
      p.mean.assign(tf.add(tf.mul(p.mean, 0.9), tf.mul(m, 0.1)))
      p.variance.assign(tf.add(tf.mul(p.variance, 0.9), tf.mul(v, 0.1)))
    })
    m.dispose()
    v.dispose()
  })
  return y as tf.Tensor4D
}

interface Block {
  readonly c1: tf.Variable
  readonly b1: Bn
  readonly c2: tf.Variable
  readonly b2: Bn
  readonly down?: { readonly c: tf.Variable; readonly b: Bn }
  readonly stride: number
}

const block = (b: Builder, name: string, cin: number, cout: number, stride: number): Block => ({
  c1: b.conv(`${name}.conv1`, 3, cin, cout),
  b1: b.bn(`${name}.bn1`, cout),
  c2: b.conv(`${name}.conv2`, 3, cout, cout),
  b2: b.bn(`${name}.bn2`, cout),
  ...(stride !== 1 || cin !== cout
    ? { down: { c: b.conv(`${name}.down`, 1, cin, cout), b: b.bn(`${name}.downbn`, cout) } }
    : {}),
  stride,
})

const runBlock = (x: tf.Tensor4D, k: Block, mode: Mode, u: Array<() => void>): tf.Tensor4D => {
  let h = tf.relu(batchNorm(tf.conv2d(x, k.c1 as tf.Tensor4D, k.stride, 1), k.b1, mode, u))
  h = batchNorm(tf.conv2d(h, k.c2 as tf.Tensor4D, 1, 1), k.b2, mode, u)
  const s =
    k.down === undefined
      ? x
      : batchNorm(tf.conv2d(x, k.down.c as tf.Tensor4D, k.stride, 0), k.down.b, mode, u)
  return tf.relu(tf.add(h, s))
}

export interface Net {
  readonly params: ReadonlyArray<Param>
  /** Prediction and the per-stage activations (taps). */
  forward(
    x: tf.Tensor4D,
    mode: Mode,
    updates: Array<() => void>,
  ): { y: tf.Tensor2D; taps: Array<tf.Tensor4D> }
}

/** ResNet-18 in torchvision's layout (conv 7×7/2 + maxpool 3×3/2, four stages of two basic blocks). */
export const resnet18 = (inCh: number, out: number, trainable = true): Net => {
  const b = new Builder(trainable)
  const conv1 = b.conv("conv1", 7, inCh, 64)
  const bn1 = b.bn("bn1", 64)
  const stages: Array<Array<Block>> = []
  let c = 64
  for (const [i, [w, s]] of (
    [
      [64, 1],
      [128, 2],
      [256, 2],
      [512, 2],
    ] as const
  ).entries()) {
    stages.push([block(b, `layer${i + 1}.0`, c, w, s), block(b, `layer${i + 1}.1`, w, w, 1)])
    c = w
  }
  const fcW = b.variable("fc.w", he([512, out], 512))
  const fcB = b.variable("fc.b", tf.zeros([out]))
  return {
    params: b.params,
    forward(x, mode, u) {
      let h = tf.relu(batchNorm(tf.conv2d(x, conv1 as tf.Tensor4D, 2, 3), bn1, mode, u))
      h = tf.maxPool(h, 3, 2, 1)
      const taps: Array<tf.Tensor4D> = []
      for (const st of stages) {
        for (const k of st) h = runBlock(h, k, mode, u)
        taps.push(h)
      }
      const pooled = tf.mean(h, [1, 2]) as tf.Tensor2D
      return { y: tf.add(tf.matMul(pooled, fcW as tf.Tensor2D), fcB) as tf.Tensor2D, taps }
    },
  }
}

/** The tiny ResNet of workloads.md: stem conv3×3(16)+BN+ReLU, blocks 16/32/64/128 with strides 1/2/2/2, GAP, dense. */
export const tiny = (inCh: number, out: number): Net => {
  const b = new Builder()
  const conv1 = b.conv("conv1", 3, inCh, 16)
  const bn1 = b.bn("bn1", 16)
  const blocks: Array<Block> = []
  let c = 16
  for (const [i, [w, s]] of (
    [
      [16, 1],
      [32, 2],
      [64, 2],
      [128, 2],
    ] as const
  ).entries()) {
    blocks.push(block(b, `layer${i + 1}`, c, w, s))
    c = w
  }
  const fcW = b.variable("fc.w", he([128, out], 128))
  const fcB = b.variable("fc.b", tf.zeros([out]))
  return {
    params: b.params,
    forward(x, mode, u) {
      let h = tf.relu(batchNorm(tf.conv2d(x, conv1 as tf.Tensor4D, 1, 1), bn1, mode, u))
      const taps: Array<tf.Tensor4D> = []
      for (const k of blocks) {
        h = runBlock(h, k, mode, u)
        taps.push(h)
      }
      const pooled = tf.mean(h, [1, 2]) as tf.Tensor2D
      return { y: tf.add(tf.matMul(pooled, fcW as tf.Tensor2D), fcB) as tf.Tensor2D, taps }
    },
  }
}

export const mse = (a: tf.Tensor, b: tf.Tensor): tf.Scalar => tf.mean(tf.square(tf.sub(a, b)))

/** Zagoruyko–Komodakis attention map: channel-wise sum of squares, flattened, l2-normalised. */
export const attention = (a: tf.Tensor4D): tf.Tensor2D => {
  const m = tf.reshape(tf.sum(tf.square(a), 3), [a.shape[0], -1]) as tf.Tensor2D
  return tf.div(m, tf.maximum(tf.norm(m, 2, 1, true), 1e-12)) as tf.Tensor2D
}

export const distLoss = (
  s: ReadonlyArray<tf.Tensor4D>,
  t: ReadonlyArray<tf.Tensor4D>,
  lam = 1e3,
): tf.Scalar => {
  const act = mse(s[s.length - 1] as tf.Tensor4D, t[t.length - 1] as tf.Tensor4D)
  let att: tf.Scalar = tf.scalar(0)
  for (let i = 0; i < s.length; i++) {
    att = tf.add(
      att,
      tf.mean(tf.sum(tf.square(tf.sub(attention(s[i] as tf.Tensor4D), attention(t[i] as tf.Tensor4D))), 1)),
    )
  }
  return tf.add(act, tf.mul(att, lam))
}

/**
 * Adam on tfjs variables with the interpreter's fused moment update (`scaleByAdam`),
 * so that the hand-written workloads run the same kernels as the DSL's optimizer and
 * DSL ÷ tfjs measures the DSL's own overhead, not two different Adams.
 */
export const fusedAdam = (vars: ReadonlyArray<tf.Variable>, lr: number) => {
  const mu = vars.map((v) => tf.variable(tf.zerosLike(v), false))
  const nu = vars.map((v) => tf.variable(tf.zerosLike(v), false))
  let t = 0
  return {
    step(loss: () => tf.Scalar): number {
      t++
      const { value, grads } = tf.variableGrads(loss, [...vars])
      const k = { b1: 0.9, b2: 0.999, eps: 1e-8, c1: 1 - 0.9 ** t, c2: 1 - 0.999 ** t }
      tf.tidy(() => {
        vars.forEach((v, i) => {
          const r = scaleByAdam(grads[v.name]!, mu[i]!, nu[i]!, k)
          mu[i]!.assign(r.mu)
          nu[i]!.assign(r.nu)
          v.assign(tf.add(v, tf.mul(r.update, -lr)))
        })
      })
      const l = value.dataSync()[0] as number
      tf.dispose([value, ...Object.values(grads)])
      return l
    },
    dispose: () => tf.dispose([...mu, ...nu]),
  }
}

/**
 * `cmkg-cpu` kernels for training-mode batch norm (see `../batchNorm.ts` for
 * the op and its gradients): two passes over the activation forward
 * (statistics, normalise) and two backward (Σdy and Σdy·(x − μ), then dx),
 * channel-last, statistics accumulated in float64. oneDNN does both (SIMD,
 * threaded) when its addon is built; these loops otherwise.
 */
import type { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu"
import type { KernelConfig, KernelFunc, TensorInfo } from "@tensorflow/tfjs-core"
import * as Dnnl from "./dnnl.ts"
import { fastPathCalls, valuesOf } from "./kernel.ts"
import { BATCH_NORM_TRAIN, BATCH_NORM_TRAIN_GRAD } from "./ops/batchNorm.ts"
import { alloc } from "./pool.ts"

const float32 = (...ts: ReadonlyArray<TensorInfo>): void => {
  for (const t of ts)
    if (t.dtype !== "float32")
      throw new TypeError(`${BATCH_NORM_TRAIN}: expects float32 tensors, got ${t.dtype}`)
}

const channels = (x: TensorInfo): number => x.shape[x.shape.length - 1] as number

const forward: KernelFunc = ({ inputs, backend, attrs }) => {
  const b = backend as MathBackendCPU
  const { x, gamma, beta } = inputs as { x: TensorInfo; gamma: TensorInfo; beta: TensorInfo }
  float32(x, gamma, beta)
  fastPathCalls[BATCH_NORM_TRAIN] = (fastPathCalls[BATCH_NORM_TRAIN] ?? 0) + 1
  const eps = (attrs as { eps: number }).eps
  const c = channels(x)
  const src = valuesOf(b, x)
  const g = valuesOf(b, gamma)
  const be = valuesOf(b, beta)
  const native = Dnnl.batchNormForward(src, x.shape, g, be, eps)
  if (native !== undefined) {
    const [y, mean, variance] = native
    return [
      b.makeTensorInfo(x.shape.slice(), "float32", y),
      b.makeTensorInfo([c], "float32", mean),
      b.makeTensorInfo([c], "float32", variance),
    ]
  }
  const rows = src.length / c
  // Shifted sums (shift = the first row) keep the one-pass variance accurate.
  const s1 = new Float64Array(c)
  const s2 = new Float64Array(c)
  for (let i = 0; i < src.length; i += c) {
    for (let j = 0; j < c; j++) {
      const d = src[i + j]! - src[j]!
      s1[j]! += d
      s2[j]! += d * d
    }
  }
  const mean = new Float32Array(c)
  const variance = new Float32Array(c)
  const scale = new Float32Array(c)
  const shift = new Float32Array(c)
  for (let j = 0; j < c; j++) {
    const m1 = s1[j]! / rows
    const v = Math.max(0, s2[j]! / rows - m1 * m1)
    const mu = src[j]! + m1
    mean[j] = mu
    variance[j] = v
    const a = g[j]! / Math.sqrt(v + eps)
    scale[j] = a
    shift[j] = be[j]! - mu * a
  }
  const y = alloc(src.length)
  for (let i = 0; i < src.length; i += c)
    for (let j = 0; j < c; j++) y[i + j] = src[i + j]! * scale[j]! + shift[j]!
  return [
    b.makeTensorInfo(x.shape.slice(), "float32", y),
    b.makeTensorInfo([c], "float32", mean),
    b.makeTensorInfo([c], "float32", variance),
  ]
}

const backward: KernelFunc = ({ inputs, backend, attrs }) => {
  const b = backend as MathBackendCPU
  const { x, gamma, dy, mean, variance } = inputs as Record<
    "x" | "gamma" | "dy" | "mean" | "variance",
    TensorInfo
  >
  float32(x, gamma, dy, mean, variance)
  fastPathCalls[BATCH_NORM_TRAIN_GRAD] = (fastPathCalls[BATCH_NORM_TRAIN_GRAD] ?? 0) + 1
  const eps = (attrs as { eps: number }).eps
  const c = channels(x)
  const src = valuesOf(b, x)
  const d = valuesOf(b, dy)
  const mu = valuesOf(b, mean)
  const v = valuesOf(b, variance)
  const g = valuesOf(b, gamma)
  const native = Dnnl.batchNormBackward(src, x.shape, g, d, mu, v, eps)
  if (native !== undefined) {
    const [dx, dgamma, dbeta] = native
    return [
      b.makeTensorInfo(x.shape.slice(), "float32", dx),
      b.makeTensorInfo([c], "float32", dgamma),
      b.makeTensorInfo([c], "float32", dbeta),
    ]
  }
  const rows = src.length / c
  const sumDy = new Float64Array(c)
  const sumDyX = new Float64Array(c)
  for (let i = 0; i < src.length; i += c) {
    for (let j = 0; j < c; j++) {
      const e = d[i + j]!
      sumDy[j]! += e
      sumDyX[j]! += e * (src[i + j]! - mu[j]!)
    }
  }
  const dgamma = new Float32Array(c)
  const dbeta = new Float32Array(c)
  // dx = a·dy + p·x + q per channel, with a = γ/√(σ²+ε).
  const a = new Float32Array(c)
  const p = new Float32Array(c)
  const q = new Float32Array(c)
  for (let j = 0; j < c; j++) {
    const inv = 1 / Math.sqrt(v[j]! + eps)
    dbeta[j] = sumDy[j]!
    dgamma[j] = sumDyX[j]! * inv
    const aj = g[j]! * inv
    const pj = (-aj * inv * inv * sumDyX[j]!) / rows
    a[j] = aj
    p[j] = pj
    q[j] = (-aj * sumDy[j]!) / rows - pj * mu[j]!
  }
  const dx = alloc(src.length)
  for (let i = 0; i < src.length; i += c)
    for (let j = 0; j < c; j++) dx[i + j] = a[j]! * d[i + j]! + p[j]! * src[i + j]! + q[j]!
  return [
    b.makeTensorInfo(x.shape.slice(), "float32", dx),
    b.makeTensorInfo([c], "float32", dgamma),
    b.makeTensorInfo([c], "float32", dbeta),
  ]
}

export const batchNormKernels = (backendName: string): Array<KernelConfig> => [
  { kernelName: BATCH_NORM_TRAIN, backendName, kernelFunc: forward },
  { kernelName: BATCH_NORM_TRAIN_GRAD, backendName, kernelFunc: backward },
]

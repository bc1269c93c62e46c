/**
 * The `cmkg-cpu` tfjs backend: tfjs's own cpu backend (a `MathBackendCPU`
 * instance, with every cpu kernel registered under the new name) whose hot
 * kernels run through onnxruntime (multi-threaded MLAS) instead of JS loops.
 *
 * Anything the fast path does not support (NCHW, negative padding, non-float32
 * dtypes, …) falls back to the cpu kernel. `fastPathCalls` counts what ran fast.
 */

import { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu"
import * as tf from "@tensorflow/tfjs-core"
import { backend_util, type KernelConfig, type TensorInfo } from "@tensorflow/tfjs-core"
import { batchNormKernels } from "./batchnorm.ts"
import {
  backpropInputSupported,
  convBackpropFilter,
  convBackpropInput,
  convForward,
  type Epilogue,
  supported,
} from "./conv.ts"
import * as Dnnl from "./dnnl.ts"
import { elementwiseKernels } from "./elementwise.ts"
import { fastKernels } from "./fastops.ts"
import { valuesOf, withFallback } from "./kernel.ts"
import { layoutKernels } from "./layout.ts"
import { adamGradients } from "./ops/adam.ts"
import { batchNormGradients } from "./ops/batchNorm.ts"
import { RELU_GRAD, reluGradients } from "./ops/relu.ts"
import { ortAvailable } from "./ort.ts"
import { isPooled, recycle } from "./pool.ts"

export { fallbackCalls, fastPathCalls, resetCallCounts } from "./kernel.ts"

export const CMKG_CPU = "cmkg-cpu"

const allFloat = (...ts: ReadonlyArray<TensorInfo | undefined>): boolean =>
  ts.every((t) => t === undefined || t.dtype === "float32")

/** tfjs's convolution geometry for NHWC operands (`depthwise` for the depthwise kernels). */
const nhwcConvInfo = (
  inShape: readonly number[],
  filterShape: readonly number[],
  strides: number | [number, number],
  dilations: number | [number, number],
  pad: Parameters<typeof backend_util.computeConv2DInfo>[4],
  dimRoundingMode: Parameters<typeof backend_util.computeConv2DInfo>[5],
  depthwise: boolean,
) =>
  backend_util.computeConv2DInfo(
    inShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    strides,
    dilations,
    pad,
    dimRoundingMode,
    depthwise,
    "channelsLast",
  )

const conv2D = withFallback("Conv2D", ({ inputs, attrs }, b) => {
  const { x, filter } = inputs as { x: TensorInfo; filter: TensorInfo }
  const a = attrs as unknown as tf.Conv2DAttrs
  if (!allFloat(x, filter) || a.dataFormat === "NCHW") return undefined
  const c = nhwcConvInfo(x.shape, filter.shape, a.strides, a.dilations, a.pad, a.dimRoundingMode, false)
  if (!supported(c)) return undefined
  return b.makeTensorInfo(c.outShape, "float32", convForward(c, valuesOf(b, x), valuesOf(b, filter)))
})

const depthwise = withFallback("DepthwiseConv2dNative", ({ inputs, attrs }, b) => {
  const { x, filter } = inputs as { x: TensorInfo; filter: TensorInfo }
  const a = attrs as unknown as tf.DepthwiseConv2dNativeAttrs
  if (!allFloat(x, filter) || a.dataFormat === "NCHW") return undefined
  const c = nhwcConvInfo(x.shape, filter.shape, a.strides, a.dilations, a.pad, a.dimRoundingMode, true)
  if (!supported(c)) return undefined
  return b.makeTensorInfo(
    c.outShape,
    "float32",
    convForward(c, valuesOf(b, x), valuesOf(b, filter), { depthwise: true }),
  )
})

const conv2DBackpropInput = withFallback("Conv2DBackpropInput", ({ inputs, attrs }, b) => {
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo }
  const a = attrs as unknown as tf.Conv2DBackpropInputAttrs
  if (!allFloat(dy, filter) || a.dataFormat === "NCHW") return undefined
  const c = nhwcConvInfo(a.inputShape, filter.shape, a.strides, 1, a.pad, a.dimRoundingMode, false)
  if (!backpropInputSupported(c)) return undefined
  return b.makeTensorInfo(a.inputShape, "float32", convBackpropInput(c, valuesOf(b, dy), valuesOf(b, filter)))
})

const depthwiseBackpropInput = withFallback("DepthwiseConv2dNativeBackpropInput", ({ inputs, attrs }, b) => {
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo }
  const a = attrs as unknown as tf.DepthwiseConv2dNativeBackpropInputAttrs
  if (!allFloat(dy, filter)) return undefined
  const c = nhwcConvInfo(a.inputShape, filter.shape, a.strides, a.dilations, a.pad, a.dimRoundingMode, true)
  if (!backpropInputSupported(c)) return undefined
  return b.makeTensorInfo(
    a.inputShape,
    "float32",
    convBackpropInput(c, valuesOf(b, dy), valuesOf(b, filter), true),
  )
})

const conv2DBackpropFilter = withFallback("Conv2DBackpropFilter", ({ inputs, attrs }, b) => {
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo }
  const a = attrs as unknown as tf.Conv2DBackpropFilterAttrs
  if (!allFloat(x, dy) || a.dataFormat === "NCHW") return undefined
  const c = nhwcConvInfo(x.shape, a.filterShape, a.strides, 1, a.pad, a.dimRoundingMode, false)
  if (!supported(c)) return undefined
  return b.makeTensorInfo(a.filterShape, "float32", convBackpropFilter(c, valuesOf(b, x), valuesOf(b, dy)))
})

const depthwiseBackpropFilter = withFallback(
  "DepthwiseConv2dNativeBackpropFilter",
  ({ inputs, attrs }, b) => {
    const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo }
    const a = attrs as unknown as tf.DepthwiseConv2dNativeBackpropFilterAttrs
    if (!allFloat(x, dy)) return undefined
    const c = nhwcConvInfo(x.shape, a.filterShape, a.strides, a.dilations, a.pad, a.dimRoundingMode, true)
    if (!supported(c)) return undefined
    return b.makeTensorInfo(
      a.filterShape,
      "float32",
      convBackpropFilter(c, valuesOf(b, x), valuesOf(b, dy), true),
    )
  },
)

/** The pooling geometry oneDNN's addon handles: NHWC float32, no dilation. */
const maxPoolInfo = (x: TensorInfo, attrs: tf.MaxPoolAttrs) =>
  backend_util.computePool2DInfo(
    x.shape as [number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  )

const maxPool = withFallback("MaxPool", ({ inputs, attrs }, b) => {
  const { x } = inputs as { x: TensorInfo }
  if (!allFloat(x) || x.shape.length !== 4) return undefined
  const p = maxPoolInfo(x, attrs as unknown as tf.MaxPoolAttrs)
  const y = Dnnl.maxPool(p, valuesOf(b, x))
  return y === undefined ? undefined : b.makeTensorInfo(p.outShape, "float32", y)
})

const maxPoolGrad = withFallback("MaxPoolGrad", ({ inputs, attrs }, b) => {
  const { dy, input } = inputs as { dy: TensorInfo; input: TensorInfo }
  if (!allFloat(dy, input) || input.shape.length !== 4) return undefined
  const p = maxPoolInfo(input, attrs as unknown as tf.MaxPoolAttrs)
  const dx = Dnnl.maxPoolBackward(p, valuesOf(b, dy), valuesOf(b, input))
  return dx === undefined ? undefined : b.makeTensorInfo(input.shape.slice(), "float32", dx)
})

const epilogues: ReadonlySet<string> = new Set(["linear", "relu", "relu6", "sigmoid", "elu", "leakyrelu"])

const fusedConv2D = withFallback("FusedConv2D", ({ inputs, attrs }, b) => {
  const { x, filter, bias, preluActivationWeights } = inputs as {
    x: TensorInfo
    filter: TensorInfo
    bias?: TensorInfo
    preluActivationWeights?: TensorInfo
  }
  const a = attrs as unknown as tf.FusedConv2DAttrs
  if (
    !allFloat(x, filter, bias) ||
    a.dataFormat === "NCHW" ||
    preluActivationWeights !== undefined ||
    !epilogues.has(a.activation)
  )
    return undefined
  const c = nhwcConvInfo(x.shape, filter.shape, a.strides, a.dilations, a.pad, a.dimRoundingMode, false)
  if (!supported(c)) return undefined
  // Only a per-channel bias fuses into Conv; anything else falls back.
  if (bias !== undefined && !(bias.shape.length === 1 && bias.shape[0] === c.outChannels)) return undefined
  const y = convForward(c, valuesOf(b, x), valuesOf(b, filter), {
    ...(bias === undefined ? {} : { bias: valuesOf(b, bias) }),
    act: a.activation as Epilogue,
    ...(a.leakyreluAlpha === undefined ? {} : { alpha: a.leakyreluAlpha }),
  })
  return b.makeTensorInfo(c.outShape, "float32", y)
})

/**
 * Cast to float32 of an int32 or bool tensor, into its own Float32Array. tfjs's cpu Cast
 * hands the input's Int32Array/Uint8Array to the float32 result (no precision is lost);
 * the fast kernels here pass float32 values to onnxruntime and oneDNN, which reject any
 * other typed array (tf.norm's gradient casts its int32 exponent 2 and multiplies it by the
 * whole input: "A float32 tensor's data must be type of function Float32Array()").
 */
const cast = withFallback("Cast", ({ inputs, attrs }, b) => {
  const { x } = inputs as { x: TensorInfo }
  if ((attrs as unknown as tf.CastAttrs).dtype !== "float32" || (x.dtype !== "int32" && x.dtype !== "bool"))
    return undefined
  const values = b.data.get(x.dataId).values as Int32Array | Uint8Array
  return b.makeTensorInfo(x.shape.slice(), "float32", Float32Array.from(values))
})

const overrides = (): Array<KernelConfig> => [
  { kernelName: "Cast", backendName: CMKG_CPU, kernelFunc: cast },
  { kernelName: "Conv2D", backendName: CMKG_CPU, kernelFunc: conv2D },
  { kernelName: "Conv2DBackpropInput", backendName: CMKG_CPU, kernelFunc: conv2DBackpropInput },
  { kernelName: "Conv2DBackpropFilter", backendName: CMKG_CPU, kernelFunc: conv2DBackpropFilter },
  { kernelName: "DepthwiseConv2dNative", backendName: CMKG_CPU, kernelFunc: depthwise },
  {
    kernelName: "DepthwiseConv2dNativeBackpropInput",
    backendName: CMKG_CPU,
    kernelFunc: depthwiseBackpropInput,
  },
  {
    kernelName: "DepthwiseConv2dNativeBackpropFilter",
    backendName: CMKG_CPU,
    kernelFunc: depthwiseBackpropFilter,
  },
  { kernelName: "FusedConv2D", backendName: CMKG_CPU, kernelFunc: fusedConv2D },
  { kernelName: "MaxPool", backendName: CMKG_CPU, kernelFunc: maxPool },
  { kernelName: "MaxPoolGrad", backendName: CMKG_CPU, kernelFunc: maxPoolGrad },
  ...fastKernels(CMKG_CPU),
  ...elementwiseKernels(CMKG_CPU),
  ...layoutKernels(CMKG_CPU),
  ...batchNormKernels(CMKG_CPU),
]

/**
 * tfjs's cpu backend whose disposed tensors return their pooled buffers to the
 * pool (`pool.ts`), and whose reads hand out copies of pooled buffers.
 */
class PooledCpuBackend extends MathBackendCPU {
  override disposeData(dataId: object, force = false): boolean {
    const values = this.data.get(dataId)?.values
    const disposed = super.disposeData(dataId, force)
    if (disposed && !this.data.has(dataId)) recycle(values)
    return disposed
  }
  override readSync(dataId: object): ReturnType<MathBackendCPU["readSync"]> {
    const values = super.readSync(dataId)
    return isPooled(values) ? (values as Float32Array).slice() : values
  }
}

/**
 * A cpu kernel for cmkg-cpu. Some (Slice, and the ops built on it) return a view
 * into their input's buffer; when that buffer is pooled it would be recycled
 * under the view, so such outputs get their own copy.
 */
const cpuKernelFor = (k: KernelConfig): KernelConfig => ({
  ...k,
  backendName: CMKG_CPU,
  kernelFunc: (args) => {
    const out = k.kernelFunc(args)
    const b = args.backend as MathBackendCPU
    const pooledBuffers = Object.values(args.inputs)
      .map((t) => (t === undefined ? undefined : b.data.get(t.dataId)?.values))
      .filter((v): v is Float32Array => isPooled(v))
      .map((v) => v.buffer)
    if (pooledBuffers.length === 0) return out
    for (const t of Array.isArray(out) ? out : [out]) {
      const entry = b.data.get(t.dataId)
      const v = entry?.values
      if (
        entry !== undefined &&
        v instanceof Float32Array &&
        !isPooled(v) &&
        pooledBuffers.includes(v.buffer)
      )
        entry.values = v.slice()
    }
    return out
  },
})

let registered = false

/**
 * Register the `cmkg-cpu` backend (idempotent). Returns false, registering
 * nothing, when onnxruntime's native binding does not load.
 */
export const registerCmkgCpu = (priority = 0): boolean => {
  if (registered) return true
  if (!ortAvailable()) return false
  tf.registerBackend(CMKG_CPU, () => new PooledCpuBackend(), priority)
  const over = overrides()
  const names = new Set(over.map((k) => k.kernelName))
  for (const k of tf.getKernelsForBackend("cpu")) {
    if (!names.has(k.kernelName)) tf.registerKernel(cpuKernelFor(k))
  }
  for (const k of over) tf.registerKernel(k)
  // The fused kernels (batch norm, relu's gradient, Adam) come with their gradients (the interpreter's
  // `ready` registers them too). Relu's gradient is replaced by one that uses the kernel: the same values.
  for (const g of batchNormGradients) if (tf.getGradient(g.kernelName) === undefined) tf.registerGradient(g)
  if (tf.getGradient(RELU_GRAD) === undefined) for (const g of reluGradients) tf.registerGradient(g)
  for (const g of adamGradients) if (tf.getGradient(g.kernelName) === undefined) tf.registerGradient(g)
  registered = true
  return true
}

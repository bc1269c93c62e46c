// Higher-order gradients for TensorFlow.js (tfjs-core 4.22).
//
// CMKG meta-learning differentiates through unrolled SGD steps, so every
// kernel a network reaches must have a gradient function that is itself
// built from differentiable ops (gradient of a gradient, Hessian-vector
// products). Stock tfjs falls short in four ways, all fixed here by
// `tf.registerGradient` (which replaces the stock config for a kernel):
//
// 1. Kernels that only appear inside gradients have no gradient at all:
//    Conv2DBackpropFilter, DepthwiseConv2dNativeBackpropInput/Filter,
//    MaxPoolGrad, AvgPoolGrad; and StridedSlice and DepthToSpace have none
//    even at first order.
// 2. Gradients written in terms of the saved *output* (Exp, Sigmoid, Tanh,
//    Softmax, LogSoftmax, Pow's exponent gradient) silently lose the
//    second-order term (tfjs issue 3252): the engine clones a saved output
//    *before* it records the kernel's own tape node, so when the tape is
//    walked for the outer derivative the clone is not seen as a function of
//    the input and the path through it is pruned. We recompute from the
//    saved input instead.
// 3. Boolean kernels used to build masks inside gradients (Less, Greater,
//    Equal, LogicalAnd, ...) have no gradient, so differentiating the
//    gradient of relu6/maximum/minimum/clipByValue/max/where throws
//    "gradient function not found for Less". They get zero gradients (the
//    masks are piecewise constant).
// 4. Plain wrong or unsupported gradients: Conv2D and DepthwiseConv2dNative
//    assert "dilation rates greater than 1 are not yet supported in
//    gradients" (even first order); AvgPool's gradient divides by the full
//    window size while the forward kernels divide by the number of
//    *in-bounds* pixels, so avgPool with padding has a wrong first-order
//    gradient (cpu and wasm); and on wasm the MaxPoolGrad kernel loses the
//    gradient of every window whose maximum is <= 0. Abs's gradient at 0 is
//    −1 (`step(x, −1)`), where PyTorch's and the closed-form meta-gradient's
//    is sign(0) = 0: an ℓ1 norm's gradient at parameters sitting at 0
//    (batch norm's β at initialisation) was −φ instead of 0.
//
// Not fixable by registration: `tf.customGrad` ops whose gradient closes over
// a tensor computed off the tape: tf.logSoftmax and
// tf.losses.softmaxCrossEntropy (both save their log-softmax output). Their
// second derivatives are silently wrong (e.g. an HVP of exactly 0). Use
// `logSoftmax` below (primitive ops) instead. (tf.logSigmoid and tf.fused.*
// are customGrad too but close over their inputs, so they are fine.)

import * as tf from "@tensorflow/tfjs-core"
import { adamGradients } from "../../backend/ops/adam.ts"
import { batchNormGradients } from "../../backend/ops/batchNorm.ts"
import { reluGradients } from "../../backend/ops/relu.ts"

type Pad = "valid" | "same" | number | tf.backend_util.ExplicitPadding
type Rounding = "floor" | "round" | "ceil" | undefined
type Pair = [number, number]

/** Kernels whose gradient `registerHigherOrderGradients` adds or replaces. */
export const higherOrderGradientKernels = [
  // missing gradients
  tf.Conv2DBackpropFilter,
  tf.DepthwiseConv2dNativeBackpropInput,
  tf.DepthwiseConv2dNativeBackpropFilter,
  tf.MaxPoolGrad,
  tf.AvgPoolGrad,
  tf.DepthToSpace,
  tf.StridedSlice,
  // wrong / unsupported gradients
  tf.Conv2D,
  tf.DepthwiseConv2dNative,
  tf.AvgPool,
  tf.MaxPool, // wasm MaxPoolGrad drops windows with max <= 0
  tf.Abs, // −1 at 0, not sign(0) = 0
  // gradients through saved outputs (second order lost)
  tf.Exp,
  tf.Sigmoid,
  tf.Tanh,
  tf.Softmax,
  tf.LogSoftmax,
  tf.Pow,
  // boolean mask kernels without gradients
  tf.Less,
  tf.LessEqual,
  tf.Greater,
  tf.Equal,
  tf.NotEqual,
  tf.LogicalAnd,
  tf.LogicalOr,
  tf.LogicalNot,
  tf.LogicalXor,
] as const

// ---------------------------------------------------------------- helpers

const pair = (v: number | readonly number[] | undefined, dflt = 1): Pair =>
  v === undefined ? [dflt, dflt] : typeof v === "number" ? [v, v] : [v[0] ?? dflt, v[1] ?? v[0] ?? dflt]

const attr = <T>(attrs: tf.NamedAttrMap, name: string): T => attrs[name] as unknown as T

const run = <T extends tf.Tensor>(kernel: string, inputs: tf.NamedTensorMap, attrs: object): T =>
  tf.engine().runKernel(kernel, inputs, attrs as unknown as tf.NamedAttrMap) as T

const as4 = (t: tf.Tensor): tf.Tensor4D => t as tf.Tensor4D

/** Zero gradient of the same shape as `t` (gradients must be float32). */
const zerosOf = (t: tf.Tensor): tf.Tensor => tf.zeros(t.shape, "float32")

/** Insert d-1 zeros between taps along `axis` (dilation as an explicit, differentiable op). */
const dilateAxis = (f: tf.Tensor, axis: number, d: number): tf.Tensor => {
  if (d === 1) return f
  const s = f.shape
  const k = s[axis] as number
  const expanded = tf.reshape(f, [...s.slice(0, axis + 1), 1, ...s.slice(axis + 1)])
  const paddings = expanded.shape.map((_, i): [number, number] => (i === axis + 1 ? [0, d - 1] : [0, 0]))
  const merged = tf.reshape(tf.pad(expanded, paddings), [...s.slice(0, axis), k * d, ...s.slice(axis + 1)])
  const size = s.map((n, i) => (i === axis ? (k - 1) * d + 1 : n))
  return tf.slice(
    merged,
    s.map(() => 0),
    size,
  )
}

/** Adjoint of `dilateAxis`: keep every d-th tap. */
const undilateAxis = (g: tf.Tensor, axis: number, d: number, k: number): tf.Tensor => {
  if (d === 1) return g
  const s = g.shape
  const paddings = s.map((_, i): [number, number] => (i === axis ? [0, k * d - (s[axis] as number)] : [0, 0]))
  const split = tf.reshape(tf.pad(g, paddings), [...s.slice(0, axis), k, d, ...s.slice(axis + 1)])
  const size = split.shape.map((n, i) => (i === axis + 1 ? 1 : n))
  const picked = tf.slice(
    split,
    split.shape.map(() => 0),
    size,
  )
  return tf.reshape(
    picked,
    s.map((n, i) => (i === axis ? k : n)),
  )
}

const dilateFilter = (f: tf.Tensor, [dh, dw]: Pair): tf.Tensor4D =>
  as4(dilateAxis(dilateAxis(f, 0, dh), 1, dw))
const undilateFilter = (g: tf.Tensor, [dh, dw]: Pair, shape: readonly number[]): tf.Tensor4D =>
  as4(undilateAxis(undilateAxis(g, 0, dh, shape[0] as number), 1, dw, shape[1] as number))

/**
 * Pad `t` (NHWC) with `top`/`left` rows/cols of `value`, then pad or crop at
 * the bottom/right so the spatial size is exactly `h` x `w`.
 */
const frame = (
  t: tf.Tensor4D,
  top: number,
  left: number,
  h: number,
  w: number,
  value: number,
): tf.Tensor4D => {
  const [n, ih, iw, c] = t.shape
  const bottom = h - ih - top
  const right = w - iw - left
  let r = t
  if (top > 0 || left > 0 || bottom > 0 || right > 0) {
    r = tf.pad(
      r,
      [
        [0, 0],
        [top, Math.max(0, bottom)],
        [left, Math.max(0, right)],
        [0, 0],
      ],
      value,
    )
  }
  if (bottom < 0 || right < 0) r = tf.slice(r, [0, 0, 0, 0], [n, h, w, c])
  return r
}

/** Window tap (i, j) of every output position: a strided view built from slice/reshape only. */
const tap = (
  p: tf.Tensor4D,
  i: number,
  j: number,
  oh: number,
  ow: number,
  sh: number,
  sw: number,
): tf.Tensor4D => {
  const [n, , , c] = p.shape
  const block = tf.slice(p, [0, i, j, 0], [n, sh * oh, sw * ow, c])
  const picked = tf.slice(tf.reshape(block, [n, oh, sh, ow, sw, c]), [0, 0, 0, 0, 0, 0], [n, oh, 1, ow, 1, c])
  return tf.reshape(picked, [n, oh, ow, c])
}

const poolInfo = (
  xShape: readonly number[],
  filterSize: unknown,
  strides: unknown,
  pad: Pad,
  rounding: Rounding,
) =>
  tf.backend_util.computePool2DInfo(
    xShape as [number, number, number, number],
    filterSize as Pair | number,
    strides as Pair | number,
    1,
    pad,
    rounding,
  )

/**
 * Directional derivative of maxPool at x in direction t: for every window,
 * the value of t at the window's argmax (first maximum in row-major order,
 * the tie-break of the cpu kernel). This is the adjoint of MaxPoolGrad with
 * respect to dy, and is linear in t through differentiable ops.
 */
const maxPoolJvp = (x: tf.Tensor4D, t: tf.Tensor4D, info: tf.backend_util.Conv2DInfo): tf.Tensor4D => {
  const {
    outHeight: oh,
    outWidth: ow,
    strideHeight: sh,
    strideWidth: sw,
    filterHeight: kh,
    filterWidth: kw,
  } = info
  const { top, left } = info.padInfo
  const h = kh - 1 + sh * oh
  const w = kw - 1 + sw * ow
  const xp = frame(x, top, left, h, w, Number.NEGATIVE_INFINITY)
  const tp = frame(t, top, left, h, w, 0)
  let best = tap(xp, 0, 0, oh, ow, sh, sw)
  let out = tap(tp, 0, 0, oh, ow, sh, sw)
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      if (i === 0 && j === 0) continue
      const cand = tap(xp, i, j, oh, ow, sh, sw)
      const take = tf.greater(cand, best)
      best = tf.where(take, cand, best)
      out = tf.where(take, tap(tp, i, j, oh, ow, sh, sw), out)
    }
  }
  return out
}

/**
 * Number of in-bounds pixels of each pooling window, as a [1, oh, ow, 1]
 * constant scaled by window size: (kh*kw)/count.
 */
const avgPoolCorrection = (info: tf.backend_util.Conv2DInfo): tf.Tensor4D | null => {
  const {
    outHeight: oh,
    outWidth: ow,
    strideHeight: sh,
    strideWidth: sw,
    filterHeight: kh,
    filterWidth: kw,
  } = info
  const { inHeight: ih, inWidth: iw } = info
  const { top, left } = info.padInfo
  const counts = (o: number, s: number, k: number, pad: number, size: number): number[] =>
    Array.from({ length: o }, (_, r) => {
      const lo = r * s - pad
      return Math.max(0, Math.min(size, lo + k) - Math.max(0, lo))
    })
  const ch = counts(oh, sh, kh, top, ih)
  const cw = counts(ow, sw, kw, left, iw)
  if (ch.every((c) => c === kh) && cw.every((c) => c === kw)) return null
  const vals = new Float32Array(oh * ow)
  for (let r = 0; r < oh; r++) {
    for (let c = 0; c < ow; c++) {
      const n = (ch[r] as number) * (cw[c] as number)
      vals[r * ow + c] = n > 0 ? (kh * kw) / n : 0
    }
  }
  return tf.tensor4d(vals, [1, oh, ow, 1])
}

// --------------------------------------------------------------- op wrappers

const conv2DBackpropInput = (
  xShape: readonly number[],
  dy: tf.Tensor,
  filter: tf.Tensor,
  strides: unknown,
  pad: Pad,
  dataFormat: unknown,
  dimRoundingMode: Rounding,
): tf.Tensor4D =>
  run(
    tf.Conv2DBackpropInput,
    { dy, filter },
    { strides, pad, dataFormat, dimRoundingMode, inputShape: xShape },
  )

const conv2DBackpropFilter = (
  x: tf.Tensor,
  dy: tf.Tensor,
  filterShape: readonly number[],
  strides: unknown,
  pad: Pad,
  dataFormat: unknown,
  dimRoundingMode: Rounding,
): tf.Tensor4D =>
  run(tf.Conv2DBackpropFilter, { x, dy }, { strides, pad, dataFormat, dimRoundingMode, filterShape })

const conv2d = (
  x: tf.Tensor,
  filter: tf.Tensor,
  strides: unknown,
  pad: Pad,
  dataFormat: unknown,
  dimRoundingMode: Rounding,
) =>
  run<tf.Tensor4D>(tf.Conv2D, { x, filter }, { strides, pad, dataFormat, dilations: [1, 1], dimRoundingMode })

const depthwiseBackpropInput = (
  xShape: readonly number[],
  dy: tf.Tensor,
  filter: tf.Tensor,
  a: DwAttrs,
): tf.Tensor4D => run(tf.DepthwiseConv2dNativeBackpropInput, { dy, filter }, { ...a, inputShape: xShape })

const depthwiseBackpropFilter = (
  x: tf.Tensor,
  dy: tf.Tensor,
  filterShape: readonly number[],
  a: DwAttrs,
): tf.Tensor4D => run(tf.DepthwiseConv2dNativeBackpropFilter, { x, dy }, { ...a, filterShape })

const depthwise = (x: tf.Tensor, filter: tf.Tensor, a: DwAttrs): tf.Tensor4D =>
  run(tf.DepthwiseConv2dNative, { x, filter }, { ...a, dataFormat: "NHWC" })

interface DwAttrs {
  strides: unknown
  pad: Pad
  dimRoundingMode: Rounding
  dilations: Pair
}

const dwAttrs = (attrs: tf.NamedAttrMap, dilations: Pair = [1, 1]): DwAttrs => ({
  strides: attrs.strides,
  pad: attr<Pad>(attrs, "pad"),
  dimRoundingMode: attr<Rounding>(attrs, "dimRoundingMode"),
  dilations,
})

/** Sum `g` down to `shape` (undo broadcasting) and reshape. */
const unbroadcast = (g: tf.Tensor, shape: number[], outShape: number[]): tf.Tensor => {
  const axes = tf.backend_util.getReductionAxes(shape, outShape)
  return tf.reshape(axes.length > 0 ? tf.sum(g, axes) : g, shape)
}

/** log-softmax from primitive ops; twice differentiable, unlike tf.logSoftmax (customGrad). */
export const logSoftmax = (logits: tf.Tensor, axis = -1): tf.Tensor =>
  tf.sub(logits, tf.logSumExp(logits, axis, true))

// ------------------------------------------------------------ grad configs

const single = (dy: tf.Tensor | tf.Tensor[]): tf.Tensor => (Array.isArray(dy) ? (dy[0] as tf.Tensor) : dy)
const s0 = (saved: tf.Tensor[], i = 0): tf.Tensor => saved[i] as tf.Tensor

const configs: tf.GradConfig[] = [
  ...adamGradients,
  ...batchNormGradients,
  ...reluGradients,
  // Conv2D: stock gradient asserts dilations == 1. A dilated conv equals a
  // conv with an explicitly dilated (zero-stuffed) filter and the same
  // padding info, so backprop through that; dimRoundingMode is passed too.
  {
    kernelName: tf.Conv2D,
    inputsToSave: ["x", "filter"],
    gradFunc: (dy, saved, attrs) => {
      const x = s0(saved, 0)
      const filter = s0(saved, 1)
      const d = pair(attr<number | Pair>(attrs, "dilations"))
      const { strides, dataFormat } = attrs
      const pad = attr<Pad>(attrs, "pad")
      const rounding = attr<Rounding>(attrs, "dimRoundingMode")
      return {
        x: () =>
          conv2DBackpropInput(
            x.shape,
            single(dy),
            dilateFilter(filter, d),
            strides,
            pad,
            dataFormat,
            rounding,
          ),
        filter: () => {
          const fd = dilateFilter(filter, d)
          const g = conv2DBackpropFilter(x, single(dy), fd.shape, strides, pad, dataFormat, rounding)
          return undilateFilter(g, d, filter.shape)
        },
      }
    },
  },
  // Conv2DBackpropFilter(x, dy) = dW is bilinear in (x, dy) with
  // <dW, G> = <dy, conv2d(x, G)>, so its gradients are conv2d / backprop-input.
  // Missing in tfjs: first gradient of a conv layer's filter gradient failed.
  {
    kernelName: tf.Conv2DBackpropFilter,
    inputsToSave: ["x", "dy"],
    gradFunc: (ddw, saved, attrs) => {
      const x = s0(saved, 0)
      const dy = s0(saved, 1)
      const { strides, dataFormat } = attrs
      const pad = attr<Pad>(attrs, "pad")
      const rounding = attr<Rounding>(attrs, "dimRoundingMode")
      return {
        x: () => conv2DBackpropInput(x.shape, dy, single(ddw), strides, pad, dataFormat, rounding),
        dy: () => conv2d(x, single(ddw), strides, pad, dataFormat, rounding),
      }
    },
  },
  // DepthwiseConv2dNative: stock gradient asserts dilations == 1, and the
  // cpu backprop kernels ignore dilations; use an explicitly dilated filter.
  {
    kernelName: tf.DepthwiseConv2dNative,
    inputsToSave: ["x", "filter"],
    gradFunc: (dy, saved, attrs) => {
      const x = s0(saved, 0)
      const filter = s0(saved, 1)
      const d = pair(attr<number | Pair | undefined>(attrs, "dilations"))
      const a = dwAttrs(attrs)
      return {
        x: () => depthwiseBackpropInput(x.shape, single(dy), dilateFilter(filter, d), a),
        filter: () => {
          const fd = dilateFilter(filter, d)
          return undilateFilter(depthwiseBackpropFilter(x, single(dy), fd.shape, a), d, filter.shape)
        },
      }
    },
  },
  // Missing: the x-gradient of a depthwise conv (grouped conv) was not differentiable.
  {
    kernelName: tf.DepthwiseConv2dNativeBackpropInput,
    inputsToSave: ["dy", "filter"],
    gradFunc: (ddx, saved, attrs) => {
      const dy = s0(saved, 0)
      const filter = s0(saved, 1)
      const a = dwAttrs(attrs, pair(attr<number | Pair | undefined>(attrs, "dilations")))
      return {
        dy: () => depthwise(single(ddx), filter, a),
        filter: () => depthwiseBackpropFilter(single(ddx), dy, filter.shape, a),
      }
    },
  },
  // Missing: the filter-gradient of a depthwise conv was not differentiable.
  {
    kernelName: tf.DepthwiseConv2dNativeBackpropFilter,
    inputsToSave: ["x", "dy"],
    gradFunc: (ddw, saved, attrs) => {
      const x = s0(saved, 0)
      const dy = s0(saved, 1)
      const a = dwAttrs(attrs, pair(attr<number | Pair | undefined>(attrs, "dilations")))
      return {
        x: () => depthwiseBackpropInput(x.shape, dy, single(ddw), a),
        dy: () => depthwise(x, single(ddw), a),
      }
    },
  },
  // MaxPool: the wasm MaxPoolGrad kernel starts its running max at
  // numeric_limits<float>::min() (the smallest *positive* float), so windows
  // whose maximum is <= 0 get no gradient at all. On wasm, shift the pooled
  // values to be >= 1 first (argmax is invariant under a shift; ties can only
  // appear where values are within float32 rounding of each other).
  {
    kernelName: tf.MaxPool,
    inputsToSave: ["x"],
    outputsToSave: [true],
    gradFunc: (dy, saved, attrs) => {
      const x = s0(saved, 0)
      const y = s0(saved, 1)
      const { filterSize, strides, pad, dimRoundingMode } = attrs
      return {
        x: () => {
          let input = x
          let output = y
          if (tf.getBackend() === "wasm") {
            // shift by the smallest finite window maximum (inputs may be padded with -Infinity)
            const shift = tf.sub(1, tf.min(tf.where(tf.isFinite(y), y, tf.zerosLike(y))))
            input = tf.add(x, shift)
            output = tf.add(y, shift)
          }
          return run(
            tf.MaxPoolGrad,
            { dy: single(dy), input, output },
            { filterSize, strides, pad, dimRoundingMode },
          )
        },
      }
    },
  },
  // Missing: MaxPoolGrad is linear in dy (scatter to each window's argmax);
  // its adjoint gathers at the argmax (maxPoolJvp). Piecewise constant in
  // the pooled input/output, so those gradients are zero.
  {
    kernelName: tf.MaxPoolGrad,
    inputsToSave: ["input"],
    gradFunc: (ddx, saved, attrs) => {
      const x = as4(s0(saved))
      const info = poolInfo(
        x.shape,
        attrs.filterSize,
        attrs.strides,
        attr<Pad>(attrs, "pad"),
        attr<Rounding>(attrs, "dimRoundingMode"),
      )
      return {
        dy: () => maxPoolJvp(x, as4(single(ddx)), info),
        input: () => zerosOf(x),
        output: () => tf.zeros(info.outShape, "float32"),
      }
    },
  },
  // AvgPool: the forward kernels average over in-bounds pixels only, but the
  // stock gradient (AvgPoolGrad) divides by the full window size: wrong
  // whenever a window overlaps padding. Rescale dy by window/count first.
  {
    kernelName: tf.AvgPool,
    inputsToSave: ["x"],
    gradFunc: (dy, saved, attrs) => {
      const x = as4(s0(saved))
      const { filterSize, strides } = attrs
      const pad = attr<Pad>(attrs, "pad")
      return {
        x: () => {
          const info = poolInfo(x.shape, filterSize, strides, pad, attr<Rounding>(attrs, "dimRoundingMode"))
          const scale = avgPoolCorrection(info)
          const g = scale === null ? single(dy) : tf.mul(single(dy), scale)
          return run(tf.AvgPoolGrad, { dy: g, input: x }, { filterSize, strides, pad })
        },
      }
    },
  },
  // Missing: AvgPoolGrad(dy) = A^T dy / (kh*kw) with A the 0/1 window
  // membership; its adjoint is a zero-padded 'valid' average pool.
  {
    kernelName: tf.AvgPoolGrad,
    inputsToSave: ["input"],
    gradFunc: (ddx, saved, attrs) => {
      const x = as4(s0(saved))
      const info = poolInfo(x.shape, attrs.filterSize, attrs.strides, attr<Pad>(attrs, "pad"), undefined)
      const {
        outHeight: oh,
        outWidth: ow,
        strideHeight: sh,
        strideWidth: sw,
        filterHeight: kh,
        filterWidth: kw,
      } = info
      return {
        dy: () => {
          const p = frame(
            as4(single(ddx)),
            info.padInfo.top,
            info.padInfo.left,
            (oh - 1) * sh + kh,
            (ow - 1) * sw + kw,
            0,
          )
          return tf.avgPool(p, [kh, kw], [sh, sw], "valid")
        },
        input: () => zerosOf(x),
      }
    },
  },
  // Missing: StridedSlice has no gradient in tfjs at all (even first order);
  // the interpreter uses it to subsample convs with both stride and dilation.
  // Its adjoint scatters dy back: zero-stuff by the stride, pad by begin.
  {
    kernelName: tf.StridedSlice,
    inputsToSave: ["x"],
    gradFunc: (dy, saved, attrs) => {
      const x = s0(saved)
      return {
        x: () => {
          const a = attrs as unknown as tf.StridedSliceAttrs
          const info = tf.slice_util.sliceInfo(
            x.shape,
            a.begin,
            a.end,
            a.strides,
            a.beginMask,
            a.endMask,
            a.ellipsisMask,
            a.newAxisMask,
            a.shrinkAxisMask,
          )
          const { begin, end, strides } = info
          if (strides.some((st) => st <= 0))
            throw new Error("stridedSlice gradient: only positive strides are supported")
          const sizes = x.shape.map((_, i) =>
            Math.max(0, Math.ceil(((end[i] as number) - (begin[i] as number)) / (strides[i] as number))),
          )
          if (sizes.some((n) => n === 0)) return zerosOf(x)
          let g = tf.reshape(single(dy), sizes)
          const paddings = x.shape.map((d, i): [number, number] => {
            const st = strides[i] as number
            g = dilateAxis(g, i, st)
            const span = ((sizes[i] as number) - 1) * st + 1
            return [begin[i] as number, d - (begin[i] as number) - span]
          })
          return tf.pad(g, paddings)
        },
      }
    },
  },
  // Missing: depthToSpace is a permutation; its adjoint is spaceToDepth via reshape/transpose.
  {
    kernelName: tf.DepthToSpace,
    gradFunc: (dy, _saved, attrs) => {
      const bs = attr<number>(attrs, "blockSize")
      if (attr<string>(attrs, "dataFormat") === "NCHW")
        throw new Error("depthToSpace gradient: only NHWC is supported")
      const g = single(dy)
      const [n, h, w, c] = g.shape as [number, number, number, number]
      return {
        x: () =>
          tf.reshape(tf.transpose(tf.reshape(g, [n, h / bs, bs, w / bs, bs, c]), [0, 1, 3, 2, 4, 5]), [
            n,
            h / bs,
            w / bs,
            bs * bs * c,
          ]),
      }
    },
  },
  // |x|' = sign x, 0 at 0 (stock tfjs: −1 there).
  {
    kernelName: tf.Abs,
    inputsToSave: ["x"],
    gradFunc: (dy, saved) => ({ x: () => tf.mul(single(dy), tf.sign(tf.cast(s0(saved), "float32"))) }),
  },
  // Exp/Sigmoid/Tanh/Softmax/LogSoftmax: stock gradients read the saved
  // output, which a second differentiation cannot trace back to the input
  // (tfjs issue 3252). Recompute from the input.
  {
    kernelName: tf.Exp,
    inputsToSave: ["x"],
    gradFunc: (dy, saved) => ({ x: () => tf.mul(single(dy), tf.exp(s0(saved))) }),
  },
  {
    kernelName: tf.Sigmoid,
    inputsToSave: ["x"],
    gradFunc: (dy, saved) => ({
      x: () => {
        const y = tf.sigmoid(s0(saved))
        return tf.mul(single(dy), tf.mul(y, tf.sub(1, y)))
      },
    }),
  },
  {
    kernelName: tf.Tanh,
    inputsToSave: ["x"],
    gradFunc: (dy, saved) => ({
      x: () => tf.mul(single(dy), tf.sub(1, tf.square(tf.tanh(s0(saved))))),
    }),
  },
  {
    kernelName: tf.Softmax,
    inputsToSave: ["logits"],
    gradFunc: (dy, saved, attrs) => ({
      logits: () => {
        const dim = attr<number>(attrs, "dim")
        const y = tf.softmax(s0(saved), dim)
        const dyy = tf.mul(single(dy), y)
        return tf.sub(dyy, tf.mul(tf.sum(dyy, [dim], true), y))
      },
    }),
  },
  {
    kernelName: tf.LogSoftmax,
    inputsToSave: ["logits"],
    gradFunc: (dy, saved, attrs) => ({
      logits: () => {
        const axis = attr<number>(attrs, "axis")
        const sm = tf.exp(logSoftmax(s0(saved), axis))
        const g = single(dy)
        return tf.sub(g, tf.mul(tf.sum(g, axis, true), sm))
      },
    }),
  },
  // Pow: the exponent gradient reads the saved output; recompute a^b.
  {
    kernelName: tf.Pow,
    inputsToSave: ["a", "b"],
    gradFunc: (dy, saved) => {
      const a = s0(saved, 0)
      const b = s0(saved, 1)
      const g = single(dy)
      const outShape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape)
      return {
        a: () => {
          const bf = tf.cast(b, "float32")
          return unbroadcast(tf.mul(g, tf.mul(bf, tf.pow(a, tf.sub(bf, 1)))), a.shape, outShape)
        },
        b: () => {
          const logA = tf.where(tf.greater(a, 0), tf.log(a), tf.zerosLike(a))
          return unbroadcast(tf.mul(g, tf.mul(tf.pow(a, b), logA)), b.shape, outShape)
        },
      }
    },
  },
  // Boolean kernels: masks inside gradients (maximum, minimum, clipByValue,
  // relu6, max/min reductions, pow, maxPoolJvp). Zero gradient almost everywhere.
  ...[
    tf.Less,
    tf.LessEqual,
    tf.Greater,
    tf.Equal,
    tf.NotEqual,
    tf.LogicalAnd,
    tf.LogicalOr,
    tf.LogicalXor,
  ].map(
    (kernelName): tf.GradConfig => ({
      kernelName,
      inputsToSave: ["a", "b"],
      gradFunc: (_dy, saved) => ({ a: () => zerosOf(s0(saved, 0)), b: () => zerosOf(s0(saved, 1)) }),
    }),
  ),
  {
    kernelName: tf.LogicalNot,
    inputsToSave: ["x"],
    gradFunc: (_dy, saved) => ({ x: () => zerosOf(s0(saved)) }),
  },
]

/**
 * Register gradient functions that make second-order differentiation exact
 * through conv nets. Must run before the forward pass whose gradient is taken
 * (saved tensors are chosen at forward time). Idempotent; if stock gradients
 * were (re-)registered over ours since the last call (e.g. by importing
 * tfjs-core's register_all_gradients afterwards), calling it again restores ours.
 */
export const registerHigherOrderGradients = (): void => {
  for (const c of configs) if (tf.getGradient(c.kernelName) !== c) tf.registerGradient(c)
}

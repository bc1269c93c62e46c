/**
 * Convolution kernels for the `cmkg-cpu` backend: oneDNN (`dnnl.ts`) for dense
 * convolutions when its addon is built, else onnxruntime.
 *
 * tfjs is NHWC with HWIO filters; ONNX Conv is NCHW with OIHW filters. Each
 * model transposes inside the graph (onnxruntime folds those into its blocked
 * NCHWc layout where it can). Filter gradients are computed natively in NHWC as
 * one GEMM per filter tap over strided slices of the padded input.
 */
import type { backend_util, TensorInfo } from "@tensorflow/tfjs-core"
import * as Dnnl from "./dnnl.ts"
import { type AttrValue, int, ints, type OnnxGraph, type OnnxNode } from "./onnx.ts"
import { session } from "./ort.ts"

export type Conv2DInfo = backend_util.Conv2DInfo

const f32 = (name: string, shape: ReadonlyArray<number>) => ({ name, dtype: "float32" as const, shape })
const transpose = (input: string, output: string, perm: ReadonlyArray<number>): OnnxNode => ({
  op: "Transpose",
  inputs: [input],
  outputs: [output],
  attrs: { perm: ints(perm) },
})

const convAttrs = (c: Conv2DInfo, group: number): Record<string, AttrValue> => ({
  kernel_shape: ints([c.filterHeight, c.filterWidth]),
  strides: ints([c.strideHeight, c.strideWidth]),
  dilations: ints([c.dilationHeight, c.dilationWidth]),
  pads: ints([c.padInfo.top, c.padInfo.left, c.padInfo.bottom, c.padInfo.right]),
  group: int(group),
})

/** A cache key for a convolution's onnxruntime session: the op, its whole geometry, and `extra` attributes. */
const key = (op: string, c: Conv2DInfo, extra = ""): string => [op, ...Dnnl.geometry(c), extra].join(",")

/**
 * True when the padding is non-negative (onnxruntime rejects negative pads) and
 * tfjs's output size is the one the padding implies. (tfjs computes the output
 * of a numeric padding from the filter *height* for both axes, so a non-square
 * filter with numeric padding gets an inconsistent width: the cpu kernel then
 * reads past the padding. That case falls back to the cpu kernel.)
 */
export const supported = (c: Conv2DInfo): boolean =>
  c.dataFormat === "channelsLast" &&
  c.outHeight ===
    Math.floor((c.inHeight + c.padInfo.top + c.padInfo.bottom - c.effectiveFilterHeight) / c.strideHeight) +
      1 &&
  c.outWidth ===
    Math.floor((c.inWidth + c.padInfo.left + c.padInfo.right - c.effectiveFilterWidth) / c.strideWidth) + 1 &&
  c.padInfo.top >= 0 &&
  c.padInfo.bottom >= 0 &&
  c.padInfo.left >= 0 &&
  c.padInfo.right >= 0

export type Epilogue = "linear" | "relu" | "relu6" | "sigmoid" | "elu" | "leakyrelu"

/**
 * y = act(conv(x, w) + bias). `depthwise`: tfjs depthwise filter
 * [fh, fw, inC, mult], i.e. groups = inC with OIHW weight [inC*mult, 1, fh, fw].
 */
export const convForward = (
  c: Conv2DInfo,
  x: Float32Array,
  w: Float32Array,
  opts: {
    readonly depthwise?: boolean
    readonly bias?: Float32Array
    readonly act?: Epilogue
    readonly alpha?: number
  } = {},
): Float32Array => {
  const depthwise = opts.depthwise === true
  const act = opts.act ?? "linear"
  const hasBias = opts.bias !== undefined
  if (!depthwise && !hasBias && act === "linear") {
    const y = Dnnl.convForward(c, x, w)
    if (y !== undefined) return y
  }
  const group = depthwise ? c.inChannels : 1
  const s = session(key("conv", c, `${depthwise}:${hasBias}:${act}:${opts.alpha ?? ""}`), (): OnnxGraph => {
    const fShape = depthwise
      ? [c.filterHeight, c.filterWidth, c.inChannels, c.outChannels / c.inChannels]
      : [c.filterHeight, c.filterWidth, c.inChannels, c.outChannels]
    const nodes: Array<OnnxNode> = [transpose("x", "xt", [0, 3, 1, 2])]
    if (depthwise) {
      // [fh, fw, C, m] -> [C, m, fh, fw] -> [C*m, 1, fh, fw]
      nodes.push(transpose("w", "wt0", [2, 3, 0, 1]))
      nodes.push({ op: "Reshape", inputs: ["wt0", "wshape"], outputs: ["wt"] })
    } else {
      nodes.push(transpose("w", "wt", [3, 2, 0, 1]))
    }
    nodes.push({
      op: "Conv",
      inputs: hasBias ? ["xt", "wt", "b"] : ["xt", "wt"],
      outputs: ["yt"],
      attrs: convAttrs(c, group),
    })
    let last = "yt"
    const post = (
      op: string,
      attrs?: Record<string, AttrValue>,
      extraInputs: ReadonlyArray<string> = [],
    ): void => {
      nodes.push({
        op,
        inputs: [last, ...extraInputs],
        outputs: [`${last}_${op}`],
        ...(attrs === undefined ? {} : { attrs }),
      })
      last = `${last}_${op}`
    }
    switch (act) {
      case "linear":
        break
      case "relu":
        post("Relu")
        break
      case "relu6":
        post("Clip", undefined, ["zero", "six"])
        break
      case "sigmoid":
        post("Sigmoid")
        break
      case "elu":
        post("Elu")
        break
      case "leakyrelu":
        post("LeakyRelu", { alpha: { kind: "float", value: opts.alpha ?? 0.2 } })
        break
    }
    nodes.push(transpose(last, "y", [0, 2, 3, 1]))
    return {
      nodes,
      inputs: [
        f32("x", [c.batchSize, c.inHeight, c.inWidth, c.inChannels]),
        f32("w", fShape),
        ...(hasBias ? [f32("b", [c.outChannels])] : []),
      ],
      outputs: [f32("y", [c.batchSize, c.outHeight, c.outWidth, c.outChannels])],
      initializers: [
        {
          name: "wshape",
          dtype: "int64",
          shape: [4],
          values: [c.outChannels, 1, c.filterHeight, c.filterWidth],
        },
        { name: "zero", dtype: "float32", shape: [], values: [0] },
        { name: "six", dtype: "float32", shape: [], values: [6] },
      ],
    }
  })
  return s.run(hasBias ? [x, w, opts.bias as Float32Array] : [x, w])[0] as Float32Array
}

/** dx = conv2d input gradient (ConvTranspose with the forward conv's OIHW weight). */
export const convBackpropInput = (
  c: Conv2DInfo,
  dy: Float32Array,
  w: Float32Array,
  depthwise = false,
): Float32Array => {
  if (!depthwise) {
    const dx = Dnnl.convBackwardData(c, dy, w)
    if (dx !== undefined) return dx
  }
  const group = depthwise ? c.inChannels : 1
  const s = session(key("dx", c, String(depthwise)), (): OnnxGraph => {
    const fShape = depthwise
      ? [c.filterHeight, c.filterWidth, c.inChannels, c.outChannels / c.inChannels]
      : [c.filterHeight, c.filterWidth, c.inChannels, c.outChannels]
    // ConvTranspose weight: [C_in_of_convT = outChannels, inChannels/group, fh, fw]
    const nodes: Array<OnnxNode> = [transpose("dy", "dyt", [0, 3, 1, 2])]
    if (depthwise) {
      nodes.push(transpose("w", "wt0", [2, 3, 0, 1]))
      nodes.push({ op: "Reshape", inputs: ["wt0", "wshape"], outputs: ["wt"] })
    } else {
      nodes.push(transpose("w", "wt", [3, 2, 0, 1]))
    }
    const eh = c.effectiveFilterHeight
    const ew = c.effectiveFilterWidth
    const outPadH = c.inHeight - ((c.outHeight - 1) * c.strideHeight + eh - c.padInfo.top - c.padInfo.bottom)
    const outPadW = c.inWidth - ((c.outWidth - 1) * c.strideWidth + ew - c.padInfo.left - c.padInfo.right)
    // When the forward conv dropped trailing rows (floor), the gradient there is zero:
    // output_padding adds them (onnxruntime requires output_padding < stride or dilation).
    nodes.push({
      op: "ConvTranspose",
      inputs: ["dyt", "wt"],
      outputs: ["dxt"],
      attrs: { ...convAttrs(c, group), output_padding: ints([outPadH, outPadW]) },
    })
    nodes.push(transpose("dxt", "dx", [0, 2, 3, 1]))
    return {
      nodes,
      inputs: [f32("dy", [c.batchSize, c.outHeight, c.outWidth, c.outChannels]), f32("w", fShape)],
      outputs: [f32("dx", [c.batchSize, c.inHeight, c.inWidth, c.inChannels])],
      initializers: [
        {
          name: "wshape",
          dtype: "int64",
          shape: [4],
          values: [c.outChannels, 1, c.filterHeight, c.filterWidth],
        },
      ],
    }
  })
  return s.run([dy, w])[0] as Float32Array
}

/** Whether ConvTranspose can express the input gradient (output_padding must be < max(stride, dilation)). */
export const backpropInputSupported = (c: Conv2DInfo): boolean => {
  if (!supported(c)) return false
  const outPadH =
    c.inHeight -
    ((c.outHeight - 1) * c.strideHeight + c.effectiveFilterHeight - c.padInfo.top - c.padInfo.bottom)
  const outPadW =
    c.inWidth - ((c.outWidth - 1) * c.strideWidth + c.effectiveFilterWidth - c.padInfo.left - c.padInfo.right)
  return (
    outPadH >= 0 &&
    outPadW >= 0 &&
    outPadH < Math.max(c.strideHeight, c.dilationHeight) + (outPadH === 0 ? 1 : 0) &&
    outPadW < Math.max(c.strideWidth, c.dilationWidth) + (outPadW === 0 ? 1 : 0)
  )
}

/**
 * dW[i, j, ci, co] = Σ_{n,p,q} xpad[n, p*sh + i*dh, q*sw + j*dw, ci] · dy[n, p, q, co]:
 * for each tap one Gemm (transA) of a strided slice of the padded NHWC input,
 * reshaped to [N*oh*ow, ci], with dy reshaped to [N*oh*ow, co]. No transposes.
 * Depthwise: the same per-tap products, but elementwise per channel, then summed.
 */
export const convBackpropFilter = (
  c: Conv2DInfo,
  x: Float32Array,
  dy: Float32Array,
  depthwise = false,
): Float32Array => {
  if (!depthwise) {
    const dw = Dnnl.convBackwardWeights(c, x, dy)
    if (dw !== undefined) return dw
  }
  const s = session(key("dw", c, String(depthwise)), (): OnnxGraph => {
    const {
      batchSize: n,
      inHeight: h,
      inWidth: w,
      inChannels: ci,
      outHeight: oh,
      outWidth: ow,
      outChannels: co,
    } = c
    const { top, bottom, left, right } = c.padInfo
    const m = n * oh * ow
    const mult = co / ci
    const nodes: Array<OnnxNode> = []
    const initializers: Array<{
      name: string
      dtype: "int64" | "float32"
      shape: ReadonlyArray<number>
      values: ReadonlyArray<number>
    }> = [
      { name: "pads", dtype: "int64", shape: [8], values: [0, top, left, 0, 0, bottom, right, 0] },
      { name: "xshape", dtype: "int64", shape: [2], values: [m, ci] },
      {
        name: "dyshape",
        dtype: "int64",
        shape: depthwise ? [4] : [2],
        values: depthwise ? [m, ci, mult, 1] : [m, co],
      },
      { name: "axes", dtype: "int64", shape: [2], values: [1, 2] },
      { name: "steps", dtype: "int64", shape: [2], values: [c.strideHeight, c.strideWidth] },
      {
        name: "oshape",
        dtype: "int64",
        shape: [4],
        values: [c.filterHeight, c.filterWidth, ci, depthwise ? mult : co],
      },
      { name: "zero", dtype: "int64", shape: [1], values: [0] },
    ]
    const padded = top + bottom + left + right > 0
    if (padded) nodes.push({ op: "Pad", inputs: ["x", "pads"], outputs: ["xp"] })
    const src = padded ? "xp" : "x"
    nodes.push({ op: "Reshape", inputs: ["dy", "dyshape"], outputs: ["dy2"] })
    const taps: Array<string> = []
    for (let i = 0; i < c.filterHeight; i++) {
      for (let j = 0; j < c.filterWidth; j++) {
        const t = `${i}_${j}`
        const y0 = i * c.dilationHeight
        const x0 = j * c.dilationWidth
        initializers.push({ name: `st${t}`, dtype: "int64", shape: [2], values: [y0, x0] })
        initializers.push({
          name: `en${t}`,
          dtype: "int64",
          shape: [2],
          values: [y0 + (oh - 1) * c.strideHeight + 1, x0 + (ow - 1) * c.strideWidth + 1],
        })
        nodes.push({ op: "Slice", inputs: [src, `st${t}`, `en${t}`, "axes", "steps"], outputs: [`s${t}`] })
        if (depthwise) {
          // [m, ci, 1, 1] * [m, ci, mult, 1] summed over m -> [ci, mult]
          initializers.push({ name: `xs4${t}`, dtype: "int64", shape: [4], values: [m, ci, 1, 1] })
          nodes.push({ op: "Reshape", inputs: [`s${t}`, `xs4${t}`], outputs: [`r${t}`] })
          nodes.push({ op: "Mul", inputs: [`r${t}`, "dy2"], outputs: [`p${t}`] })
          nodes.push({
            op: "ReduceSum",
            inputs: [`p${t}`, "zero"],
            outputs: [`g${t}`],
            attrs: { keepdims: int(0) },
          })
        } else {
          nodes.push({ op: "Reshape", inputs: [`s${t}`, "xshape"], outputs: [`r${t}`] })
          nodes.push({ op: "Gemm", inputs: [`r${t}`, "dy2"], outputs: [`g${t}`], attrs: { transA: int(1) } })
        }
        taps.push(`g${t}`)
      }
    }
    nodes.push({ op: "Concat", inputs: taps, outputs: ["cat"], attrs: { axis: int(0) } })
    nodes.push({ op: "Reshape", inputs: ["cat", "oshape"], outputs: ["dw"] })
    return {
      nodes,
      inputs: [f32("x", [n, h, w, ci]), f32("dy", [n, oh, ow, co])],
      outputs: [f32("dw", [c.filterHeight, c.filterWidth, ci, depthwise ? mult : co])],
      initializers,
    }
  })
  return s.run([x, dy])[0] as Float32Array
}

export type { TensorInfo }

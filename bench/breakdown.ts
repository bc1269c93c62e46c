/**
 * Where a training step's time goes, by kernel class, on both sides of the
 * bench: cmkg's tfjs kernels (timed by bench/kernelTimer.ts) and PyTorch's
 * top-level aten ops (timed by torch.profiler in torch_ref.py) are mapped to
 * the same classes, so that `npm run bench -- --profile` can print them side
 * by side with a ratio per class.
 *
 * A kernel's class comes from its name, except inside the gradient of a
 * convolution's backward kernel (the second-order terms a meta-gradient
 * differentiates through), which is "conv second-order" whatever it runs,
 * and inside the gradient of a batch-norm kernel, which is "batch norm" on
 * both sides (PyTorch's batch-norm backward is one op; tfjs's is a kernel
 * plus reshapes and sums).
 *
 * PyTorch computes a convolution's data and filter gradients in one op
 * (`aten::convolution_backward`), so the table compares their sum; cmkg's
 * split is shown beneath it.
 *
 * @module
 */

export const CLASSES = [
  "conv forward",
  "conv backward-data",
  "conv backward-filter",
  /** PyTorch's `convolution_backward`: data and filter in one op. */
  "conv backward (data + filter)",
  "conv second-order",
  "batch norm",
  "elementwise",
  "reduction",
  "matmul",
  "pooling",
  "layout / copy",
  "other kernels",
] as const
export type KernelClass = (typeof CLASSES)[number]

/** Time and count of one kernel (cmkg) or top-level op (PyTorch) in one gradient context, over the profiled steps. */
export interface KernelTime {
  /** tfjs kernel name (`Conv2D`) or aten op (`aten::convolution`). */
  readonly kernel: string
  /** The kernel whose gradient was running (tfjs) or the autograd node evaluating (PyTorch); "" outside. */
  readonly context: string
  readonly ms: number
  readonly calls: number
}

/** One side's profile: wall time per step and its kernels' times, both averaged over the profiled steps. */
export interface Profile {
  readonly step_ms: number
  readonly kernels: readonly KernelTime[]
  /** cmkg: the main thread's time in V8's garbage-collection pauses, inside kernels or outside. */
  readonly gc_ms?: number
}

const TFJS_CONV_BACKWARD = new Set([
  "Conv2DBackpropInput",
  "Conv2DBackpropFilter",
  "DepthwiseConv2dNativeBackpropInput",
  "DepthwiseConv2dNativeBackpropFilter",
])
const TFJS_BATCH_NORM = new Set(["CmkgBatchNormTrain", "CmkgBatchNormTrainGrad", "FusedBatchNorm"])

const TFJS_BY_NAME: Readonly<Record<string, KernelClass>> = {
  Conv2D: "conv forward",
  FusedConv2D: "conv forward",
  DepthwiseConv2dNative: "conv forward",
  Conv2DBackpropInput: "conv backward-data",
  DepthwiseConv2dNativeBackpropInput: "conv backward-data",
  Conv2DBackpropFilter: "conv backward-filter",
  DepthwiseConv2dNativeBackpropFilter: "conv backward-filter",
  CmkgBatchNormTrain: "batch norm",
  CmkgBatchNormTrainGrad: "batch norm",
  FusedBatchNorm: "batch norm",
  BatchMatMul: "matmul",
  _FusedMatMul: "matmul",
  MaxPool: "pooling",
  MaxPoolGrad: "pooling",
  AvgPool: "pooling",
  AvgPoolGrad: "pooling",
}
const TFJS_ELEMENTWISE = new Set([
  "Abs",
  "Add",
  "AddN",
  "ClipByValue",
  "CmkgReluGrad",
  "CmkgScaleByAdam",
  "Elu",
  "Equal",
  "Exp",
  "Fill",
  "Floor",
  "FloorDiv",
  "Greater",
  "GreaterEqual",
  "LeakyRelu",
  "Less",
  "LessEqual",
  "Log",
  "LogicalAnd",
  "LogicalNot",
  "Maximum",
  "Minimum",
  "Multiply",
  "Neg",
  "NotEqual",
  "OnesLike",
  "Pow",
  "Prelu",
  "RealDiv",
  "Reciprocal",
  "Relu",
  "Relu6",
  "Rsqrt",
  "Select",
  "Sigmoid",
  "Sign",
  "Softplus",
  "Sqrt",
  "Square",
  "SquaredDifference",
  "Step",
  "Sub",
  "Tanh",
  "ZerosLike",
])
const TFJS_REDUCTION = new Set([
  "Sum",
  "Mean",
  "Max",
  "Min",
  "Prod",
  "ArgMax",
  "ArgMin",
  "All",
  "Any",
  "EuclideanNorm",
])
const TFJS_LAYOUT = new Set([
  "Cast",
  "Concat",
  "GatherV2",
  "Identity",
  "MirrorPad",
  "Pack",
  "PadV2",
  "Reshape",
  "Reverse",
  "Slice",
  "SplitV",
  "StridedSlice",
  "Tile",
  "Transpose",
  "Unpack",
])

/** The class of a tfjs kernel run inside the gradient of `context` ("" when outside any gradient). */
export const tfjsClass = (kernel: string, context: string): KernelClass => {
  if (TFJS_CONV_BACKWARD.has(context)) return "conv second-order"
  if (TFJS_BATCH_NORM.has(context)) return "batch norm"
  const named = TFJS_BY_NAME[kernel]
  if (named !== undefined) return named
  if (TFJS_ELEMENTWISE.has(kernel)) return "elementwise"
  if (TFJS_REDUCTION.has(kernel)) return "reduction"
  if (TFJS_LAYOUT.has(kernel)) return "layout / copy"
  return "other kernels"
}

/** The gradient contexts {@link tfjsClass} distinguishes (the profiler tracks only these). */
export const TFJS_CONTEXTS: readonly string[] = [...TFJS_CONV_BACKWARD, ...TFJS_BATCH_NORM]

const TORCH_BY_NAME: Readonly<Record<string, KernelClass>> = {
  conv2d: "conv forward",
  convolution: "conv forward",
  _convolution: "conv forward",
  mkldnn_convolution: "conv forward",
  _slow_conv2d_forward: "conv forward",
  thnn_conv2d: "conv forward",
  convolution_backward: "conv backward (data + filter)",
  _convolution_double_backward: "conv second-order",
  batch_norm: "batch norm",
  _batch_norm_impl_index: "batch norm",
  native_batch_norm: "batch norm",
  native_batch_norm_backward: "batch norm",
  _batch_norm_impl_index_backward: "batch norm",
  batch_norm_backward: "batch norm",
  mm: "matmul",
  addmm: "matmul",
  matmul: "matmul",
  linear: "matmul",
  bmm: "matmul",
  max_pool2d: "pooling",
  max_pool2d_with_indices: "pooling",
  max_pool2d_with_indices_backward: "pooling",
  adaptive_avg_pool2d: "pooling",
  _adaptive_avg_pool2d: "pooling",
  _adaptive_avg_pool2d_backward: "pooling",
  avg_pool2d: "pooling",
  avg_pool2d_backward: "pooling",
  sum: "reduction",
  mean: "reduction",
  norm: "reduction",
  linalg_vector_norm: "reduction",
  max: "reduction",
  amax: "reduction",
  min: "reduction",
  prod: "reduction",
}
const TORCH_LAYOUT = new Set([
  "_reshape_alias",
  "_to_copy",
  "alias",
  "as_strided",
  "cat",
  "clone",
  "constant_pad_nd",
  "contiguous",
  "copy_",
  "detach",
  "detach_",
  "empty",
  "empty_like",
  "empty_strided",
  "expand",
  "expand_as",
  "flatten",
  "lift_fresh",
  "narrow",
  "permute",
  "reshape",
  "resize_",
  "select",
  "slice",
  "split",
  "squeeze",
  "stack",
  "t",
  "to",
  "transpose",
  "unsqueeze",
  "view",
  "view_as",
])
// Element-by-element arithmetic, activations and their backwards, fills, losses over a [B, 63] output.
const TORCH_ELEMENTWISE =
  /^(abs|add|addcdiv|addcmul|clamp|clamp_min|div|exp|fill|full|lerp|log|maximum|minimum|mse_loss|mse_loss_backward|mul|neg|ones|ones_like|pow|reciprocal|relu|rsqrt|sgn|sign|sigmoid|sqrt|square|sub|rsub|tanh|threshold|threshold_backward|where|zero|zeros|zeros_like|masked_fill|eq|ne|gt|lt|ge|le)_?$/

/** The class of a PyTorch top-level op (`aten::mul`) run while autograd evaluates `context` ("" outside backward). */
export const torchClass = (op: string, context: string): KernelClass => {
  if (/^ConvolutionBackwardBackward|^ConvolutionBackward\d*Backward/.test(context)) return "conv second-order"
  if (/BatchNorm/.test(context)) return "batch norm"
  const name = op.startsWith("aten::") ? op.slice("aten::".length) : op
  const named = TORCH_BY_NAME[name]
  if (named !== undefined) return named
  if (TORCH_ELEMENTWISE.test(name)) return "elementwise"
  if (TORCH_LAYOUT.has(name)) return "layout / copy"
  return "other kernels"
}

/** ms per step by class, and the step's time outside any kernel (dispatch, tape, Python, GC). */
export interface ByClass {
  readonly step_ms: number
  readonly classes: Readonly<Record<KernelClass, number>>
  /** Kernel (op) calls per step by class: the dispatches each side makes. */
  readonly calls: Readonly<Record<KernelClass, number>>
  readonly outside_ms: number
  readonly gc_ms?: number
}

/**
 * The kernels of some classes by name, summed over their contexts, slowest first: what a class's
 * total is made of (e.g. which elementwise kernels a step spends its time in).
 */
export const topKernels = (
  p: Profile,
  classify: (kernel: string, context: string) => KernelClass,
  classes: readonly KernelClass[],
  n = 12,
): { kernel: string; class: KernelClass; ms: number; calls: number }[] => {
  const by = new Map<string, { kernel: string; class: KernelClass; ms: number; calls: number }>()
  for (const k of p.kernels) {
    const c = classify(k.kernel, k.context)
    if (!classes.includes(c)) continue
    const key = `${c}|${k.kernel}`
    const e = by.get(key) ?? { kernel: k.kernel, class: c, ms: 0, calls: 0 }
    e.ms += k.ms
    e.calls += k.calls
    by.set(key, e)
  }
  return [...by.values()].sort((a, b) => b.ms - a.ms).slice(0, n)
}

/** Sums a profile's kernels by class with `classify`; what the kernels do not account for is outside. */
export const byClass = (p: Profile, classify: (kernel: string, context: string) => KernelClass): ByClass => {
  const classes = Object.fromEntries(CLASSES.map((c) => [c, 0])) as Record<KernelClass, number>
  const calls = { ...classes }
  let inside = 0
  for (const k of p.kernels) {
    const c = classify(k.kernel, k.context)
    classes[c] += k.ms
    calls[c] += k.calls
    inside += k.ms
  }
  return {
    step_ms: p.step_ms,
    classes,
    calls,
    outside_ms: Math.max(0, p.step_ms - inside),
    ...(p.gc_ms === undefined ? {} : { gc_ms: p.gc_ms }),
  }
}

export interface BreakdownRow {
  readonly label: string
  readonly cmkg_ms: number
  readonly torch_ms: number | null
  /** Share of the step, each side. */
  readonly cmkg_share: number
  readonly torch_share: number | null
  /** Calls per step, each side (null where it does not apply). */
  readonly cmkg_calls: number | null
  readonly torch_calls: number | null
  /** PyTorch ms ÷ cmkg ms: above 1 where cmkg is faster (the bench's ratio, per class). */
  readonly ratio: number | null
  /** Rows shown under a comparable row (cmkg's split of a class PyTorch does not split). */
  readonly detail: boolean
}

const sum = (c: Readonly<Record<KernelClass, number>>, ks: readonly KernelClass[]): number =>
  ks.reduce((a, k) => a + c[k], 0)

/** The rows of the breakdown table: every class present on either side, the time outside kernels, and the step. */
export const breakdownRows = (cmkg: ByClass, torch: ByClass | undefined): BreakdownRow[] => {
  const row = (
    label: string,
    c: number,
    t: number | undefined,
    detail = false,
    calls: { c: number; t: number | undefined } | undefined = undefined,
  ): BreakdownRow => ({
    label,
    cmkg_ms: c,
    torch_ms: t ?? null,
    cmkg_calls: calls === undefined ? null : calls.c,
    torch_calls: calls?.t ?? null,
    cmkg_share: cmkg.step_ms > 0 ? c / cmkg.step_ms : 0,
    torch_share: t === undefined || torch === undefined || torch.step_ms <= 0 ? null : t / torch.step_ms,
    ratio: t === undefined || c <= 0 ? null : t / c,
    detail,
  })
  const backward: KernelClass[] = [
    "conv backward-data",
    "conv backward-filter",
    "conv backward (data + filter)",
  ]
  const rows: BreakdownRow[] = []
  const at = (k: KernelClass) => ({ c: cmkg.classes[k], t: torch?.classes[k] })
  const callsOf = (ks: readonly KernelClass[]) => ({
    c: sum(cmkg.calls, ks),
    t: torch === undefined ? undefined : sum(torch.calls, ks),
  })
  for (const k of CLASSES) {
    if (k === "conv backward-data") {
      const c = sum(cmkg.classes, backward)
      const t = torch === undefined ? undefined : sum(torch.classes, backward)
      if (c > 0 || (t ?? 0) > 0) {
        rows.push(row("conv backward (data + filter)", c, t, false, callsOf(backward)))
        rows.push(
          row("  of which backward-data", cmkg.classes["conv backward-data"], undefined, true, {
            c: cmkg.calls["conv backward-data"],
            t: undefined,
          }),
        )
        rows.push(
          row("  of which backward-filter", cmkg.classes["conv backward-filter"], undefined, true, {
            c: cmkg.calls["conv backward-filter"],
            t: undefined,
          }),
        )
      }
      continue
    }
    if (backward.includes(k)) continue
    const { c, t } = at(k)
    if (c > 0 || (t ?? 0) > 0) rows.push(row(k, c, t, false, callsOf([k])))
  }
  rows.push(row("outside kernels", cmkg.outside_ms, torch?.outside_ms))
  // Counted in whichever row the pause fell in: a detail, not a part of the sum.
  if (cmkg.gc_ms !== undefined) rows.push(row("  GC pauses (in any row)", cmkg.gc_ms, undefined, true))
  rows.push(row("step", cmkg.step_ms, torch?.step_ms))
  return rows
}

/** The table `npm run bench -- --profile` prints: ms per step, share of the step, PyTorch ÷ cmkg and calls per class. */
export const breakdownTable = (rows: readonly BreakdownRow[]): string => {
  const pct = (x: number | null) => (x === null ? "-" : `${(x * 100).toFixed(1)} %`)
  const ms = (x: number | null) => (x === null ? "-" : x.toFixed(1))
  const n = (x: number | null) => (x === null ? "" : x.toFixed(0))
  const lines = [
    `${"class".padEnd(32)}${"cmkg ms".padStart(10)}${"share".padStart(9)}${"torch ms".padStart(11)}${"share".padStart(9)}${"torch/cmkg".padStart(12)}${"calls cmkg/torch".padStart(19)}`,
  ]
  for (const r of rows)
    lines.push(
      `${r.label.padEnd(32)}${ms(r.cmkg_ms).padStart(10)}${pct(r.cmkg_share).padStart(9)}${ms(r.torch_ms).padStart(11)}${pct(r.torch_share).padStart(9)}${(r.ratio === null ? "-" : r.ratio.toFixed(2)).padStart(12)}${(r.cmkg_calls === null ? "" : `${n(r.cmkg_calls)}/${r.torch_calls === null ? "-" : n(r.torch_calls)}`).padStart(19)}`,
    )
  return lines.join("\n")
}

/**
 * The bench's per-class breakdown (bench/breakdown.ts, bench/kernelTimer.ts):
 * tfjs kernels and PyTorch ops map to the same classes, the gradient context
 * makes a convolution inside a convolution's backward a second-order term,
 * the table's rows add up, and the kernel timer sees the contexts of a real
 * second-order gradient. No timing is asserted.
 */
import assert from "node:assert/strict"
import { before, test } from "node:test"
import * as tf from "@tensorflow/tfjs-core"
import {
  breakdownRows,
  breakdownTable,
  byClass,
  tfjsClass,
  topKernels,
  torchClass,
} from "../../bench/breakdown.ts"
import { installKernelTimer } from "../../bench/kernelTimer.ts"
import * as Tf from "../../src/interpreters/tf/index.ts"

test("tfjs kernels: by name, except inside a convolution's or a batch norm's gradient", () => {
  assert.equal(tfjsClass("Conv2D", ""), "conv forward")
  assert.equal(tfjsClass("Conv2DBackpropInput", ""), "conv backward-data")
  assert.equal(tfjsClass("Conv2DBackpropFilter", ""), "conv backward-filter")
  // The gradient of Conv2D runs the backprop kernels: first order, classed by name.
  assert.equal(tfjsClass("Conv2DBackpropInput", "Conv2D"), "conv backward-data")
  // The gradient of a backprop kernel is a second-order term, whatever it runs.
  assert.equal(tfjsClass("Conv2D", "Conv2DBackpropInput"), "conv second-order")
  assert.equal(tfjsClass("Conv2DBackpropInput", "Conv2DBackpropFilter"), "conv second-order")
  assert.equal(tfjsClass("Reshape", "Conv2DBackpropFilter"), "conv second-order")
  assert.equal(tfjsClass("CmkgBatchNormTrain", ""), "batch norm")
  assert.equal(tfjsClass("Sum", "CmkgBatchNormTrain"), "batch norm")
  assert.equal(tfjsClass("Multiply", "CmkgBatchNormTrainGrad"), "batch norm")
  assert.equal(tfjsClass("Multiply", ""), "elementwise")
  assert.equal(tfjsClass("CmkgScaleByAdam", ""), "elementwise")
  assert.equal(tfjsClass("CmkgReluGrad", "Relu"), "elementwise")
  assert.equal(tfjsClass("Sum", ""), "reduction")
  assert.equal(tfjsClass("BatchMatMul", ""), "matmul")
  assert.equal(tfjsClass("MaxPoolGrad", "MaxPool"), "pooling")
  assert.equal(tfjsClass("Reshape", ""), "layout / copy")
  assert.equal(tfjsClass("NoSuchKernel", ""), "other kernels")
})

test("PyTorch ops: by name, except inside a convolution's double backward or a batch norm's backward", () => {
  assert.equal(torchClass("aten::conv2d", ""), "conv forward")
  assert.equal(
    torchClass("aten::convolution_backward", "ConvolutionBackward0"),
    "conv backward (data + filter)",
  )
  assert.equal(torchClass("aten::_convolution", "ConvolutionBackwardBackward0"), "conv second-order")
  assert.equal(torchClass("aten::add", "ConvolutionBackwardBackward0"), "conv second-order")
  assert.equal(torchClass("aten::batch_norm", ""), "batch norm")
  assert.equal(torchClass("aten::native_batch_norm_backward", "NativeBatchNormBackward0"), "batch norm")
  assert.equal(torchClass("aten::mul", "NativeBatchNormBackwardBackward0"), "batch norm")
  assert.equal(torchClass("aten::mul", "MulBackward0"), "elementwise")
  assert.equal(torchClass("aten::add_", ""), "elementwise")
  assert.equal(torchClass("aten::threshold_backward", "ReluBackward0"), "elementwise")
  assert.equal(torchClass("aten::sum", ""), "reduction")
  assert.equal(torchClass("aten::addmm", ""), "matmul")
  assert.equal(
    torchClass("aten::max_pool2d_with_indices_backward", "MaxPool2DWithIndicesBackward0"),
    "pooling",
  )
  assert.equal(torchClass("aten::view", ""), "layout / copy")
  assert.equal(torchClass("aten::something_new", ""), "other kernels")
})

test("the rows: classes summed per side, conv backward compared as data + filter, outside = step − kernels", () => {
  const cmkg = byClass(
    {
      step_ms: 100,
      gc_ms: 7,
      kernels: [
        { kernel: "Conv2D", context: "", ms: 20, calls: 2 },
        { kernel: "Conv2DBackpropInput", context: "", ms: 15, calls: 1 },
        { kernel: "Conv2DBackpropFilter", context: "", ms: 25, calls: 2 },
        { kernel: "Conv2D", context: "Conv2DBackpropFilter", ms: 10, calls: 1 },
        { kernel: "Multiply", context: "", ms: 6, calls: 3 },
        { kernel: "Add", context: "", ms: 4, calls: 3 },
      ],
    },
    tfjsClass,
  )
  const torch = byClass(
    {
      step_ms: 80,
      kernels: [
        { kernel: "aten::conv2d", context: "", ms: 25, calls: 2 },
        { kernel: "aten::convolution_backward", context: "ConvolutionBackward0", ms: 30, calls: 2 },
        { kernel: "aten::_convolution", context: "ConvolutionBackwardBackward0", ms: 5, calls: 1 },
        { kernel: "aten::mul", context: "", ms: 5, calls: 1 },
      ],
    },
    torchClass,
  )
  assert.equal(cmkg.classes.elementwise, 10)
  assert.equal(cmkg.classes["conv second-order"], 10)
  assert.equal(cmkg.outside_ms, 20)
  assert.equal(torch.outside_ms, 15)
  const rows = breakdownRows(cmkg, torch)
  const at = (label: string) => rows.find((r) => r.label === label) ?? assert.fail(`no row ${label}`)
  assert.deepEqual(
    rows.map((r) => r.label),
    [
      "conv forward",
      "conv backward (data + filter)",
      "  of which backward-data",
      "  of which backward-filter",
      "conv second-order",
      "elementwise",
      "outside kernels",
      "  GC pauses (in any row)",
      "step",
    ],
  )
  assert.equal(at("  GC pauses (in any row)").cmkg_ms, 7)
  assert.equal(at("conv backward (data + filter)").cmkg_ms, 40)
  assert.equal(at("conv backward (data + filter)").torch_ms, 30)
  assert.equal(at("conv backward (data + filter)").ratio, 0.75)
  assert.equal(at("  of which backward-filter").torch_ms, null)
  assert.equal(at("conv forward").cmkg_share, 0.2)
  assert.equal(at("elementwise").cmkg_calls, 6)
  assert.equal(at("elementwise").torch_calls, 1)
  assert.equal(at("conv backward (data + filter)").cmkg_calls, 3)
  assert.equal(at("  of which backward-filter").cmkg_calls, 2)
  assert.equal(at("outside kernels").cmkg_calls, null)
  assert.equal(at("step").ratio, 0.8)
  // Every row that is not a detail or the step adds up to the step, on both sides.
  const parts = rows.filter((r) => !r.detail && r.label !== "step")
  assert.equal(
    parts.reduce((a, r) => a + r.cmkg_ms, 0),
    100,
  )
  assert.equal(
    parts.reduce((a, r) => a + (r.torch_ms ?? 0), 0),
    80,
  )
  assert.match(breakdownTable(rows), /conv second-order\s+10\.0\s+10\.0 %\s+5\.0\s+6\.3 %\s+0\.50\s+1\/1/)
  // Without PyTorch the rows carry no torch column.
  assert.ok(breakdownRows(cmkg, undefined).every((r) => r.torch_ms === null && r.ratio === null))
})

let timer: ReturnType<typeof installKernelTimer>
before(async () => {
  const selected = await Tf.ready("auto")
  timer = installKernelTimer(selected.name)
})

const x = () => tf.randomNormal([2, 6, 6, 3], 0, 1, "float32", 1)
const w0 = () => tf.randomNormal([3, 3, 3, 4], 0, 1, "float32", 2)
const loss = (x: tf.Tensor4D) => (w: tf.Tensor) =>
  tf.sum(tf.square(tf.conv2d(x, w as tf.Tensor4D, 1, "same")))

test("the kernel timer sees a second-order gradient's convolutions inside the backprop kernels' gradients", async () => {
  const xs = x() as tf.Tensor4D
  const w = w0()
  // ∇_w ‖∇_w f(w)‖²: differentiates through Conv2DBackpropFilter.
  const secondOrder = () =>
    tf.tidy(() =>
      tf
        .grad((v: tf.Tensor) => tf.sum(tf.square(tf.grad(loss(xs))(v))))(w)
        .dataSync(),
    )
  const p = await timer.profile(secondOrder, 1)
  const second = p.kernels.filter((k) => tfjsClass(k.kernel, k.context) === "conv second-order")
  assert.ok(
    second.some((k) => k.context === "Conv2DBackpropFilter" && k.calls >= 1),
    JSON.stringify(p.kernels),
  )
  assert.ok(p.kernels.some((k) => k.kernel === "Conv2D" && k.context === ""))
  assert.ok(p.step_ms > 0)
  assert.ok(p.gc_ms >= 0 && p.gc_ms <= p.step_ms)
  // A first-order gradient has no second-order terms, and nothing is counted outside `profile`.
  const first = await timer.profile(() => tf.tidy(() => tf.grad(loss(xs))(w).dataSync()), 2)
  assert.ok(first.kernels.length > 0)
  assert.ok(first.kernels.every((k) => tfjsClass(k.kernel, k.context) !== "conv second-order"))
  assert.ok(first.kernels.some((k) => k.kernel === "Conv2DBackpropFilter" && k.calls === 1))
  tf.dispose([xs, w])
})

test("topKernels: the kernels of the asked classes by name, summed over contexts, slowest first", () => {
  const profile = {
    step_ms: 100,
    kernels: [
      { kernel: "Multiply", context: "", ms: 5, calls: 10 },
      { kernel: "Multiply", context: "Relu", ms: 7, calls: 4 },
      { kernel: "Sum", context: "", ms: 9, calls: 2 },
      { kernel: "Conv2D", context: "", ms: 50, calls: 3 },
      // Inside a batch norm's gradient a Multiply is batch norm's time, not elementwise.
      { kernel: "Multiply", context: "CmkgBatchNormTrainGrad", ms: 30, calls: 1 },
      { kernel: "Add", context: "", ms: 1, calls: 1 },
    ],
  }
  assert.deepEqual(topKernels(profile, tfjsClass, ["elementwise", "reduction"]), [
    { kernel: "Multiply", class: "elementwise", ms: 12, calls: 14 },
    { kernel: "Sum", class: "reduction", ms: 9, calls: 2 },
    { kernel: "Add", class: "elementwise", ms: 1, calls: 1 },
  ])
  assert.deepEqual(
    topKernels(profile, tfjsClass, ["elementwise"], 1).map((k) => k.kernel),
    ["Multiply"],
  )
})

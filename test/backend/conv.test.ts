// The cmkg-cpu convolution kernels agree with tfjs's cpu kernels on generated shapes and
// attributes, and actually took the fast path: once with oneDNN (when its addon is built;
// it runs the dense convolutions) and once with onnxruntime alone.
// Tolerance: max |fast - cpu| <= 1e-4 · max(1, max |cpu|) (float32 sums of up to a few hundred terms).
import assert from "node:assert/strict"
import { createRequire } from "node:module"
import { after, before, describe, it } from "node:test"
import * as tf from "@tensorflow/tfjs-core"
import fc from "fast-check"
import { ADDON_PATH } from "../../src/backend/dnnl.ts"
import {
  dnnlCalls,
  fallbackCalls,
  fastPathCalls,
  resetCallCounts,
  selectBackend,
  useDnnl,
} from "../../src/backend/index.ts"
import { data, dnnlSkip, on, relErr, tensor } from "./helpers.ts"

const TOL = 1e-4
type Pad = "same" | "valid" | number | [[0, 0], [number, number], [number, number], [0, 0]]

const convCase = fc.record({
  n: fc.integer({ min: 1, max: 3 }),
  h: fc.integer({ min: 3, max: 11 }),
  w: fc.integer({ min: 3, max: 11 }),
  cin: fc.integer({ min: 1, max: 5 }),
  cout: fc.integer({ min: 1, max: 5 }),
  mult: fc.integer({ min: 1, max: 2 }),
  kh: fc.integer({ min: 1, max: 3 }),
  kw: fc.integer({ min: 1, max: 3 }),
  stride: fc.integer({ min: 1, max: 3 }),
  dilation: fc.integer({ min: 1, max: 2 }),
  pad: fc.oneof(
    fc.constant<Pad>("same"),
    fc.constant<Pad>("valid"),
    fc.integer({ min: 0, max: 2 }) as fc.Arbitrary<Pad>,
    fc.tuple(fc.nat(2), fc.nat(2), fc.nat(2), fc.nat(2)).map(
      ([a, b, c, d]): Pad => [
        [0, 0],
        [a, b],
        [c, d],
        [0, 0],
      ],
    ),
  ),
  seed: fc.nat(1000),
})

const dnnlCount = (k: string): number => dnnlCalls[k] ?? 0

for (const dnnl of [true, false])
  describe(`cmkg-cpu convolution kernels (${dnnl ? "oneDNN" : "onnxruntime"})`, {
    skip: dnnl && dnnlSkip(),
  }, () => {
    const before0: Record<string, number> = {}
    before(async () => {
      tf.env().set("PROD", true)
      await selectBackend("cmkg-cpu")
      useDnnl(dnnl)
      Object.assign(before0, dnnlCalls)
    })
    after(() => {
      useDnnl(true)
      // With oneDNN on, it ran most of the ~40 generated convolutions of each kind (some are grouped
      // or have shapes it declines); off, it ran nothing.
      for (const k of ["Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter"]) {
        const ran = dnnlCount(k) - (before0[k] ?? 0)
        assert.ok(dnnl ? ran >= 30 : ran === 0, `${k}: oneDNN ran ${ran} times`)
      }
    })

    it("Conv2D (stride, dilation, same/valid/explicit padding) matches cpu", () => {
      resetCallCounts()
      let runs = 0
      fc.assert(
        fc.property(convCase, (c) => {
          const eh = (c.kh - 1) * c.dilation + 1
          const ew = (c.kw - 1) * c.dilation + 1
          fc.pre(typeof c.pad !== "string" || c.pad !== "valid" || (c.h >= eh && c.w >= ew))
          fc.pre(typeof c.pad === "string" || c.dilation === 1 || c.stride === 1)
          fc.pre(typeof c.pad !== "number" || (c.h + 2 * c.pad >= eh && c.w + 2 * c.pad >= ew))
          fc.pre(
            !Array.isArray(c.pad) ||
              (c.h + c.pad[1][0] + c.pad[1][1] >= eh && c.w + c.pad[2][0] + c.pad[2][1] >= ew),
          )
          const x = data([c.n, c.h, c.w, c.cin], c.seed)
          const f = data([c.kh, c.kw, c.cin, c.cout], c.seed + 1)
          const dil = c.stride === 1 ? c.dilation : 1
          const run = () =>
            tf.conv2d(tensor(x) as tf.Tensor4D, tensor(f) as tf.Tensor4D, c.stride, c.pad, "NHWC", dil)
          const [a] = on("cpu", run)
          const [b] = on("cmkg-cpu", run)
          runs++
          assert.ok(relErr(a as Float32Array, b as Float32Array) <= TOL, JSON.stringify(c))
        }),
        { seed: 42, numRuns: 60 },
      )
      // tfjs's own inconsistent shapes (numeric padding with a non-square filter) fall back.
      assert.equal((fastPathCalls.Conv2D ?? 0) + (fallbackCalls.Conv2D ?? 0), runs)
      assert.ok(
        (fastPathCalls.Conv2D ?? 0) >= runs * 0.7,
        JSON.stringify({ fastPathCalls, fallbackCalls, runs }),
      )
    })

    it("Conv2DBackpropInput and Conv2DBackpropFilter (gradients of conv2d) match cpu", () => {
      resetCallCounts()
      let runs = 0
      fc.assert(
        fc.property(convCase, (c) => {
          fc.pre(typeof c.pad !== "string" || c.pad !== "valid" || (c.h >= c.kh && c.w >= c.kw))
          const x = data([c.n, c.h, c.w, c.cin], c.seed)
          const f = data([c.kh, c.kw, c.cin, c.cout], c.seed + 1)
          const run = () => {
            const g = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
              tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad))),
            )
            return g([tensor(x), tensor(f)])
          }
          const a = on("cpu", run)
          const b = on("cmkg-cpu", run)
          runs++
          assert.ok(relErr(a[0] as Float32Array, b[0] as Float32Array) <= TOL, `dx ${JSON.stringify(c)}`)
          assert.ok(relErr(a[1] as Float32Array, b[1] as Float32Array) <= TOL, `dw ${JSON.stringify(c)}`)
        }),
        { seed: 7, numRuns: 40 },
      )
      assert.ok(
        (fastPathCalls.Conv2DBackpropFilter ?? 0) >= runs * 0.7,
        JSON.stringify({ fastPathCalls, fallbackCalls, runs }),
      )
      // ConvTranspose cannot express every input gradient (output_padding limits); most run fast.
      assert.ok(
        (fastPathCalls.Conv2DBackpropInput ?? 0) >= runs * 0.8,
        JSON.stringify({ fastPathCalls, fallbackCalls, runs }),
      )
    })

    it("depthwise conv and both its gradients match cpu", () => {
      resetCallCounts()
      let runs = 0
      fc.assert(
        fc.property(convCase, (c) => {
          fc.pre(typeof c.pad !== "string" || c.pad !== "valid" || (c.h >= c.kh && c.w >= c.kw))
          fc.pre(!Array.isArray(c.pad))
          const x = data([c.n, c.h, c.w, c.cin], c.seed)
          const f = data([c.kh, c.kw, c.cin, c.mult], c.seed + 1)
          const run = () => {
            const g = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
              tf.sum(tf.square(tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad))),
            )
            return [
              tf.depthwiseConv2d(tensor(x) as tf.Tensor4D, tensor(f) as tf.Tensor4D, c.stride, c.pad),
              ...g([tensor(x), tensor(f)]),
            ]
          }
          const a = on("cpu", run)
          const b = on("cmkg-cpu", run)
          runs++
          for (let i = 0; i < 3; i++)
            assert.ok(relErr(a[i] as Float32Array, b[i] as Float32Array) <= TOL, `${i} ${JSON.stringify(c)}`)
        }),
        { seed: 11, numRuns: 30 },
      )
      assert.ok((fastPathCalls.DepthwiseConv2dNative ?? 0) >= runs * 0.7)
      assert.ok((fastPathCalls.DepthwiseConv2dNativeBackpropFilter ?? 0) >= runs * 0.7)
    })

    it("fused conv2d (bias + relu) and matMul match cpu", () => {
      resetCallCounts()
      const x = data([2, 9, 9, 4], 1)
      const f = data([3, 3, 4, 6], 2)
      const bias = data([6], 3)
      const run = () =>
        tf.fused.conv2d({
          x: tensor(x) as tf.Tensor4D,
          filter: tensor(f) as tf.Tensor4D,
          strides: 1,
          pad: "same",
          bias: tensor(bias),
          activation: "relu",
        })
      assert.ok(relErr(on("cpu", run)[0] as Float32Array, on("cmkg-cpu", run)[0] as Float32Array) <= TOL)
      const a = data([3, 70, 50], 4)
      const b = data([3, 40, 70], 5)
      const mm = () => tf.matMul(tensor(a), tensor(b), true, true)
      assert.ok(relErr(on("cpu", mm)[0] as Float32Array, on("cmkg-cpu", mm)[0] as Float32Array) <= TOL)
      assert.equal(fastPathCalls.FusedConv2D, 1)
      assert.equal(fastPathCalls.BatchMatMul, 1)
    })
  })

describe("the oneDNN addon's argument checks", { skip: dnnlSkip() }, () => {
  // Geometry: N H W C  OH OW OC  KH KW  SH SW  DH DW  PT PL PB PR: 1×4×4×2 → 1×4×4×3, 3×3 same.
  const g = Int32Array.of(1, 4, 4, 2, 4, 4, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1)
  const addon = createRequire(import.meta.url)(ADDON_PATH) as Record<string, (...a: unknown[]) => void>
  const f = (n: number) => new Float32Array(n)
  it("each conv entry point names the array whose size does not fit the geometry", () => {
    const cases: [string, unknown[], RegExp][] = [
      ["convForward", [f(32), f(54), f(47), g], /^y: expected 48 floats, got 47$/],
      ["convForward", [f(32), f(53), f(48), g], /^filter: expected 54 floats, got 53$/],
      ["convBackwardData", [f(48), f(54), f(31), g], /^dx: expected 32 floats, got 31$/],
      ["convBackwardWeights", [f(32), f(49), f(54), g], /^dy: expected 48 floats, got 49$/],
      ["convBackwardWeights", [f(32), f(48), new Float64Array(54), g], /^dw: expected a Float32Array$/],
    ]
    for (const [name, args, message] of cases)
      assert.throws(
        () => addon[name]!(...args),
        (e: Error & { code?: string }) => {
          assert.match(e.message, message)
          assert.equal(e.code, "CMKG_DNNL_INPUT")
          return true
        },
      )
    // The same arrays at the right sizes run.
    addon.convForward!(f(32), f(54), f(48), g)
    addon.convBackwardData!(f(48), f(54), f(32), g)
    addon.convBackwardWeights!(f(32), f(48), f(54), g)
  })
  it("each batch-norm entry point names the array whose size does not fit [N, H, W, C]", () => {
    const nhwc = Int32Array.of(2, 3, 1, 4) // 24 values, 4 channels
    const fwd = (x: number, gamma: number, y: number) => () =>
      addon.batchNormForward!(f(x), f(gamma), f(4), f(y), f(4), f(4), nhwc, 1e-5)
    assert.throws(fwd(24, 3, 24), /^Error: gamma: expected 4 floats, got 3$/)
    assert.throws(fwd(24, 4, 25), /^Error: y: expected 24 floats, got 25$/)
    const bwd = (dx: number, dbeta: number) => () =>
      addon.batchNormBackward!(f(24), f(4), f(24), f(4), f(4), f(dx), f(4), f(dbeta), nhwc, 1e-5)
    assert.throws(bwd(23, 4), /^Error: dx: expected 24 floats, got 23$/)
    assert.throws(bwd(24, 5), /^Error: dbeta: expected 4 floats, got 5$/)
    fwd(24, 4, 24)()
    bwd(24, 4)()
  })
})

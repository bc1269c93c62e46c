// The cmkg-cpu elementwise / broadcasting / reduction kernels agree with tfjs's cpu
// kernels and take the fast path. Tolerance: 1e-5 · max(1, max |cpu|) (one rounding
// per element; reductions of a few thousand terms get 1e-4).
import assert from "node:assert/strict"
import { after, before, beforeEach, describe, it } from "node:test"
import * as tf from "@tensorflow/tfjs-core"
import fc from "fast-check"
import { setDnnlParallelAbove } from "../../src/backend/dnnl.ts"
import {
  dnnlCalls,
  fallbackCalls,
  fastPathCalls,
  resetCallCounts,
  selectBackend,
  setMinElements,
  useDnnl,
} from "../../src/backend/index.ts"
import { data, dnnlSkip, on, relErr, tensor } from "./helpers.ts"

const shape4 = fc.tuple(
  fc.integer({ min: 1, max: 4 }),
  fc.integer({ min: 1, max: 9 }),
  fc.integer({ min: 1, max: 9 }),
  fc.integer({ min: 1, max: 8 }),
)

// Every size takes onnxruntime with a threshold of 1, and the JS loops with an infinite one.
for (const [path, threshold] of [
  ["onnxruntime", 1],
  ["JS loops", Number.POSITIVE_INFINITY],
] as const)
  describe(`cmkg-cpu elementwise kernels (${path})`, () => {
    before(async () => {
      tf.env().set("PROD", true)
      await selectBackend("cmkg-cpu")
    })
    beforeEach(() => setMinElements(threshold))
    after(() => setMinElements(8192))

    it("broadcasting Add/Sub/Multiply/RealDiv/SquaredDifference match cpu", () => {
      resetCallCounts()
      fc.assert(
        fc.property(shape4, fc.integer({ min: 0, max: 4 }), fc.nat(1000), (s, kind, seed) => {
          // the second operand: same shape, per-channel [C], [1,1,1,C], scalar, or [N,1,1,C]
          const other = [s, [s[3]], [1, 1, 1, s[3]], [], [s[0], 1, 1, s[3]]][kind] as Array<number>
          const a = data(s, seed)
          const b = data(other, seed + 1)
          for (const op of [tf.add, tf.sub, tf.mul, tf.div, tf.squaredDifference]) {
            const run = () => [op(tensor(a), tensor(b)), op(tensor(b), tensor(a))]
            const x = on("cpu", run)
            const y = on("cmkg-cpu", run)
            assert.ok(relErr(x[0] as Float32Array, y[0] as Float32Array) <= 1e-5, `${op.name} ${s} ${other}`)
            assert.ok(relErr(x[1] as Float32Array, y[1] as Float32Array) <= 1e-5, `${op.name} ${other} ${s}`)
          }
        }),
        { seed: 3, numRuns: 25 },
      )
      for (const k of ["Add", "Sub", "Multiply", "RealDiv", "SquaredDifference"])
        assert.ok(
          (fastPathCalls[k] ?? 0) >= (threshold === 1 ? 50 : 40),
          `${k} ${JSON.stringify(fastPathCalls)} ${JSON.stringify(fallbackCalls)}`,
        )
    })

    it("Sum/Mean over any axes (keepDims or not), Tile, Square, Step, Relu, FusedBatchNorm match cpu", () => {
      resetCallCounts()
      fc.assert(
        fc.property(
          shape4,
          fc.subarray([0, 1, 2, 3], { minLength: 1 }),
          fc.boolean(),
          fc.nat(1000),
          (s, axes, keep, seed) => {
            const a = data(s, seed)
            const ch = data([1, 1, 1, s[3]], seed + 2)
            const stats = [
              data([s[3]], seed + 3),
              data([s[3]], seed + 4),
              data([s[3]], seed + 5),
              data([s[3]], seed + 6),
            ]
            const run = () => [
              tf.sum(tensor(a), axes, keep),
              tf.mean(tensor(a), axes, keep),
              tf.tile(tensor(ch), [s[0], s[1], s[2], 1]),
              tf.square(tensor(a)),
              tf.step(tensor(a), 0.1),
              tf.relu(tensor(a)),
              tf.batchNorm(
                tensor(a),
                tensor(stats[0]!),
                tf.abs(tensor(stats[1]!)),
                tensor(stats[2]!),
                tensor(stats[3]!),
                1e-3,
              ),
            ]
            const x = on("cpu", run)
            const y = on("cmkg-cpu", run)
            x.forEach((v, i) => {
              assert.ok(relErr(v, y[i] as Float32Array) <= (i < 2 ? 1e-4 : 1e-5), `${i} ${s} ${axes} ${keep}`)
            })
          },
        ),
        { seed: 5, numRuns: 25 },
      )
      // Tile has no loop, and the loops reduce only over the leading axes or all of them: the rest
      // runs on the cpu kernel when onnxruntime is off.
      const loopless = threshold === 1 ? [] : ["Tile", "Sum", "Mean"]
      for (const k of ["Sum", "Mean", "Tile", "Square", "Step", "Relu", "FusedBatchNorm"].filter(
        (k) => !loopless.includes(k),
      ))
        assert.ok((fastPathCalls[k] ?? 0) >= 20, `${k} ${JSON.stringify(fastPathCalls)}`)
      assert.deepEqual(
        Object.keys(fallbackCalls).filter((k) => k !== "BatchMatMul" && !loopless.includes(k)),
        [],
      )
    })

    it("relu and step keep NaN (a diverging run stays visible)", () => {
      const run = () => [
        tf.relu(tf.tensor([Number.NaN, -1, 2])),
        tf.step(tf.tensor([Number.NaN, -1, 2]), 0.5),
      ]
      const [relu, step] = on("cmkg-cpu", run)
      assert.deepEqual([...relu!], [Number.NaN, 0, 2])
      assert.deepEqual([...step!], [Number.NaN, 0.5, 1])
    })

    it("relu's one-kernel gradient equals dy·step(x) (NaN included), first and second order", () => {
      resetCallCounts()
      const x = [-2, -0.5, 0, 0.5, 3, Number.NaN, 1, -1]
      const w = [1, 2, 3, 4, 5, 6, 7, 8]
      const run = () => {
        const f = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.relu(a), b))
        const [dx, dw] = tf.grads(f)([tf.tensor(x), tf.tensor(w)])
        // Second order: the gradient of ⟨∇ₓf, v⟩ with respect to w is v·step(x).
        const [ddw] = tf.grads((b: tf.Tensor) =>
          tf.sum(tf.mul(tf.grads(f)([tf.tensor(x), b])[0]!, tf.onesLike(b))),
        )([tf.tensor(w)])
        return [dx!, dw!, ddw!]
      }
      const expected = on("cpu", run)
      const got = on("cmkg-cpu", run)
      expected.forEach((e, i) => {
        assert.deepEqual([...got[i]!], [...e], `output ${i}`)
      })
      assert.ok((fastPathCalls.CmkgReluGrad ?? 0) >= 2, JSON.stringify(fastPathCalls))
    })

    it("non-float32 inputs fall back to the cpu kernel", () => {
      resetCallCounts()
      const run = () => tf.add(tf.tensor([1, 2, 3], [3], "int32"), tf.tensor([4, 5, 6], [3], "int32"))
      assert.deepEqual([...on("cmkg-cpu", run)[0]!], [5, 7, 9])
      assert.equal(fallbackCalls.Add, 1)
    })
  })

// The oneDNN addon's elementwise loops (dnnl.ts `binary`, `unary`) replace onnxruntime for large
// operands: the same bits as onnxruntime's kernels and, for + − × ÷, as tfjs's cpu kernels.
describe("cmkg-cpu elementwise kernels (oneDNN addon's loops)", { skip: dnnlSkip() }, () => {
  before(async () => {
    tf.env().set("PROD", true)
    await selectBackend("cmkg-cpu")
  })
  beforeEach(() => setMinElements(1))
  after(() => {
    setMinElements(8192)
    useDnnl(true)
  })

  const bits = (a: Float32Array): Uint32Array => new Uint32Array(a.buffer, a.byteOffset, a.length)
  const sameBits = (a: Float32Array, b: Float32Array, what: string): void => {
    assert.equal(a.length, b.length, what)
    const [x, y] = [bits(a), bits(b)]
    for (let i = 0; i < x.length; i++)
      if (x[i] !== y[i]) assert.fail(`${what}: element ${i}: ${a[i]} and ${b[i]}`)
  }
  // Special values included: the loops must not differ from onnxruntime on them either.
  const withSpecials = (d: { shape: Array<number>; values: Float32Array }) => {
    const v = d.values
    const specials = [0, -0, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1e-40, -3.5e38]
    for (let i = 0; i < Math.min(specials.length, v.length); i++)
      v[i * 7 < v.length ? i * 7 : i] = specials[i]!
    return d
  }

  it("binary ops in every broadcast it knows, both operand orders; unary ops; a 2²⁰-element operand threaded", () => {
    const shapes: Array<[Array<number>, Array<number>]> = [
      [
        [2, 5, 7, 6],
        [2, 5, 7, 6],
      ],
      [[2, 5, 7, 6], [6]],
      [
        [2, 5, 7, 6],
        [1, 1, 1, 6],
      ],
      [[2, 5, 7, 6], []],
      [[3, 3, 16, 16], [1]],
      [[1, 32, 64, 512], [512]],
      [
        [1, 32, 64, 512],
        [1, 32, 64, 512],
      ],
    ]
    let seed = 40
    for (const [s, other] of shapes) {
      const a = withSpecials(data(s, seed++))
      const b = data(other, seed++)
      for (const op of [tf.add, tf.sub, tf.mul, tf.div, tf.squaredDifference]) {
        const run = () => [op(tensor(a), tensor(b)), op(tensor(b), tensor(a))]
        useDnnl(false)
        const ort = on("cmkg-cpu", run)
        useDnnl(true)
        const before = { ...dnnlCalls }
        const native = on("cmkg-cpu", run)
        const name = Object.keys(dnnlCalls).find((k) => (dnnlCalls[k] ?? 0) - (before[k] ?? 0) === 2)
        assert.ok(name !== undefined, `${op.name} ${s} ${other}: the addon ran ${JSON.stringify(dnnlCalls)}`)
        sameBits(ort[0]!, native[0]!, `${op.name}(${s}, ${other}) against onnxruntime`)
        sameBits(ort[1]!, native[1]!, `${op.name}(${other}, ${s}) against onnxruntime`)
        if (op !== tf.squaredDifference) {
          const cpu = on("cpu", run)
          sameBits(cpu[0]!, native[0]!, `${op.name}(${s}, ${other}) against cpu`)
          sameBits(cpu[1]!, native[1]!, `${op.name}(${other}, ${s}) against cpu`)
        }
      }
      for (const op of [tf.square, tf.neg, tf.sqrt, tf.rsqrt]) {
        const run = () => [op(tensor(a)), op(tf.abs(tensor(a)))]
        useDnnl(false)
        const ort = on("cmkg-cpu", run)
        useDnnl(true)
        const before = { ...dnnlCalls }
        const native = on("cmkg-cpu", run)
        assert.ok(
          Object.keys(dnnlCalls).some((k) => (dnnlCalls[k] ?? 0) - (before[k] ?? 0) === 2),
          `${op.name} ${s}: the addon ran ${JSON.stringify(dnnlCalls)}`,
        )
        sameBits(ort[0]!, native[0]!, `${op.name}(${s})`)
        sameBits(ort[1]!, native[1]!, `${op.name}(|${s}|)`)
      }
    }
  })

  it("Sum and Mean over all axes and over the leading axes: the JS loop's bits, threaded or not, across chunk boundaries", () => {
    // 16 × 64 × 64 × 64 is a batch norm's input in the bench's ResNet-18 (threaded above 2²⁰);
    // 16,387 values cross the 2¹⁴-value chunk by three; one channel makes each row one value.
    const shapes = [[3, 7, 5, 11], [16, 64, 64, 64], [16387], [16387, 1], [2, 3, 3, 512], [5, 4099, 3]]
    let seed = 90
    for (const s of shapes) {
      const a = withSpecials(data(s, seed++))
      // One infinity is enough to make every sum it enters infinite: keep the finite ones apart.
      const finite = data(s, seed++)
      for (const d of [a, finite]) {
        const leading = Array.from({ length: s.length - 1 }, (_, i) => i)
        const run = () => [
          tf.sum(tensor(d)),
          tf.mean(tensor(d)),
          tf.sum(tensor(d), leading),
          tf.mean(tensor(d), leading, true),
        ]
        useDnnl(false)
        const js = on("cmkg-cpu", run)
        useDnnl(true)
        for (const parallelAbove of [1, 2 ** 40]) {
          setDnnlParallelAbove(parallelAbove)
          const before = dnnlCalls.Sum ?? 0
          const native = on("cmkg-cpu", run)
          assert.equal(
            (dnnlCalls.Sum ?? 0) - before,
            4,
            `${s}: the addon summed ${JSON.stringify(dnnlCalls)}`,
          )
          // A NaN's sign and payload say which NaN or ∞ − ∞ came first, which the summation order decides.
          const quiet = (x: Float32Array) => x.map((v) => (Number.isNaN(v) ? Number.NaN : v))
          js.forEach((v, i) => {
            sameBits(quiet(v), quiet(native[i]!), `${s} output ${i}, threads from ${parallelAbove}`)
          })
        }
        setDnnlParallelAbove(2 ** 20)
      }
    }
  })
})

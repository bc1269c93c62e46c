// Laws: first and second derivatives of every op a CMKG conv net uses are
// exact (match central finite differences), on the cpu backend and, for
// conv/pool, on wasm.
//
// For each op, with generated shapes and values (fast-check, fixed seeds):
//   gradient law: <grad f(x), v> = (f(x + eps v) - f(x - eps v)) / 2 eps
//   HVP law:      grad_x <grad f(x), v> = (grad f(x + eps v) - grad f(x - eps v)) / 2 eps
// where x ranges over *all* inputs of the op (data and weights: conv input
// and filter, dense input/weight/bias, ...) and v is a random direction in
// that joint space, so mixed terms (d2/dx dW) are checked as well.
//
// f = head(op(xs)) with head(y) = sum(R y) + 1/2 sum(S y^2) for random R, S:
// the linear part isolates the op's own second derivative (a lost
// second-order term shows up as an O(1) relative error), the quadratic part
// checks that the op's gradient function is itself differentiable.
//
// Tolerances (float32, unit round-off u ~ 6e-8): with eps = 1e-2 on O(1)
// inputs, central differences have truncation error ~eps^2 |f'''| ~ 1e-4 and
// round-off ~ u |g| / eps ~ 1e-5 relative (1e-4 after float32 accumulation in
// convs). We require relative error <= 1e-2 for the directional derivative
// and <= 2e-2 for HVPs (||a - b|| / max(||a||, ||b||)): two orders of
// magnitude above the noise, far below the O(1) error of a missing term.
// Kinks (relu, abs, max pool, maximum, clip) are avoided by construction:
// directions are uniform in [-1, 1] (so |eps v| <= 1e-2) and inputs keep a
// margin >= 0.05 from zero / ties / clip bounds; the composite net instead
// uses eps = 1e-3 and discards samples whose relu/max-pool pattern changes
// within x +- eps v.

import assert from "node:assert/strict"
import { before, describe, it } from "node:test"
import * as tf from "@tensorflow/tfjs-core"
import "@tensorflow/tfjs-backend-cpu"
import "@tensorflow/tfjs-backend-wasm"
import fc from "fast-check"
import { ensureGradients } from "../../src/backend/gradients.ts"
import { fdHvp, gradients, hvp, type ScalarFn } from "../../src/interpreters/tf/gradients/check.ts"
import { logSoftmax, registerHigherOrderGradients } from "../../src/interpreters/tf/gradients.ts"
import { mulberry32 } from "../../src/random.ts"
import { runs } from "../arbitraries/Runs.ts"

await ensureGradients() // tfjs-core's node build ships without stock gradients
registerHigherOrderGradients()
tf.env().set("PROD", true) // silence tfjs' "running in Node" banner checks

const GRAD_TOL = 1e-2
const HVP_TOL = 2e-2

// ------------------------------------------------------------ random values

type Rng = () => number
const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1)
const normal = (r: Rng) => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r())
const gen = (shape: number[], r: Rng, f: (r: Rng) => number) =>
  tf.tensor(
    Array.from({ length: size(shape) }, () => f(r)),
    shape,
  )
const randn = (shape: number[], r: Rng, scale = 1) => gen(shape, r, (q) => scale * normal(q))
const uniform = (shape: number[], r: Rng, lo = -1, hi = 1) => gen(shape, r, (q) => lo + (hi - lo) * q())
/** |x| >= 0.05 + ..., random sign: away from the kink at 0. */
const awayFromZero = (shape: number[], r: Rng) =>
  gen(shape, r, (q) => (q() < 0.5 ? -1 : 1) * (0.05 + Math.abs(normal(q))))
/** Distinct values 0.05 apart in random order: no near-ties for max pool. */
const distinct = (shape: number[], r: Rng) => {
  const n = size(shape)
  const v = Array.from({ length: n }, (_, i) => 0.05 * (i - n / 2))
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1))
    ;[v[i], v[j]] = [v[j] as number, v[i] as number]
  }
  return tf.tensor(v, shape)
}
const positive = (shape: number[], r: Rng) => gen(shape, r, (q) => 0.5 + Math.abs(normal(q)))

// ------------------------------------------------------------ the two laws

interface Case {
  readonly xs: tf.Tensor[]
  readonly op: (xs: readonly tf.Tensor[]) => tf.Tensor
  readonly eps?: number
  /** Piecewise-pattern tensors; the sample is discarded if they differ at x +- eps v. */
  readonly pattern?: (xs: readonly tf.Tensor[]) => tf.Tensor[]
}

const samePattern = (c: Case, vs: tf.Tensor[], eps: number): boolean => {
  if (c.pattern === undefined) return true
  const at = (s: number) =>
    (c.pattern as (xs: readonly tf.Tensor[]) => tf.Tensor[])(
      c.xs.map((x, i) => tf.add(x, tf.mul(vs[i] as tf.Tensor, s))),
    )
  const [p0, pp, pm] = [at(0), at(eps), at(-eps)]
  return p0.every((p, i) => {
    const a = p.dataSync()
    const b = (pp[i] as tf.Tensor).dataSync()
    const d = (pm[i] as tf.Tensor).dataSync()
    return a.every((v, k) => v === b[k] && v === d[k])
  })
}

const l1 = (a: ArrayLike<number>): number => {
  let s = 0
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] as number)
  return s
}
const l2 = (a: ArrayLike<number>): number => {
  let s = 0
  for (let i = 0; i < a.length; i++) s += (a[i] as number) ** 2
  return Math.sqrt(s)
}

/** Check both laws for one generated case (discarded via fc.pre if it would cross a kink). */
const checkLaws = (label: string, seed: number, mk: (r: Rng) => Case): void => {
  tf.tidy(() => {
    const r = mulberry32(seed)
    const c = mk(r)
    const eps = c.eps ?? 1e-2
    const y0 = c.op(c.xs)
    const R = randn(y0.shape, r)
    const S = randn(y0.shape, r, 0.5)
    const f: ScalarFn = (xs) => {
      const y = c.op(xs)
      return tf.add(tf.sum(tf.mul(R, y)), tf.mul(0.5, tf.sum(tf.mul(S, tf.square(y))))) as tf.Scalar
    }
    // the same head evaluated in float64 on the host: finite differences of f
    // then carry only the rounding of y itself, not of the float32 reduction
    const [Rh, Sh] = [R.dataSync(), S.dataSync()]
    const fHost = (xs: readonly tf.Tensor[]): number => {
      const y = c.op(xs).dataSync()
      let s = 0
      for (let i = 0; i < y.length; i++)
        s += (Rh[i] as number) * (y[i] as number) + 0.5 * (Sh[i] as number) * (y[i] as number) ** 2
      return s
    }
    const vs = c.xs.map((x) => uniform(x.shape, r))
    fc.pre(samePattern(c, vs, eps))

    // gradient law. Tolerance: relative GRAD_TOL, plus an absolute floor of
    // 1e-3 * sum_i |g_i v_i| for directions where <g, v> cancels (float32
    // rounding of y, ~1e-6 relative, is amplified by 1/eps = 100).
    const g = gradients(f, c.xs)
    const gv = g.map((gi, i) => tf.mul(gi, vs[i] as tf.Tensor).dataSync())
    const analytic = gv.reduce((s, a) => s + Array.from(a).reduce((t, b) => t + b, 0), 0)
    const at = (s: number) => fHost(c.xs.map((x, i) => tf.add(x, tf.mul(vs[i] as tf.Tensor, s))))
    const numeric = (at(eps) - at(-eps)) / (2 * eps)
    const gErr = Math.abs(analytic - numeric)
    const gFloor = 1e-3 * gv.reduce((s, a) => s + l1(a), 0)
    assert.ok(
      gErr <= GRAD_TOL * Math.max(Math.abs(analytic), Math.abs(numeric)) + gFloor,
      `${label}: <grad f, v> = ${analytic} vs finite difference ${numeric} (abs err ${gErr.toExponential(2)}, floor ${gFloor.toExponential(2)})`,
    )

    // HVP law, per input. Tolerance: relative HVP_TOL, plus a floor of
    // 1e-5 * ||grad f|| / eps (float32 rounding of the gradients, ~1e-6
    // relative after accumulation, divided by 2 eps by the finite difference).
    const h = hvp(f, c.xs, vs)
    const n = fdHvp(f, c.xs, vs, eps)
    h.forEach((hi, i) => {
      assert.deepEqual(hi.shape, c.xs[i]?.shape)
      const a = hi.dataSync()
      const b = (n[i] as tf.Tensor).dataSync()
      const diff = Float64Array.from(a, (v, k) => v - (b[k] as number))
      const floor = (1e-5 * l2((g[i] as tf.Tensor).dataSync())) / eps
      const e = l2(diff)
      assert.ok(
        e <= HVP_TOL * Math.max(l2(a), l2(b)) + floor,
        `${label}: HVP w.r.t. input ${i} (shape ${c.xs[i]?.shape}): ||hvp - fd|| = ${e.toExponential(2)}, ||hvp|| = ${l2(a).toExponential(2)}, ||fd|| = ${l2(b).toExponential(2)}, floor ${floor.toExponential(2)}`,
      )
    })
  })
}

/** Set by a suite's `before` hook when its backend cannot run the laws. */
let skipReason: string | undefined

/** A law over generated parameters P; values are drawn from a generated seed. */
const law = <P>(
  name: string,
  arb: fc.Arbitrary<P>,
  mk: (p: P, r: Rng) => Case,
  opts: { seed: number; numRuns?: number; todo?: string },
) =>
  it(name, opts.todo === undefined ? {} : { todo: opts.todo }, (t) => {
    if (skipReason !== undefined) {
      t.skip(skipReason)
      return
    }
    fc.assert(
      fc.property(arb, fc.integer({ min: 1, max: 2 ** 31 - 1 }), (p, s) =>
        checkLaws(`${name} ${JSON.stringify(p)}`, s, (r) => mk(p, r)),
      ),
      runs(
        { seed: opts.seed, numRuns: opts.numRuns ?? 12 },
        { endOnFailure: true, includeErrorInReport: true },
        `for ${name}`,
      ),
    )
  })

// ------------------------------------------------------------ op catalogue

type Pad = "same" | "valid" | number | tf.backend_util.ExplicitPadding
const padArb: fc.Arbitrary<Pad> = fc.constantFrom<Pad>("same", "valid", 1, [
  [0, 0],
  [1, 0],
  [0, 2],
  [0, 0],
])

const convArb = fc
  .record({
    n: fc.integer({ min: 1, max: 2 }),
    h: fc.integer({ min: 4, max: 7 }),
    w: fc.integer({ min: 4, max: 7 }),
    cin: fc.integer({ min: 1, max: 3 }),
    cout: fc.integer({ min: 1, max: 3 }),
    k: fc.integer({ min: 1, max: 3 }),
    // either a stride or a dilation (tfjs forbids both > 1)
    sd: fc.constantFrom<[number, number]>([1, 1], [2, 1], [1, 2], [2, 2]),
    pad: padArb,
  })
  .map((p) => ({ ...p, stride: p.sd[0] === 2 && p.sd[1] !== 2 ? 2 : 1, dil: p.sd[1] === 2 ? 2 : 1 }))

const poolArb = fc.record({
  n: fc.integer({ min: 1, max: 2 }),
  h: fc.integer({ min: 3, max: 6 }),
  w: fc.integer({ min: 3, max: 6 }),
  c: fc.integer({ min: 1, max: 3 }),
  k: fc.integer({ min: 2, max: 3 }),
  stride: fc.integer({ min: 1, max: 2 }),
  pad: fc.constantFrom<"same" | "valid" | number>("same", "valid", 1),
})
const poolOk = (p: { h: number; w: number; k: number; pad: "same" | "valid" | number }) =>
  p.pad !== "valid" || (p.h >= p.k && p.w >= p.k)
const explicitPoolPad = (p: { k: number; pad: "same" | "valid" | number }) =>
  typeof p.pad !== "number" || p.pad < p.k

const shapeArb = (rank: number, max = 4) =>
  fc.array(fc.integer({ min: 1, max }), { minLength: rank, maxLength: rank })

const convOp =
  (p: { stride: number; dil: number; pad: Pad }) =>
  ([x, w]: readonly tf.Tensor[]) =>
    tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, p.stride, p.pad, "NHWC", p.dil)

/** Batch norm in train mode from primitives: mean, sub, square, rsqrt. */
const batchNorm = (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor => {
  const axes = [...Array(x.rank - 1).keys()]
  const mu = tf.mean(x, axes, true)
  const centred = tf.sub(x, mu)
  const variance = tf.mean(tf.square(centred), axes, true)
  return tf.add(tf.mul(tf.mul(centred, tf.rsqrt(tf.add(variance, 1e-3))), gamma), beta)
}
/** Batch norm in train mode via tf.moments, sqrt and div. */
const batchNormMoments = (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor => {
  const axes = [...Array(x.rank - 1).keys()]
  const { mean, variance } = tf.moments(x, axes, true)
  return tf.add(tf.div(tf.mul(tf.sub(x, mean), gamma), tf.sqrt(tf.add(variance, 1e-3))), beta)
}

/** Grouped conv as split + conv2d + concat. */
const groupedConv = (
  x: tf.Tensor4D,
  w: tf.Tensor4D,
  groups: number,
  stride: number,
  pad: Pad,
): tf.Tensor4D => {
  const xs = tf.split(x, groups, 3)
  const ws = tf.split(w, groups, 3)
  return tf.concat(
    xs.map((xi, i) => tf.conv2d(k4(xi), ws[i] as tf.Tensor4D, stride, pad)),
    3,
  ) as tf.Tensor4D
}

const k4 = (t: tf.Tensor) => t as tf.Tensor4D

// Conv/pool laws, run on each backend.
const convPoolLaws = (seed: number) => {
  law(
    "conv2d (stride, dilation, same/valid/explicit padding) w.r.t. input and filter",
    convArb.filter(
      (p) => p.pad !== "valid" || (p.h >= (p.k - 1) * p.dil + 1 && p.w >= (p.k - 1) * p.dil + 1),
    ),
    (p, r) => ({
      xs: [randn([p.n, p.h, p.w, p.cin], r), randn([p.k, p.k, p.cin, p.cout], r, 0.5)],
      op: convOp(p),
    }),
    { seed, numRuns: 18 },
  )
  law(
    "depthwiseConv2d (stride or dilation) w.r.t. input and filter",
    convArb.filter(
      (p) => p.pad !== "valid" || (p.h >= (p.k - 1) * p.dil + 1 && p.w >= (p.k - 1) * p.dil + 1),
    ),
    (p, r) => ({
      xs: [randn([p.n, p.h, p.w, p.cin], r), randn([p.k, p.k, p.cin, p.cout], r, 0.5)],
      op: ([x, w]) =>
        tf.depthwiseConv2d(k4(x as tf.Tensor), k4(w as tf.Tensor), p.stride, p.pad, "NHWC", p.dil),
    }),
    { seed: seed + 1, numRuns: 15 },
  )
  law(
    "maxPool (argmax-consistent, no ties) w.r.t. input",
    poolArb.filter((p) => poolOk(p) && explicitPoolPad(p)),
    (p, r) => ({
      xs: [distinct([p.n, p.h, p.w, p.c], r)],
      op: ([x]) => tf.maxPool(k4(x as tf.Tensor), p.k, p.stride, p.pad),
    }),
    { seed: seed + 2, numRuns: 18 },
  )
  law(
    "avgPool (windows overlapping padding) w.r.t. input",
    poolArb.filter((p) => poolOk(p) && explicitPoolPad(p)),
    (p, r) => ({
      xs: [randn([p.n, p.h, p.w, p.c], r)],
      op: ([x]) => tf.avgPool(k4(x as tf.Tensor), p.k, p.stride, p.pad),
    }),
    { seed: seed + 3, numRuns: 18 },
  )
  law(
    "grouped conv (split + conv2d + concat) w.r.t. input and filter",
    fc.record({
      g: fc.integer({ min: 2, max: 3 }),
      c: fc.integer({ min: 1, max: 2 }),
      stride: fc.integer({ min: 1, max: 2 }),
      pad: fc.constantFrom<Pad>("same", "valid"),
    }),
    (p, r) => ({
      xs: [randn([1, 5, 5, p.g * p.c], r), randn([3, 3, p.c, p.g * 2], r, 0.5)],
      op: ([x, w]) => groupedConv(k4(x as tf.Tensor), k4(w as tf.Tensor), p.g, p.stride, p.pad),
    }),
    { seed: seed + 4, numRuns: 9 },
  )
  law(
    "stride and dilation together (dense dilated conv + stridedSlice, as the interpreter lowers it)",
    fc.record({ s: fc.integer({ min: 2, max: 3 }), off: fc.integer({ min: 0, max: 1 }), pad: padArb }),
    (p, r) => ({
      xs: [randn([1, 7, 6, 2], r), randn([2, 2, 2, 3], r, 0.5)],
      op: ([x, w]) => {
        const y = tf.conv2d(k4(x as tf.Tensor), k4(w as tf.Tensor), 1, p.pad, "NHWC", 2)
        return tf.stridedSlice(y, [0, p.off, p.off, 0], y.shape, [1, p.s, p.s, 1])
      },
    }),
    { seed: seed + 5, numRuns: 12 },
  )
  law(
    "maxPool over an input padded with -Infinity (explicit pooling pads, as the interpreter does)",
    fc.record({
      h: fc.integer({ min: 2, max: 5 }),
      w: fc.integer({ min: 2, max: 5 }),
      k: fc.integer({ min: 2, max: 3 }),
    }),
    (p, r) => ({
      xs: [distinct([2, p.h, p.w, 2], r)],
      op: ([x]) =>
        tf.maxPool(
          tf.pad(
            k4(x as tf.Tensor),
            [
              [0, 0],
              [1, p.k - 1],
              [p.k - 1, 0],
              [0, 0],
            ],
            Number.NEGATIVE_INFINITY,
          ),
          p.k,
          1,
          "valid",
        ),
    }),
    { seed: seed + 6, numRuns: 12 },
  )
}

/** conv -> batch norm (train) -> relu -> max pool -> dense -> log-softmax cross-entropy. */
const compositeNet = ([x, w, gamma, beta, wd, bd]: readonly tf.Tensor[], labels: tf.Tensor) => {
  const z = batchNorm(
    tf.conv2d(k4(x as tf.Tensor), k4(w as tf.Tensor), 1, "same"),
    gamma as tf.Tensor,
    beta as tf.Tensor,
  )
  const a = tf.relu(z)
  const m = tf.maxPool(k4(a), 2, 2, "valid")
  const flat = tf.reshape(m, [m.shape[0], -1])
  const logits = tf.add(tf.matMul(flat, wd as tf.Tensor), bd as tf.Tensor)
  return { z, a, loss: tf.neg(tf.mean(tf.sum(tf.mul(labels, logSoftmax(logits)), -1))) }
}
const compositeParams = (r: Rng, n: number, c: number) => [
  randn([n, 4, 4, 2], r),
  randn([3, 3, 2, c], r, 0.5),
  uniform([c], r, 0.5, 1.5),
  randn([c], r, 0.1),
  randn([4 * c, 3], r, 0.5),
  randn([3], r, 0.1),
]
const oneHot = (n: number, r: Rng) =>
  tf.oneHot(
    tf.tensor1d(
      Array.from({ length: n }, () => Math.floor(r() * 3)),
      "int32",
    ),
    3,
  )

const compositeLaw = (seed: number) =>
  law(
    "composite conv -> batchnorm(train) -> relu -> maxpool -> dense -> logSoftmax loss w.r.t. input and all weights",
    fc.record({ n: fc.integer({ min: 2, max: 3 }), c: fc.integer({ min: 2, max: 3 }) }),
    (p, r) => {
      const labels = oneHot(p.n, r)
      return {
        xs: compositeParams(r, p.n, p.c),
        eps: 1e-3,
        op: (xs) => compositeNet(xs, labels).loss,
        pattern: (xs) => {
          const { z, a } = compositeNet(xs, labels)
          return [tf.step(z), tf.grad((u: tf.Tensor) => tf.sum(tf.maxPool(k4(u), 2, 2, "valid")))(a)]
        },
      }
    },
    { seed, numRuns: 12 },
  )

// ------------------------------------------------------------------- cpu

describe("second-order gradients on cpu", () => {
  before(async () => {
    skipReason = undefined
    assert.ok(await tf.setBackend("cpu"))
  })

  convPoolLaws(1001)
  compositeLaw(1101)

  law(
    "smooth composite: conv(stride 2) -> depthwise(dilation 2) -> batchnorm(moments) -> tanh -> avgPool -> grouped conv -> sigmoid -> global mean -> dense -> softmax",
    fc.constant(null),
    (_p, r) => ({
      // deep and strongly curved: eps = 1e-2 leaves ~2% truncation error (eps^2 f'''), 3e-3 about 0.2%
      eps: 3e-3,
      xs: [
        randn([2, 7, 7, 2], r),
        randn([3, 3, 2, 4], r, 0.5),
        randn([3, 3, 4, 1], r, 0.5),
        uniform([4], r, 0.5, 1.5),
        randn([4], r, 0.1),
        randn([2, 2, 2, 4], r, 0.5),
        randn([4, 3], r),
        randn([3], r, 0.1),
      ],
      op: ([x, w1, dw, g, b, wg, wd, bd]) => {
        let h = tf.conv2d(k4(x as tf.Tensor), k4(w1 as tf.Tensor), 2, [
          [0, 0],
          [1, 1],
          [1, 1],
          [0, 0],
        ] as tf.backend_util.ExplicitPadding)
        h = tf.depthwiseConv2d(h, k4(dw as tf.Tensor), 1, "same", "NHWC", 2)
        h = k4(tf.tanh(batchNormMoments(h, g as tf.Tensor, b as tf.Tensor)))
        h = tf.avgPool(h, 3, 2, "same")
        h = k4(tf.sigmoid(groupedConv(h, k4(wg as tf.Tensor), 2, 1, "same")))
        const pooled = tf.mean(h, [1, 2])
        return tf.softmax(tf.add(tf.matMul(pooled, wd as tf.Tensor), bd as tf.Tensor))
      },
    }),
    { seed: 1201, numRuns: 6 },
  )

  law(
    "dense: matMul + bias w.r.t. input, weight and bias",
    fc.record({
      n: fc.integer({ min: 1, max: 4 }),
      a: fc.integer({ min: 1, max: 5 }),
      b: fc.integer({ min: 1, max: 5 }),
    }),
    (p, r) => ({
      xs: [randn([p.n, p.a], r), randn([p.a, p.b], r), randn([p.b], r)],
      op: ([x, w, b]) => tf.add(tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D), b as tf.Tensor),
    }),
    { seed: 1301 },
  )
  law(
    "batch norm (train) from mean/sub/square/rsqrt w.r.t. input, gamma, beta",
    // batch >= 3: with two samples the normalised values are ~ +-1 whatever x is (degenerate curvature)
    shapeArb(4, 3).map(([n, h, w, c]) => [(n as number) + 2, h, w, c] as number[]),
    (s, r) => {
      const c = s[3] as number
      return {
        xs: [randn(s, r), uniform([c], r, 0.5, 1.5), randn([c], r)],
        op: ([x, g, b]) => batchNorm(x as tf.Tensor, g as tf.Tensor, b as tf.Tensor),
      }
    },
    { seed: 1302 },
  )
  law(
    "batch norm (train) from moments/sqrt/div w.r.t. input, gamma, beta",
    shapeArb(2, 4).map(([n, c]) => [(n as number) + 2, c as number]),
    (s, r) => ({
      xs: [randn(s, r), uniform([s[1] as number], r, 0.5, 1.5), randn([s[1] as number], r)],
      op: ([x, g, b]) => batchNormMoments(x as tf.Tensor, g as tf.Tensor, b as tf.Tensor),
    }),
    { seed: 1303 },
  )

  // element-wise and structural ops: name, input generators, op
  type Unary = [string, (s: number[], r: Rng) => tf.Tensor, (x: tf.Tensor) => tf.Tensor]
  const unary: Unary[] = [
    ["relu (inputs away from 0)", awayFromZero, tf.relu],
    ["sigmoid", randn, tf.sigmoid],
    ["tanh", randn, tf.tanh],
    ["exp", (s, r) => randn(s, r, 0.5), tf.exp],
    ["log", positive, tf.log],
    ["abs (inputs away from 0)", awayFromZero, tf.abs],
    ["sign (inputs away from 0)", awayFromZero, tf.sign],
    ["square", randn, tf.square],
    ["sqrt", positive, tf.sqrt],
    ["rsqrt", positive, tf.rsqrt],
    ["pow(x, 3) and pow(x, 0.5)", positive, (x) => tf.add(tf.pow(x, 3), tf.pow(x, 0.5))],
    [
      "clipByValue (inputs >= 0.05 from the bounds)",
      (s, r) =>
        gen(s, r, (q) => {
          const v = 2 * normal(q)
          return Math.abs(Math.abs(v) - 0.5) < 0.05 ? v + 0.1 : v
        }),
      (x) => tf.clipByValue(x, -0.5, 0.5),
    ],
    ["sum over axis", randn, (x) => tf.sum(x, -1)],
    ["mean over axes", randn, (x) => tf.mean(x, [0, x.rank - 1])],
    ["softmax", randn, (x) => tf.softmax(x)],
    ["logSoftmax (primitive-op helper)", randn, (x) => logSoftmax(x)],
    ["logSumExp", randn, (x) => tf.logSumExp(x, -1)],
    ["reshape + transpose", randn, (x) => tf.transpose(tf.reshape(x, [x.shape[0] as number, -1]))],
    [
      "pad",
      randn,
      (x) =>
        tf.pad(
          x,
          x.shape.map((_, i): [number, number] => [i % 2, 1]),
          0.5,
        ),
    ],
    [
      "slice",
      randn,
      (x) =>
        tf.slice(
          x,
          x.shape.map(() => 0),
          x.shape.map((d) => Math.max(1, d - 1)),
        ),
    ],
    ["concat (with itself, squared)", randn, (x) => tf.concat([x, tf.square(x)], -1)],
  ]
  for (const [i, [name, mkX, op]] of unary.entries()) {
    law(name, shapeArb(3), (s, r) => ({ xs: [mkX(s, r)], op: ([x]) => op(x as tf.Tensor) }), {
      seed: 1400 + i,
    })
  }

  type Binary = [
    string,
    (s: number[], r: Rng) => [tf.Tensor, tf.Tensor],
    (a: tf.Tensor, b: tf.Tensor) => tf.Tensor,
  ]
  const binary: Binary[] = [
    [
      "div w.r.t. both",
      (s, r) => [randn(s, r), awayFromZero(s, r)],
      (a, b) => tf.div(a, tf.add(b, tf.mul(tf.sign(b), 0.5))),
    ],
    ["pow(a, b) w.r.t. base and exponent", (s, r) => [positive(s, r), uniform(s, r, 0.5, 2)], tf.pow],
    ["mul + sub w.r.t. both", (s, r) => [randn(s, r), randn(s, r)], (a, b) => tf.sub(tf.mul(a, b), b)],
    [
      "maximum (no ties)",
      (s, r) => {
        const a = randn(s, r)
        return [a, tf.add(a, awayFromZero(s, r))]
      },
      tf.maximum,
    ],
    [
      "minimum (no ties)",
      (s, r) => {
        const a = randn(s, r)
        return [a, tf.add(a, awayFromZero(s, r))]
      },
      tf.minimum,
    ],
    ["concat w.r.t. both", (s, r) => [randn(s, r), randn(s, r)], (a, b) => tf.concat([a, b], 0)],
  ]
  for (const [i, [name, mk, op]] of binary.entries()) {
    law(name, shapeArb(3), (s, r) => ({ xs: mk(s, r), op: ([a, b]) => op(a as tf.Tensor, b as tf.Tensor) }), {
      seed: 1500 + i,
    })
  }

  law(
    "where/select w.r.t. both branches",
    shapeArb(3),
    (s, r) => {
      const cond = tf.greater(uniform(s, r), 0)
      return {
        xs: [randn(s, r), randn(s, r)],
        op: ([a, b]) => tf.where(cond, tf.sin(a as tf.Tensor), tf.square(b as tf.Tensor)),
      }
    },
    { seed: 1601 },
  )
  law(
    "depthToSpace (no stock gradient)",
    fc.record({
      n: fc.integer({ min: 1, max: 2 }),
      h: fc.integer({ min: 1, max: 3 }),
      c: fc.integer({ min: 1, max: 2 }),
      bs: fc.integer({ min: 2, max: 3 }),
    }),
    (p, r) => ({
      xs: [randn([p.n, p.h, p.h + 1, p.bs * p.bs * p.c], r)],
      op: ([x]) => tf.depthToSpace(k4(x as tf.Tensor), p.bs),
    }),
    { seed: 1602, numRuns: 9 },
  )
  law(
    "stridedSlice (no stock gradient): begin/end/strides and masks",
    fc
      .array(
        fc.record({
          d: fc.integer({ min: 1, max: 5 }),
          b: fc.nat(4),
          len: fc.integer({ min: 1, max: 5 }),
          st: fc.integer({ min: 1, max: 3 }),
        }),
        { minLength: 1, maxLength: 3 },
      )
      .chain((axes) =>
        fc.record({
          axes: fc.constant(axes),
          beginMask: fc.nat(7),
          endMask: fc.nat(7),
          shrinkAxisMask: fc.constantFrom(0, 0, 1, 2),
        }),
      ),
    (p, r) => {
      const shape = p.axes.map((a) => a.d)
      const begin = p.axes.map((a) => Math.min(a.b, a.d - 1))
      const end = p.axes.map((a, i) => Math.min((begin[i] as number) + a.len, a.d))
      const strides = p.axes.map((a) => a.st)
      // tfjs' forward stridedSlice is itself wrong when shrinkAxisMask meets a
      // non-unit stride (it indexes the input with the shrunk rank), so shrink
      // only with unit strides
      const shrink = p.shrinkAxisMask & ((1 << shape.length) - 1)
      const st = shrink === 0 ? strides : strides.map(() => 1)
      return {
        xs: [randn(shape, r)],
        op: ([x]) => tf.stridedSlice(x as tf.Tensor, begin, end, st, p.beginMask, p.endMask, 0, 0, shrink),
      }
    },
    { seed: 1604, numRuns: 36 },
  )
  law(
    "tf.logSoftmax (customGrad: second derivative lost)",
    shapeArb(2),
    (s, r) => ({ xs: [randn(s, r)], op: ([x]) => tf.logSoftmax(x as tf.Tensor) }),
    {
      seed: 1603,
      numRuns: 2,
      todo: "tf.logSoftmax is a tf.customGrad op; its gradient closes over an off-tape output and cannot be fixed by registerGradient: use logSoftmax from gradients.ts",
    },
  )
  law(
    "tf.losses.softmaxCrossEntropy (customGrad: second derivative lost)",
    shapeArb(2),
    (s, r) => {
      const labels = tf.softmax(randn(s, r))
      return { xs: [randn(s, r)], op: ([x]) => tf.losses.softmaxCrossEntropy(labels, x as tf.Tensor) }
    },
    {
      seed: 1605,
      numRuns: 2,
      todo: "tf.losses.softmaxCrossEntropy is a tf.customGrad op; its gradient closes over an off-tape output and cannot be fixed by registerGradient: use logSoftmax from gradients.ts",
    },
  )
})

// ------------------------------------------------------------------- wasm

/** Kernels the conv/pool laws need on wasm, including those only gradients use. */
const wasmNeeds = [
  tf.Conv2D,
  tf.Conv2DBackpropInput,
  tf.Conv2DBackpropFilter,
  tf.DepthwiseConv2dNative,
  tf.DepthwiseConv2dNativeBackpropInput,
  tf.DepthwiseConv2dNativeBackpropFilter,
  tf.MaxPool,
  tf.MaxPoolGrad,
  tf.AvgPool,
  tf.AvgPoolGrad,
]

describe("second-order gradients on wasm (conv/pool)", () => {
  before(async () => {
    // The wasm kernels training needs (Conv2DBackpropFilter, ...) are bridged by
    // src/backend/wasmBridge.ts when present.
    const bridgeModule = "../../src/backend/wasmBridge.ts"
    const bridge = (await import(bridgeModule).catch(() => undefined)) as
      | { bridgeMissingKernels?: (b: string) => void }
      | undefined
    bridge?.bridgeMissingKernels?.("wasm")
    const ready = await tf.setBackend("wasm").catch(() => false)
    const missing = ready
      ? wasmNeeds.filter((k) => tf.getKernel(k, "wasm") === undefined)
      : ["<wasm backend failed to initialise>"]
    skipReason =
      missing.length > 0
        ? `wasm backend lacks kernels ${missing.join(", ")} (to be supplied under src/backend/)`
        : undefined
  })
  convPoolLaws(2001)
  compositeLaw(2101)
})

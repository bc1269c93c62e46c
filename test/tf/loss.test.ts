/**
 * The tf loss interpreter on hand-made environments: each bad input fails with a
 * `LossError` naming what is missing or mismatched, each loss's per-sample values
 * average to its value, adapters with and without bias, slices at the edge of
 * their axis, and `dependingOn`'s selection of the φ-terms. (The laws compare the
 * values with the float64 reference on generated inputs; this file covers what
 * they do not reach: errors, `perSampleValues` and `dependingOn`.)
 */
import assert from "node:assert/strict"
import { before, describe, test } from "node:test"
import * as tf from "@tensorflow/tfjs-core"
import type * as Loss from "../../src/dsl/Loss.ts"
import * as Tf from "../../src/interpreters/tf/index.ts"
import * as Losses from "../../src/interpreters/tf/loss.ts"

before(async () => {
  await Tf.ready("cpu")
})

const out = (model: string): Loss.Signal => ({ _tag: "Output", model })
const tap = (model: string, name: string): Loss.Signal => ({ _tag: "Tap", model, tap: name })
const joints: Loss.Signal = { _tag: "Field", field: "joints3d" }
const slice = (signal: Loss.Signal, start: number, size: number): Loss.Signal => ({
  _tag: "Slice",
  signal,
  start,
  size,
})
const se = (p: Loss.Signal, t: Loss.Signal, reduce: "sum" | "mean" = "sum"): Loss.Loss => ({
  _tag: "SquaredError",
  prediction: p,
  target: t,
  reduce,
})
const at = (
  pairs: readonly (readonly [Loss.Signal, Loss.Signal])[],
  variant: "paper" | "code",
): Loss.Loss => ({
  _tag: "AttentionTransfer",
  pairs,
  variant,
})
const weighted = (model: string, phi: string, p: 1 | 2 = 2): Loss.Loss => ({
  _tag: "WeightedNorm",
  model,
  phi,
  p,
})
const norm = (model: string, sigma: number, p: 1 | 2 = 2): Loss.Loss => ({ _tag: "Norm", model, sigma, p })
const sum = (...terms: Loss.Loss[]): Loss.Loss => ({ _tag: "Sum", terms })
const scale = (factor: number, loss: Loss.Loss): Loss.Loss => ({ _tag: "Scale", factor, loss })

/** A batch of two: model `s` (student) and `t` (teacher) with `[2, 2, 2, C]` taps, 3D joints `[2, 3]`. */
const env = (): Losses.Env => ({
  outputs: {
    s: {
      y: tf.tensor2d([
        [1, 2, 3],
        [0, -1, 0.5],
      ]),
      taps: {
        a: tf.tensor4d([1, 2, 0, 1, 3, 0, 1, 1, 2, 2, 0, 0, 1, 0, 0, 4], [2, 2, 2, 2]),
        v: tf.tensor2d([
          [1, 0],
          [2, -1],
        ]),
        logvar: tf.tensor2d([[0.5], [-1]]),
        wide: tf.zeros([2, 2, 2, 2, 2]),
        small: tf.zeros([2, 1, 2, 2]),
        column: tf.zeros([2, 2, 1]),
        cube: tf.zeros([2, 3, 1]),
      },
    },
    t: {
      y: tf.tensor2d([
        [0, 0, 0],
        [1, 1, 1],
      ]),
      taps: {
        // 3 channels against the student's 2: attention maps compare spatial positions only.
        a: tf.tensor4d(
          [0, 1, 1, 2, 0, 0, 1, 1, 1, 0, 0, 1, 3, 1, 0, 0, 2, 1, 0, 1, 1, 2, 2, 0],
          [2, 2, 2, 3],
        ),
        v: tf.tensor2d([
          [0.5, 1, -1],
          [1, 0, 2],
        ]),
      },
    },
  },
  batch: {
    joints3d: tf.tensor2d([
      [1, 1, 1],
      [0, 0, 0],
    ]),
  },
  params: {
    s: { w: tf.tensor1d([1, -2]), b: tf.tensor1d([3]) },
    adapter: { kernel: tf.tensor2d([1, 0, 2, 0, 1, -1], [2, 3]), bias: tf.tensor1d([0.5, 0, -0.5]) },
    bare: { kernel: tf.tensor2d([1, 0, 2, 0, 1, -1], [2, 3]) },
    nokernel: { bias: tf.tensor1d([1]) },
    badkernel: { kernel: tf.ones([3, 3]) },
    empty: {},
  },
  meta: {
    phi: { w: tf.tensor1d([0.5, 2]), b: tf.tensor1d([1]) },
    partial: { w: tf.tensor1d([1, 1]) },
    wrongShape: { w: tf.tensor1d([1, 1, 1]), b: tf.tensor1d([1]) },
  },
})

const value = (l: Loss.Loss, e = env()): number => Losses.evaluate(l, e).dataSync()[0]!
const perSample = (l: Loss.Loss, e = env()): number[] => [...Losses.perSampleValues(l, e).dataSync()]
const close = (a: number, b: number, tol = 1e-5) =>
  assert.ok(Math.abs(a - b) <= tol * (1 + Math.abs(b)), `${a} vs ${b}`)

/** Asserts a `LossError` whose message matches every pattern. */
const fails = (run: () => unknown, ...patterns: RegExp[]) =>
  assert.throws(run, (e: unknown) => {
    assert.ok(e instanceof Losses.LossError, `not a LossError: ${String(e)}`)
    assert.equal(e._tag, "LossError")
    for (const p of patterns) assert.match(e.message, p)
    return true
  })

describe("bad input is a LossError naming it", () => {
  test("a model, tap or field the environment does not have", () => {
    fails(() => value(se(out("nobody"), joints)), /no outputs of model "nobody"/)
    fails(() => value(se(tap("nobody", "a"), joints)), /no outputs of model "nobody"/)
    fails(() => value(se(tap("s", "nope"), joints)), /model "s" has no tap "nope"/)
    fails(() => value(se(out("s"), { _tag: "Field", field: "depth" })), /the batch has no field "depth"/)
  })

  test("a slice outside the last axis, or not of whole indices", () => {
    for (const [start, size] of [
      [0.5, 1],
      [0, 1.5],
      [-1, 2],
      [0, 0],
      [2, 2],
      [3, 1],
    ] as const)
      fails(
        () => value(se(slice(out("s"), start, size), slice(out("s"), 0, 1))),
        new RegExp(`slice \\[${start}, ${start + size}\\) is outside the last axis of size 3`),
      )
  })

  test("signals of different shapes", () => {
    fails(() => value(se(out("s"), tap("s", "v"))), /SquaredError: shapes \[2, 3\] and \[2, 2\] differ/)
    fails(() => value(se(out("s"), tap("s", "logvar"))), /shapes \[2, 3\] and \[2, 1\] differ/)
    // Same sizes, different rank.
    fails(() => value(se(tap("s", "v"), tap("s", "column"))), /shapes \[2, 2\] and \[2, 2, 1\] differ/)
    fails(
      () => value({ _tag: "AbsoluteError", prediction: out("s"), target: tap("s", "v"), reduce: "sum" }),
      /AbsoluteError: shapes/,
    )
  })

  test("the re-projection's pose and camera shapes", () => {
    const reproject = (pose: Loss.Signal, camera: Loss.Signal): Loss.Loss =>
      se({ _tag: "Reproject", pose, camera, imageSize: 64, baseScale: 0.25 }, tap("s", "v"))
    fails(() => value(reproject(tap("s", "v"), out("s"))), /pose must be \[B, 3J\].*got \[2, 2\]/)
    fails(() => value(reproject(tap("s", "a"), out("s"))), /pose must be \[B, 3J\].*got \[2, 2, 2, 2\]/)
    fails(() => value(reproject(slice(out("s"), 0, 0), out("s"))), /slice \[0, 0\)/)
    fails(
      () => value(reproject(out("s"), tap("s", "v"))),
      /camera must be \[B, 3\] for a pose \[2, 3\], got \[2, 2\]/,
    )
    fails(() => value(reproject(out("s"), tap("t", "a"))), /camera must be \[B, 3\].*got \[2, 2, 2, 3\]/)
    // Rank 3, with the second axis of the right size: rejected for its rank alone.
    fails(() => value(reproject(tap("s", "cube"), out("s"))), /pose must be \[B, 3J\].*got \[2, 3, 1\]/)
    fails(
      () => value(reproject(out("s"), tap("s", "cube"))),
      /camera must be \[B, 3\] for a pose \[2, 3\], got \[2, 3, 1\]/,
    )
    const e = env()
    const one = { ...e, batch: { joints3d: tf.tensor2d([[1, 1, 1]]) } }
    fails(
      () => value(reproject(out("s"), joints), one),
      /camera must be \[B, 3\] for a pose \[2, 3\], got \[1, 3\]/,
    )
  })

  test("attention pairs of different spatial sizes", () => {
    fails(
      () => value(at([[tap("s", "a"), tap("s", "small")]], "paper")),
      /AttentionTransfer pair 0:.*spatial size/,
    )
    fails(
      () =>
        value(
          at(
            [
              [tap("s", "a"), tap("t", "a")],
              [tap("s", "a"), tap("s", "wide")],
            ],
            "code",
          ),
        ),
      /pair 1: activations \[2, 2, 2, 2\] and \[2, 2, 2, 2, 2\] differ/,
    )
  })

  test("adapters, parameters and meta-parameters that are missing or mis-shaped", () => {
    const tr = (adapter: string): Loss.Loss => ({
      _tag: "Transfer",
      student: tap("s", "v"),
      teacher: tap("t", "v"),
      adapter,
    })
    fails(() => value(tr("nokernel")), /adapter "nokernel" has no kernel/)
    fails(() => value(tr("badkernel")), /adapter "badkernel": kernel \[3, 3\] does not map 2 channels/)
    fails(() => value(tr("missing")), /no parameters of "missing"/)
    fails(() => value(norm("missing", 1)), /no parameters of "missing"/)
    fails(() => value(weighted("s", "nophi")), /no meta-parameters "nophi"/)
    fails(() => value(weighted("s", "partial")), /meta-parameters "partial" have no entry "b" of "s"/)
    fails(
      () => value(weighted("s", "wrongShape")),
      /WeightedNorm wrongShape\/w: shapes \[3\] and \[2\] differ/,
    )
  })

  test("an uncertainty whose prediction and target differ, or whose log-variance is not one scalar per sample", () => {
    fails(
      () =>
        value({
          _tag: "Uncertainty",
          prediction: out("s"),
          target: tap("s", "v"),
          logVariance: tap("s", "logvar"),
          norm: "l1",
          reduce: "norm",
        }),
      /Uncertainty: shapes \[2, 3\] and \[2, 2\] differ/,
    )
    fails(
      () =>
        value({
          _tag: "Uncertainty",
          prediction: out("s"),
          target: joints,
          logVariance: tap("s", "v"),
          norm: "l2",
          reduce: "norm",
        }),
      /log-variance must be one scalar per sample, got \[2, 2\]/,
    )
  })

  test("per-sample values of losses that have none", () => {
    fails(() => perSample(weighted("s", "phi")), /WeightedNorm of "s" reads parameters.*no per-sample values/)
    fails(() => perSample(norm("s", 1)), /Norm of "s" reads parameters/)
    fails(() => perSample(sum()), /an empty sum has no per-sample values/)
    fails(() => perSample(at([], "paper")), /an attention transfer without pairs has no per-sample values/)
    fails(() => perSample(sum(se(out("s"), joints), norm("s", 1))), /Norm of "s"/)
  })
})

describe("values", () => {
  test("each batch-mean loss is the mean of its per-sample values, and they are the hand-computed ones", () => {
    const cases: Array<[string, Loss.Loss, number[]]> = [
      ["squared error, sum", se(out("s"), joints), [5, 1 + 0.25]],
      ["squared error, mean", se(out("s"), joints, "mean"), [5 / 3, 1.25 / 3]],
      [
        "absolute error, sum",
        { _tag: "AbsoluteError", prediction: out("s"), target: joints, reduce: "sum" },
        [3, 1.5],
      ],
      ["slice at the end of the axis", se(slice(out("s"), 1, 2), slice(joints, 0, 2)), [1 + 4, 1 + 0.25]],
      ["scale", scale(3, se(out("s"), joints)), [15, 3.75]],
      ["sum", sum(se(out("s"), joints), se(out("s"), joints, "mean")), [5 + 5 / 3, 1.25 + 1.25 / 3]],
    ]
    for (const [name, l, expected] of cases) {
      const got = perSample(l)
      assert.equal(got.length, 2, name)
      got.forEach((g, i) => close(g, expected[i]!))
      close(value(l), (expected[0]! + expected[1]!) / 2)
    }
  })

  test("a transfer through an adapter: s·K + b, and s·K when the adapter has no bias", () => {
    const tr = (adapter?: string): Loss.Loss => ({
      _tag: "Transfer",
      student: tap("s", "v"),
      teacher: tap("t", "v"),
      adapter,
    })
    // s = [1, 0] → s·K = [1, 0, 2]; s = [2, −1] → [2, −1, 5]. K = [[1, 0, 2], [0, 1, −1]].
    const withBias = [
      [1.5, 0, 1.5],
      [2.5, -1, 4.5],
    ]
    const bare = [
      [1, 0, 2],
      [2, -1, 5],
    ]
    const t = [
      [0.5, 1, -1],
      [1, 0, 2],
    ]
    const sq = (m: number[][]) => m.map((row, i) => row.reduce((a, x, j) => a + (x - t[i]![j]!) ** 2, 0))
    perSample(tr("adapter")).forEach((g, i) => close(g, sq(withBias)[i]!))
    perSample(tr("bare")).forEach((g, i) => close(g, sq(bare)[i]!))
    // Without an adapter the student's and teacher's signals must already agree in shape.
    fails(() => value(tr()), /Transfer: shapes \[2, 2\] and \[2, 3\] differ/)
  })

  test("attention maps: the paper's Σ over positions against the code's mean, and a pair list that sums", () => {
    const e = env()
    const maps = (name: "s" | "t") => {
      const q = e.outputs[name]!.taps.a!.arraySync() as number[][][][]
      return q.map((sample) => {
        const a = sample.flat().map((c) => c.reduce((x, v) => x + v * v, 0))
        const n = Math.sqrt(a.reduce((x, v) => x + v * v, 0))
        return a.map((v) => v / n)
      })
    }
    const [ms, mt] = [maps("s"), maps("t")]
    const dist = ms.map((m, i) => m.reduce((x, v, j) => x + (v - mt[i]![j]!) ** 2, 0))
    const pair: [Loss.Signal, Loss.Signal] = [tap("s", "a"), tap("t", "a")]
    perSample(at([pair], "paper")).forEach((g, i) => close(g, dist[i]!))
    perSample(at([pair], "code")).forEach((g, i) => close(g, dist[i]! / 4))
    perSample(at([pair, pair], "paper")).forEach((g, i) => close(g, 2 * dist[i]!))
    close(value(at([pair, pair], "code")), (dist[0]! + dist[1]!) / 4)
    assert.equal(value(at([], "paper")), 0)
  })

  test("the uncertainty losses per sample (Eqs. 8 and 9, and their mean forms)", () => {
    const u = (norm: "l1" | "l2", reduce: "norm" | "mean"): Loss.Loss => ({
      _tag: "Uncertainty",
      prediction: out("s"),
      target: joints,
      logVariance: tap("s", "logvar"),
      norm,
      reduce,
    })
    const alpha = [0.5, -1]
    const d = [
      [0, 1, 2],
      [0, -1, 0.5],
    ]
    const smooth = (x: number) => (Math.abs(x) < 1 ? x * x * 0.5 : Math.abs(x) - 0.5)
    const expect = {
      l2norm: d.map(
        (r, i) => (Math.exp(-alpha[i]!) / 2) * Math.sqrt(r.reduce((a, x) => a + x * x, 0)) + alpha[i]! / 2,
      ),
      l1norm: d.map(
        (r, i) => Math.exp(-alpha[i]!) * (r.reduce((a, x) => a + Math.abs(x), 0) - 0.5) + alpha[i]! / 2,
      ),
      l2mean: d.map(
        (r, i) => (Math.exp(-alpha[i]!) / 2) * (r.reduce((a, x) => a + x * x, 0) / 3) + alpha[i]! / 2,
      ),
      l1mean: d.map(
        (r, i) => Math.exp(-alpha[i]!) * (r.reduce((a, x) => a + smooth(x), 0) / 3) + alpha[i]! / 2,
      ),
    }
    perSample(u("l2", "norm")).forEach((g, i) => close(g, expect.l2norm[i]!))
    perSample(u("l1", "norm")).forEach((g, i) => close(g, expect.l1norm[i]!))
    perSample(u("l2", "mean")).forEach((g, i) => close(g, expect.l2mean[i]!))
    perSample(u("l1", "mean")).forEach((g, i) => close(g, expect.l1mean[i]!))
    close(value(u("l1", "mean")), (expect.l1mean[0]! + expect.l1mean[1]!) / 2)
  })

  test("parameter norms: Σ φ⊙θ², Σ φ⊙|θ|, σ·Σ|θ|^p, and 0 over no parameters or no terms", () => {
    // θ = {w: [1, −2], b: [3]}, φ = {w: [0.5, 2], b: [1]}.
    close(value(weighted("s", "phi")), 0.5 * 1 + 2 * 4 + 9)
    close(value(weighted("s", "phi", 1)), 0.5 * 1 + 2 * 2 + 3)
    close(value(norm("s", 0.1)), 0.1 * (1 + 4 + 9))
    close(value(norm("s", 0.1, 1)), 0.1 * (1 + 2 + 3))
    assert.equal(value(norm("empty", 5)), 0)
    assert.equal(value(weighted("empty", "phi")), 0)
    assert.equal(value(sum()), 0)
    close(value(sum(norm("s", 1), scale(2, weighted("s", "phi")))), 14 + 2 * 17.5)
  })
})

describe("dependingOn: the terms of a loss that read φ", () => {
  const data = se(out("s"), joints)
  test("selects the φ-terms of sums, keeping their scale factors", () => {
    assert.deepEqual(Losses.dependingOn(weighted("s", "phi"), "phi"), weighted("s", "phi"))
    assert.equal(Losses.dependingOn(weighted("s", "other"), "phi"), undefined)
    assert.deepEqual(
      Losses.dependingOn(
        sum(data, scale(2, weighted("s", "phi")), weighted("s", "other"), norm("s", 1)),
        "phi",
      ),
      sum(scale(2, weighted("s", "phi"))),
    )
    assert.deepEqual(
      Losses.dependingOn(scale(0.5, sum(data, sum(weighted("s", "phi"), data))), "phi"),
      scale(0.5, sum(sum(weighted("s", "phi")))),
    )
  })
  test("is undefined for a loss without a φ-term", () => {
    const leaves: Loss.Loss[] = [
      data,
      { _tag: "AbsoluteError", prediction: out("s"), target: joints, reduce: "sum" },
      at([[tap("s", "a"), tap("t", "a")]], "paper"),
      { _tag: "Transfer", student: tap("s", "v"), teacher: tap("t", "v"), adapter: undefined },
      {
        _tag: "Uncertainty",
        prediction: out("s"),
        target: joints,
        logVariance: tap("s", "logvar"),
        norm: "l2",
        reduce: "norm",
      },
      norm("s", 1),
    ]
    for (const l of leaves) assert.equal(Losses.dependingOn(l, "phi"), undefined, l._tag)
    assert.equal(Losses.dependingOn(sum(...leaves), "phi"), undefined)
    assert.equal(Losses.dependingOn(scale(3, sum(data, weighted("s", "other"))), "phi"), undefined)
    assert.equal(Losses.dependingOn(sum(), "phi"), undefined)
  })
})

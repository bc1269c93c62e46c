/** Laws of the hand-pose metrics. */
import assert from "node:assert/strict"
import { test } from "node:test"
import fc from "fast-check"
import * as Metrics from "../../src/data/metrics.ts"
import { runs } from "../arbitraries/Runs.ts"

const coord = fc.double({ min: -300, max: 300, noNaN: true, noDefaultInfinity: true })
/** A pair of equally long 3D pose batches (1–4 samples of 21 joints). */
const pair = fc
  .integer({ min: 1, max: 4 })
  .chain((b) => fc.tuple(...[0, 1].map(() => fc.array(coord, { minLength: b * 63, maxLength: b * 63 }))))
  .map(([a, b]) => [Float64Array.from(a!), Float64Array.from(b!)] as const)

test("law: EPE is zero for identical poses and symmetric", () => {
  fc.assert(
    fc.property(pair, fc.constantFrom(2 as const, 3 as const), ([a, b], dims) => {
      const n = a.length - (a.length % (dims * 21))
      const x = a.subarray(0, n)
      const y = b.subarray(0, n)
      assert.equal(Metrics.epe(x, x, dims), 0)
      assert.equal(Metrics.epe(x, y, dims), Metrics.epe(y, x, dims))
      assert.ok(Metrics.epe(x, y, dims) >= 0)
    }),
    runs({ seed: 1234, numRuns: 200 }),
  )
})

test("law: PCK is monotone in the threshold and lies in [0, 1]", () => {
  const t = fc.double({ min: 0, max: 600, noNaN: true })
  fc.assert(
    fc.property(pair, t, t, ([a, b], t1, t2) => {
      const [lo, hi] = t1 <= t2 ? [t1, t2] : [t2, t1]
      const p1 = Metrics.pck(a, b, lo)
      const p2 = Metrics.pck(a, b, hi)
      assert.ok(p1 <= p2, `pck(${lo}) = ${p1} > pck(${hi}) = ${p2}`)
      assert.ok(p1 >= 0 && p2 <= 1)
    }),
    runs({ seed: 99, numRuns: 200 }),
  )
})

test("law: AUC lies in [0, 1], is 1 for a perfect prediction and 0 when every error exceeds the range", () => {
  const range = fc.tuple(
    fc.double({ min: 0, max: 100, noNaN: true }),
    fc.double({ min: 0.5, max: 100, noNaN: true }),
  )
  fc.assert(
    fc.property(pair, range, ([a, b], [lo, width]) => {
      const v = Metrics.auc(a, b, lo, lo + width)
      assert.ok(v >= 0 && v <= 1, `auc ${v}`)
      assert.equal(Metrics.auc(a, a, lo, lo + width), 1)
      const far = a.map((x) => x + 1000)
      assert.equal(Metrics.auc(a, far, lo, lo + width), 0)
    }),
    runs({ seed: 2020, numRuns: 200 }),
  )
})

test("metrics: hand-computed values (EPE, PCK, AUC over 20–50 mm)", () => {
  // Two joints (dims 3): errors 10 mm and 40 mm.
  const truth = new Float64Array(6)
  const pred = Float64Array.from([10, 0, 0, 0, 0, 40])
  assert.equal(Metrics.epe(pred, truth), 25)
  assert.equal(Metrics.pck(pred, truth, 9.9), 0)
  assert.equal(Metrics.pck(pred, truth, 10), 0.5)
  assert.equal(Metrics.pck(pred, truth, 39.9), 0.5)
  assert.equal(Metrics.pck(pred, truth, 40), 1)
  // PCK over 20..50 mm is 0.5 below 40 mm and 1 from 40 mm on; 20 steps put a threshold every 30/19 mm.
  const t = Metrics.thresholds(20, 50, 20)
  let area = 0
  for (let i = 1; i < t.length; i++) {
    const f = (x: number) => (x >= 40 ? 1 : 0.5)
    area += ((f(t[i]!) + f(t[i - 1]!)) / 2) * (t[i]! - t[i - 1]!)
  }
  assert.ok(Math.abs(Metrics.auc(pred, truth, 20, 50) - area / 30) < 1e-12)
  assert.ok(Math.abs(Metrics.auc(pred, truth, 20, 50) - (0.5 * 20 + 1 * 10) / 30) < 0.03)
})

test("metrics: report3d turns normalised poses back into mm with the per-sample scale", () => {
  const truth = new Float32Array(63 * 2)
  const pred = new Float32Array(63 * 2)
  pred[3] = 0.5 // sample 0, joint 1: half a bone off
  pred[63 + 3] = 0.5 // sample 1, joint 1
  const r = Metrics.report3d(pred, truth, [40, 20])
  assert.ok(Math.abs(r.epe - (20 + 10) / 42) < 1e-9)
  assert.equal(r.pck[20], 1)
})

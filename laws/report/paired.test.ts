/**
 * The paired-difference statistics of the summary (`src/report/paired.ts`,
 * `Summary.aggregate`), on generated data:
 * - Student's t quantiles t_{0.975, n−1} for n = 2 … 30 equal the published
 *   values; the quantile inverts the distribution function for any p and df;
 * - a known difference δ between a row and its reference is recovered exactly
 *   when the seeds move both alike, however large the seed effect, and the
 *   rows are paired by seed, not by position;
 * - with d_i = δ + σ·ε_i (ε standard normal) the 95 % interval covers δ in
 *   95 % of draws, and its mean width is 2·t_{0.975,n−1}·σ·c4(n)/√n, shrinking
 *   like 1/√n;
 * - the interval is symmetric about the mean and moves and scales with the data.
 * fast-check runs with the fixed seed printed in each test's name.
 */
import assert from "node:assert/strict"
import { test } from "node:test"
import fc from "fast-check"
import * as Random from "../../src/data/random.ts"
import * as Paired from "../../src/report/paired.ts"
import * as Summary from "../../src/report/summary.ts"
import type * as RunFiles from "../../src/run-dir/schema.ts"

const SEED = 20_261_201

/** t_{0.975, df} for df = 1 … 29 (scipy.stats.t.ppf(0.975, df), 15 significant digits). */
const T975 = [
  12.7062047361747, 4.30265272974946, 3.18244630528371, 2.77644510519779, 2.57058183563631, 2.44691185114498,
  2.36462425159278, 2.30600413520417, 2.2621571627982, 2.22813885198627, 2.20098516009164, 2.17881282966723,
  2.16036865646279, 2.1447866879178, 2.13144954555978, 2.11990529922125, 2.10981557783332, 2.10092204024104,
  2.09302405440831, 2.08596344726586, 2.07961384472768, 2.07387306790403, 2.06865761041905, 2.06389856162802,
  2.0595385527533, 2.05552943864287, 2.05183051648028, 2.04840714179525, 2.0452296421327,
]

const close = (a: number, b: number, rel: number, what: string) =>
  assert.ok(Math.abs(a - b) <= rel * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`)

test("t_{0.975, n−1} for n = 2 … 30 equals the published quantiles", () => {
  T975.forEach((t, i) => {
    close(Paired.tQuantile(0.975, i + 1), t, 1e-12, `df ${i + 1}`)
  })
  // Closed forms: df 1 is Cauchy, df 2 is (2p − 1)/√(2p(1 − p)).
  close(Paired.tQuantile(0.975, 1), Math.tan(Math.PI * 0.475), 1e-13, "df 1")
  close(Paired.tQuantile(0.975, 2), 0.95 / Math.sqrt(2 * 0.975 * 0.025), 1e-13, "df 2")
})

test(`law: the t quantile inverts the t distribution function and is odd (seed ${SEED})`, () => {
  fc.assert(
    fc.property(
      fc.double({ min: 0.001, max: 0.999, noNaN: true }),
      fc.integer({ min: 1, max: 200 }),
      (p, df) => {
        const t = Paired.tQuantile(p, df)
        close(Paired.tCdf(t, df), p, 1e-10, `F(t(${p}, ${df}))`)
        close(Paired.tQuantile(1 - p, df), -t, 1e-9, "symmetry")
      },
    ),
    { seed: SEED, numRuns: 200 },
  )
})

/** One seed's results with the reference row "ref" and a row "row", in the given order. */
const results = (seed: number, ref: number, row: number, rowFirst: boolean): RunFiles.Results => {
  const cell = (name: string, epe: number): RunFiles.StagedRow => ({
    stage: `evaluate ${name}`,
    table: "T",
    row: name,
    column: "c",
    model: name,
    samples: 1,
    epe,
    auc20to50: -epe / 1000,
    auc0to50: 0,
    pck: {},
    pckCurve: [],
  })
  const rows = [cell("ref", ref), cell("row", row)]
  return {
    program: "p",
    seed,
    backend: "cpu",
    seconds: 0,
    references: { T: "ref" },
    rows: rowFirst ? rows.reverse() : rows,
  }
}

test(`law: a known difference is recovered exactly, whatever the seed effect, pairing by seed (seed ${SEED})`, () => {
  fc.assert(
    fc.property(
      fc.double({ min: -20, max: 20, noNaN: true }),
      fc.array(fc.record({ effect: fc.double({ min: 0, max: 1000, noNaN: true }), rowFirst: fc.boolean() }), {
        minLength: 2,
        maxLength: 12,
      }),
      fc.integer({ min: 0, max: 1000 }),
      (delta, seeds, shuffle) => {
        // Seeds listed in a shuffled order, each seed's rows in either order.
        const list = seeds.map((s, i) => results(i + 1, 50 + s.effect, 50 + s.effect + delta, s.rowFirst))
        const order = Random.permutation(Random.make("paired-law", shuffle), list.length)
        const summary = Summary.aggregate(Array.from(order, (i) => list[i]!))
        const cell = summary.cells.find((c) => c.row === "row")!
        const p = cell.paired!
        assert.equal(p.reference, "ref")
        assert.equal(p.n, seeds.length)
        // Only rounding of (50 + effect + δ) − (50 + effect) separates the differences from δ.
        const eps = 1e-12 * 1100
        assert.ok(Math.abs(p.epe.mean - delta) <= eps, `${p.epe.mean} vs ${delta}`)
        assert.ok(p.epe.low! <= p.epe.mean && p.epe.mean <= p.epe.high!)
        assert.ok(p.epe.high! - p.epe.low! <= 2 * T975[0]! * eps, `width ${p.epe.high! - p.epe.low!}`)
        assert.equal(p.epe.wins, delta < -eps ? seeds.length : delta > eps ? 0 : p.epe.wins)
        // The AUC here is −EPE/1000: its difference is −δ/1000, and it wins where EPE wins.
        assert.ok(Math.abs(p.auc20to50.mean + delta / 1000) <= eps)
        assert.equal(summary.cells.find((c) => c.row === "ref")!.paired, undefined)
        // Unpaired, the seed effect would swamp δ: the row's own spread over seeds is the effects'.
        if (cell.epe.std > 1) assert.ok(p.epe.high! - p.epe.low! < cell.epe.std)
      },
    ),
    { seed: SEED, numRuns: 200 },
  )
})

/** Differences δ + σ·ε_i, i < n, of draw `k`. */
const draw = (delta: number, sigma: number, n: number, key: number, k: number): number[] => {
  const r = Random.make("paired-draw", key, k)
  return Array.from({ length: n }, () => delta + sigma * Random.normal(r))
}

/** c4(n) = E[s]/σ for n normal samples: √(2/(n−1)) · Γ(n/2)/Γ((n−1)/2). */
const c4 = (n: number): number => {
  // Γ(n/2)/Γ((n−1)/2) by its recurrence from n = 2 (1/√π) and n = 3 (√π/2): r(n + 2) = r(n)·n/(n − 1).
  let r = n % 2 === 0 ? 1 / Math.sqrt(Math.PI) : Math.sqrt(Math.PI) / 2
  for (let m = n % 2 === 0 ? 2 : 3; m < n; m += 2) r *= m / (m - 1)
  return Math.sqrt(2 / (n - 1)) * r
}

const DRAWS = 2000

test(`law: the 95 % interval covers δ in 95 % of draws, for every n from 2 (seed ${SEED})`, () => {
  // Over DRAWS draws the coverage has standard deviation √(0.95·0.05/DRAWS) ≈ 0.005: allow 4.5 of them.
  const slack = 4.5 * Math.sqrt((0.95 * 0.05) / DRAWS)
  fc.assert(
    fc.property(
      fc.double({ min: -10, max: 10, noNaN: true }),
      fc.double({ min: 0.01, max: 5, noNaN: true }),
      fc.integer({ min: 2, max: 30 }),
      fc.nat(),
      (delta, sigma, n, key) => {
        let covered = 0
        for (let k = 0; k < DRAWS; k++) {
          const d = Paired.difference(draw(delta, sigma, n, key, k))
          if (d.low! <= delta && delta <= d.high!) covered++
        }
        const coverage = covered / DRAWS
        assert.ok(Math.abs(coverage - 0.95) <= slack, `n ${n}: coverage ${coverage}`)
      },
    ),
    { seed: SEED, numRuns: 12 },
  )
})

test(`law: the interval's mean width is 2·t·σ·c4(n)/√n, shrinking like 1/√n (seed ${SEED})`, () => {
  fc.assert(
    fc.property(
      fc.double({ min: 0.01, max: 5, noNaN: true }),
      fc.integer({ min: 2, max: 16 }),
      fc.nat(),
      (sigma, n, key) => {
        const meanWidth = (m: number) => {
          let sum = 0
          for (let k = 0; k < DRAWS; k++) {
            const d = Paired.difference(draw(0, sigma, m, key, k))
            sum += d.high! - d.low!
          }
          return sum / DRAWS
        }
        const expected = (m: number) => (2 * T975[m - 2]! * sigma * c4(m)) / Math.sqrt(m)
        // The width is proportional to s, whose relative spread is √(1 − c4²)/c4: over DRAWS draws, allow 4.5 of it.
        const tolerance = (m: number) => (4.5 * Math.sqrt(1 - c4(m) ** 2)) / c4(m) / Math.sqrt(DRAWS)
        for (const m of [n, n + 14]) {
          const w = meanWidth(m)
          assert.ok(Math.abs(w / expected(m) - 1) <= tolerance(m), `n ${m}: ${w} vs ${expected(m)}`)
        }
        assert.ok(meanWidth(n + 14) < meanWidth(n))
      },
    ),
    { seed: SEED, numRuns: 10 },
  )
})

test(`law: the interval is symmetric about the mean, moves with a shift and scales with a factor (seed ${SEED})`, () => {
  fc.assert(
    fc.property(
      fc.array(fc.double({ min: -100, max: 100, noNaN: true }), { minLength: 2, maxLength: 30 }),
      fc.double({ min: -100, max: 100, noNaN: true }),
      fc.double({ min: 0.01, max: 100, noNaN: true }),
      (ds, shift, factor) => {
        const d = Paired.difference(ds)
        const scale = 1e-9 * (1 + Math.max(...ds.map(Math.abs)) + Math.abs(shift)) * (1 + factor)
        assert.ok(Math.abs(d.mean - d.low! - (d.high! - d.mean)) <= scale)
        const moved = Paired.difference(ds.map((x) => x + shift))
        assert.ok(Math.abs(moved.low! - (d.low! + shift)) <= T975[0]! * scale)
        assert.ok(Math.abs(moved.high! - (d.high! + shift)) <= T975[0]! * scale)
        const scaled = Paired.difference(ds.map((x) => x * factor))
        assert.ok(Math.abs(scaled.low! - d.low! * factor) <= T975[0]! * scale)
        assert.ok(Math.abs(scaled.high! - d.high! * factor) <= T975[0]! * scale)
        assert.equal(Paired.wins(ds, "lower"), ds.filter((x) => x < 0).length)
        assert.equal(Paired.wins(ds, "higher"), ds.filter((x) => x > 0).length)
      },
    ),
    { seed: SEED, numRuns: 300 },
  )
  // One seed: the mean alone, no interval.
  assert.deepEqual(Paired.difference([1.5]), { n: 1, mean: 1.5 })
})

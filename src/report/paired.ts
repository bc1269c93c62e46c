/**
 * Paired comparisons over seeds: within a seed, rows of a table share their
 * initialisation and batch order (common random numbers), so a row's
 * difference from the table's reference row in the same seed removes what
 * the seed alone moves. This module holds the statistics: Student's t
 * interval of the mean paired difference, and the seeds a row wins.
 *
 * @module
 */

/** The mean of paired differences over seeds, with its two-sided interval (absent for one seed). */
export interface Difference {
  /** Seeds paired. */
  readonly n: number
  readonly mean: number
  /** The interval's bounds at the chosen level; absent when `n < 2` (no spread to estimate). */
  readonly low?: number
  readonly high?: number
}

// ---- Student's t ------------------------------------------------------------------------------

/** ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms: ~1e-15 relative). */
const lnGamma = (x: number): number => {
  const c = [
    0.9999999999998099, 676.5203681218851, -1259.1392167224028, 771.3234287776531, -176.6150291621406,
    12.507343278686905, -0.13857109526572012, 9.984369578019572e-6, 1.5056327351493116e-7,
  ]
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x)
  const z = x - 1
  let a = c[0]!
  const t = z + 7.5
  for (let i = 1; i < 9; i++) a += c[i]! / (z + i)
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a)
}

/** The continued fraction of the incomplete beta function (modified Lentz). */
const betaFraction = (a: number, b: number, x: number): number => {
  const tiny = 1e-300
  let c = 1
  let d = 1 - ((a + b) * x) / (a + 1)
  if (Math.abs(d) < tiny) d = tiny
  d = 1 / d
  let h = d
  for (let m = 1; m <= 10_000; m++) {
    const m2 = 2 * m
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2))
    d = 1 + aa * d
    if (Math.abs(d) < tiny) d = tiny
    c = 1 + aa / c
    if (Math.abs(c) < tiny) c = tiny
    d = 1 / d
    h *= d * c
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1))
    d = 1 + aa * d
    if (Math.abs(d) < tiny) d = tiny
    c = 1 + aa / c
    if (Math.abs(c) < tiny) c = tiny
    d = 1 / d
    const delta = d * c
    h *= delta
    if (Math.abs(delta - 1) < 1e-16) break
  }
  return h
}

/** The regularised incomplete beta function I_x(a, b). */
const incompleteBeta = (x: number, a: number, b: number): number => {
  if (x <= 0) return 0
  if (x >= 1) return 1
  const front = Math.exp(lnGamma(a + b) - lnGamma(a) - lnGamma(b) + a * Math.log(x) + b * Math.log(1 - x))
  return x < (a + 1) / (a + b + 2)
    ? (front * betaFraction(a, b, x)) / a
    : 1 - (front * betaFraction(b, a, 1 - x)) / b
}

/** P(T ≤ t) for Student's t with `df` degrees of freedom. */
export const tCdf = (t: number, df: number): number => {
  const tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5)
  return t >= 0 ? 1 - tail : tail
}

/** The `p` quantile of Student's t with `df` degrees of freedom (bisection on {@link tCdf}, to the last bit). */
export const tQuantile = (p: number, df: number): number => {
  if (!(p > 0 && p < 1)) throw new Error(`tQuantile: p must be in (0, 1), got ${p}`)
  if (!(df > 0)) throw new Error(`tQuantile: degrees of freedom must be positive, got ${df}`)
  if (p < 0.5) return -tQuantile(1 - p, df)
  let lo = 0
  let hi = 1
  while (tCdf(hi, df) < p) hi *= 2
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2
    if (mid === lo || mid === hi) break
    if (tCdf(mid, df) < p) lo = mid
    else hi = mid
  }
  return (lo + hi) / 2
}

// ---- paired differences -----------------------------------------------------------------------

/**
 * The mean of `differences` (one per seed) and its Student's t interval at
 * `level` (default 95 %): mean ± t_{(1+level)/2, n−1} · s / √n, with s the
 * sample standard deviation. One difference gives the mean alone.
 */
export const difference = (differences: readonly number[], level = 0.95): Difference => {
  const n = differences.length
  if (n === 0) throw new Error("paired difference of no seeds")
  const mean = differences.reduce((a, b) => a + b, 0) / n
  if (n < 2) return { n, mean }
  const s = Math.sqrt(differences.reduce((a, d) => a + (d - mean) ** 2, 0) / (n - 1))
  const half = (tQuantile((1 + level) / 2, n - 1) * s) / Math.sqrt(n)
  return { n, mean, low: mean - half, high: mean + half }
}

/** Seeds a row wins: its value is better than the reference's (`lower` is better, as for EPE, or higher, as for AUC). */
export const wins = (differences: readonly number[], better: "lower" | "higher"): number =>
  differences.filter((d) => (better === "lower" ? d < 0 : d > 0)).length

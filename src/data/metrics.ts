/**
 * Hand-pose metrics as the papers report them: EPE (mean joint error), PCK
 * (fraction of joints within a threshold) and the AUC of the PCK curve over
 * a threshold range (20–50 mm on STB, 0–50 mm on RHD), in 3D (mm) and 2D
 * (pixels). Poses are flat arrays of `B·J·dims` numbers.
 *
 * The AUC follows hand3d's `EvalUtil.get_measures`: PCK at `steps` evenly
 * spaced thresholds from `lo` to `hi` (inclusive), integrated with the
 * trapezoid rule and divided by `hi − lo`.
 *
 * @module
 */
import * as Preprocess from "./preprocess.ts"

type Poses = ArrayLike<number>

/** Per-joint Euclidean distances between two equally long pose arrays of `dims`-vectors. */
export const distances = (pred: Poses, truth: Poses, dims: 2 | 3 = 3): Float64Array => {
  if (pred.length !== truth.length || pred.length % dims !== 0)
    throw new Error(`metrics: prediction has ${pred.length} numbers, truth ${truth.length} (dims ${dims})`)
  const n = pred.length / dims
  const out = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    let s = 0
    for (let d = 0; d < dims; d++) {
      const e = pred[i * dims + d]! - truth[i * dims + d]!
      s += e * e
    }
    out[i] = Math.sqrt(s)
  }
  return out
}

const mean = (xs: ArrayLike<number>): number => {
  let s = 0
  for (let i = 0; i < xs.length; i++) s += xs[i]!
  return xs.length === 0 ? Number.NaN : s / xs.length
}

/** End-point error: the mean joint distance, in the poses' units (mm for 3D, pixels for 2D). */
export const epe = (pred: Poses, truth: Poses, dims: 2 | 3 = 3): number => mean(distances(pred, truth, dims))

/** Fraction of joints whose distance is at most `threshold`, from precomputed `distances`. */
export const pckOf = (dist: ArrayLike<number>, threshold: number): number => {
  let k = 0
  for (let i = 0; i < dist.length; i++) if (dist[i]! <= threshold) k++
  return dist.length === 0 ? Number.NaN : k / dist.length
}

/** PCK at one threshold. */
export const pck = (pred: Poses, truth: Poses, threshold: number, dims: 2 | 3 = 3): number =>
  pckOf(distances(pred, truth, dims), threshold)

/** `steps` evenly spaced thresholds from `lo` to `hi` inclusive. */
export const thresholds = (lo: number, hi: number, steps = 20): Float64Array =>
  Float64Array.from({ length: steps }, (_, i) => (steps === 1 ? lo : lo + ((hi - lo) * i) / (steps - 1)))

/** The PCK curve at the given thresholds. */
export const pckCurve = (dist: ArrayLike<number>, at: ArrayLike<number>): Float64Array => {
  const sorted = Float64Array.from(dist).sort()
  // Binary search: count of distances ≤ t.
  const count = (t: number) => {
    let lo = 0
    let hi = sorted.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (sorted[mid]! <= t) lo = mid + 1
      else hi = mid
    }
    return lo
  }
  return Float64Array.from(at, (t) => count(t) / sorted.length)
}

/** Area under the PCK curve over [lo, hi], normalised to [0, 1]. */
export const aucOf = (dist: ArrayLike<number>, lo: number, hi: number, steps = 20): number => {
  if (!(hi > lo)) throw new Error(`metrics: AUC range must have hi > lo, got [${lo}, ${hi}]`)
  const t = thresholds(lo, hi, steps)
  const c = pckCurve(dist, t)
  if (steps < 2) return c[0]!
  // Evenly spaced thresholds: the trapezoid rule over (hi − lo) is the mean of the trapezoid heights,
  // written so that rounding can never push the result past 1.
  let heights = 0
  for (let i = 1; i < t.length; i++) heights += (c[i]! + c[i - 1]!) / 2
  return heights / (t.length - 1)
}

/** AUC of the PCK curve between two predictions. */
export const auc = (pred: Poses, truth: Poses, lo: number, hi: number, dims: 2 | 3 = 3, steps = 20): number =>
  aucOf(distances(pred, truth, dims), lo, hi, steps)

/** The 3D summary the papers report. */
export interface Report3d {
  /** Mean joint error, mm. */
  readonly epe: number
  /** AUC over 20–50 mm (STB convention). */
  readonly auc20to50: number
  /** AUC over 0–50 mm (RHD convention). */
  readonly auc0to50: number
  /** PCK at 20, 30, 40, 50 mm. */
  readonly pck: { readonly 20: number; readonly 30: number; readonly 40: number; readonly 50: number }
}

/**
 * 3D metrics in mm from normalised poses (`B·63`, units of the MCP–PIP bone)
 * and the per-sample bone lengths (`B`, mm), as `Batch.joints3d` / `Batch.scale`
 * give them: the papers provide root position and scale at test time.
 */
export const report3d = (pred: Poses, truth: Poses, scale: ArrayLike<number>): Report3d => {
  const d = distances(Preprocess.denormalise(pred, scale), Preprocess.denormalise(truth, scale), 3)
  return {
    epe: mean(d),
    auc20to50: aucOf(d, 20, 50),
    auc0to50: aucOf(d, 0, 50),
    pck: { 20: pckOf(d, 20), 30: pckOf(d, 30), 40: pckOf(d, 40), 50: pckOf(d, 50) },
  }
}

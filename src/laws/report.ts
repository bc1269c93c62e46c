/**
 * What a law check returns: every comparison it made (what, measured error,
 * tolerance, the worst element), whether the law holds, and an assert form
 * that throws one readable {@link LawViolation}. No tfjs here.
 *
 * @module
 */
/** One comparison of a check: `error ≤ tolerance` holds, or it does not. */
export interface Comparison {
  /** What was compared, e.g. `train output`, `tap t0`, `gradient 0/kernel`, `student: 1/gamma`. */
  readonly what: string
  readonly ok: boolean
  /** The measured error in the comparison's own measure (Infinity when the shapes differ). */
  readonly error: number
  readonly tolerance: number
  /** The measure and the worst element: `max |tf − ref|/(1 + |ref|) … at [3]: tf 0.12, reference 0.09`. */
  readonly detail: string
}

export interface LawReport {
  /** The law and the value it was checked on, e.g. `the interpreters agree on a network of depth 7 on [5, 5, 2]`. */
  readonly law: string
  readonly ok: boolean
  readonly comparisons: readonly Comparison[]
  /** The comparisons over their tolerance (empty when `ok`). */
  readonly failures: readonly Comparison[]
  /** Finite-difference directions skipped because they crossed a kink (relu, max pool, |·|). */
  readonly skipped: number
  /** The comparison closest to (or furthest over) its tolerance: the law's margin. */
  readonly worst: Comparison | undefined
}

/**
 * A law does not hold: `message` lists every failed comparison, one per line. A plain
 * `Error` (tagged like the project's `Data.TaggedError`s) rather than an Effect error:
 * fast-check attaches it as the `cause` of its own failure, and Node's test reporters
 * print an `Error` cause with its lines intact, an Effect error as an escaped object.
 */
export class LawViolation extends Error {
  readonly _tag = "LawViolation"
  constructor(readonly report: LawReport) {
    super(format(report))
    this.name = "LawViolation"
  }
}

const ratio = (c: Comparison): number =>
  c.tolerance > 0 ? c.error / c.tolerance : c.error > 0 ? Infinity : 0

/**
 * A report from its comparisons. The law fails when a comparison is over its
 * tolerance, or when more than half of the finite-difference directions were
 * skipped at kinks (then too little was checked to say it holds).
 */
export const report = (law: string, comparisons: readonly Comparison[], skipped = 0): LawReport => {
  const failures = comparisons.filter((c) => !c.ok)
  const worst = comparisons.reduce<Comparison | undefined>(
    (w, c) => (w === undefined || ratio(c) > ratio(w) ? c : w),
    undefined,
  )
  const tooManyKinks = skipped > comparisons.length
  return {
    law,
    ok: failures.length === 0 && !tooManyKinks,
    comparisons,
    failures: tooManyKinks
      ? [
          ...failures,
          {
            what: "finite differences",
            ok: false,
            error: skipped,
            tolerance: comparisons.length,
            detail: `${skipped} directions crossed a kink, ${comparisons.length} were compared: move the point away from relu/max-pool/|·| kinks or lower the step`,
          },
        ]
      : failures,
    skipped,
    worst,
  }
}

const e = (x: number): string => (Number.isFinite(x) ? x.toExponential(2) : String(x))

/** One line per failed comparison, under a headline naming the law. */
export const format = (r: LawReport): string =>
  r.ok
    ? `${r.law}: holds (${r.comparisons.length} comparisons, worst ${r.worst === undefined ? "none" : `${r.worst.what} ${e(r.worst.error)} ≤ ${e(r.worst.tolerance)}`})`
    : [
        `${r.law}: does not hold; ${r.comparisons.filter((c) => !c.ok).length} of ${r.comparisons.length} comparisons over tolerance${r.skipped > 0 ? `, ${r.skipped} skipped at kinks` : ""}`,
        ...r.failures.map(
          (c) => `  ${c.what}: error ${e(c.error)} > tolerance ${e(c.tolerance)}; ${c.detail}`,
        ),
      ].join("\n")

/** `r` when the law holds; otherwise throws a {@link LawViolation} whose message is {@link format}`(r)`. */
export const orThrow = (r: LawReport): LawReport => {
  if (!r.ok) throw new LawViolation(r)
  return r
}

// ---- comparisons of arrays -------------------------------------------------------------------

/** Names of the two sides of a comparison, e.g. `{ actual: "tf", expected: "reference" }`. */
export interface Sides {
  readonly actual: string
  readonly expected: string
}

const sameShape = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((d, i) => d === b[i])

const fmtShape = (s: readonly number[]): string => `[${s.join(", ")}]`

/** Shapes that must be equal (e.g. static against runtime). */
export const shapes = (
  what: string,
  actual: readonly number[] | undefined,
  expected: readonly number[] | undefined,
  sides: Sides,
): Comparison => {
  const ok = actual !== undefined && expected !== undefined && sameShape(actual, expected)
  return {
    what,
    ok,
    error: ok ? 0 : Infinity,
    tolerance: 0,
    detail: `${sides.actual} ${actual === undefined ? "missing" : fmtShape(actual)}, ${sides.expected} ${expected === undefined ? "missing" : fmtShape(expected)}`,
  }
}

/** The element where |a − b| is largest. */
const worstElement = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let at = 0
  let worst = -1
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(a[i]! - b[i]!)
    if (!(d <= worst)) {
      worst = d
      at = i
    }
  }
  return at
}

const lengthMismatch = (
  what: string,
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  sides: Sides,
): Comparison => ({
  what,
  ok: false,
  error: Infinity,
  tolerance: 0,
  detail: `${sides.actual} has ${a.length} values, ${sides.expected} ${b.length}`,
})

/** Element-wise: max_i |a_i − b_i| / (1 + |b_i|) ≤ tolerance (NaN fails). */
export const elementwise = (
  what: string,
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tolerance: number,
  sides: Sides,
): Comparison => {
  if (actual.length !== expected.length) return lengthMismatch(what, actual, expected, sides)
  let error = 0
  let at = 0
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!) / (1 + Math.abs(expected[i]!))
    if (!(d <= error)) {
      error = d
      at = i
    }
  }
  if (Number.isNaN(error)) error = Infinity
  return {
    what,
    ok: error <= tolerance,
    error,
    tolerance,
    detail: `max |${sides.actual} − ${sides.expected}|/(1 + |${sides.expected}|) at element ${at}: ${sides.actual} ${actual[at]}, ${sides.expected} ${expected[at]}`,
  }
}

export const norm2 = (xs: ArrayLike<number>): number => {
  let s = 0
  for (let i = 0; i < xs.length; i++) s += xs[i]! * xs[i]!
  return Math.sqrt(s)
}

/**
 * As vectors: ‖a − b‖₂ / (‖b‖₂ + scale) ≤ tolerance, where `scale` is what the
 * error is also allowed to be relative to (the norm of the whole gradient, a
 * round-off floor); NaN fails.
 */
export const normwise = (
  what: string,
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tolerance: number,
  scale: number,
  sides: Sides,
): Comparison => {
  if (actual.length !== expected.length) return lengthMismatch(what, actual, expected, sides)
  const diff = norm2(Float64Array.from(actual, (a, i) => a - expected[i]!))
  const ref = norm2(expected)
  const denominator = ref + scale
  let error = denominator > 0 ? diff / denominator : diff === 0 ? 0 : Infinity
  if (Number.isNaN(error)) error = Infinity
  const at = worstElement(actual, expected)
  return {
    what,
    ok: error <= tolerance,
    error,
    tolerance,
    detail: `‖${sides.actual} − ${sides.expected}‖ = ${e(diff)} relative to ‖${sides.expected}‖ = ${e(ref)} + ${e(scale)}; worst element ${at}: ${sides.actual} ${actual[at]}, ${sides.expected} ${expected[at]}`,
  }
}

/** Two numbers: |a − b| ≤ tolerance·max(|a|, |b|) + floor, reported as |a − b| / (max(|a|, |b|) + floor/tolerance). */
export const scalars = (
  what: string,
  actual: number,
  expected: number,
  tolerance: number,
  floor: number,
  sides: Sides,
): Comparison => {
  const diff = Math.abs(actual - expected)
  const bound = tolerance * Math.max(Math.abs(actual), Math.abs(expected)) + floor
  const ok = diff <= bound
  // Expressed as a relative error against `tolerance`, so that reports compare like with like.
  const error = bound > 0 ? (diff / bound) * tolerance : diff === 0 ? 0 : Infinity
  return {
    what,
    ok,
    error: Number.isNaN(error) ? Infinity : error,
    tolerance,
    detail: `${sides.actual} ${actual}, ${sides.expected} ${expected} (|Δ| = ${e(diff)}, allowed ${e(bound)} incl. round-off floor ${e(floor)})`,
  }
}

/**
 * A failed float64 comparison, decided again with differences at a smaller step: a kink within
 * the first step spoils that difference but (usually) not the second, and then the two differences
 * disagree with each other ("kink": the tensor is skipped, it says nothing); a wrong derivative
 * is wrong at both steps, which then agree with each other (the first failure stands).
 */
export const recheck = (
  first: Comparison,
  fd: ArrayLike<number>,
  smaller: ArrayLike<number>,
  actual: ArrayLike<number>,
  tol: number,
  whole: number,
  s: Sides,
  step: string,
): Comparison | "kink" => {
  const again = normwise(first.what, actual, smaller, tol, whole, s)
  if (again.ok)
    return {
      ...again,
      detail: `${again.detail} (differences at step ${step}: the first step crossed a kink)`,
    }
  return normwise(first.what, smaller, fd, tol, whole, s).ok ? first : "kink"
}

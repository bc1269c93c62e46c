/**
 * What the bench reports from its rounds: per-round ratios summarised by their
 * median and range, and text made free of this machine's absolute paths.
 *
 * @module
 */

/** The median of a non-empty list (the mean of the middle two for an even length). */
export const median = (xs: readonly number[]): number => {
  if (xs.length === 0) throw new Error("median of no values")
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

export interface Spread {
  readonly median: number
  readonly min: number
  readonly max: number
  readonly rounds: readonly number[]
}

const round = (x: number, digits: number): number => Math.round(x * 10 ** digits) / 10 ** digits

/** Median, min and max of per-round values (rounded to `digits` decimals for the report). */
export const spread = (values: readonly number[], digits = 3): Spread => ({
  median: round(median(values), digits),
  min: round(Math.min(...values), digits),
  max: round(Math.max(...values), digits),
  rounds: values.map((v) => round(v, digits)),
})

/**
 * Per round, how many times faster side `a` is than side `b` (images/s of a ÷
 * images/s of b = ms per step of b ÷ ms per step of a); both lists have one
 * entry per round, measured in the same round.
 */
export const perRoundRatio = (aMs: readonly number[], bMs: readonly number[]): number[] => {
  if (aMs.length !== bMs.length) throw new Error(`rounds differ: ${aMs.length} and ${bMs.length}`)
  return aMs.map((a, i) => bMs[i]! / a)
}

/** Relative difference |a − b| / min(a, b): how far two runs' median ratios are apart. */
export const relativeDifference = (a: number, b: number): number => Math.abs(a - b) / Math.min(a, b)

/**
 * `text` with machine-specific absolute paths removed: paths under `root` (the
 * repository) become relative to it; any other absolute path keeps only its
 * last two segments (`…/tfjs-node/index.js`), enough to say what was meant;
 * the system's own (`/usr/bin/python3`) are the same on every machine and stay.
 */
const SYSTEM = /^\/(usr|bin|etc|lib)\//

export const scrubPaths = (text: string, root: string): string => {
  const base = root.endsWith("/") ? root : `${root}/`
  return text
    .split(base)
    .join("")
    .replace(/(^|[\s'"(=:])(\/(?!\/)[^\s'"():,]+)/g, (_m, lead: string, path: string) => {
      if (SYSTEM.test(path)) return `${lead}${path}`
      const parts = path.split("/").filter((p) => p !== "")
      return `${lead}…/${parts.slice(-2).join("/")}`
    })
}

/** Every string inside a JSON value scrubbed with {@link scrubPaths}. */
export const scrubJson = <T>(value: T, root: string): T =>
  JSON.parse(JSON.stringify(value), (_k, v) => (typeof v === "string" ? scrubPaths(v, root) : v)) as T

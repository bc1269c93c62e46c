/**
 * Seeded pseudo-random numbers for data generation and shuffling.
 *
 * A generator is derived from a list of integers (`seed`, `epoch`, sample
 * index …) so every sample and every epoch has its own stream: generating
 * sample 7 never depends on having generated samples 0–6.
 *
 * @module
 */

/** A deterministic stream of numbers in [0, 1). */
export interface Random {
  /** Uniform in [0, 1). */
  readonly next: () => number
}

// 32-bit avalanche mix (from MurmurHash3's finaliser): spreads nearby seeds apart.
const mix = (h: number): number => {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b)
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35)
  return (h ^ (h >>> 16)) >>> 0
}

/** Hashes a list of integers (and strings) to one 32-bit seed. */
export const hash = (...parts: ReadonlyArray<number | string>): number => {
  let h = 0x9e3779b9
  for (const p of parts) {
    if (typeof p === "string") {
      for (let i = 0; i < p.length; i++) h = mix(h ^ p.charCodeAt(i)) + 0x6d2b79f5
    } else {
      // Two halves so seeds above 2^32 still matter.
      h = mix(h ^ (p >>> 0)) + 0x6d2b79f5
      h = mix(h ^ (Math.floor(p / 4294967296) >>> 0))
    }
  }
  return h >>> 0
}

/** A mulberry32 generator seeded by `hash(...parts)`. */
export const make = (...parts: ReadonlyArray<number | string>): Random => {
  let state = hash(...parts)
  return {
    next: () => {
      state = (state + 0x6d2b79f5) | 0
      let t = Math.imul(state ^ (state >>> 15), 1 | state)
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296
    },
  }
}

/** Uniform in [lo, hi). */
export const uniform = (r: Random, lo: number, hi: number): number => lo + (hi - lo) * r.next()

/** Uniform integer in [0, n). */
export const int = (r: Random, n: number): number => Math.floor(r.next() * n)

/** Standard normal (Box–Muller). */
export const normal = (r: Random): number => {
  const u = 1 - r.next()
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r.next())
}

/** One element of a non-empty list. */
export const pick = <A>(r: Random, items: readonly A[]): A => items[int(r, items.length)]!

/** A seeded Fisher–Yates permutation of `0 … n-1`. */
export const permutation = (r: Random, n: number): Uint32Array => {
  const p = new Uint32Array(n)
  for (let i = 0; i < n; i++) p[i] = i
  for (let i = n - 1; i > 0; i--) {
    const j = int(r, i + 1)
    const t = p[i]!
    p[i] = p[j]!
    p[j] = t
  }
  return p
}

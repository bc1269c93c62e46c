/**
 * mulberry32, the small seeded generator every interpreter uses for
 * initialisation and the laws for their inputs: pure JavaScript, so the same
 * seed gives the same numbers on every backend.
 *
 * @module
 */

/** A stream of uniforms in [0, 1) from a 32-bit seed. */
export const mulberry32 = (seed: number): (() => number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * The 21-joint hand skeleton and the joint orders of the datasets.
 *
 * cmkg's canonical layout is the one the CMKG paper calls "the layout of
 * MANO" (also FreiHAND's): index 0 is the wrist, then thumb, index, middle,
 * ring and little finger, four joints each from the root to the tip.
 * A pose is a flat array of 21 × 3 numbers, joint-major (`x0 y0 z0 x1 …`).
 *
 * @module
 */

/** Number of hand joints. */
export const COUNT = 21

/** Fingers in MANO order. */
export const FINGERS = ["thumb", "index", "middle", "ring", "little"] as const
export type Finger = (typeof FINGERS)[number]

/** Joint names in MANO order (thumb: CMC, MCP, IP, tip; others: MCP, PIP, DIP, tip). */
export const NAMES: readonly string[] = [
  "wrist",
  ...FINGERS.flatMap((f) => [1, 2, 3, 4].map((k) => `${f}_${k}`)),
]

/** Index of joint `k` (0 = root … 3 = tip) of finger `f` (0 = thumb … 4 = little) in MANO order. */
export const index = (finger: number, k: number): number => 1 + 4 * finger + k

/** The wrist, the root of every pose. */
export const WRIST = 0
/** Middle finger MCP and PIP: the bone whose length normalises a pose's scale. */
export const MIDDLE_MCP = index(2, 0)
export const MIDDLE_PIP = index(2, 1)

/** `PARENT[j]`: the joint that bone `j` hangs from (the wrist for every finger root; -1 for the wrist). */
export const PARENT: readonly number[] = [
  -1,
  ...FINGERS.flatMap((_, f) => [0, index(f, 0), index(f, 1), index(f, 2)]),
]

// ---- dataset orders -----------------------------------------------------------

/**
 * A joint order, as a permutation `toMano` with `mano[i] = dataset[toMano[i]]`:
 * entry `i` names the dataset index that holds MANO joint `i`.
 */
export type Order = readonly number[]

/**
 * RHD (one hand's 21 joints): 0 wrist, then thumb, index, middle, ring, little,
 * each from the tip to the palm (1 = thumb tip, 4 = thumb root).
 */
export const RHD: Order = [0, ...FINGERS.flatMap((_, f) => [0, 1, 2, 3].map((k) => 1 + 4 * f + (3 - k)))]

/**
 * STB: 0 palm centre, then little, ring, middle, index, thumb, each from the
 * root to the tip (`loc_bn_pinky_L_01 … _04`). Index 0 is the palm centre, not
 * the wrist: see `Preprocess.palmToWrist`.
 */
export const STB: Order = [0, ...FINGERS.flatMap((_, f) => [0, 1, 2, 3].map((k) => 1 + 4 * (4 - f) + k))]

/** FreiHAND already uses the MANO layout. */
export const FREIHAND: Order = Array.from({ length: COUNT }, (_, i) => i)

/** Whether `order` is a permutation of `0 … n-1`. */
export const isPermutation = (order: Order): boolean => {
  const seen = new Uint8Array(order.length)
  for (const i of order) {
    if (!Number.isInteger(i) || i < 0 || i >= order.length || seen[i] === 1) return false
    seen[i] = 1
  }
  return true
}

/** The inverse permutation: `reorder(reorder(p, order), invert(order))` is `p`. */
export const invert = (order: Order): Order => {
  const inv = new Array<number>(order.length)
  order.forEach((src, dst) => {
    inv[src] = dst
  })
  return inv
}

/**
 * Re-orders a flat pose of `order.length` joints with `dims` numbers each:
 * joint `i` of the result is joint `order[i]` of the input.
 */
export const reorder = <A extends Float32Array | Float64Array>(pose: A, order: Order, dims: number): A => {
  const out = new (pose.constructor as new (n: number) => A)(pose.length)
  for (let i = 0; i < order.length; i++) {
    const src = order[i]! * dims
    for (let d = 0; d < dims; d++) out[i * dims + d] = pose[src + d]!
  }
  return out
}

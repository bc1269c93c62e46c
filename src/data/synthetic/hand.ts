/**
 * A kinematic right hand: 21 joints in the MANO order (see `Joints`), bone
 * lengths of an adult hand, joint-angle limits, random plausible poses, and
 * the capsules that give the skeleton a body for rendering.
 *
 * Hand frame (millimetres): the wrist at the origin, +y from the wrist towards
 * the middle finger, +x towards the thumb, +z out of the palm (volar side).
 * Flexion turns a bone from +y towards +z.
 *
 * @module
 */
import * as Joints from "../joints.ts"
import * as Random from "../random.ts"

/** A 3-vector. */
export type Vec3 = readonly [number, number, number]

/** A segment with a radius at each end, drawn as a chain of spheres. `part` 0 = skin, 1 = forearm. */
export interface Capsule {
  readonly a: Vec3
  readonly b: Vec3
  readonly ra: number
  readonly rb: number
  readonly part: 0 | 1
}

/** A posed hand in its own frame: joints (21 × 3, mm) and the capsules of its body. */
export interface Posed {
  readonly joints: Float64Array
  readonly capsules: readonly Capsule[]
}

/** How poses are drawn. */
export interface PoseDistribution {
  /** Probability of a named gesture (fist, pointing, counting, pinch, open) instead of independent curls. */
  readonly gesture: number
  /** Std-dev of the per-joint jitter added to every angle, as a fraction of the joint's range. */
  readonly jitter: number
  /** Range of the overall hand size factor (1 = the adult reference hand). */
  readonly size: readonly [number, number]
}

// ---- reference anatomy (mm, degrees) -----------------------------------------

// Finger roots in the palm: thumb CMC, then index…little MCPs.
const ROOTS: readonly Vec3[] = [
  [19, 24, 8],
  [24, 86, 0],
  [5, 90, 2],
  [-13, 85, 1],
  [-29, 75, -2],
]
// Phalanx lengths root→tip (thumb: metacarpal, proximal, distal).
const LENGTHS: readonly (readonly number[])[] = [
  [42, 32, 27],
  [42, 25, 21],
  [46, 29, 23],
  [43, 28, 23],
  [34, 20, 20],
]
// Radii at the root of each phalanx and at the tip.
const RADII: readonly (readonly number[])[] = [
  [11, 9.5, 8.5, 7.5],
  [9, 8, 7.2, 6.5],
  [9.2, 8.2, 7.4, 6.6],
  [8.8, 7.8, 7, 6.3],
  [8, 7, 6.3, 5.6],
]
// Resting splay of each finger in the palm plane (degrees towards the thumb).
const SPLAY = [0, 8, 0, -7, -16]

const DEG = Math.PI / 180

// Joint limits (degrees): [flexion of the root joint], [abduction], [second], [third].
interface Limits {
  readonly root: readonly [number, number]
  readonly abduct: readonly [number, number]
  readonly mid: readonly [number, number]
  readonly distal: readonly [number, number]
}
const THUMB: Limits = { root: [-15, 50], abduct: [-10, 40], mid: [-10, 60], distal: [-15, 80] }
const FINGER: Limits = { root: [-15, 90], abduct: [-15, 15], mid: [0, 105], distal: [0, 80] }

// Named gestures as per-finger curl in [0, 1] (thumb, index, middle, ring, little).
const GESTURES: readonly (readonly number[])[] = [
  [0, 0, 0, 0, 0], // open
  [1, 1, 1, 1, 1], // fist
  [0.9, 0, 1, 1, 1], // one (pointing)
  [0.9, 0, 0, 1, 1], // two
  [0.9, 0, 0, 0, 1], // three
  [0.8, 0, 0, 0, 0], // four
  [0, 1, 1, 1, 0], // "call me"
  [0.6, 0.55, 0, 0, 0], // pinch / OK
  [0, 0, 1, 1, 1], // thumb up
  [0.4, 0.3, 0.3, 0.3, 0.3], // relaxed
]

// ---- small rotation algebra (row-major 3×3) ---------------------------------

type Mat3 = readonly number[]

const mul = (a: Mat3, b: Mat3): Mat3 => {
  const o = new Array<number>(9)
  for (let i = 0; i < 3; i++)
    for (let j = 0; j < 3; j++)
      o[i * 3 + j] = a[i * 3]! * b[j]! + a[i * 3 + 1]! * b[3 + j]! + a[i * 3 + 2]! * b[6 + j]!
  return o
}
const apply = (m: Mat3, v: Vec3): Vec3 => [
  m[0]! * v[0] + m[1]! * v[1] + m[2]! * v[2],
  m[3]! * v[0] + m[4]! * v[1] + m[5]! * v[2],
  m[6]! * v[0] + m[7]! * v[1] + m[8]! * v[2],
]
/** Rotation about the local x axis: flexion (+y towards +z). */
const rotX = (t: number): Mat3 => [1, 0, 0, 0, Math.cos(t), -Math.sin(t), 0, Math.sin(t), Math.cos(t)]
/** Rotation about the local z axis: abduction (+y towards -x). */
const rotZ = (t: number): Mat3 => [Math.cos(t), -Math.sin(t), 0, Math.sin(t), Math.cos(t), 0, 0, 0, 1]
const norm = (v: Vec3): Vec3 => {
  const l = Math.hypot(v[0], v[1], v[2])
  return [v[0] / l, v[1] / l, v[2] / l]
}
const cross = (a: Vec3, b: Vec3): Vec3 => [
  a[1] * b[2] - a[2] * b[1],
  a[2] * b[0] - a[0] * b[2],
  a[0] * b[1] - a[1] * b[0],
]
/** The frame whose columns are x = y × z, y = `along`, z = `bend` (made orthogonal to y). */
const frame = (along: Vec3, bend: Vec3): Mat3 => {
  const y = norm(along)
  const d = bend[0] * y[0] + bend[1] * y[1] + bend[2] * y[2]
  const z = norm([bend[0] - d * y[0], bend[1] - d * y[1], bend[2] - d * y[2]])
  const x = cross(y, z)
  return [x[0], y[0], z[0], x[1], y[1], z[1], x[2], y[2], z[2]]
}

/** A uniformly random rotation (Shoemake's quaternion method). */
export const randomRotation = (r: Random.Random): Mat3 => {
  const u1 = r.next()
  const u2 = r.next() * 2 * Math.PI
  const u3 = r.next() * 2 * Math.PI
  const a = Math.sqrt(1 - u1)
  const b = Math.sqrt(u1)
  return quaternion(a * Math.sin(u2), a * Math.cos(u2), b * Math.sin(u3), b * Math.cos(u3))
}

const quaternion = (x: number, y: number, z: number, w: number): Mat3 => [
  1 - 2 * (y * y + z * z),
  2 * (x * y - z * w),
  2 * (x * z + y * w),
  2 * (x * y + z * w),
  1 - 2 * (x * x + z * z),
  2 * (y * z - x * w),
  2 * (x * z - y * w),
  2 * (y * z + x * w),
  1 - 2 * (x * x + y * y),
]

/** Rotation from yaw (about camera z), pitch (about x) and roll (about y), in radians, applied roll→pitch→yaw. */
export const eulerRotation = (yaw: number, pitch: number, roll: number): Mat3 => {
  const rz = rotZ(yaw)
  const rx = rotX(pitch)
  const ry: Mat3 = [Math.cos(roll), 0, Math.sin(roll), 0, 1, 0, -Math.sin(roll), 0, Math.cos(roll)]
  return mul(rz, mul(rx, ry))
}

/** Applies a row-major rotation to a vector. */
export const rotate = apply

// ---- poses ---------------------------------------------------------------------

const clamp = (x: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, x))
const within = (range: readonly [number, number], t: number): number =>
  (range[0] + (range[1] - range[0]) * t) * DEG

/**
 * A random hand: size, bone-length jitter, and a pose within the joint limits.
 * Returns joints in the hand frame (mm) and the capsules of palm, fingers and forearm.
 */
export const sample = (r: Random.Random, dist: PoseDistribution): Posed => {
  const size = Random.uniform(r, dist.size[0], dist.size[1])
  const curls: number[] =
    r.next() < dist.gesture ? [...Random.pick(r, GESTURES)] : Array.from({ length: 5 }, () => r.next() ** 0.8)
  const jit = () => dist.jitter * Random.normal(r)
  const joints = new Float64Array(Joints.COUNT * 3)
  const capsules: Capsule[] = []
  const put = (j: number, p: Vec3) => {
    joints[j * 3] = p[0]
    joints[j * 3 + 1] = p[1]
    joints[j * 3 + 2] = p[2]
  }
  const at = (j: number): Vec3 => [joints[j * 3]!, joints[j * 3 + 1]!, joints[j * 3 + 2]!]
  const scaled = (v: Vec3): Vec3 => [v[0] * size, v[1] * size, v[2] * size]

  for (let f = 0; f < 5; f++) {
    const lim = f === 0 ? THUMB : FINGER
    const c = clamp(curls[f]! + jit(), 0, 1)
    const root = within(lim.root, clamp(c + jit(), 0, 1) * 0.9 + 0.1 * r.next())
    const abduct = within(lim.abduct, clamp(0.5 + 0.35 * Random.normal(r) * (1 - 0.6 * c), 0, 1))
    const mid = within(lim.mid, clamp(c + jit(), 0, 1))
    // The distal joint follows the middle one (tendon coupling), with some slack.
    const distal = within(lim.distal, clamp(0.75 * c + 0.25 * r.next() + jit(), 0, 1))
    const base =
      f === 0
        ? frame([0.72, 0.6, 0.36], [-0.75, 0.05, 0.66])
        : frame([Math.sin(-SPLAY[f]! * DEG), Math.cos(SPLAY[f]! * DEG), 0], [0, 0, 1])
    let rot = mul(base, mul(rotZ(abduct), rotX(root)))
    let p = scaled(ROOTS[f]!)
    put(Joints.index(f, 0), p)
    const angles = [mid, distal]
    for (let k = 0; k < 3; k++) {
      const len = LENGTHS[f]![k]! * size * (1 + 0.04 * Random.normal(r))
      const q = apply(rot, [0, len, 0])
      const next: Vec3 = [p[0] + q[0], p[1] + q[1], p[2] + q[2]]
      put(Joints.index(f, k + 1), next)
      capsules.push({ a: p, b: next, ra: RADII[f]![k]! * size, rb: RADII[f]![k + 1]! * size, part: 0 })
      p = next
      if (k < 2) rot = mul(rot, rotX(angles[k]!))
    }
  }
  put(Joints.WRIST, [0, 0, 0])

  // Palm: a web of thick capsules between wrist, finger roots and thenar.
  const w: Vec3 = [0, 0, 0]
  const wr = scaled([16, 8, 0])
  const wl = scaled([-18, 10, -1])
  const s = (v: number) => v * size
  const mcp = (f: number) => at(Joints.index(f, 0))
  const palm: Array<[Vec3, Vec3, number, number]> = [
    [w, mcp(2), s(13), s(11)],
    [wr, mcp(1), s(12), s(10)],
    [wl, mcp(4), s(11), s(9)],
    [w, mcp(3), s(12), s(10)],
    [mcp(1), mcp(2), s(10), s(10)],
    [mcp(2), mcp(3), s(10), s(10)],
    [mcp(3), mcp(4), s(10), s(9)],
    [scaled([16, 45, 0]), scaled([-22, 45, -1]), s(13), s(13)],
    [wr, at(Joints.index(0, 1)), s(13), s(10)], // thenar eminence
    [mcp(0), mcp(1), s(9), s(8)], // thumb web
  ]
  for (const [a, b, ra, rb] of palm) capsules.push({ a, b, ra, rb, part: 0 })
  // Forearm, leaving the wrist away from the fingers with a little wrist bend.
  const bend = 0.35 * Random.normal(r)
  const dev = 0.2 * Random.normal(r)
  const arm = norm([Math.sin(dev), -Math.cos(bend) * Math.cos(dev), Math.sin(bend)])
  capsules.push({
    a: scaled([0, 4, 0]),
    b: scaled([arm[0] * 260, arm[1] * 260, arm[2] * 260]),
    ra: s(24),
    rb: s(30),
    part: 1,
  })
  return { joints, capsules }
}

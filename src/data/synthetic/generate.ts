/**
 * Synthetic paired hands: sample `index` of a (domain, size, seed) set, as an
 * RGB image and a clean depth map of the same posed hand with its 3D joints
 * (mm, camera frame) and 2D joints (pixels).
 *
 * Each sample has its own random stream, so any sample can be made alone and
 * the result never depends on the order of generation.
 *
 * @module
 */
import * as Joints from "../joints.ts"
import * as Preprocess from "../preprocess.ts"
import * as Random from "../random.ts"
import * as Background from "./background.ts"
import type * as Domain from "./domain.ts"
import * as Hand from "./hand.ts"
import * as Render from "./render.ts"

/** Bump when the output of the generator changes: it is part of the cache key. */
export const VERSION = 1

/** One rendered pair, before normalisation. */
export interface Rendered {
  /** `S·S·3`, 8-bit RGB. */
  readonly rgb: Uint8Array
  /** `S·S`, surface depth in mm (camera z), `Infinity` where no surface. */
  readonly depth: Float32Array
  /** `21·3`, camera frame, mm, MANO order. */
  readonly joints3d: Float64Array
  /** `21·2`, pixels of the `S×S` image (pixel `i` spans [i, i+1)). */
  readonly joints2d: Float32Array
  readonly intrinsics: Render.Intrinsics
}

type Rgb = readonly [number, number, number]
const DEG = Math.PI / 180
const FACING = Hand.eulerRotation(0, Math.PI, 0) // palm (+z) towards the camera, fingers up in the image

const range = (r: Random.Random, x: readonly [number, number]) => Random.uniform(r, x[0], x[1])
const clamp01 = (x: number) => Math.min(1, Math.max(0, x))

/** Rotation of colours about the grey axis by `angle` (a hue shift). */
const hueShift = (c: Rgb, angle: number): Rgb => {
  const cos = Math.cos(angle)
  const sin = Math.sin(angle)
  const k = (1 - cos) / 3
  const s3 = Math.sqrt(1 / 3) * sin
  const m = [cos + k, k - s3, k + s3, k + s3, cos + k, k - s3, k - s3, k + s3, cos + k]
  return [
    clamp01(m[0]! * c[0] + m[1]! * c[1] + m[2]! * c[2]),
    clamp01(m[3]! * c[0] + m[4]! * c[1] + m[5]! * c[2]),
    clamp01(m[6]! * c[0] + m[7]! * c[1] + m[8]! * c[2]),
  ]
}

const mean = (img: Float32Array): Rgb => {
  let a = 0
  let b = 0
  let c = 0
  for (let i = 0; i < img.length; i += 3) {
    a += img[i]!
    b += img[i + 1]!
    c += img[i + 2]!
  }
  const n = img.length / 3
  return [a / n, b / n, c / n]
}

/** Renders sample `index` of the set (`domain`, `size`, `seed`). `canvas` may be reused between calls of one size. */
export const render = (
  domain: Domain.Domain,
  size: number,
  seed: number,
  index: number,
  canvas: Render.Canvas = Render.canvas(size),
): Rendered => {
  const r = Random.make("cmkg/synthetic", domain.name, seed, index)
  const hand = Hand.sample(r, domain.pose)

  // Pose the hand in the camera frame.
  const v = domain.view
  const rot =
    v._tag === "Any"
      ? Hand.randomRotation(r)
      : mulMat(
          Hand.eulerRotation(range(r, v.yaw) * DEG, range(r, v.pitch) * DEG, range(r, v.roll) * DEG),
          FACING,
        )
  const fov = range(r, domain.fov) * DEG
  const dist = range(r, domain.distance)
  const lateral = dist * Math.tan(fov / 2) * domain.offAxis
  const centre = [0, 0, 0]
  for (let j = 0; j < Joints.COUNT; j++)
    for (let d = 0; d < 3; d++) centre[d]! += hand.joints[j * 3 + d]! / Joints.COUNT
  const rc = Hand.rotate(rot, centre as unknown as Hand.Vec3)
  const t: Hand.Vec3 = [
    lateral * Random.uniform(r, -1, 1) - rc[0],
    lateral * Random.uniform(r, -1, 1) - rc[1],
    dist - rc[2],
  ]
  const place = (p: Hand.Vec3): Hand.Vec3 => {
    const q = Hand.rotate(rot, p)
    return [q[0] + t[0], q[1] + t[1], q[2] + t[2]]
  }
  const joints3d = new Float64Array(Joints.COUNT * 3)
  for (let j = 0; j < Joints.COUNT; j++) {
    const q = place([hand.joints[j * 3]!, hand.joints[j * 3 + 1]!, hand.joints[j * 3 + 2]!])
    joints3d.set(q, j * 3)
  }
  const capsules = hand.capsules.map((c) => ({ ...c, a: place(c.a), b: place(c.b) }))

  // Crop around the hand in normalised image coordinates (x/z, y/z), as preprocessing crops a real image.
  const uv = new Float64Array(Joints.COUNT * 2)
  for (let j = 0; j < Joints.COUNT; j++) {
    uv[j * 2] = joints3d[j * 3]! / joints3d[j * 3 + 2]!
    uv[j * 2 + 1] = joints3d[j * 3 + 1]! / joints3d[j * 3 + 2]!
  }
  const box0 = Preprocess.cropBox(uv, range(r, domain.margin))
  const box = {
    x: box0.x + box0.side * domain.shift * Random.uniform(r, -1, 1),
    y: box0.y + box0.side * domain.shift * Random.uniform(r, -1, 1),
    side: Math.max(box0.side, 1e-3),
  }
  const f = size / box.side
  const intrinsics: Render.Intrinsics = { fx: f, fy: f, cx: -box.x * f, cy: -box.y * f }
  const joints2d = Preprocess.toCrop(uv, box, size)

  // Appearance.
  const tone = Random.pick(r, domain.skinTones)
  let skin: Rgb = [
    clamp01(tone[0] * (1 + domain.skinJitter * Random.normal(r))),
    clamp01(tone[1] * (1 + domain.skinJitter * Random.normal(r))),
    clamp01(tone[2] * (1 + domain.skinJitter * Random.normal(r))),
  ]
  let sleeve: Rgb = r.next() < domain.sleeve ? [r.next(), r.next(), r.next()] : skin
  Background.draw(canvas.rgb, size, Random.pick(r, domain.background), r, skin)
  if (domain.harmonise > 0) {
    const bg = mean(canvas.rgb)
    const lum = (c: Rgb) => 0.3 * c[0] + 0.59 * c[1] + 0.11 * c[2]
    const k = lum(skin) / Math.max(1e-3, lum(bg))
    const h = domain.harmonise
    skin = [0, 1, 2].map((i) => clamp01(skin[i]! * (1 - h) + bg[i]! * k * h)) as unknown as Rgb
  }
  if (r.next() < domain.recolour) {
    const angle = Random.uniform(r, -Math.PI, Math.PI)
    skin = hueShift(skin, angle)
    sleeve = hueShift(sleeve, angle)
  }
  const light = normalise3([0.7 * Random.normal(r), 0.7 * Random.normal(r), 1 + r.next()])
  const tint = domain.lightTint
  const look: Render.Look = {
    albedo: [skin, sleeve],
    light,
    lightColour: [1 + tint * Random.normal(r), 1 + tint * Random.normal(r), 1 + tint * Random.normal(r)],
    ambient: range(r, domain.ambient),
    diffuse: range(r, domain.diffuse),
    specular: range(r, domain.specular),
    grain: 0.12,
    noise: r.next,
  }
  Render.rasterise(canvas, capsules, intrinsics)
  Render.shade(canvas, look)
  Render.blur(canvas, Random.pick(r, domain.blur) * Math.max(1, Math.round(size / 64)))
  const rgb = new Uint8Array(size * size * 3)
  Render.toBytes(canvas, range(r, domain.noise), r.next, rgb)
  return { rgb, depth: canvas.depth.slice(), joints3d, joints2d, intrinsics }
}

const normalise3 = (v: Hand.Vec3): Hand.Vec3 => {
  const l = Math.hypot(v[0], v[1], v[2])
  return [v[0] / l, v[1] / l, v[2] / l]
}

const mulMat = (a: readonly number[], b: readonly number[]): number[] => {
  const o = new Array<number>(9).fill(0)
  for (let i = 0; i < 3; i++)
    for (let j = 0; j < 3; j++) for (let k = 0; k < 3; k++) o[i * 3 + j]! += a[i * 3 + k]! * b[k * 3 + j]!
  return o
}

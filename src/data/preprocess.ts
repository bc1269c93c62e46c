/**
 * Preprocessing as in the CMKG paper (§5.2): joints re-ordered to the MANO
 * layout, STB's root moved from the palm centre to the wrist, poses made
 * root-relative and divided by the middle finger's MCP–PIP bone length, crops
 * around the hand resized to the network input, depth normalised around the
 * root.
 *
 * Poses are flat `21·3` arrays (joint-major), images row-major HWC.
 *
 * @module
 */
import * as Joints from "./joints.ts"

// ---- joints ----------------------------------------------------------------------

/** A dataset pose (`21·dims`) in MANO order. */
export const toMano = <A extends Float32Array | Float64Array>(pose: A, order: Joints.Order, dims = 3): A =>
  Joints.reorder(pose, order, dims)

/** A MANO-order pose back in the dataset's order (the inverse of `toMano`). */
export const fromMano = <A extends Float32Array | Float64Array>(pose: A, order: Joints.Order, dims = 3): A =>
  Joints.reorder(pose, Joints.invert(order), dims)

/** How far past the middle MCP the wrist lies, in units of (palm centre − middle MCP). */
export const PALM_TO_WRIST = 2.2

/**
 * Moves joint 0 of a MANO-order STB pose from the palm centre to the wrist:
 * `wrist = midMCP + 2.2·(palm − midMCP)` (bihand's `_stb_palm2wrist`). Returns a new array.
 */
export const palmToWrist = <A extends Float32Array | Float64Array>(pose: A): A => {
  const out = pose.slice() as A
  const m = Joints.MIDDLE_MCP * 3
  for (let d = 0; d < 3; d++) out[d] = pose[m + d]! + PALM_TO_WRIST * (pose[d]! - pose[m + d]!)
  return out
}

/** Length of the normalising bone (middle MCP–PIP), in the pose's units. */
export const boneScale = (pose: ArrayLike<number>): number => {
  const a = Joints.MIDDLE_MCP * 3
  const b = Joints.MIDDLE_PIP * 3
  return Math.hypot(pose[b]! - pose[a]!, pose[b + 1]! - pose[a + 1]!, pose[b + 2]! - pose[a + 2]!)
}

/** A pose made root-relative and scale-free, with what is needed to undo it. */
export interface Normalised {
  /** `21·3`, (joint − wrist) / scale: units of the middle MCP–PIP bone. */
  readonly joints: Float32Array
  /** Length of the middle MCP–PIP bone, in the input's units (mm for cmkg's readers). */
  readonly scale: number
  /** The wrist, in the input's units (camera frame). */
  readonly root: readonly [number, number, number]
}

/** Root-relative, scale-normalised pose. Invariant to translating and uniformly scaling the input. */
export const normalise = (pose: ArrayLike<number>): Normalised => {
  const scale = boneScale(pose)
  if (!(scale > 0)) throw new Error("preprocess: degenerate pose (middle MCP–PIP bone has zero length)")
  const root = [pose[0]!, pose[1]!, pose[2]!] as const
  const joints = new Float32Array(Joints.COUNT * 3)
  for (let j = 0; j < Joints.COUNT; j++)
    for (let d = 0; d < 3; d++) joints[j * 3 + d] = (pose[j * 3 + d]! - root[d]) / scale
  return { joints, scale, root }
}

/**
 * Back to root-relative millimetres: `joints · scale` (add the root to get the
 * camera frame). Works on a batch: `joints` is `B·63`, `scale` is `B`.
 */
export const denormalise = (joints: ArrayLike<number>, scale: ArrayLike<number>): Float64Array => {
  const out = new Float64Array(joints.length)
  const per = Joints.COUNT * 3
  for (let i = 0; i < joints.length; i++) out[i] = joints[i]! * scale[Math.floor(i / per)]!
  return out
}

/** Projects camera-frame points (`n·3`) with `K` (row-major 3×3) to pixels (`n·2`). */
export const project = (xyz: ArrayLike<number>, k: ArrayLike<number>): Float64Array => {
  const n = xyz.length / 3
  const out = new Float64Array(n * 2)
  for (let i = 0; i < n; i++) {
    const x = xyz[i * 3]!
    const y = xyz[i * 3 + 1]!
    const z = xyz[i * 3 + 2]!
    const w = k[6]! * x + k[7]! * y + k[8]! * z
    out[i * 2] = (k[0]! * x + k[1]! * y + k[2]! * z) / w
    out[i * 2 + 1] = (k[3]! * x + k[4]! * y + k[5]! * z) / w
  }
  return out
}

// ---- crops -----------------------------------------------------------------------

/** A square crop in source pixels: top-left corner and side. */
export interface Box {
  readonly x: number
  readonly y: number
  readonly side: number
}

/** The crop margin around the 2D joints' bounding box (side = margin × the box's longer side). */
export const CROP_MARGIN = 1.5

/** A square box centred on the 2D joints' bounding box (`n·2` pixels), `margin` times its longer side. */
export const cropBox = (uv: ArrayLike<number>, margin = CROP_MARGIN): Box => {
  let x0 = Number.POSITIVE_INFINITY
  let y0 = Number.POSITIVE_INFINITY
  let x1 = Number.NEGATIVE_INFINITY
  let y1 = Number.NEGATIVE_INFINITY
  for (let i = 0; i < uv.length; i += 2) {
    x0 = Math.min(x0, uv[i]!)
    x1 = Math.max(x1, uv[i]!)
    y0 = Math.min(y0, uv[i + 1]!)
    y1 = Math.max(y1, uv[i + 1]!)
  }
  const side = Math.max(x1 - x0, y1 - y0) * margin
  return { x: (x0 + x1) / 2 - side / 2, y: (y0 + y1) / 2 - side / 2, side }
}

/** 2D points (`n·2`, source pixels) in the coordinates of a `size`-pixel crop of `box`. */
export const toCrop = (uv: ArrayLike<number>, box: Box, size: number): Float32Array => {
  const out = new Float32Array(uv.length)
  const s = size / box.side
  for (let i = 0; i < uv.length; i += 2) {
    out[i] = (uv[i]! - box.x) * s
    out[i + 1] = (uv[i + 1]! - box.y) * s
  }
  return out
}

/** A decoded image: row-major, `channels` values per pixel. */
export interface Image<A extends ArrayLike<number> = ArrayLike<number>> {
  readonly width: number
  readonly height: number
  readonly channels: number
  readonly data: A
}

/**
 * Crops `box` out of `image` and resizes it to `size × size` (bilinear;
 * outside the image reads `fill`). Output `size·size·channels`.
 */
export const cropResize = (image: Image, box: Box, size: number, fill = 0): Float32Array => {
  const { width, height, channels: c, data } = image
  const out = new Float32Array(size * size * c)
  const s = box.side / size
  for (let y = 0; y < size; y++) {
    const sy = box.y + (y + 0.5) * s - 0.5
    const y0 = Math.floor(sy)
    const fy = sy - y0
    for (let x = 0; x < size; x++) {
      const sx = box.x + (x + 0.5) * s - 0.5
      const x0 = Math.floor(sx)
      const fx = sx - x0
      for (let k = 0; k < c; k++) {
        const at = (xx: number, yy: number) =>
          xx < 0 || yy < 0 || xx >= width || yy >= height ? fill : data[(yy * width + xx) * c + k]!
        const top = at(x0, y0) * (1 - fx) + at(x0 + 1, y0) * fx
        const bot = at(x0, y0 + 1) * (1 - fx) + at(x0 + 1, y0 + 1) * fx
        out[(y * size + x) * c + k] = top * (1 - fy) + bot * fy
      }
    }
  }
  return out
}

/** Like `cropResize` but nearest-neighbour: depth must not be averaged across the silhouette. */
export const cropNearest = (image: Image, box: Box, size: number, fill = 0): Float32Array => {
  const { width, height, channels: c, data } = image
  const out = new Float32Array(size * size * c)
  const s = box.side / size
  for (let y = 0; y < size; y++) {
    const yy = Math.floor(box.y + (y + 0.5) * s)
    for (let x = 0; x < size; x++) {
      const xx = Math.floor(box.x + (x + 0.5) * s)
      const inside = xx >= 0 && yy >= 0 && xx < width && yy < height
      for (let k = 0; k < c; k++)
        out[(y * size + x) * c + k] = inside ? data[(yy * width + xx) * c + k]! : fill
    }
  }
  return out
}

// ---- depth -----------------------------------------------------------------------

/** Half-depth of the cube around the wrist that the depth map keeps (mm). */
export const DEPTH_RANGE_MM = 200

/**
 * Depth (mm; 0, non-finite or farther than the cube = no surface) to the
 * network's input: `(z − rootZ) / 200 mm` clamped to [-1, 1], and 1 (far)
 * where there is no surface in the cube. In place; returns `depth`.
 */
export const normaliseDepth = (depth: Float32Array, rootZ: number): Float32Array => {
  for (let i = 0; i < depth.length; i++) {
    const z = depth[i]!
    const d = (z - rootZ) / DEPTH_RANGE_MM
    depth[i] = !(z > 0) || !Number.isFinite(z) ? 1 : Math.min(1, Math.max(-1, d))
  }
  return depth
}

// ---- whole examples ---------------------------------------------------------------

/** What a reader knows about one real sample, in MANO order. */
export interface Raw {
  /** Full colour image. */
  readonly rgb?: Image
  /** Full depth image in mm, one channel (0 = no reading). */
  readonly depthMm?: Image
  /** `21·3`, camera frame, mm. */
  readonly joints3d: ArrayLike<number>
  /** `21·2`, pixels of the full image, used to place the crop. */
  readonly uv: ArrayLike<number>
  /** 2D joints for the depth image's crop, when its camera differs from the colour one. */
  readonly depthUv?: ArrayLike<number>
}

/**
 * A full sample → the network's example: crop around the 2D joints, resize
 * to `size`, normalise pose and depth. Fields present in `raw` are produced.
 */
export const prepare = (
  raw: Raw,
  size: number,
): {
  readonly rgb?: Uint8Array
  readonly depth?: Float32Array
  readonly joints3d: Float32Array
  readonly joints2d: Float32Array
  readonly scale: number
} => {
  const box = cropBox(raw.uv)
  if (!(box.side > 0 && Number.isFinite(box.side))) throw new Error("degenerate 2D joints (empty crop)")
  const n = normalise(raw.joints3d)
  let rgb: Uint8Array | undefined
  if (raw.rgb !== undefined) {
    const f = cropResize(raw.rgb, box, size)
    rgb = new Uint8Array(f.length)
    for (let i = 0; i < f.length; i++) rgb[i] = Math.round(f[i]!)
  }
  let depth: Float32Array | undefined
  if (raw.depthMm !== undefined) {
    const dbox = raw.depthUv !== undefined ? cropBox(raw.depthUv) : box
    depth = normaliseDepth(cropNearest(raw.depthMm, dbox, size), n.root[2])
  }
  return {
    ...(rgb !== undefined ? { rgb } : {}),
    ...(depth !== undefined ? { depth } : {}),
    joints3d: n.joints,
    joints2d: toCrop(raw.uv, box, size),
    scale: n.scale,
  }
}

/**
 * Stereo Hand Pose Tracking Benchmark (STB), RealSense (SK) part:
 * `labels/<Seq>_SK.mat` holds `handPara`, 3 × 21 × N joint positions in mm,
 * STB order, root at the palm centre, in the depth camera's frame;
 * `<Seq>/SK_color_<i>.png` and `<Seq>/SK_depth_<i>.png` (depth mm = R + 256·G)
 * are the images (also accepted under `images/<Seq>/`).
 *
 * Joints are moved into the colour camera's frame (bihand's
 * `sk_xyz_depth2color`), re-ordered to MANO, and the root is moved to the
 * wrist.
 *
 * @module
 */
import { existsSync } from "node:fs"
import { join } from "node:path"
import type * as Data from "../../dsl/Data.ts"
import * as Joints from "../joints.ts"
import * as Preprocess from "../preprocess.ts"
import type * as Stream from "../stream.ts"
import * as Img from "./image.ts"
import * as Mat from "./mat.ts"

/** The SK (RealSense SR300) colour and depth images are 640×480. */
export const IMAGE: Img.Format = { width: 640, height: 480, what: "STB SK images" }

/** SK colour camera intrinsics (row-major 3×3). */
export const K_COLOUR: readonly number[] = [607.92271, 0, 314.78337, 0, 607.88192, 236.42484, 0, 0, 1]
/** SK depth→colour extrinsics: Rodrigues vector and translation (mm). */
export const ROT_VEC = [0.00531, -0.01196, 0.00301] as const
export const TRANS_MM = [-24.0381, -0.4563, -1.2326] as const

/** bihand's `sk_rot_mx`: the rotation of `ROT_VEC` (row-major), used as `colour = (depth − t) · R`. */
export const rotation = (v: readonly number[] = ROT_VEC): number[] => {
  const theta = Math.hypot(v[0]!, v[1]!, v[2]!)
  const s = Math.sin(theta / 2) / theta
  const a = Math.cos(theta / 2)
  const b = -v[0]! * s
  const c = -v[1]! * s
  const d = -v[2]! * s
  return [
    a * a + b * b - c * c - d * d,
    2 * (b * c + a * d),
    2 * (b * d - a * c),
    2 * (b * c - a * d),
    a * a + c * c - b * b - d * d,
    2 * (c * d + a * b),
    2 * (b * d + a * c),
    2 * (c * d - a * b),
    a * a + d * d - b * b - c * c,
  ]
}

/** Depth-camera joints (`n·3`, mm) to the colour camera's frame. */
export const depthToColour = (xyz: ArrayLike<number>): Float64Array => {
  const r = rotation()
  const out = new Float64Array(xyz.length)
  for (let i = 0; i < xyz.length; i += 3) {
    const x = xyz[i]! - TRANS_MM[0]
    const y = xyz[i + 1]! - TRANS_MM[1]
    const z = xyz[i + 2]! - TRANS_MM[2]
    for (let c = 0; c < 3; c++) out[i + c] = x * r[c]! + y * r[3 + c]! + z * r[6 + c]!
  }
  return out
}

/** Frames per sequence in the release (`im_id = 0:1499`). */
export const FRAMES = 1500
/** A label file may hold 10× a release sequence's `handPara`; anything larger is refused before it is read. */
export const LABEL_LIMITS: Mat.Limits = {
  maxValues: 3 * 21 * FRAMES * 10,
  why: `STB's handPara is 3×21×${FRAMES}; 10× that is allowed`,
}

/** One sequence's labels: `N` poses of 21 joints, STB order, depth frame, mm (`N·63`). */
export const labels = (path: string): { readonly count: number; readonly poses: Float64Array } => {
  const v = Mat.variable(path, Mat.read(path, LABEL_LIMITS), "handPara")
  if (v.imag !== undefined)
    throw new Error(`${path}: handPara is complex, expected real joint positions (mm)`)
  if (v.dims.length !== 3 || v.dims[0] !== 3 || v.dims[1] !== 21)
    throw new Error(`${path}: handPara has dimensions ${v.dims.join("×")}, expected 3×21×N`)
  const n = v.dims[2]!
  const poses = new Float64Array(n * 63)
  // Row-major [3][21][N] → [N][21][3].
  for (let c = 0; c < 3; c++)
    for (let j = 0; j < 21; j++)
      for (let i = 0; i < n; i++) poses[i * 63 + j * 3 + c] = v.data[c * 21 * n + j * n + i]!
  for (let i = 0; i < poses.length; i++)
    if (!Number.isFinite(poses[i]!))
      throw new Error(`${path}: handPara has a non-finite value (frame ${Math.floor(i / 63)})`)
  return { count: n, poses }
}

/** A MANO-order, wrist-rooted pose in the colour frame from a raw STB pose (depth frame). */
export const toMano = (raw: Float64Array): Float64Array =>
  Preprocess.palmToWrist(Preprocess.toMano(depthToColour(raw), Joints.STB))

const folder = (dir: string, seq: string) => {
  const a = join(dir, seq)
  return existsSync(a) ? a : join(dir, "images", seq)
}

/** Decodes an SK depth PNG to mm (`R + 256·G`). */
export const depthMm = (path: string, image: Img.Image): Preprocess.Image<Float32Array> => {
  if (image.channels < 2 || image.data instanceof Uint16Array)
    throw new Error(`${path}: SK depth PNG must be 8-bit with ≥ 2 channels (R = low byte, G = high byte)`)
  const n = image.width * image.height
  const out = new Float32Array(n)
  for (let p = 0; p < n; p++)
    out[p] = image.data[p * image.channels]! + 256 * image.data[p * image.channels + 1]!
  return { width: image.width, height: image.height, channels: 1, data: out }
}

/**
 * A stream source over the listed sequences. Depth (when asked for) is
 * cropped around the depth-frame joints projected with the colour
 * intrinsics: the SK depth intrinsics are not published with the labels, so
 * this is an approximation.
 */
export const source = (spec: Data.Stb): Stream.Source => {
  const seqs = spec.sequences.map((seq) => {
    const path = join(spec.dir, "labels", `${seq}_SK.mat`)
    return { seq, path, ...labels(path) }
  })
  const starts: number[] = []
  let total = 0
  for (const s of seqs) {
    starts.push(total)
    total += s.count
  }
  const read = (index: number): Stream.Example => {
    let k = seqs.length - 1
    while (starts[k]! > index) k--
    const s = seqs[k]!
    const i = index - starts[k]!
    const raw = s.poses.slice(i * 63, i * 63 + 63)
    const joints3d = toMano(raw)
    const uv = Preprocess.project(joints3d, K_COLOUR)
    const base = folder(spec.dir, s.seq)
    const colourPath = join(base, `SK_color_${i}.png`)
    const depthPath = join(base, `SK_depth_${i}.png`)
    const rgb = spec.modalities.includes("rgb") ? Img.rgb(colourPath, Img.png(colourPath, IMAGE)) : undefined
    const depth = spec.modalities.includes("depth")
      ? depthMm(depthPath, Img.png(depthPath, IMAGE))
      : undefined
    const depthUv = depth ? Preprocess.project(Preprocess.toMano(raw, Joints.STB), K_COLOUR) : undefined
    try {
      return Preprocess.prepare(
        {
          ...(rgb ? { rgb } : {}),
          ...(depth ? { depthMm: depth } : {}),
          ...(depthUv ? { depthUv } : {}),
          joints3d,
          uv,
        },
        spec.imageSize,
      )
    } catch (e) {
      throw new Error(`${s.path}: frame ${i}: ${(e as Error).message}`)
    }
  }
  return {
    size: total,
    imageSize: spec.imageSize,
    modalities: spec.modalities,
    open: () => ({ read, close: () => {} }),
  }
}

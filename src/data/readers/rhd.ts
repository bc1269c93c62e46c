/**
 * Rendered Hand Pose dataset (RHD v1.1 / `RHD_published_v2`):
 * `<split>/anno_<split>.pickle` (per sample: `xyz` 42×3 m, `uv_vis` 42×3,
 * `K` 3×3), `<split>/color/%05d.png`, `<split>/depth/%05d.png` (depth =
 * (R·2⁸ + G) / (2¹⁶ − 1) · 5 m), `<split>/mask/%05d.png` (2–17 left hand,
 * 18–33 right hand).
 *
 * Each sample yields the hand with more mask pixels (as hand3d does; the
 * annotation's visibility decides when there is no mask), in MANO order.
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
import { quote } from "./message.ts"
import * as Pickle from "./pickle.ts"

/** RHD's colour, depth and mask images are all 320×320. */
export const IMAGE: Img.Format = { width: 320, height: 320, what: "RHD images" }

/** One annotation, as stored. */
export interface Annotation {
  readonly id: number
  /** `42·3`, metres, camera frame: left hand 0–20, right hand 21–41, RHD order. */
  readonly xyz: Float64Array
  /** `42·3`: u, v (pixels), visible ∈ {0, 1}. */
  readonly uvVis: Float64Array
  /** Row-major 3×3 intrinsics. */
  readonly k: Float64Array
}

const expect = (
  path: string,
  id: unknown,
  field: string,
  v: unknown,
  shape: readonly number[],
): Float64Array => {
  if (!Pickle.isNdArray(v))
    throw new Error(`${path}: sample ${String(id)}: "${field}" is missing or not a NumPy array`)
  if (v.shape.length !== shape.length || v.shape.some((d, i) => d !== shape[i]))
    throw new Error(`${path}: sample ${String(id)}: "${field}" has shape [${v.shape}], expected [${shape}]`)
  if (v.data.some((x) => !Number.isFinite(x)))
    throw new Error(`${path}: sample ${String(id)}: "${field}" has non-finite values`)
  return v.data
}

/** Reads and validates an RHD annotation pickle, sorted by sample id. */
export const annotations = (path: string): Annotation[] => {
  const root = Pickle.read(path)
  if (!(root instanceof Map)) throw new Error(`${path}: expected a dict of samples at the top level`)
  const out: Annotation[] = []
  for (const [id, entry] of root) {
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0)
      throw new Error(
        `${path}: sample key ${typeof id === "string" ? quote(id) : String(id)} is not a non-negative int`,
      )
    if (!(entry instanceof Map)) throw new Error(`${path}: sample ${id} is not a dict`)
    out.push({
      id,
      xyz: expect(path, id, "xyz", entry.get("xyz"), [42, 3]),
      uvVis: expect(path, id, "uv_vis", entry.get("uv_vis"), [42, 3]),
      k: expect(path, id, "K", entry.get("K"), [3, 3]),
    })
  }
  if (out.length === 0) throw new Error(`${path}: no samples`)
  return out.sort((a, b) => a.id - b.id)
}

const file = (dir: string, split: string, kind: string, id: number) =>
  join(dir, split, kind, `${String(id).padStart(5, "0")}.png`)

/** Which hand to use: 0 = left (joints 0–20), 1 = right (21–41). */
const chooseHand = (a: Annotation, mask: Img.Image | undefined): 0 | 1 => {
  let left = 0
  let right = 0
  if (mask !== undefined) {
    for (let p = 0; p < mask.width * mask.height; p++) {
      const m = mask.data[p * mask.channels]!
      if (m >= 2 && m <= 17) left++
      else if (m >= 18 && m <= 33) right++
    }
  } else {
    for (let j = 0; j < 21; j++) {
      left += a.uvVis[j * 3 + 2]!
      right += a.uvVis[(21 + j) * 3 + 2]!
    }
  }
  return right >= left ? 1 : 0
}

/** Decodes RHD's two-channel depth PNG to mm: `(R·256 + G) / 65535 · 5000`. */
export const depthMm = (path: string, image: Img.Image): Preprocess.Image<Float32Array> => {
  if (image.channels < 2)
    throw new Error(
      `${path}: depth PNG has ${image.channels} channel(s), expected ≥ 2 (R = high byte, G = low byte)`,
    )
  if (image.data instanceof Uint16Array)
    throw new Error(`${path}: depth PNG is 16-bit per channel, expected 8-bit R/G pairs`)
  const n = image.width * image.height
  const out = new Float32Array(n)
  for (let p = 0; p < n; p++) {
    const r = image.data[p * image.channels]!
    const g = image.data[p * image.channels + 1]!
    out[p] = ((r * 256 + g) / 65535) * 5000
  }
  return { width: image.width, height: image.height, channels: 1, data: out }
}

/** An example from one annotation and the split's image folders. */
export const example = (
  dir: string,
  split: string,
  a: Annotation,
  size: number,
  modalities: readonly Data.Modality[],
): Stream.Example => {
  const maskPath = file(dir, split, "mask", a.id)
  const mask = existsSync(maskPath) ? Img.png(maskPath, IMAGE) : undefined
  const hand = chooseHand(a, mask)
  const pick = (src: Float64Array, dims: number, scale: number) => {
    const h = new Float64Array(21 * dims)
    for (let j = 0; j < 21; j++)
      for (let d = 0; d < dims; d++) h[j * dims + d] = src[(hand * 21 + j) * 3 + d]! * scale
    return Preprocess.toMano(h, Joints.RHD, dims)
  }
  const joints3d = pick(a.xyz, 3, 1000)
  const uv = pick(a.uvVis, 2, 1)
  const colourPath = file(dir, split, "color", a.id)
  const depthPath = file(dir, split, "depth", a.id)
  const rgb = modalities.includes("rgb") ? Img.rgb(colourPath, Img.png(colourPath, IMAGE)) : undefined
  const depth = modalities.includes("depth") ? depthMm(depthPath, Img.png(depthPath, IMAGE)) : undefined
  try {
    return Preprocess.prepare(
      { ...(rgb ? { rgb } : {}), ...(depth ? { depthMm: depth } : {}), joints3d, uv },
      size,
    )
  } catch (e) {
    throw new Error(`${join(dir, split, `anno_${split}.pickle`)}: sample ${a.id}: ${(e as Error).message}`)
  }
}

/** A stream source over one split. Reads the annotations now, the images per sample. */
export const source = (spec: Data.Rhd): Stream.Source => {
  const anno = annotations(join(spec.dir, spec.split, `anno_${spec.split}.pickle`))
  return {
    size: anno.length,
    imageSize: spec.imageSize,
    modalities: spec.modalities,
    open: () => ({
      read: (i) => example(spec.dir, spec.split, anno[i]!, spec.imageSize, spec.modalities),
      close: () => {},
    }),
  }
}

/**
 * FreiHAND training set: `training_xyz.json` (N × 21 × 3, metres, camera
 * frame, MANO order), `training_K.json` (N × 3 × 3) and
 * `training/rgb/%08d.jpg`, where image `idx + N · version` is sample `idx`
 * in style `version` (0 gs, 1 hom, 2 sample, 3 auto; N = 32,560 in the
 * release).
 *
 * @module
 */
import { readFileSync } from "node:fs"
import { join } from "node:path"
import * as Data from "../../dsl/Data.ts"
import * as Joints from "../joints.ts"
import * as Preprocess from "../preprocess.ts"
import type * as Stream from "../stream.ts"
import * as Img from "./image.ts"
import { oneLine } from "./message.ts"

/** FreiHAND's images are 224×224. */
export const IMAGE: Img.Format = { width: 224, height: 224, what: "FreiHAND images" }

const json = (path: string): unknown => {
  let text: string
  try {
    text = readFileSync(path, "utf8")
  } catch (e) {
    throw new Error(`${path}: cannot read (${(e as Error).message})`)
  }
  try {
    return JSON.parse(text)
  } catch (e) {
    // JSON.parse quotes the text around the error, line breaks included: keep the message on one line.
    throw new Error(
      `${path}: malformed or truncated JSON (${oneLine((e as Error).message.replace(/\s+/g, " "))})`,
    )
  }
}

/** Reads a JSON list of `rows × cols` number matrices into one flat array (`N·rows·cols`). */
export const matrices = (
  path: string,
  rows: number,
  cols: number,
): { readonly count: number; readonly data: Float64Array } => {
  const v = json(path)
  if (!Array.isArray(v)) throw new Error(`${path}: expected a JSON list of ${rows}×${cols} matrices`)
  const data = new Float64Array(v.length * rows * cols)
  v.forEach((m, i) => {
    if (!Array.isArray(m) || m.length !== rows)
      throw new Error(`${path}: entry ${i} is not a list of ${rows} rows`)
    m.forEach((row, r) => {
      if (
        !Array.isArray(row) ||
        row.length !== cols ||
        row.some((x) => typeof x !== "number" || !Number.isFinite(x))
      )
        throw new Error(`${path}: entry ${i}, row ${r} is not ${cols} finite numbers`)
      for (let c = 0; c < cols; c++) data[(i * rows + r) * cols + c] = row[c] as number
    })
  })
  return { count: v.length, data }
}

/** A stream source over the training images of one style. */
export const source = (spec: Data.Freihand): Stream.Source => {
  const xyzPath = join(spec.dir, "training_xyz.json")
  const kPath = join(spec.dir, "training_K.json")
  const xyz = matrices(xyzPath, Joints.COUNT, 3)
  const k = matrices(kPath, 3, 3)
  if (xyz.count !== k.count)
    throw new Error(`${kPath}: has ${k.count} entries but ${xyzPath} has ${xyz.count}`)
  if (xyz.count === 0) throw new Error(`${xyzPath}: no samples`)
  const version = Data.FREIHAND_VERSIONS.indexOf(spec.version)
  const read = (i: number): Stream.Example => {
    const joints3d = xyz.data.slice(i * 63, i * 63 + 63).map((x) => x * 1000)
    const uv = Preprocess.project(joints3d, k.data.subarray(i * 9, i * 9 + 9))
    const path = join(spec.dir, "training", "rgb", `${String(i + xyz.count * version).padStart(8, "0")}.jpg`)
    const rgb = Img.rgb(path, Img.jpeg(path, IMAGE))
    try {
      return Preprocess.prepare({ rgb, joints3d, uv }, spec.imageSize)
    } catch (e) {
      throw new Error(`${xyzPath}: sample ${i}: ${(e as Error).message}`)
    }
  }
  return {
    size: xyz.count,
    imageSize: spec.imageSize,
    modalities: ["rgb"],
    open: () => ({ read, close: () => {} }),
  }
}

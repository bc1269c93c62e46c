/**
 * Reading dataset images (PNG via fast-png, JPEG via jpeg-js), failing with
 * the file's name and what was wrong.
 *
 * @module
 */
import { readFileSync } from "node:fs"
import * as Png from "fast-png"
import * as Jpeg from "jpeg-js"
import type * as Preprocess from "../preprocess.ts"

/** A decoded image; 8- or 16-bit samples. */
export type Image = Preprocess.Image<Uint8Array | Uint8ClampedArray | Uint16Array>

const read = (path: string): Buffer => {
  try {
    return readFileSync(path)
  } catch (e) {
    throw new Error(`${path}: cannot read (${(e as Error).message})`)
  }
}

/** Decodes a PNG file (palette images expanded to RGB; 16-bit kept as 16-bit). */
export const png = (path: string): Image => {
  const bytes = read(path)
  if (!Png.hasPngSignature(bytes)) throw new Error(`${path}: not a PNG file (bad signature)`)
  let d: Png.DecodedPng
  try {
    d = Png.decode(bytes)
  } catch (e) {
    throw new Error(`${path}: corrupt or truncated PNG (${(e as Error).message})`)
  }
  if (d.palette !== undefined)
    return { width: d.width, height: d.height, channels: 3, data: Png.convertIndexedToRgb(d) }
  if (d.data.length !== d.width * d.height * d.channels)
    throw new Error(
      `${path}: truncated PNG (${d.data.length} samples for ${d.width}×${d.height}×${d.channels})`,
    )
  return { width: d.width, height: d.height, channels: d.channels, data: d.data }
}

/** Decodes a JPEG file to 8-bit RGB. */
export const jpeg = (path: string): Image => {
  const bytes = read(path)
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8)
    throw new Error(`${path}: not a JPEG file (no SOI marker)`)
  // jpeg-js decodes a truncated stream without complaint; a complete one ends with EOI.
  const tail = bytes.subarray(Math.max(0, bytes.length - 16))
  let eoi = false
  for (let i = 0; i + 1 < tail.length; i++) if (tail[i] === 0xff && tail[i + 1] === 0xd9) eoi = true
  if (!eoi) throw new Error(`${path}: truncated JPEG (no EOI marker at the end)`)
  try {
    const d = Jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, tolerantDecoding: false })
    return { width: d.width, height: d.height, channels: 3, data: d.data }
  } catch (e) {
    throw new Error(`${path}: corrupt JPEG (${String((e as Error).message ?? e)})`)
  }
}

/** The first three channels as 8-bit RGB (grey expanded, alpha dropped). */
export const rgb = (path: string, image: Image): Preprocess.Image<Uint8Array> => {
  const { width, height, channels, data } = image
  if (channels < 1) throw new Error(`${path}: image has no channels`)
  const shift = data instanceof Uint16Array ? 8 : 0
  const out = new Uint8Array(width * height * 3)
  for (let p = 0; p < width * height; p++)
    for (let k = 0; k < 3; k++) out[p * 3 + k] = data[p * channels + (channels >= 3 ? k : 0)]! >> shift
  return { width, height, channels: 3, data: out }
}

/** Throws unless the image has the expected size. */
export const expectSize = (path: string, image: Image, width: number, height: number): void => {
  if (image.width !== width || image.height !== height)
    throw new Error(`${path}: expected a ${width}×${height} image, got ${image.width}×${image.height}`)
}

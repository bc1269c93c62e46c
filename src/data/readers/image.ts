/**
 * Reading dataset images (PNG via fast-png, JPEG via jpeg-js), failing with
 * the file's name and what was wrong.
 *
 * Every image is read against the size its dataset's format promises
 * (`Format`): the header's dimensions (PNG IHDR, JPEG SOF) are checked before
 * anything is decoded, the file's size and a PNG's inflated image data are
 * bounded by what an image of that size can take, and every PNG chunk's CRC
 * is checked (a bit flip in the image data would otherwise decode to other
 * pixels without complaint).
 *
 * @module
 */
import { readFileSync, statSync } from "node:fs"
import { crc32, inflateSync } from "node:zlib"
import * as Png from "fast-png"
import * as Jpeg from "jpeg-js"
import type * as Preprocess from "../preprocess.ts"
import { oneLine, quote } from "./message.ts"

/** A decoded image; 8- or 16-bit samples. */
export type Image = Preprocess.Image<Uint8Array | Uint8ClampedArray | Uint16Array>

/** The size a dataset's format promises for its images. */
export interface Format {
  readonly width: number
  readonly height: number
  /** Whose images these are, for error messages ("RHD images"). */
  readonly what: string
}

/** A format's image size, for error messages. */
const size = (f: Format) => `${f.width}×${f.height}`

// The largest a file of the format's size may be: twice its samples at 16-bit RGBA
// (incompressible data, per-row filter bytes, zlib/JPEG overhead) plus 1 MiB of metadata.
const maxFileBytes = (f: Format) => 2 * (f.width * f.height * 8 + f.height) + 2 ** 20

const read = (path: string, format: Format, kind: string): Buffer => {
  let bytes: number
  try {
    bytes = statSync(path).size
  } catch (e) {
    throw new Error(`${path}: cannot read (${(e as Error).message})`)
  }
  const limit = maxFileBytes(format)
  if (bytes > limit)
    throw new Error(
      `${path}: ${kind} file is ${bytes} bytes, more than the ${limit} a ${size(format)} image may take (${format.what} are ${size(format)}); is this the right file?`,
    )
  try {
    return readFileSync(path)
  } catch (e) {
    throw new Error(`${path}: cannot read (${(e as Error).message})`)
  }
}

/** Refuses an image (from its header, before decoding) whose size is not the format's. */
const checkSize = (path: string, kind: string, width: number, height: number, format: Format) => {
  if (width !== format.width || height !== format.height)
    throw new Error(
      `${path}: ${kind} is ${width}×${height}, but ${format.what} are ${size(format)}; is this the right file?`,
    )
}

/** An error whose message is about a file, without its path yet. */
class Bad extends Error {}

// ---- PNG -------------------------------------------------------------------------------------------

// Channels and allowed bit depths per colour type (PNG spec, Table 11.1).
const COLOUR_TYPES: Record<number, { channels: number; depths: readonly number[] }> = {
  0: { channels: 1, depths: [1, 2, 4, 8, 16] },
  2: { channels: 3, depths: [8, 16] },
  3: { channels: 1, depths: [1, 2, 4, 8] },
  4: { channels: 2, depths: [8, 16] },
  6: { channels: 4, depths: [8, 16] },
}
// Chunks the decoder needs; ancillary ones (text, ICC profiles, …) are dropped before decoding,
// so none of them can inflate (iCCP) or allocate on the decoder's side.
const KEEP = new Set(["IHDR", "PLTE", "tRNS", "IDAT", "IEND"])

/** Bytes of filtered scanlines a `w×h` image with `bits` per pixel inflates to (Adam7: per pass). */
export const scanlineBytes = (w: number, h: number, bits: number, interlaced: boolean): number => {
  const rows = (pw: number, ph: number) => (pw === 0 || ph === 0 ? 0 : ph * (1 + Math.ceil((pw * bits) / 8)))
  if (!interlaced) return rows(w, h)
  let total = 0
  // Adam7 passes: [x0, y0, dx, dy].
  for (const [x0, y0, dx, dy] of [
    [0, 0, 8, 8],
    [4, 0, 8, 8],
    [0, 4, 4, 8],
    [2, 0, 4, 4],
    [0, 2, 2, 4],
    [1, 0, 2, 2],
    [0, 1, 1, 2],
  ] as const)
    total += rows(Math.ceil((w - x0) / dx), Math.ceil((h - y0) / dy))
  return total
}

/**
 * Walks the chunks (lengths, CRCs), checks IHDR against the format and the
 * inflated image data against what IHDR implies, and returns the PNG with the
 * chunks the decoder needs.
 */
const prepare = (path: string, bytes: Buffer, format: Format): Buffer => {
  const kept: Buffer[] = [bytes.subarray(0, 8)]
  const idat: Buffer[] = []
  let ihdr: { width: number; height: number; bits: number; interlaced: boolean } | undefined
  let at = 8
  for (let end = false; !end; ) {
    if (at + 12 > bytes.length) throw new Bad(`truncated PNG (chunk header at byte ${at} cut off)`)
    const length = bytes.readUInt32BE(at)
    const type = bytes.toString("latin1", at + 4, at + 8)
    if (length > bytes.length - at - 12)
      throw new Bad(`truncated PNG (chunk ${quote(type)} at byte ${at} needs ${length} bytes)`)
    const chunk = bytes.subarray(at, at + 12 + length)
    if (crc32(chunk.subarray(4, 8 + length)) !== chunk.readUInt32BE(8 + length))
      throw new Bad(`corrupt PNG (CRC mismatch in chunk ${quote(type)} at byte ${at})`)
    const data = chunk.subarray(8, 8 + length)
    if (ihdr === undefined) {
      if (type !== "IHDR" || length !== 13)
        throw new Bad(`corrupt PNG (first chunk is ${quote(type)}, not IHDR)`)
      const [width, height] = [data.readUInt32BE(0), data.readUInt32BE(4)]
      checkSize(path, "PNG", width, height, format)
      const [depth, colour, compression, filter, interlace] = data.subarray(8, 13)
      const ct = COLOUR_TYPES[colour!]
      if (ct === undefined || !ct.depths.includes(depth!))
        throw new Bad(`corrupt PNG (colour type ${colour} with bit depth ${depth})`)
      if (compression !== 0 || filter !== 0 || interlace! > 1)
        throw new Bad(`corrupt PNG (compression ${compression}, filter ${filter}, interlace ${interlace})`)
      ihdr = { width, height, bits: depth! * ct.channels, interlaced: interlace === 1 }
    } else if (type === "IHDR") throw new Bad(`corrupt PNG (second IHDR at byte ${at})`)
    if (type === "IDAT") idat.push(data)
    if (type === "IEND") end = true
    if (KEEP.has(type)) kept.push(chunk)
    at += 12 + length
  }
  if (idat.length === 0) throw new Bad("corrupt PNG (no image data)")
  const { width, height, bits, interlaced } = ihdr!
  const expected = scanlineBytes(width, height, bits, interlaced)
  let raw: Buffer
  try {
    raw = inflateSync(Buffer.concat(idat), { maxOutputLength: expected })
  } catch (e) {
    if ((e as { code?: string }).code === "ERR_BUFFER_TOO_LARGE")
      throw new Bad(
        `corrupt PNG (image data inflates to more than the ${expected} bytes a ${width}×${height} image of ${bits}-bit pixels holds)`,
      )
    throw new Bad(`corrupt or truncated PNG (image data: ${oneLine((e as Error).message)})`)
  }
  if (raw.length !== expected)
    throw new Bad(`truncated PNG (image data inflates to ${raw.length} bytes, ${expected} expected)`)
  return Buffer.concat(kept)
}

/** Decodes a PNG file of the format's size (palette images expanded to RGB; 16-bit kept as 16-bit). */
export const png = (path: string, format: Format): Image => {
  const bytes = read(path, format, "PNG")
  if (!Png.hasPngSignature(bytes)) throw new Error(`${path}: not a PNG file (bad signature)`)
  let d: Png.DecodedPng
  try {
    d = Png.decode(prepare(path, bytes, format), { checkCrc: true })
  } catch (e) {
    if (e instanceof Bad) throw new Error(`${path}: ${e.message}`)
    if (e instanceof Error && e.message.startsWith(path)) throw e
    throw new Error(`${path}: corrupt PNG (${oneLine(String((e as Error)?.message ?? e))})`)
  }
  if (d.palette !== undefined)
    return { width: d.width, height: d.height, channels: 3, data: Png.convertIndexedToRgb(d) }
  if (d.data.length !== d.width * d.height * d.channels)
    throw new Error(
      `${path}: truncated PNG (${d.data.length} samples for ${d.width}×${d.height}×${d.channels})`,
    )
  return { width: d.width, height: d.height, channels: d.channels, data: d.data }
}

// ---- JPEG ------------------------------------------------------------------------------------------

// Start-of-frame markers (baseline, extended, progressive, lossless; Huffman and arithmetic).
const SOF = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf])

/** The frame header's size, read before decoding. */
const frameSize = (bytes: Buffer): { width: number; height: number } => {
  let at = 2
  while (at + 4 <= bytes.length) {
    if (bytes[at] !== 0xff) throw new Bad(`corrupt JPEG (no marker at byte ${at})`)
    const marker = bytes[at + 1]!
    if (marker === 0xff) {
      at++ // fill byte
      continue
    }
    if (marker === 0xda || marker === 0xd9) break // scan data or end before any frame header
    const length = bytes.readUInt16BE(at + 2)
    if (length < 2) throw new Bad(`corrupt JPEG (segment at byte ${at} has length ${length})`)
    if (SOF.has(marker)) {
      if (length < 8 || at + 9 > bytes.length)
        throw new Bad(`corrupt JPEG (short frame header at byte ${at})`)
      return { height: bytes.readUInt16BE(at + 5), width: bytes.readUInt16BE(at + 7) }
    }
    at += 2 + length
  }
  throw new Bad("corrupt JPEG (no frame header before the image data)")
}

/** Decodes a JPEG file of the format's size to 8-bit RGB. */
export const jpeg = (path: string, format: Format): Image => {
  const bytes = read(path, format, "JPEG")
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8)
    throw new Error(`${path}: not a JPEG file (no SOI marker)`)
  // jpeg-js decodes a truncated stream without complaint; a complete one ends with EOI.
  const tail = bytes.subarray(Math.max(0, bytes.length - 16))
  let eoi = false
  for (let i = 0; i + 1 < tail.length; i++) if (tail[i] === 0xff && tail[i + 1] === 0xd9) eoi = true
  if (!eoi) throw new Error(`${path}: truncated JPEG (no EOI marker at the end)`)
  let frame: { width: number; height: number }
  try {
    frame = frameSize(bytes)
  } catch (e) {
    throw new Error(`${path}: ${(e as Bad).message}`)
  }
  checkSize(path, "JPEG", frame.width, frame.height, format)
  try {
    const d = Jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: false,
      tolerantDecoding: false,
      // A second guard: jpeg-js refuses to allocate more than an image of this size needs.
      maxResolutionInMP: (format.width * format.height) / 1e6,
      maxMemoryUsageInMB: Math.ceil((format.width * format.height * 16) / 2 ** 20) + 16,
    })
    checkSize(path, "decoded JPEG", d.width, d.height, format)
    return { width: d.width, height: d.height, channels: 3, data: d.data }
  } catch (e) {
    if (e instanceof Error && e.message.startsWith(path)) throw e
    throw new Error(`${path}: corrupt JPEG (${oneLine(String((e as Error)?.message ?? e))})`)
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

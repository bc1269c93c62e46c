/**
 * Hostile inputs for the dataset readers, built at test time: PNGs with a
 * chosen header and image data (CRCs correct, so only sizes are wrong), JPEGs
 * whose frame header claims another size, and MAT-files whose compressed
 * variable inflates to a chosen size. Zeros are deflated as a stream, so a
 * file inflating to hundreds of MB costs a few hundred KB to build.
 */
import { crc32, createDeflate } from "node:zlib"

/** A PNG chunk with its length and CRC. */
export const pngChunk = (type: string, data: Uint8Array): Buffer => {
  const body = Buffer.concat([Buffer.from(type, "latin1"), data])
  const out = Buffer.alloc(12 + data.length)
  out.writeUInt32BE(data.length, 0)
  body.copy(out, 4)
  out.writeUInt32BE(crc32(body), 8 + data.length)
  return out
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])

/** A PNG whose IHDR says `width×height` (8-bit, `colour` type) and whose IDAT is `zlib`. */
export const png = (o: { width: number; height: number; colour?: number }, zlib: Uint8Array): Buffer => {
  const ihdr = Buffer.alloc(13)
  ihdr.writeUInt32BE(o.width, 0)
  ihdr.writeUInt32BE(o.height, 4)
  ihdr[8] = 8
  ihdr[9] = o.colour ?? 0
  return Buffer.concat([
    SIGNATURE,
    pngChunk("IHDR", ihdr),
    pngChunk("IDAT", zlib),
    pngChunk("IEND", new Uint8Array(0)),
  ])
}

/** A PNG's chunks: offset, type and data. */
export const pngChunks = (bytes: Uint8Array): { at: number; type: string; length: number }[] => {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const out: { at: number; type: string; length: number }[] = []
  for (let at = 8; at + 12 <= b.length; at += 12 + b.readUInt32BE(at)) {
    out.push({ at, type: b.toString("latin1", at + 4, at + 8), length: b.readUInt32BE(at) })
    if (out.at(-1)!.type === "IEND") break
  }
  return out
}

/** A copy of a PNG with one chunk's data changed in place and its CRC recomputed. */
export const editPngChunk = (bytes: Uint8Array, type: string, edit: (data: Buffer) => void): Buffer => {
  const out = Buffer.from(bytes)
  const c = pngChunks(out).find((k) => k.type === type)
  if (c === undefined) throw new Error(`no ${type} chunk`)
  edit(out.subarray(c.at + 8, c.at + 8 + c.length))
  out.writeUInt32BE(crc32(out.subarray(c.at + 4, c.at + 8 + c.length)), c.at + 8 + c.length)
  return out
}

/** zlib-compresses `prefix` followed by `zeros` zero bytes, never holding the zeros in memory. */
export const deflateZeros = (prefix: Uint8Array, zeros: number): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const z = createDeflate({ level: 1 }) // fastest; zeros still shrink ~200×
    const parts: Buffer[] = []
    z.on("data", (d: Buffer) => parts.push(d))
    z.on("end", () => resolve(Buffer.concat(parts)))
    z.on("error", reject)
    z.write(prefix)
    const block = Buffer.alloc(1 << 20)
    let left = zeros
    const pump = () => {
      while (left > 0) {
        const n = Math.min(left, block.length)
        left -= n
        if (!z.write(block.subarray(0, n))) return void z.once("drain", pump)
      }
      z.end()
    }
    pump()
  })

/** Offset of the first JPEG start-of-frame segment's marker. */
export const jpegFrameAt = (bytes: Uint8Array): number => {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  for (let at = 2; at + 4 <= b.length; at += 2 + b.readUInt16BE(at + 2)) {
    const m = b[at + 1]!
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) return at
  }
  throw new Error("no SOF marker")
}

/** A copy of a JPEG whose frame header says `width×height`. */
export const jpegWithFrame = (bytes: Uint8Array, width: number, height: number): Buffer => {
  const out = Buffer.from(bytes)
  const at = jpegFrameAt(out)
  out.writeUInt16BE(height, at + 5)
  out.writeUInt16BE(width, at + 7)
  return out
}

/** A MAT-file header (128 bytes, little-endian). */
export const matHeader = (): Buffer => {
  const h = Buffer.alloc(128, 0x20)
  h.write("MATLAB 5.0 MAT-file, written by cmkg's tests", 0, "latin1")
  h.fill(0, 116, 124)
  h.writeUInt16LE(0x0100, 124)
  h.write("IM", 126, "latin1")
  return h
}

const tag = (type: number, size: number) => {
  const t = Buffer.alloc(8)
  t.writeUInt32LE(type, 0)
  t.writeUInt32LE(size, 4)
  return t
}
const pad8 = (b: Buffer) => Buffer.concat([b, Buffer.alloc((8 - (b.length % 8)) % 8)])

/** A MAT-file holding one compressed double array `name` of `dims`, all zeros. */
export const matZeros = async (name: string, dims: readonly number[]): Promise<Buffer> => {
  const n = dims.reduce((a, b) => a * b, 1)
  const flags = Buffer.concat([tag(6, 8), Buffer.from([6, 0, 0, 0, 0, 0, 0, 0])]) // miUINT32, mxDOUBLE_CLASS
  const d = Buffer.alloc(dims.length * 4)
  dims.forEach((x, i) => {
    d.writeInt32LE(x, i * 4)
  })
  const dimsEl = pad8(Buffer.concat([tag(5, d.length), d]))
  const nameEl = pad8(Buffer.concat([tag(1, name.length), Buffer.from(name, "latin1")]))
  const realTag = tag(9, n * 8)
  const size = flags.length + dimsEl.length + nameEl.length + realTag.length + n * 8
  const prefix = Buffer.concat([tag(14, size), flags, dimsEl, nameEl, realTag])
  const z = await deflateZeros(prefix, n * 8)
  return Buffer.concat([matHeader(), tag(15, z.length), z])
}

/**
 * A small reader for MATLAB Level 5 MAT-files (what `scipy.io.savemat` and
 * MATLAB ≤ 7.2 write; STB's label files): numeric `miMATRIX` variables (real
 * or complex), plain or inside `miCOMPRESSED` (zlib) elements. Values come
 * back row-major. Cells, structs, chars, sparse and objects are skipped.
 *
 * Layout (MAT-File Format, ch. 1): a 128-byte header, then data elements,
 * each an 8-byte tag (type, byte count) and its data. Uncompressed elements
 * are padded to a multiple of 8 bytes; `miCOMPRESSED` elements are not (their
 * byte count is the zlib stream's length, and the next tag follows at once);
 * elements of ≤ 4 bytes may be packed with their tag into 8 bytes.
 *
 * Memory: every variable's dimensions are read before its values are
 * decoded (for compressed ones, by inflating only the stream's first bytes),
 * and a file, a variable or an inflated stream larger than `Limits` allows
 * is refused before it is allocated.
 *
 * Written in-house because mat-for-js mis-indexes 3-D arrays (ECOSYSTEM §5).
 *
 * @module
 */
import { readFileSync, statSync } from "node:fs"
import { constants, inflateSync } from "node:zlib"
import { quote } from "./message.ts"
import * as Pickle from "./pickle.ts"

/** A numeric variable: row-major values (and imaginary parts when complex) and MATLAB's dimensions. */
export interface Variable {
  readonly name: string
  readonly dims: readonly number[]
  readonly data: Float64Array
  /** The imaginary parts, for complex variables only. */
  readonly imag?: Float64Array
}

/** How large a file's variables may be: the dataset format's largest, with a margin. */
export interface Limits {
  /** Most values (elements) in one variable. */
  readonly maxValues: number
  /** What the limit comes from, for error messages (e.g. "STB's handPara is 3×21×1500"). */
  readonly why: string
}

/** For MAT-files of no particular dataset: 2²⁴ values (128 MiB as float64). */
export const DEFAULT_LIMITS: Limits = { maxValues: 2 ** 24, why: "the MAT reader's default limit" }

// Data element types (MAT-File Format, Table 1-1).
const MI = {
  INT8: 1,
  UINT8: 2,
  INT16: 3,
  UINT16: 4,
  INT32: 5,
  UINT32: 6,
  SINGLE: 7,
  DOUBLE: 9,
  INT64: 12,
  UINT64: 13,
  MATRIX: 14,
  COMPRESSED: 15,
}
const SIZES: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8 }
// Numeric array classes: mxDOUBLE_CLASS (6) … mxUINT64_CLASS (15).
const NUMERIC_CLASSES = new Set([6, 7, 8, 9, 10, 11, 12, 13, 14, 15])
// Array flags (Table 1-3): the complex bit, above the class byte.
const COMPLEX_FLAG = 0x0800
// No real array has more dimensions; bounds what a corrupt dimensions element may ask for.
const MAX_DIMS = 32
// Bytes per value at most (complex float64), and room for a variable's tags, flags, dims and name.
const MAX_BYTES_PER_VALUE = 16
const HEADER_SLACK = 64 * 1024

class Fail extends Error {}
/** The buffer ends inside an element: a truncated file, or (while peeking) not enough inflated yet. */
class Truncated extends Fail {}

interface Element {
  readonly type: number
  readonly body: Uint8Array
  /** Offset of the next element: past the padding for uncompressed elements, right after a compressed one. */
  readonly next: number
}

/** A tag: its type, its data's size and where the data starts. */
const tag = (buf: Uint8Array, at: number): { type: number; size: number; data: number; small: boolean } => {
  if (at + 8 > buf.length) throw new Truncated(`truncated data element tag at byte ${at}`)
  const v = new DataView(buf.buffer, buf.byteOffset + at, 8)
  const first = v.getUint32(0, true)
  // Small element format: size in the upper 16 bits, data in the tag's second word.
  if (first >>> 16 !== 0) {
    const size = first >>> 16
    if (size > 4) throw new Fail(`bad small data element (size ${size}) at byte ${at}`)
    return { type: first & 0xffff, size, data: at + 4, small: true }
  }
  return { type: first, size: v.getUint32(4, true), data: at + 8, small: false }
}

const element = (buf: Uint8Array, at: number): Element => {
  const t = tag(buf, at)
  if (t.small) return { type: t.type, body: buf.subarray(t.data, t.data + t.size), next: at + 8 }
  const end = t.data + t.size
  if (end > buf.length)
    throw new Truncated(
      `truncated data element at byte ${at} (needs ${t.size} bytes, ${buf.length - t.data} left)`,
    )
  const next = t.type === MI.COMPRESSED ? end : t.data + Math.ceil(t.size / 8) * 8
  return { type: t.type, body: buf.subarray(t.data, end), next }
}

/** An element's values; `expect` (the dimensions' product) is checked before they are allocated. */
const numbers = (e: Element, expect?: { readonly count: number; readonly what: string }): Float64Array => {
  const size = SIZES[e.type]
  if (size === undefined) throw new Fail(`unsupported numeric element type ${e.type}`)
  if (e.body.length % size !== 0)
    throw new Fail(`element of type ${e.type} has ${e.body.length} bytes, not a multiple of ${size}`)
  const v = new DataView(e.body.buffer, e.body.byteOffset, e.body.byteLength)
  const n = e.body.length / size
  if (expect !== undefined && n !== expect.count)
    throw new Fail(`${expect.what} has ${n} values, not ${expect.count}`)
  const out = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    const at = i * size
    switch (e.type) {
      case MI.INT8:
        out[i] = v.getInt8(at)
        break
      case MI.UINT8:
        out[i] = v.getUint8(at)
        break
      case MI.INT16:
        out[i] = v.getInt16(at, true)
        break
      case MI.UINT16:
        out[i] = v.getUint16(at, true)
        break
      case MI.INT32:
        out[i] = v.getInt32(at, true)
        break
      case MI.UINT32:
        out[i] = v.getUint32(at, true)
        break
      case MI.SINGLE:
        out[i] = v.getFloat32(at, true)
        break
      case MI.DOUBLE:
        out[i] = v.getFloat64(at, true)
        break
      case MI.INT64:
        out[i] = Number(v.getBigInt64(at, true))
        break
      default:
        out[i] = Number(v.getBigUint64(at, true))
    }
  }
  return out
}

/** What an miMATRIX says about itself before its values: class, complexity, dimensions, name. */
interface Header {
  readonly cls: number
  readonly complex: boolean
  readonly dims: readonly number[]
  readonly name: string
  /** Offset of the real part's element. */
  readonly next: number
}

const header = (body: Uint8Array): Header => {
  const flags = element(body, 0)
  if (flags.type !== MI.UINT32 || flags.body.length < 8) throw new Fail("miMATRIX without array flags")
  const word = new DataView(flags.body.buffer, flags.body.byteOffset, 8).getUint32(0, true)
  const dimsEl = element(body, flags.next)
  if (dimsEl.type !== MI.INT32) throw new Fail("miMATRIX dimensions are not int32")
  if (dimsEl.body.length > MAX_DIMS * 4)
    throw new Fail(`miMATRIX has ${dimsEl.body.length / 4} dimensions (at most ${MAX_DIMS} are read)`)
  const dims = [...numbers(dimsEl)]
  const nameEl = element(body, dimsEl.next)
  const name = Buffer.from(nameEl.body).toString("latin1")
  if (dims.some((d) => d < 0))
    throw new Fail(`variable ${quote(name)} has negative dimensions ${dims.join("×")}`)
  return { cls: word & 0xff, complex: (word & COMPLEX_FLAG) !== 0, dims, name, next: nameEl.next }
}

const count = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1)

/** Reads the variable an miMATRIX holds (undefined for cells, structs, chars, sparse, objects). */
const matrix = (body: Uint8Array, h: Header): Variable | undefined => {
  if (!NUMERIC_CLASSES.has(h.cls)) return undefined
  const n = count(h.dims)
  const part = (what: string, e: Element) =>
    Pickle.toRowMajor(
      numbers(e, { count: n, what: `variable ${quote(h.name)} (${h.dims.join("×")}) ${what} part` }),
      h.dims,
    )
  const real = element(body, h.next)
  const data = part("real", real)
  if (!h.complex) return { name: h.name, dims: h.dims, data }
  return { name: h.name, dims: h.dims, data, imag: part("imaginary", element(body, real.next)) }
}

const inflate = (body: Uint8Array, at: number, maxOutputLength: number, flush?: number): Buffer => {
  try {
    return inflateSync(body, { maxOutputLength, ...(flush === undefined ? {} : { finishFlush: flush }) })
  } catch (z) {
    if ((z as { code?: string }).code === "ERR_BUFFER_TOO_LARGE")
      throw new Fail(`compressed element at byte ${at} inflates to more than ${maxOutputLength} bytes`)
    throw new Fail(`corrupt compressed element at byte ${at} (${(z as Error).message})`)
  }
}

/** Reads every numeric variable of a Level 5 MAT-file, refusing variables larger than `limits`. */
export const read = (path: string, limits: Limits = DEFAULT_LIMITS): Map<string, Variable> => {
  // Room for one variable of maxValues complex float64 values, plus its tags and name.
  const maxBytes = limits.maxValues * MAX_BYTES_PER_VALUE + HEADER_SLACK
  let buf: Buffer
  try {
    const size = statSync(path).size
    if (size > maxBytes)
      throw new Error(
        `${path}: file is ${size} bytes, more than the ${maxBytes} a MAT-file of at most ${limits.maxValues} values may take (${limits.why}); is this the right file?`,
      )
    buf = readFileSync(path)
  } catch (e) {
    if ((e as Error).message.startsWith(path)) throw e
    throw new Error(`${path}: cannot read (${(e as Error).message})`)
  }
  try {
    if (buf.length < 128) throw new Fail(`too short for a MAT-file header (${buf.length} bytes)`)
    const text = buf.toString("latin1", 0, 116)
    if (!text.startsWith("MATLAB")) throw new Fail("not a MAT-file (header does not start with 'MATLAB')")
    if (text.startsWith("MATLAB 7.3"))
      throw new Fail("MAT v7.3 (HDF5) files are not supported; save with -v7 or scipy.io.savemat")
    const endian = buf.toString("latin1", 126, 128)
    if (endian !== "IM") throw new Fail(`unsupported byte order ${quote(endian)} (only little-endian files)`)
    const vars = new Map<string, Variable>()
    let budget = limits.maxValues
    // Refuses a numeric variable whose dimensions exceed what is left of the budget, before its values are read.
    const admit = (h: Header) => {
      if (!NUMERIC_CLASSES.has(h.cls)) return
      const n = count(h.dims)
      if (n > budget)
        throw new Fail(
          `variable ${quote(h.name)} is ${h.dims.join("×")} (${n} values), more than the ${limits.maxValues} values allowed per file (${limits.why})`,
        )
      budget -= n
    }
    const compressed = (e: Element, at: number): Uint8Array => {
      // Inflate only the stream's first bytes (at most 1032× their size) until the
      // miMATRIX tag and header are readable, and check them before inflating the rest.
      for (let n = 64; ; n *= 4) {
        const whole = n >= e.body.length
        const head = inflate(e.body.subarray(0, n), at, maxBytes + 8, constants.Z_SYNC_FLUSH)
        try {
          const t = tag(head, 0)
          if (t.type === MI.MATRIX) admit(header(head.subarray(8)))
          if (t.size > maxBytes)
            throw new Fail(
              `compressed element at byte ${at} declares ${t.size} bytes, more than the ${maxBytes} allowed (${limits.why})`,
            )
          // The inflated stream is the tag and its declared bytes; anything longer is refused as it inflates.
          return inflate(e.body, at, 8 + t.size)
        } catch (f) {
          if (!(f instanceof Truncated) || whole) throw f
        }
      }
    }
    const walk = (data: Uint8Array, at: number, inside: boolean) => {
      while (at < data.length) {
        const e = element(data, at)
        if (e.type === MI.COMPRESSED) {
          if (inside) throw new Fail(`compressed element inside a compressed element at byte ${at}`)
          walk(compressed(e, at), 0, true)
        } else if (e.type === MI.MATRIX) {
          const h = header(e.body)
          if (!inside) admit(h)
          const v = matrix(e.body, h)
          if (v !== undefined) vars.set(v.name, v)
        }
        at = e.next
      }
    }
    walk(buf, 128, false)
    return vars
  } catch (e) {
    if (e instanceof Fail) throw new Error(`${path}: ${e.message}`)
    throw e
  }
}

/** The variable `name`, or an error naming the file and the variables it has. */
export const variable = (path: string, vars: Map<string, Variable>, name: string): Variable => {
  const v = vars.get(name)
  if (v === undefined)
    throw new Error(
      `${path}: no numeric variable "${name}" (has: ${[...vars.keys()].map(quote).join(", ") || "none"})`,
    )
  return v
}

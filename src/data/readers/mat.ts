/**
 * A small reader for MATLAB Level 5 MAT-files (what `scipy.io.savemat` and
 * MATLAB ≤ 7.2 write; STB's label files): numeric `miMATRIX` variables,
 * plain or inside `miCOMPRESSED` (zlib) elements. Values come back row-major.
 *
 * Written in-house because mat-for-js mis-indexes 3-D arrays (ECOSYSTEM §5).
 *
 * @module
 */
import { readFileSync } from "node:fs"
import { inflateSync } from "node:zlib"
import * as Pickle from "./pickle.ts"

/** A numeric variable: row-major values and MATLAB's dimensions. */
export interface Variable {
  readonly name: string
  readonly dims: readonly number[]
  readonly data: Float64Array
}

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

class Fail extends Error {}

interface Element {
  readonly type: number
  readonly body: Uint8Array
  /** Offset just past the element (with padding). */
  readonly next: number
}

const element = (buf: Uint8Array, at: number): Element => {
  if (at + 8 > buf.length) throw new Fail(`truncated data element tag at byte ${at}`)
  const v = new DataView(buf.buffer, buf.byteOffset + at, 8)
  const first = v.getUint32(0, true)
  // Small element format: size in the upper 16 bits, data in the tag's second word.
  if (first >>> 16 !== 0) {
    const size = first >>> 16
    if (size > 4) throw new Fail(`bad small data element (size ${size}) at byte ${at}`)
    return { type: first & 0xffff, body: buf.subarray(at + 4, at + 4 + size), next: at + 8 }
  }
  const size = v.getUint32(4, true)
  const end = at + 8 + size
  if (end > buf.length)
    throw new Fail(`truncated data element at byte ${at} (needs ${size} bytes, ${buf.length - at - 8} left)`)
  return { type: first, body: buf.subarray(at + 8, end), next: at + 8 + Math.ceil(size / 8) * 8 }
}

const numbers = (e: Element): Float64Array => {
  const size = SIZES[e.type]
  if (size === undefined) throw new Fail(`unsupported numeric element type ${e.type}`)
  if (e.body.length % size !== 0)
    throw new Fail(`element of type ${e.type} has ${e.body.length} bytes, not a multiple of ${size}`)
  const v = new DataView(e.body.buffer, e.body.byteOffset, e.body.byteLength)
  const n = e.body.length / size
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

const matrix = (body: Uint8Array): Variable | undefined => {
  const flags = element(body, 0)
  if (flags.type !== MI.UINT32 || flags.body.length < 8) throw new Fail("miMATRIX without array flags")
  const cls = new DataView(flags.body.buffer, flags.body.byteOffset, 8).getUint32(0, true) & 0xff
  const dimsEl = element(body, flags.next)
  if (dimsEl.type !== MI.INT32) throw new Fail("miMATRIX dimensions are not int32")
  const dims = [...numbers(dimsEl)]
  const nameEl = element(body, dimsEl.next)
  const name = Buffer.from(nameEl.body).toString("latin1")
  if (!NUMERIC_CLASSES.has(cls)) return undefined // cells, structs, chars, sparse: not needed
  const real = element(body, nameEl.next)
  const values = numbers(real)
  const n = dims.reduce((a, b) => a * b, 1)
  if (values.length !== n)
    throw new Fail(`variable "${name}" has ${values.length} values for dimensions ${dims.join("×")}`)
  return { name, dims, data: Pickle.toRowMajor(values, dims) }
}

/** Reads every numeric variable of a Level 5 MAT-file. */
export const read = (path: string): Map<string, Variable> => {
  let buf: Buffer
  try {
    buf = readFileSync(path)
  } catch (e) {
    throw new Error(`${path}: cannot read (${(e as Error).message})`)
  }
  try {
    if (buf.length < 128) throw new Fail(`too short for a MAT-file header (${buf.length} bytes)`)
    const text = buf.toString("latin1", 0, 116)
    if (!text.startsWith("MATLAB")) throw new Fail("not a MAT-file (header does not start with 'MATLAB')")
    if (text.startsWith("MATLAB 7.3"))
      throw new Fail("MAT v7.3 (HDF5) files are not supported; save with -v7 or scipy.io.savemat")
    const endian = buf.toString("latin1", 126, 128)
    if (endian !== "IM") throw new Fail(`unsupported byte order "${endian}" (only little-endian files)`)
    const vars = new Map<string, Variable>()
    const walk = (data: Uint8Array, at: number) => {
      while (at < data.length) {
        const e = element(data, at)
        if (e.type === MI.COMPRESSED) {
          let inner: Uint8Array
          try {
            inner = inflateSync(e.body)
          } catch (z) {
            throw new Fail(`corrupt compressed element at byte ${at} (${(z as Error).message})`)
          }
          walk(inner, 0)
        } else if (e.type === MI.MATRIX) {
          const v = matrix(e.body)
          if (v !== undefined) vars.set(v.name, v)
        }
        at = e.next
      }
    }
    walk(buf, 128)
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
    throw new Error(`${path}: no numeric variable "${name}" (has: ${[...vars.keys()].join(", ") || "none"})`)
  return v
}

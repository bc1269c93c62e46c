/**
 * Python pickles holding NumPy arrays (RHD's annotation files), via
 * pickleparser with the handlers NumPy needs:
 * - `numpy.core.multiarray._reconstruct` (and `numpy._core…`) + `__setstate__`
 *   build a typed array from `(version, shape, dtype, fortran, raw bytes)`;
 * - `numpy.dtype(descr)` keeps the type code and byte order;
 * - `_codecs.encode(s, "latin1")` turns Python 3's protocol-2 byte strings into bytes;
 * - Python 2 `str` payloads (BINSTRING) are decoded as Latin-1, byte for byte:
 *   pickleparser's `TextDecoder("ascii")` is windows-1252 and corrupts bytes 0x80–0x9f.
 *
 * @module
 */
import { readFileSync } from "node:fs"
import { BufferReader, NameRegistry, Parser } from "pickleparser"
import { oneLine } from "./message.ts"

/** A decoded NumPy array: row-major values and its shape. */
export interface NdArray {
  readonly shape: readonly number[]
  readonly dtype: string
  readonly data: Float64Array
}

class Latin1Reader extends BufferReader {
  // pickleparser warns on the console and goes on with a rounded number; an 8-byte length past 2⁵³ is corruption.
  override uint64(): number {
    const at = this.position
    const low = this.uint32()
    const n = low + 2 ** 32 * this.uint32()
    if (!Number.isSafeInteger(n)) throw new Error(`8-byte length at byte ${at} is ${n}, past 2^53`)
    return n
  }

  override string(size: number, encoding: "ascii" | "utf-8"): string {
    if (encoding !== "ascii") return super.string(size, encoding)
    const b = this.bytes(size)
    let s = ""
    for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192))
    return s
  }
}

class Dtype {
  descr: string
  order = "<"
  constructor(descr: unknown) {
    this.descr = typeof descr === "string" ? descr : String(descr)
  }
  __setstate__(state: unknown[]) {
    if (typeof state[1] === "string") this.order = state[1]
  }
}

const bytesOf = (raw: unknown): Uint8Array => {
  if (raw instanceof Uint8Array) return raw
  if (typeof raw === "string") return Uint8Array.from(raw, (c) => c.charCodeAt(0) & 0xff)
  if (Array.isArray(raw)) return Uint8Array.from(raw as number[])
  throw new Error(`ndarray payload is ${typeof raw}, not bytes`)
}

// Element readers by NumPy type code (kind + size).
const READERS: Record<string, [number, (v: DataView, at: number, le: boolean) => number]> = {
  f4: [4, (v, at, le) => v.getFloat32(at, le)],
  f8: [8, (v, at, le) => v.getFloat64(at, le)],
  i1: [1, (v, at) => v.getInt8(at)],
  u1: [1, (v, at) => v.getUint8(at)],
  b1: [1, (v, at) => v.getUint8(at)],
  i2: [2, (v, at, le) => v.getInt16(at, le)],
  u2: [2, (v, at, le) => v.getUint16(at, le)],
  i4: [4, (v, at, le) => v.getInt32(at, le)],
  u4: [4, (v, at, le) => v.getUint32(at, le)],
  i8: [8, (v, at, le) => Number(v.getBigInt64(at, le))],
  u8: [8, (v, at, le) => Number(v.getBigUint64(at, le))],
}

class Array_ {
  shape: number[] = []
  dtype = ""
  data: Float64Array = new Float64Array(0)
  __setstate__(state: unknown[]) {
    const [, shape, dtype, fortran, raw] = state as [number, number[], Dtype, boolean, unknown]
    const code = dtype.descr.replace(/^[<>=|]/, "")
    const reader = READERS[code]
    if (reader === undefined) throw new Error(`unsupported ndarray dtype "${dtype.descr}"`)
    const [size, get] = reader
    const bytes = bytesOf(raw)
    const n = shape.reduce((a, b) => a * b, 1)
    if (bytes.length !== n * size)
      throw new Error(`ndarray of shape [${shape}] ${code} needs ${n * size} bytes, got ${bytes.length}`)
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    const le = dtype.order !== ">"
    const flat = new Float64Array(n)
    for (let i = 0; i < n; i++) flat[i] = get(view, i * size, le)
    this.shape = [...shape]
    this.dtype = code
    this.data = fortran ? toRowMajor(flat, shape) : flat
  }
}

/** Column-major (Fortran) values to row-major. */
export const toRowMajor = (flat: Float64Array, shape: readonly number[]): Float64Array => {
  const out = new Float64Array(flat.length)
  const idx = new Array<number>(shape.length).fill(0)
  for (let c = 0; c < flat.length; c++) {
    // c enumerates column-major order: the first index varies fastest.
    let r = 0
    for (let d = 0; d < shape.length; d++) r = r * shape[d]! + idx[d]!
    out[r] = flat[c]!
    for (let d = 0; d < shape.length; d++) {
      idx[d]!++
      if (idx[d]! < shape[d]!) break
      idx[d] = 0
    }
  }
  return out
}

const registry = (): NameRegistry => {
  const reg = new NameRegistry()
  const reconstruct = () => new Array_()
  for (const m of ["numpy.core.multiarray", "numpy._core.multiarray"]) {
    reg.register(m, "_reconstruct", reconstruct)
    reg.register(m, "scalar", (dtype: Dtype, raw: unknown) => {
      const a = new Array_()
      a.__setstate__([1, [], dtype, false, raw])
      return a.data[0]
    })
  }
  reg.register("numpy", "ndarray", Array_)
  // REDUCE calls globals as functions, so classes are wrapped in factories.
  reg.register("numpy", "dtype", (descr: unknown) => new Dtype(descr))
  reg.register("_codecs", "encode", (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff))
  return reg
}

/** Reads a pickle file; NumPy arrays become `NdArray`s, dicts become `Map`s. */
export const read = (path: string): unknown => {
  let bytes: Buffer
  try {
    bytes = readFileSync(path)
  } catch (e) {
    throw new Error(`${path}: cannot read (${(e as Error).message})`)
  }
  if (bytes.length < 2 || bytes[0] !== 0x80)
    throw new Error(`${path}: not a binary Python pickle (no PROTO opcode)`)
  const parser = new Parser({ nameResolver: registry(), unpicklingTypeOfDictionary: "Map" })
  try {
    return parser.read(new Latin1Reader(bytes))
  } catch (e) {
    const msg =
      e instanceof RangeError || /end of file|offset|bounds|outside/i.test(String(e))
        ? "truncated pickle"
        : "malformed pickle"
    throw new Error(`${path}: ${msg} (${oneLine(String((e as Error)?.message ?? e))})`)
  }
}

/** Whether a value is a decoded NumPy array. */
export const isNdArray = (v: unknown): v is NdArray => v instanceof Array_

/**
 * A synthetic data set as a stream source, generated once and cached on
 * disk: a second open with the same parameters reads the file instead of
 * rendering again.
 *
 * File layout: `CMKGSYN1`, a u32 (LE) header length, a JSON header, then
 * fixed-size records: 106 float32 (joints3d 63, joints2d 42, scale), depth as
 * u16 (`(d + 1) / 2 · 65535`, when present), RGB bytes.
 *
 * @module
 */
import { closeSync, existsSync, openSync, readSync, statSync, writeSync } from "node:fs"
import { join } from "node:path"
import type * as Data from "../../dsl/Data.ts"
import * as Cache from "../cache.ts"
import * as Preprocess from "../preprocess.ts"
import type * as Stream from "../stream.ts"
import * as Domain from "./domain.ts"
import * as Generate from "./generate.ts"
import * as Render from "./render.ts"

const MAGIC = "CMKGSYN1"
const FLOATS = 63 + 42 + 1

/** What opening a synthetic set did: where its cache file is and whether it already existed. */
export interface CacheInfo {
  readonly path: string
  readonly hit: boolean
}

/** Everything that determines a set's content (the cache key hashes it). */
export const params = (spec: Data.Synthetic) => ({
  kind: "synthetic",
  version: Generate.VERSION,
  domain: Domain.get(spec.domain),
  count: spec.count,
  imageSize: spec.imageSize,
  seed: spec.seed,
  modalities: [...spec.modalities].sort(),
})

/** Renders example `index` of a synthetic spec, normalised as the stream yields it (no cache). */
export const example = (spec: Data.Synthetic, index: number, canvas?: Render.Canvas): Stream.Example => {
  const s = Generate.render(Domain.get(spec.domain), spec.imageSize, spec.seed, index, canvas)
  const n = Preprocess.normalise(s.joints3d)
  return {
    ...(spec.modalities.includes("rgb") ? { rgb: s.rgb } : {}),
    ...(spec.modalities.includes("depth") ? { depth: Preprocess.normaliseDepth(s.depth, n.root[2]) } : {}),
    joints3d: n.joints,
    joints2d: s.joints2d,
    scale: n.scale,
  }
}

const layout = (spec: Data.Synthetic) => {
  const px = spec.imageSize * spec.imageSize
  const depthBytes = spec.modalities.includes("depth") ? px * 2 : 0
  const rgbBytes = spec.modalities.includes("rgb") ? px * 3 : 0
  return { px, depthBytes, rgbBytes, record: FLOATS * 4 + depthBytes + rgbBytes }
}

const encode = (spec: Data.Synthetic, e: Stream.Example, out: Buffer) => {
  const { px, depthBytes } = layout(spec)
  const f = new Float32Array(FLOATS)
  f.set(e.joints3d, 0)
  f.set(e.joints2d, 63)
  f[105] = e.scale
  Buffer.from(f.buffer).copy(out, 0)
  let at = FLOATS * 4
  if (depthBytes > 0) {
    const d = e.depth!
    const q = new Uint16Array(px)
    for (let i = 0; i < px; i++) q[i] = Math.round(((d[i]! + 1) / 2) * 65535)
    // Little-endian hosts only (x86, ARM): the u16 buffer is copied as is.
    out.set(new Uint8Array(q.buffer), at)
    at += depthBytes
  }
  if (e.rgb !== undefined) out.set(e.rgb, at)
}

const decode = (spec: Data.Synthetic, buf: Buffer): Stream.Example => {
  const { px, depthBytes, rgbBytes } = layout(spec)
  const f = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + FLOATS * 4))
  let at = FLOATS * 4
  let depth: Float32Array | undefined
  if (depthBytes > 0) {
    depth = new Float32Array(px)
    const q = new Uint16Array(buf.buffer.slice(buf.byteOffset + at, buf.byteOffset + at + depthBytes))
    for (let i = 0; i < px; i++) depth[i] = (q[i]! / 65535) * 2 - 1
    at += depthBytes
  }
  return {
    ...(rgbBytes > 0 ? { rgb: new Uint8Array(buf.subarray(at, at + rgbBytes)) } : {}),
    ...(depth !== undefined ? { depth } : {}),
    joints3d: f.slice(0, 63),
    joints2d: f.slice(63, 105),
    scale: f[105]!,
  }
}

const headerOf = (path: string): { json: string; bytes: number } | undefined => {
  const fd = openSync(path, "r")
  try {
    const head = Buffer.alloc(12)
    if (readSync(fd, head, 0, 12, 0) < 12 || head.toString("latin1", 0, 8) !== MAGIC) return undefined
    const n = head.readUInt32LE(8)
    const json = Buffer.alloc(n)
    if (readSync(fd, json, 0, n, 12) < n) return undefined
    return { json: json.toString("utf8"), bytes: 12 + n }
  } finally {
    closeSync(fd)
  }
}

/**
 * Opens a synthetic set, generating it into the cache first if needed.
 * Generation is synchronous and streams records to disk (memory stays flat).
 */
export const open = (spec: Data.Synthetic): { source: Stream.Source; cache: CacheInfo } => {
  if (!(Number.isInteger(spec.count) && spec.count > 0))
    throw new Error(`synthetic: count must be a positive integer, got ${spec.count}`)
  if (!(Number.isInteger(spec.imageSize) && spec.imageSize >= 8))
    throw new Error(`synthetic: imageSize must be an integer ≥ 8, got ${spec.imageSize}`)
  const p = params(spec)
  const json = JSON.stringify(p)
  const path = join(Cache.dir(), `synthetic-${spec.domain}-${spec.imageSize}-${Cache.key(p)}.bin`)
  const { record } = layout(spec)
  let header = existsSync(path) ? headerOf(path) : undefined
  const hit =
    header !== undefined && header.json === json && statSync(path).size === header.bytes + spec.count * record
  if (!hit) {
    Cache.writeAtomically(path, (fd) => {
      const h = Buffer.from(json, "utf8")
      const head = Buffer.alloc(12)
      head.write(MAGIC, 0, "latin1")
      head.writeUInt32LE(h.length, 8)
      writeSync(fd, head)
      writeSync(fd, h)
      const canvas = Render.canvas(spec.imageSize)
      // Records go out in chunks: few syscalls, bounded memory.
      const chunk = Math.max(1, Math.floor((8 << 20) / record))
      const buf = Buffer.alloc(chunk * record)
      for (let start = 0; start < spec.count; start += chunk) {
        const n = Math.min(chunk, spec.count - start)
        for (let i = 0; i < n; i++)
          encode(spec, example(spec, start + i, canvas), buf.subarray(i * record, (i + 1) * record))
        writeSync(fd, buf, 0, n * record)
      }
    })
    header = headerOf(path)
  }
  const offset = header!.bytes
  const source: Stream.Source = {
    size: spec.count,
    imageSize: spec.imageSize,
    modalities: spec.modalities,
    open: () => {
      const fd = openSync(path, "r")
      const buf = Buffer.alloc(record)
      return {
        read: (i) => {
          if (readSync(fd, buf, 0, record, offset + i * record) < record)
            throw new Error(
              `${path}: truncated cache file (record ${i} of ${spec.count}); delete it to regenerate`,
            )
          return decode(spec, buf)
        },
        close: () => closeSync(fd),
      }
    },
  }
  return { source, cache: { path, hit } }
}

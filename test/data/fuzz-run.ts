/**
 * The fuzzer behind test/data/fuzz.test.ts, run as its own process so the
 * test can stop it when it hangs, see it crash and read its peak RSS:
 *   node --import tsx test/data/fuzz-run.ts <seed> <milliseconds>
 *
 * It mutates every format's fixtures (PNG, JPEG, MAT, pickle, JSON) by
 * truncation, bit flips, byte overwrites and edits of header fields (PNG
 * IHDR and chunk lengths with CRCs recomputed, JPEG segment headers, MAT tags,
 * array flags and dimensions, re-deflated when compressed, pickle opcode
 * arguments, JSON numbers and brackets), feeds each file to the reader that
 * consumes it, and checks the outcome: an Error whose one-line message starts
 * with the file's path, or a decode that keeps the reader's promises (and,
 * where the format has a checksum or the mutation only cut the file, equals
 * the original's decode).
 *
 * Prints one JSON line per case before running it (the test's watchdog names
 * the case that hangs) and a last line with the result.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { deflateSync, inflateSync } from "node:zlib"
import fc from "fast-check"
import * as Freihand from "../../src/data/readers/freihand.ts"
import * as Img from "../../src/data/readers/image.ts"
import * as Mat from "../../src/data/readers/mat.ts"
import * as Rhd from "../../src/data/readers/rhd.ts"
import * as Stb from "../../src/data/readers/stb.ts"
import * as Hostile from "./hostile.ts"

const FIX = join(import.meta.dirname, "..", "fixtures")

type Format = "png" | "jpeg" | "mat" | "pickle" | "json"

/** A fixture, the reader that consumes it and what that reader promises of a decode. */
interface Target {
  readonly file: string
  readonly format: Format
  readonly read: (path: string) => unknown
  /** Throws unless a decode keeps the reader's promises. */
  readonly check: (decoded: unknown) => void
  /** Whether a decode of a bit-flipped file must equal the original's (the format has a checksum). */
  readonly checksummed: boolean
}

const fail = (why: string): never => {
  throw new Error(why)
}
const allFinite = (xs: ArrayLike<number>) => Array.prototype.every.call(xs, Number.isFinite)

const image = (format: Img.Format, channels?: number) => (d: unknown) => {
  const i = d as Img.Image
  if (i.width !== format.width || i.height !== format.height)
    fail(`decoded ${i.width}×${i.height}, not ${format.width}×${format.height}`)
  if (channels !== undefined && i.channels !== channels)
    fail(`decoded ${i.channels} channels, not ${channels}`)
  if (i.data.length !== i.width * i.height * i.channels) fail(`decoded ${i.data.length} samples`)
  if (i.data instanceof Float32Array && !allFinite(i.data)) fail("decoded non-finite depth")
}

const TARGETS: readonly Target[] = [
  {
    file: "rhd/training/color/00000.png",
    format: "png",
    read: (p) => Img.rgb(p, Img.png(p, Rhd.IMAGE)),
    check: image(Rhd.IMAGE, 3),
    checksummed: true,
  },
  {
    file: "rhd/training/depth/00000.png",
    format: "png",
    read: (p) => Rhd.depthMm(p, Img.png(p, Rhd.IMAGE)),
    check: image(Rhd.IMAGE, 1),
    checksummed: true,
  },
  {
    file: "rhd/evaluation/mask/00001.png",
    format: "png",
    read: (p) => Img.png(p, Rhd.IMAGE),
    check: image(Rhd.IMAGE),
    checksummed: true,
  },
  {
    file: "stb/B1Counting/SK_color_0.png",
    format: "png",
    read: (p) => Img.rgb(p, Img.png(p, Stb.IMAGE)),
    check: image(Stb.IMAGE, 3),
    checksummed: true,
  },
  {
    file: "stb/B1Random/SK_depth_1.png",
    format: "png",
    read: (p) => Stb.depthMm(p, Img.png(p, Stb.IMAGE)),
    check: image(Stb.IMAGE, 1),
    checksummed: true,
  },
  {
    file: "freihand/training/rgb/00000001.jpg",
    format: "jpeg",
    read: (p) => Img.rgb(p, Img.jpeg(p, Freihand.IMAGE)),
    check: image(Freihand.IMAGE, 3),
    checksummed: false,
  },
  ...["stb/labels/B1Counting_SK.mat", "stb/labels/B1Random_SK.mat"].map(
    (file): Target => ({
      file,
      format: "mat",
      read: (p) => Stb.labels(p),
      check: (d) => {
        const l = d as ReturnType<typeof Stb.labels>
        if (l.poses.length !== l.count * 63 || !allFinite(l.poses))
          fail(`${l.count} poses, ${l.poses.length} values`)
      },
      checksummed: false,
    }),
  ),
  ...["mat/scipy_mixed_compressed.mat", "mat/scipy_mixed_plain.mat", "mat/testmulti_7.4_GLNX86.mat"].map(
    (file): Target => ({
      file,
      format: "mat",
      read: (p) => Mat.read(p),
      check: (d) => {
        for (const v of (d as Map<string, Mat.Variable>).values()) {
          const n = v.dims.reduce((a, b) => a * b, 1)
          if (v.data.length !== n || (v.imag !== undefined && v.imag.length !== n))
            fail(`"${v.name}" has ${v.data.length} values for ${v.dims.join("×")}`)
        }
      },
      checksummed: false,
    }),
  ),
  ...["rhd/training/anno_training.pickle", "rhd/evaluation/anno_evaluation.pickle"].map(
    (file): Target => ({
      file,
      format: "pickle",
      read: (p) => Rhd.annotations(p),
      check: (d) => {
        const a = d as Rhd.Annotation[]
        if (a.length === 0) fail("no annotations")
        for (const x of a)
          if (
            !Number.isInteger(x.id) ||
            x.id < 0 ||
            x.xyz.length !== 126 ||
            x.uvVis.length !== 126 ||
            x.k.length !== 9
          )
            fail(`annotation ${x.id} has the wrong shape`)
          else if (!allFinite(x.xyz) || !allFinite(x.uvVis) || !allFinite(x.k))
            fail(`annotation ${x.id} is not finite`)
      },
      checksummed: false,
    }),
  ),
  ...(
    [
      ["freihand/training_xyz.json", 21, 3],
      ["freihand/training_K.json", 3, 3],
    ] as const
  ).map(
    ([file, rows, cols]): Target => ({
      file,
      format: "json",
      read: (p) => Freihand.matrices(p, rows, cols),
      check: (d) => {
        const m = d as ReturnType<typeof Freihand.matrices>
        if (m.data.length !== m.count * rows * cols || !allFinite(m.data))
          fail(`${m.count} matrices, ${m.data.length} values`)
      },
      checksummed: false,
    }),
  ),
]

// ---- mutations -------------------------------------------------------------------------------------

type Mutation =
  | { readonly kind: "truncate"; readonly keep: number }
  | { readonly kind: "flip"; readonly bits: readonly number[] }
  | { readonly kind: "byte"; readonly at: number; readonly value: number }
  | { readonly kind: "field"; readonly pick: number; readonly value: number }

const INTERESTING = [
  0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 14, 15, 16, 21, 42, 63, 127, 128, 255, 256, 320, 640, 1500, 0x7fff,
  0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff,
]

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant("truncate" as const), keep: fc.nat() }),
  fc.record({ kind: fc.constant("flip" as const), bits: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }) }),
  fc.record({ kind: fc.constant("byte" as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({
    kind: fc.constant("field" as const),
    pick: fc.nat(),
    value: fc.oneof(fc.constantFrom(...INTERESTING), fc.nat({ max: 0xffffffff })),
  }),
)

/** The header fields of a PNG: IHDR's (with the CRC recomputed) and every chunk's length. */
const pngField = (bytes: Buffer, pick: number, value: number): Buffer => {
  const chunks = Hostile.pngChunks(bytes)
  const ihdr: [number, 1 | 4][] = [
    [0, 4],
    [4, 4],
    [8, 1],
    [9, 1],
    [10, 1],
    [11, 1],
    [12, 1],
  ]
  const choice = pick % (ihdr.length + chunks.length + 1)
  if (choice < ihdr.length) {
    const [off, size] = ihdr[choice]!
    return Hostile.editPngChunk(bytes, "IHDR", (d) => {
      if (size === 4) d.writeUInt32BE(value >>> 0, off)
      else d[off] = value & 0xff
    })
  }
  const out = Buffer.from(bytes)
  if (choice < ihdr.length + chunks.length) {
    out.writeUInt32BE(value >>> 0, chunks[choice - ihdr.length]!.at)
    return out
  }
  // A byte of image data changed with the CRC recomputed: zlib's own checksum must catch it.
  const idat = chunks.find((c) => c.type === "IDAT")!
  return Hostile.editPngChunk(bytes, "IDAT", (d) => {
    d[(pick >>> 8) % idat.length]! ^= value & 0xff || 1
  })
}

/** A JPEG segment header field before the scan: a byte or 16-bit word among a segment's first 24 bytes. */
const jpegField = (bytes: Buffer, pick: number, value: number): Buffer => {
  const segments: number[] = []
  for (let at = 2; at + 4 <= bytes.length && bytes[at + 1] !== 0xda; at += 2 + bytes.readUInt16BE(at + 2))
    segments.push(at)
  const at = segments[pick % segments.length]!
  const length = bytes.readUInt16BE(at + 2)
  const off = at + 2 + ((pick >>> 8) % Math.min(length, 24))
  const out = Buffer.from(bytes)
  if ((pick >>> 16) % 2 === 0 && off + 2 <= out.length) out.writeUInt16BE(value & 0xffff, off)
  else out[off] = value & 0xff
  return out
}

/**
 * A 32-bit word among the first 64 bytes of a MAT element (its tag, array
 * flags, dimensions and name tags); compressed elements are inflated, edited
 * and deflated again so the edit reaches the parser.
 */
const matField = (bytes: Buffer, pick: number, value: number): Buffer => {
  const elements: { at: number; size: number; type: number }[] = []
  for (let at = 128; at + 8 <= bytes.length; ) {
    const type = bytes.readUInt32LE(at)
    const size = bytes.readUInt32LE(at + 4)
    elements.push({ at, size, type })
    at += type === 15 ? 8 + size : 8 + Math.ceil(size / 8) * 8
  }
  const e = elements[pick % elements.length]!
  const word = ((pick >>> 8) % 16) * 4
  if (e.type !== 15 || (pick >>> 12) % 8 === 0) {
    const out = Buffer.from(bytes)
    if (e.at + word + 4 <= out.length) out.writeUInt32LE(value >>> 0, e.at + word)
    return out
  }
  const inner = Buffer.from(inflateSync(bytes.subarray(e.at + 8, e.at + 8 + e.size)))
  if (word + 4 <= inner.length) inner.writeUInt32LE(value >>> 0, word)
  const z = deflateSync(inner)
  const tag = Buffer.alloc(8)
  tag.writeUInt32LE(15, 0)
  tag.writeUInt32LE(z.length, 4)
  return Buffer.concat([bytes.subarray(0, e.at), tag, z, bytes.subarray(e.at + 8 + e.size)])
}

// Pickle opcodes followed by an integer argument (ints, lengths, memo indices).
const ARG_OPCODES = new Set([..."KMJUTBCqrhjX"].map((c) => c.charCodeAt(0)))

/** An opcode's integer argument: its first byte, or its first four. */
const pickleField = (bytes: Buffer, pick: number, value: number): Buffer => {
  const at: number[] = []
  for (let i = 2; i + 1 < bytes.length; i++) if (ARG_OPCODES.has(bytes[i]!)) at.push(i + 1)
  const i = at[pick % at.length]!
  const out = Buffer.from(bytes)
  if ((pick >>> 16) % 2 === 0 && i + 4 <= out.length) out.writeUInt32LE(value >>> 0, i)
  else out[i] = value & 0xff
  return out
}

const JSON_VALUES = [
  "1e309",
  "-1e309",
  "null",
  '"1"',
  "[]",
  "[1,2,3]",
  "{}",
  "-0",
  "1e-400",
  "true",
  "[[",
  "]",
  "",
]

/** A number replaced by another JSON value, or a bracket or comma removed. */
const jsonField = (bytes: Buffer, pick: number, value: number): Buffer => {
  const text = bytes.toString("utf8")
  const numbers = [...text.matchAll(/-?\d+(\.\d+)?([eE][-+]?\d+)?/g)]
  const marks = [...text.matchAll(/[[\],]/g)]
  if (pick % 3 === 0) {
    const m = marks[(pick >>> 2) % marks.length]!
    return Buffer.from(text.slice(0, m.index) + text.slice(m.index + 1))
  }
  const m = numbers[(pick >>> 2) % numbers.length]!
  const v = JSON_VALUES[value % JSON_VALUES.length]!
  return Buffer.from(text.slice(0, m.index) + v + text.slice(m.index + m[0].length))
}

const mutate = (format: Format, bytes: Buffer, m: Mutation): Buffer => {
  switch (m.kind) {
    case "truncate":
      return bytes.subarray(0, m.keep % bytes.length)
    case "flip": {
      const out = Buffer.from(bytes)
      for (const b of m.bits) out[(b >>> 3) % out.length]! ^= 1 << (b & 7)
      return out
    }
    case "byte": {
      const out = Buffer.from(bytes)
      out[m.at % out.length] = m.value
      return out
    }
    case "field":
      return {
        png: pngField,
        jpeg: jpegField,
        mat: matField,
        pickle: pickleField,
        json: jsonField,
      }[format](bytes, m.pick, m.value)
  }
}

// ---- the run ---------------------------------------------------------------------------------------

const [seedArg, msArg] = process.argv.slice(2)
const seed = Number(seedArg)
const ms = Number(msArg)
const dir = mkdtempSync(join(tmpdir(), "cmkg-fuzz-"))
const originals = TARGETS.map((t) => {
  const bytes = readFileSync(join(FIX, t.file))
  return { bytes, decoded: t.read(join(FIX, t.file)) }
})
const counts = new Map<string, { runs: number; decoded: number; rejected: number }>()
const rssBefore = process.resourceUsage().maxRSS
let run = 0

const equal = (a: unknown, b: unknown): boolean => {
  try {
    // Typed arrays, Maps and plain objects, NaN-aware.
    return JSON.stringify(normal(a)) === JSON.stringify(normal(b))
  } catch {
    return false
  }
}
const normal = (v: unknown): unknown =>
  ArrayBuffer.isView(v)
    ? Array.from(v as unknown as ArrayLike<number>, (x) =>
        Number.isNaN(x) ? "NaN" : Object.is(x, -0) ? "-0" : x,
      )
    : v instanceof Map
      ? [...v.entries()].map(([k, x]) => [k, normal(x)])
      : Array.isArray(v)
        ? v.map(normal)
        : typeof v === "object" && v !== null
          ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normal(x)]))
          : v

// Cases take the fixtures in turn, so every one is fuzzed however few cases the time allows.
const property = fc.property(mutationArb, (m) => {
  const which = run % TARGETS.length
  const t = TARGETS[which]!
  const original = originals[which]!
  const path = join(dir, `case${t.file.slice(t.file.lastIndexOf("."))}`)
  run++
  process.stdout.write(`${JSON.stringify({ run, file: t.file, mutation: m })}\n`)
  const bytes = mutate(t.format, original.bytes, m)
  writeFileSync(path, bytes)
  const c = counts.get(t.file) ?? { runs: 0, decoded: 0, rejected: 0 }
  counts.set(t.file, c)
  c.runs++
  let decoded: unknown
  try {
    decoded = t.read(path)
  } catch (e) {
    const message = e instanceof Error ? e.message : `non-Error thrown: ${String(e)}`
    if (!(e instanceof Error) || !message.startsWith(`${path}: `) || /[\n\r]/.test(message))
      throw new Error(
        `${t.file} ${JSON.stringify(m)}: unnamed error ${(e as Error)?.constructor?.name}: ${message}`,
      )
    c.rejected++
    return
  }
  c.decoded++
  try {
    t.check(decoded)
  } catch (e) {
    throw new Error(`${t.file} ${JSON.stringify(m)}: decoded, but ${(e as Error).message}`)
  }
  if (m.kind === "truncate" && decoded instanceof Map) {
    // A MAT-file cut at an element boundary is a MAT-file with fewer variables: each must be an original one.
    for (const [name, v] of decoded)
      if (!equal(v, (original.decoded as Map<string, unknown>).get(name)))
        throw new Error(`${t.file} ${JSON.stringify(m)}: variable "${name}" differs from the original`)
  } else if (m.kind === "truncate" || (t.checksummed && m.kind !== "field")) {
    // Any other cut file, or a bit flip where the format has checksums, may only decode to the original.
    if (!equal(decoded, original.decoded))
      throw new Error(`${t.file} ${JSON.stringify(m)}: decoded to something other than the original`)
  }
})

const details = fc.check(property, {
  seed,
  numRuns: 1_000_000,
  endOnFailure: true,
  plugins: [fc.interruptAfterTimeLimit(ms)],
})
rmSync(dir, { recursive: true, force: true })
const rssAfter = process.resourceUsage().maxRSS
process.stdout.write(
  `${JSON.stringify({
    result: true,
    seed,
    runs: run,
    failed: details.failed,
    error: details.failed
      ? String((details.errorInstance as Error)?.message ?? details.errorInstance)
      : undefined,
    counterexample: details.counterexample,
    peakRssBeforeMB: Math.round(rssBefore / 1024),
    peakRssAfterMB: Math.round(rssAfter / 1024),
    perFile: Object.fromEntries(counts),
  })}\n`,
)

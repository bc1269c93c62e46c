/**
 * The RHD / STB / FreiHAND readers on small files made by the real producers
 * (Python pickle + NumPy, scipy.io.savemat; see test/fixtures/make_fixtures.py).
 */
import assert from "node:assert/strict"
import { execFile } from "node:child_process"
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { after, test } from "node:test"
import { promisify } from "node:util"
import { deflateSync } from "node:zlib"
import * as Png from "fast-png"
import * as Jpeg from "jpeg-js"
import * as Open from "../../src/data/open.ts"
import * as Preprocess from "../../src/data/preprocess.ts"
import * as Freihand from "../../src/data/readers/freihand.ts"
import * as Img from "../../src/data/readers/image.ts"
import * as Mat from "../../src/data/readers/mat.ts"
import * as Pickle from "../../src/data/readers/pickle.ts"
import * as Rhd from "../../src/data/readers/rhd.ts"
import * as Stb from "../../src/data/readers/stb.ts"
import * as Data from "../../src/dsl/Data.ts"
import * as Hostile from "./hostile.ts"

const FIX = join(import.meta.dirname, "..", "fixtures")
const expected = JSON.parse(readFileSync(join(FIX, "expected.json"), "utf8"))
const scratch = mkdtempSync(join(tmpdir(), "cmkg-readers-"))
after(() => rmSync(scratch, { recursive: true, force: true }))

/** A copy of a fixture folder with one file cut to `keep` of its bytes (or replaced by `text`). */
const damaged = (folder: string, file: string, change: { keep: number } | { text: string }): string => {
  const dir = mkdtempSync(join(scratch, "d-"))
  cpSync(join(FIX, folder), dir, { recursive: true })
  const path = join(dir, file)
  if ("text" in change) writeFileSync(path, change.text)
  else {
    const bytes = readFileSync(path)
    writeFileSync(path, bytes.subarray(0, Math.floor(bytes.length * change.keep)))
  }
  return dir
}
const first = (ds: Open.Dataset) => [...ds.batches({ batchSize: 100, seed: 0, epoch: 0, shuffle: false })][0]!
const close = (a: number, b: number, tol: number, what: string) =>
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`)

// ---- RHD -----------------------------------------------------------------------------------------

for (const [split, style] of [
  ["training", "protocol 2 from Python 3"],
  ["evaluation", "Python-2 style (BINSTRING payloads)"],
] as const) {
  test(`RHD: reads anno_${split}.pickle (${style}) exactly as Python does`, () => {
    const anno = Rhd.annotations(join(FIX, "rhd", split, `anno_${split}.pickle`))
    const want = expected.rhd[split] as Record<string, { xyz: number[][]; uv_vis: number[][]; K: number[][] }>
    assert.deepEqual(
      anno.map((a) => a.id),
      Object.keys(want).map(Number),
    )
    for (const a of anno) {
      assert.deepEqual([...a.xyz], want[a.id]!.xyz.flat())
      assert.deepEqual([...a.uvVis], want[a.id]!.uv_vis.flat())
      assert.deepEqual([...a.k], want[a.id]!.K.flat())
    }
  })
}

test("RHD: open yields the right hand in MANO order, cropped, with depth from the R/G-packed PNG", () => {
  const ds = Open.open(Data.rhd({ dir: join(FIX, "rhd"), split: "training", imageSize: 32 }))
  assert.equal(ds.size, 2)
  const b = first(ds)
  const raw = expected.rhd.training["0"].xyz as number[][]
  const right = raw.slice(21).map((p) => p.map((v) => v * 1000))
  // MANO joint 4 (thumb tip) is RHD joint 1; MANO 9/10 (middle MCP/PIP) are RHD 12/11.
  const bone = Math.hypot(...right[12]!.map((v, i) => v - right[11]![i]!))
  close(b.scale[0]!, bone, 1e-3, "scale is the middle MCP–PIP bone (mm)")
  for (let d = 0; d < 3; d++)
    close(b.joints3d[4 * 3 + d]! * b.scale[0]!, right[1]![d]! - right[0]![d]!, 1e-3, `thumb tip ${d}`)
  // The crop is centred on the hand: its centre pixel is skin and at the wrist's depth.
  const c = (16 * 32 + 16) * 3
  assert.deepEqual(
    [...b.rgb.subarray(c, c + 3)].map((v) => Math.round(v * 255)),
    [220, 170, 140],
  )
  close(b.depth![16 * 32 + 16]!, 0, 0.01, "depth at the centre ≈ wrist depth")
  assert.equal(b.depth![0], 1, "far background is 1")
})

test("RHD: a truncated or malformed annotation file is rejected naming the file", () => {
  const dir = damaged("rhd", "training/anno_training.pickle", { keep: 0.6 })
  const path = join(dir, "training", "anno_training.pickle")
  assert.throws(
    () => Open.open(Data.rhd({ dir, split: "training" })),
    (e: Error) => e.message.startsWith(path) && /truncated/.test(e.message),
  )
  const bad = join(FIX, "bad", "rhd_bad_shape.pickle")
  assert.throws(
    () => Rhd.annotations(bad),
    (e: Error) => e.message.includes(bad) && /"xyz" has shape \[21,3\], expected \[42,3\]/.test(e.message),
  )
  const text = damaged("rhd", "training/anno_training.pickle", { text: "not a pickle" })
  assert.throws(
    () => Open.open(Data.rhd({ dir: text, split: "training" })),
    /anno_training\.pickle: not a binary Python pickle/,
  )
})

test("RHD: a truncated colour PNG is rejected naming the file", () => {
  const dir = damaged("rhd", "training/color/00001.png", { keep: 0.5 })
  const ds = Open.open(Data.rhd({ dir, split: "training", imageSize: 16 }))
  assert.throws(
    () => first(ds),
    (e: Error) => e.message.startsWith(join(dir, "training", "color", "00001.png")) && /PNG/.test(e.message),
  )
})

test("pickle: numpy arrays in Fortran order come back row-major", () => {
  assert.deepEqual([...Pickle.toRowMajor(Float64Array.from([1, 4, 2, 5, 3, 6]), [2, 3])], [1, 2, 3, 4, 5, 6])
})

// ---- STB -----------------------------------------------------------------------------------------

test("STB: reads handPara (3×21×N) from plain and compressed savemat files exactly as scipy does", () => {
  for (const seq of Data.STB_TEST) {
    const l = Stb.labels(join(FIX, "stb", "labels", `${seq}_SK.mat`))
    const want = (expected.stb[seq] as number[][][]).flat(2)
    assert.equal(l.count, want.length / 63)
    assert.deepEqual([...l.poses], want)
  }
})

test("STB: open moves the root from the palm centre to the wrist and evaluates on B1", () => {
  const ds = Open.open(
    Data.stb({
      dir: join(FIX, "stb"),
      sequences: Data.STB_TEST,
      imageSize: 32,
      modalities: ["rgb", "depth"],
    }),
  )
  assert.equal(ds.size, 5)
  const b = first(ds)
  for (let i = 0; i < b.size; i++) {
    // The fixture hand has a 46 mm middle MCP–PIP bone and its middle MCP 90.1 mm from the wrist.
    // joints3d is float32: ~1e-7 relative.
    close(b.scale[i]!, 46, 1e-5, "bone")
    const m = 9 * 3 + i * 63
    close(
      Math.hypot(b.joints3d[m]!, b.joints3d[m + 1]!, b.joints3d[m + 2]!) * b.scale[i]!,
      Math.hypot(5, 90),
      2e-5,
      "wrist–middle MCP",
    )
  }
  const c = (16 * 32 + 16) * 3
  assert.deepEqual(
    [...b.rgb.subarray(c, c + 3)].map((v) => Math.round(v * 255)),
    [210, 160, 130],
  )
  assert.ok(b.depth!.some((v) => v < 1) && b.depth!.some((v) => v === 1))
})

test("STB: the depth→colour rotation is a rotation and the frames differ by about the 24 mm baseline", () => {
  const r = Stb.rotation()
  for (let i = 0; i < 3; i++)
    for (let j = 0; j < 3; j++)
      close(
        r[i * 3]! * r[j * 3]! + r[i * 3 + 1]! * r[j * 3 + 1]! + r[i * 3 + 2]! * r[j * 3 + 2]!,
        i === j ? 1 : 0,
        1e-12,
        "RRᵀ",
      )
  const p = Stb.depthToColour([0, 0, 500])
  close(Math.hypot(p[0]!, p[1]!, p[2]! - 500), 24.1, 6.5, "offset")
})

test("STB: a truncated or mis-shaped label file is rejected naming the file", () => {
  for (const seq of Data.STB_TEST) {
    const dir = damaged("stb", `labels/${seq}_SK.mat`, { keep: 0.7 })
    const path = join(dir, "labels", `${seq}_SK.mat`)
    assert.throws(
      () => Stb.labels(path),
      (e: Error) => e.message.startsWith(path) && /truncated/.test(e.message),
    )
  }
  const bad = join(FIX, "bad", "stb_bad_dims.mat")
  assert.throws(
    () => Stb.labels(bad),
    (e: Error) => e.message.startsWith(bad) && /3×20×2, expected 3×21×N/.test(e.message),
  )
  const notMat = join(scratch, "x.mat")
  writeFileSync(notMat, Buffer.alloc(200, 65))
  assert.throws(
    () => Mat.read(notMat),
    (e: Error) => e.message.startsWith(notMat) && /not a MAT-file/.test(e.message),
  )
})

// ---- MAT v5 -------------------------------------------------------------------------------------

const matExpected = JSON.parse(readFileSync(join(FIX, "mat", "expected.json"), "utf8")) as Record<
  string,
  Record<string, { dims: number[]; real: (number | string)[]; imag?: (number | string)[] }>
>
// make_fixtures.py writes NaN and the infinities as strings (JSON has none).
const fromJson = (xs: readonly (number | string)[]) =>
  xs.map((x) => (typeof x === "number" ? x : x === "nan" ? Number.NaN : x === "inf" ? Infinity : -Infinity))

for (const [file, want] of Object.entries(matExpected))
  test(`MAT: ${file} reads every numeric variable value by value as scipy.io.loadmat does`, () => {
    const vars = Mat.read(join(FIX, "mat", file))
    assert.deepEqual([...vars.keys()].sort(), Object.keys(want).sort())
    for (const [name, w] of Object.entries(want)) {
      const v = vars.get(name)!
      assert.deepEqual(v.dims, w.dims, `${file}: ${name} dims`)
      assert.deepStrictEqual([...v.data], fromJson(w.real), `${file}: ${name} values`)
      if (w.imag === undefined) assert.equal(v.imag, undefined, `${file}: ${name} is real`)
      else assert.deepStrictEqual([...v.imag!], fromJson(w.imag), `${file}: ${name} imaginary parts`)
    }
  })

test("MAT: the fixtures hold several compressed variables of mixed types", () => {
  // Guards the fixtures themselves: what item 11 is about must be in them.
  for (const file of ["scipy_mixed_compressed.mat", "testmulti_7.4_GLNX86.mat"]) {
    const bytes = readFileSync(join(FIX, "mat", file))
    let compressed = 0
    for (let at = 128; at < bytes.length; at += 8 + bytes.readUInt32LE(at + 4)) {
      assert.equal(bytes.readUInt32LE(at), 15, `${file}: element at ${at} is miCOMPRESSED`)
      compressed++
    }
    assert.ok(compressed >= 2, `${file}: ${compressed} compressed elements`)
  }
  assert.ok(Object.keys(matExpected["scipy_mixed_compressed.mat"]!).length >= 10)
})

test("STB: a complex handPara is refused naming the file", () => {
  const path = join(FIX, "bad", "stb_complex.mat")
  assert.throws(
    () => Stb.labels(path),
    (e: Error) => e.message.startsWith(path) && /handPara is complex/.test(e.message),
  )
})

// ---- FreiHAND ------------------------------------------------------------------------------------

test("FreiHAND: reads training_xyz/K and the JPEG of the requested style", () => {
  const gs = first(Open.open(Data.freihand({ dir: join(FIX, "freihand"), version: "gs", imageSize: 32 })))
  const hom = first(Open.open(Data.freihand({ dir: join(FIX, "freihand"), version: "hom", imageSize: 32 })))
  assert.equal(gs.size, 2)
  assert.deepEqual(gs.joints3d, hom.joints3d)
  close(gs.scale[0]!, 46, 1e-5, "bone")
  const xyz = (expected.freihand.xyz[1] as number[][]).map((p) => p.map((v) => v * 1000))
  for (let d = 0; d < 3; d++)
    close(gs.joints3d[63 + 20 * 3 + d]! * gs.scale[1]!, xyz[20]![d]! - xyz[0]![d]!, 1e-3, `little tip ${d}`)
  // The gs style's green background shows in the crop; the hom style's is purple.
  const green = (b: typeof gs) => {
    let s = 0
    for (let p = 0; p < b.rgb.length; p += 3) s += b.rgb[p + 1]! - (b.rgb[p]! + b.rgb[p + 2]!) / 2
    return s / (b.rgb.length / 3)
  }
  assert.ok(green(gs) > 0.1 && green(hom) < 0, `green excess gs ${green(gs)}, hom ${green(hom)}`)
  const k = Preprocess.project(Float64Array.from(xyz.flat()), (expected.freihand.K[1] as number[][]).flat())
  assert.ok(k.every(Number.isFinite))
})

test("FreiHAND: truncated JSON or JPEG files are rejected naming the file", () => {
  const dir = damaged("freihand", "training_xyz.json", { keep: 0.5 })
  const path = join(dir, "training_xyz.json")
  assert.throws(
    () => Open.open(Data.freihand({ dir, version: "gs" })),
    (e: Error) => e.message.startsWith(path) && /JSON/.test(e.message),
  )
  const wrong = damaged("freihand", "training_K.json", { text: "[[[1,2,3],[4,5,6]]]" })
  assert.throws(
    () => Open.open(Data.freihand({ dir: wrong, version: "gs" })),
    /training_K\.json: entry 0 is not a list of 3 rows/,
  )
  const jpg = damaged("freihand", "training/rgb/00000001.jpg", { keep: 0.6 })
  const ds = Open.open(Data.freihand({ dir: jpg, version: "gs", imageSize: 16 }))
  const jpath = join(jpg, "training", "rgb", "00000001.jpg")
  assert.throws(
    () => first(ds),
    (e: Error) => e.message.startsWith(jpath) && /truncated JPEG/.test(e.message),
  )
})

// ---- Images: integrity and sizes ----------------------------------------------------------------

/** Decodes to the same pixels, or throws naming the file. */
const sameOrNamedError = (read: () => Img.Image, path: string, want: Img.Image): "same" | "rejected" => {
  let got: Img.Image
  try {
    got = read()
  } catch (e) {
    assert.ok(e instanceof Error && e.message.startsWith(`${path}: `), `unnamed error: ${e}`)
    return "rejected"
  }
  assert.deepEqual([got.width, got.height, got.channels], [want.width, want.height, want.channels])
  assert.ok(
    Buffer.from(got.data.buffer).equals(Buffer.from(want.data.buffer)),
    `${path}: decoded to other pixels`,
  )
  return "same"
}

test("PNG: a bit flip in any byte of an RHD image is rejected naming the file (chunk CRCs are checked)", () => {
  for (const file of ["training/mask/00001.png"]) {
    const original = readFileSync(join(FIX, "rhd", file))
    const want = Img.png(join(FIX, "rhd", file), Rhd.IMAGE)
    const path = join(scratch, "flipped.png")
    const accepted: number[] = []
    for (let i = 0; i < original.length; i++) {
      const bytes = Buffer.from(original)
      bytes[i]! ^= 1 << (i % 8)
      writeFileSync(path, bytes)
      if (sameOrNamedError(() => Img.png(path, Rhd.IMAGE), path, want) === "same") accepted.push(i)
    }
    assert.deepEqual(accepted, [], `${file}: flips accepted at bytes ${accepted.join(", ")}`)
  }
})

test("images whose size is not the dataset's are refused naming the file, the size and the format's size", () => {
  const write = (name: string, bytes: Uint8Array) => {
    const path = join(scratch, name)
    writeFileSync(path, bytes)
    return path
  }
  for (const [w, h] of [
    [64, 0],
    [1, 1],
    [65, 64],
    [320, 321],
  ] as const) {
    // fast-png will not encode an empty image; its IHDR and an empty IDAT are written directly.
    const bytes =
      h === 0
        ? Hostile.png({ width: w, height: h, colour: 2 }, deflateSync(new Uint8Array(0)))
        : Png.encode({ width: w, height: h, channels: 3, data: new Uint8Array(w * h * 3) })
    const path = write(`${w}x${h}.png`, bytes)
    assert.throws(
      () => Img.png(path, Rhd.IMAGE),
      (e: Error) => e.message.startsWith(`${path}: PNG is ${w}×${h}, but RHD images are 320×320`),
    )
  }
  const jpg = write("1x1.jpg", Jpeg.encode({ width: 1, height: 1, data: new Uint8Array(4) }, 80).data)
  assert.throws(
    () => Img.jpeg(jpg, Freihand.IMAGE),
    (e: Error) => e.message.startsWith(`${jpg}: JPEG is 1×1, but FreiHAND images are 224×224`),
  )
  // Through a dataset: an RHD folder with one 65×64 mask.
  const dir = damaged("rhd", "training/mask/00001.png", { text: "" })
  const mask = join(dir, "training", "mask", "00001.png")
  writeFileSync(mask, Png.encode({ width: 65, height: 64, channels: 1, data: new Uint8Array(65 * 64) }))
  assert.throws(
    () => first(Open.open(Data.rhd({ dir, split: "training", imageSize: 16 }))),
    (e: Error) => e.message.startsWith(`${mask}: PNG is 65×64`),
  )
})

test("PNG: interlaced, 16-bit, grey+alpha and tiny images of the format's size decode to their pixels", () => {
  // The bound on inflated image data is exact (per Adam7 pass), so it must not refuse any real layout.
  for (const [w, h, channels, depth] of [
    [320, 320, 3, 8],
    [13, 7, 1, 16],
    [5, 3, 2, 8],
    [9, 9, 4, 16],
    [1, 1, 3, 8],
  ] as const) {
    const n = w * h * channels
    const data =
      depth === 8
        ? Uint8Array.from({ length: n }, (_, i) => (i * 37) & 255)
        : Uint16Array.from({ length: n }, (_, i) => (i * 4099) & 65535)
    for (const interlace of ["null", "Adam7"] as const) {
      const path = join(scratch, `layout-${interlace}.png`)
      writeFileSync(path, Png.encode({ width: w, height: h, channels, depth, data }, { interlace }))
      const d = Img.png(path, { width: w, height: h, what: "test images" })
      assert.deepEqual([...d.data], [...data], `${w}×${h}×${channels} ${depth}-bit ${interlace}`)
    }
  }
})

// ---- Memory bounds --------------------------------------------------------------------------------

const PEAK = join(import.meta.dirname, "peak-memory.ts")
/** Runs a reader in a fresh process: its error and how far its peak RSS rose (MB). */
const peak = async (kind: string, path: string): Promise<{ error?: string; growthMB: number }> => {
  const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", PEAK, kind, path])
  return JSON.parse(stdout)
}
// A reader's own allocations for a fixture stay under 10 MB (measured: 0–6 MB); these hostile
// inputs (100 MB each) cost hundreds of MB before the bounds.
const BOUND_MB = 64

test("inputs far larger than the format allows are refused from their headers, peak RSS rising < 64 MB", async () => {
  const jpg = join(scratch, "10000x10000.jpg")
  const fixture = readFileSync(join(FIX, "freihand", "training", "rgb", "00000000.jpg"))
  writeFileSync(jpg, Hostile.jpegWithFrame(fixture, 10000, 10000))
  // A 320×320 grey PNG (RHD's size) whose image data inflates to 100 MB.
  const bomb = join(scratch, "bomb.png")
  writeFileSync(
    bomb,
    Hostile.png({ width: 320, height: 320 }, await Hostile.deflateZeros(new Uint8Array(0), 1e8)),
  )
  // A 10000×10000 grey PNG: 100 MB of pixels.
  const big = join(scratch, "big.png")
  writeFileSync(
    big,
    Hostile.png({ width: 10000, height: 10000 }, await Hostile.deflateZeros(new Uint8Array(0), 10001e4)),
  )
  // A valid STB label file whose compressed handPara (3×21×200000 doubles) inflates to 100 MB.
  const mat = join(scratch, "big_SK.mat")
  writeFileSync(mat, await Hostile.matZeros("handPara", [3, 21, 200000]))
  const cases = [
    ["freihand-jpeg", jpg, /JPEG is 10000×10000, but FreiHAND images are 224×224/],
    ["rhd-png", bomb, /inflates to more than the 102720 bytes a 320×320 image of 8-bit pixels holds/],
    ["rhd-png", big, /PNG is 10000×10000, but RHD images are 320×320/],
    ["stb-labels", mat, /"handPara" is 3×21×200000 \(12600000 values\), more than the 945000 values allowed/],
    ["stb-labels", join(FIX, "stb", "labels", "B1Counting_SK.mat"), undefined],
  ] as const
  const results = await Promise.all(cases.map(([kind, path]) => peak(kind, path)))
  results.forEach((r, i) => {
    const [, path, message] = cases[i]!
    // The last case is a fixture: read without error, within the same bound.
    if (message === undefined) assert.equal(r.error, undefined)
    else assert.ok(r.error?.startsWith(`${path}: `) && message.test(r.error), `${path}: ${r.error}`)
    assert.ok(r.growthMB < BOUND_MB, `${path}: peak RSS rose ${r.growthMB} MB`)
  })
})

/** The synthetic data set through `open`: cache, batches, splits, shapes, domains. */
import assert from "node:assert/strict"
import { mkdtempSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { after, before, test } from "node:test"
import * as Open from "../../src/data/open.ts"
import * as Preprocess from "../../src/data/preprocess.ts"
import * as Domain from "../../src/data/synthetic/domain.ts"
import * as Generate from "../../src/data/synthetic/generate.ts"
import * as Data from "../../src/dsl/Data.ts"

let dir = ""
before(() => {
  dir = mkdtempSync(join(tmpdir(), "cmkg-data-"))
  process.env.CMKG_CACHE_DIR = dir
})
after(() => {
  rmSync(dir, { recursive: true, force: true })
  delete process.env.CMKG_CACHE_DIR
})

const spec = Data.synthetic({ domain: "rhd", count: 24, imageSize: 32, seed: 3 })
const all = (ds: Open.Dataset, seed: number, epoch: number, batchSize = 5) => [
  ...ds.batches({ batchSize, seed, epoch }),
]

test("the cache is written on the first open and hit on the second, under $CMKG_CACHE_DIR", () => {
  const first = Open.open(spec)
  assert.equal(first.cache?.hit, false)
  assert.ok(first.cache!.path.startsWith(dir))
  const mtime = statSync(first.cache!.path).mtimeMs
  const second = Open.open(spec)
  assert.equal(second.cache?.hit, true)
  assert.equal(second.cache!.path, first.cache!.path)
  assert.equal(statSync(second.cache!.path).mtimeMs, mtime, "not rewritten")
  assert.deepEqual(all(second, 1, 0), all(first, 1, 0))
  // Any generator parameter changes the key.
  const other = Open.open({ ...spec, seed: 4 })
  assert.equal(other.cache?.hit, false)
  assert.notEqual(other.cache!.path, first.cache!.path)
})

test("batches are identical for the same (spec, seed, epoch) and reshuffled for another epoch", () => {
  const ds = Open.open(spec)
  const a = all(ds, 7, 2)
  assert.deepEqual(all(ds, 7, 2), a)
  const b = all(ds, 7, 3)
  assert.notDeepEqual(
    b.map((x) => [...x.indices]),
    a.map((x) => [...x.indices]),
  )
  assert.deepEqual(
    a.map((x) => x.size),
    [5, 5, 5, 5, 4],
  )
  assert.deepEqual(
    [...ds.batches({ batchSize: 5, seed: 7, epoch: 2, dropLast: true })].map((x) => x.size),
    [5, 5, 5, 5],
  )
  const ordered = [...ds.batches({ batchSize: 24, seed: 0, epoch: 0, shuffle: false })][0]!
  assert.deepEqual(
    [...ordered.indices],
    Array.from({ length: 24 }, (_, i) => i),
  )
})

test("batch fields have the per-sample shapes of Data.shapes, NHWC, in their documented ranges", () => {
  const ds = Open.open(spec)
  const shapes = Data.shapes(spec)
  const b = all(ds, 0, 0, 4)[0]!
  const size = (s: readonly number[] | undefined) => (s ?? []).reduce((x, y) => x * y, 1)
  assert.equal(b.rgb.length, 4 * size(shapes.rgb))
  assert.equal(b.depth!.length, 4 * size(shapes.depth))
  assert.equal(b.joints3d.length, 4 * size(shapes.joints3d))
  assert.equal(b.joints2d.length, 4 * size(shapes.joints2d))
  assert.equal(b.scale.length, 4)
  assert.ok(b.rgb.every((v) => v >= 0 && v <= 1))
  assert.ok(b.depth!.every((v) => v >= -1 && v <= 1))
  assert.ok(
    b.depth!.some((v) => v < 1),
    "the hand is in the depth map",
  )
  for (let i = 0; i < 4; i++) {
    const j = b.joints3d.subarray(i * 63, i * 63 + 63)
    assert.deepEqual([...j.subarray(0, 3)], [0, 0, 0], "root-relative")
    assert.ok(Math.abs(Preprocess.boneScale(j) - 1) < 1e-5, "unit middle MCP–PIP bone")
    assert.ok(b.scale[i]! > 30 && b.scale[i]! < 65, `bone length ${b.scale[i]} mm is a human one`)
  }
})

test("batches match freshly rendered samples (the cache stores what the generator makes)", () => {
  const ds = Open.open(spec)
  const b = [...ds.batches({ batchSize: 3, seed: 0, epoch: 0, shuffle: false })][0]!
  const r = Generate.render(Domain.get("rhd"), 32, 3, 1)
  const n = Preprocess.normalise(r.joints3d)
  assert.deepEqual(b.joints3d.subarray(63, 126), n.joints)
  assert.deepEqual(b.joints2d.subarray(42, 84), r.joints2d)
  assert.deepEqual(
    b.rgb.subarray(32 * 32 * 3, 2 * 32 * 32 * 3),
    Float32Array.from(r.rgb, (v) => v / 255),
  )
  const d = Preprocess.normaliseDepth(r.depth.slice(), n.root[2])
  const got = b.depth!.subarray(32 * 32, 2 * 32 * 32)
  for (let i = 0; i < d.length; i++)
    assert.ok(Math.abs(got[i]! - d[i]!) <= 2 / 65535, "depth quantised to 16 bits")
})

test("Data.split makes disjoint train/test parts that cover the source", () => {
  const { train, test: held } = Data.split(spec, { test: 0.25 })
  const a = Open.open(train)
  const b = Open.open(held)
  assert.equal(a.size + b.size, 24)
  assert.equal(b.size, 6)
  const joints = (ds: Open.Dataset) =>
    [...ds.batches({ batchSize: 100, seed: 0, epoch: 0, shuffle: false })][0]!.joints3d
  const full = joints(Open.open(spec))
  assert.deepEqual(joints(a), full.subarray(0, 18 * 63))
  assert.deepEqual(joints(b), full.subarray(18 * 63))
  assert.throws(() => Data.split(spec, { test: 1 }), /test fraction/)
})

test("target domains are RGB only and look different from the source", () => {
  const stb = Data.synthetic({ domain: "stb", count: 16, imageSize: 32 })
  assert.deepEqual(stb.modalities, ["rgb"])
  assert.equal(Data.shapes(stb).depth, undefined)
  const ds = Open.open(stb)
  const b = all(ds, 0, 0, 16)[0]!
  assert.equal(b.depth, undefined)
  // Mean colour statistics differ between domains (the green screen most of all).
  const meanGreenExcess = (name: Data.SyntheticDomain) => {
    let s = 0
    for (let i = 0; i < 16; i++) {
      const r = Generate.render(Domain.get(name), 32, 0, i)
      for (let p = 0; p < r.rgb.length; p += 3) s += r.rgb[p + 1]! - (r.rgb[p]! + r.rgb[p + 2]!) / 2
    }
    return s / (16 * 32 * 32)
  }
  assert.ok(meanGreenExcess("freihand-gs") > meanGreenExcess("rhd") + 40)
  assert.throws(() => Domain.get("nope"), /unknown synthetic domain "nope" \(known: rhd, stb/)
})

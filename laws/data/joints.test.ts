/** Laws of joint re-ordering and pose normalisation. */
import assert from "node:assert/strict"
import { test } from "node:test"
import fc from "fast-check"
import * as Joints from "../../src/data/joints.ts"
import * as Preprocess from "../../src/data/preprocess.ts"
import { runs } from "../arbitraries/Runs.ts"

const coord = fc.double({ min: -500, max: 500, noNaN: true, noDefaultInfinity: true })
const pose = (dims: number) =>
  fc.array(coord, { minLength: 21 * dims, maxLength: 21 * dims }).map((a) => Float64Array.from(a))
const ORDERS = { rhd: Joints.RHD, stb: Joints.STB, freihand: Joints.FREIHAND }

test("law: every dataset order is a permutation of the 21 joints, and its inverse undoes it", () => {
  for (const [name, order] of Object.entries(ORDERS)) {
    assert.equal(order.length, Joints.COUNT, name)
    assert.ok(Joints.isPermutation(order), `${name} is a permutation`)
    assert.ok(Joints.isPermutation(Joints.invert(order)), `${name}⁻¹ is a permutation`)
  }
  assert.ok(!Joints.isPermutation([0, 1, 1]), "a repeated index is not a permutation")
})

test("law: toMano then fromMano round-trips any pose (2D and 3D), and so does the other way", () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...Object.values(ORDERS)),
      fc.constantFrom(2, 3),
      pose(3),
      (order, dims, p3) => {
        const p = p3.subarray(0, 21 * dims).slice()
        assert.deepEqual(Preprocess.fromMano(Preprocess.toMano(p, order, dims), order, dims), p)
        assert.deepEqual(Preprocess.toMano(Preprocess.fromMano(p, order, dims), order, dims), p)
      },
    ),
    runs({ seed: 5150, numRuns: 100 }),
  )
})

test("law: RHD's thumb tip (index 1) is MANO's joint 4 and STB's little-finger root (index 1) is MANO's joint 17", () => {
  const ids = Float64Array.from({ length: 21 }, (_, i) => i)
  assert.equal(Preprocess.toMano(ids, Joints.RHD, 1)[4], 1)
  assert.equal(Preprocess.toMano(ids, Joints.RHD, 1)[1], 4)
  assert.equal(Preprocess.toMano(ids, Joints.STB, 1)[17], 1)
  assert.equal(Preprocess.toMano(ids, Joints.STB, 1)[1], 17)
})

test("law: root-relative scale normalisation is invariant to translating and uniformly scaling the hand", () => {
  const scale = fc.double({ min: 0.05, max: 20, noNaN: true })
  fc.assert(
    fc.property(pose(3), coord, coord, coord, scale, (p, tx, ty, tz, s) => {
      fc.pre(Preprocess.boneScale(p) > 1)
      const moved = p.map((v, i) => v * s + [tx, ty, tz][i % 3]!)
      const a = Preprocess.normalise(p)
      const b = Preprocess.normalise(moved)
      for (let i = 0; i < a.joints.length; i++) {
        // Both are float32 outputs of values up to ~1000 bone lengths: compare relative to the magnitude.
        const tol = 1e-5 * Math.max(1, Math.abs(a.joints[i]!))
        assert.ok(
          Math.abs(a.joints[i]! - b.joints[i]!) <= tol,
          `joint value ${i}: ${a.joints[i]} vs ${b.joints[i]}`,
        )
      }
      assert.ok(Math.abs(b.scale - a.scale * s) <= 1e-9 * b.scale)
      assert.equal(a.joints[0], 0)
    }),
    runs({ seed: 4242, numRuns: 200 }),
  )
})

test("law: a normalised pose has a unit middle MCP–PIP bone, and denormalise restores root-relative mm", () => {
  fc.assert(
    fc.property(pose(3), (p) => {
      fc.pre(Preprocess.boneScale(p) > 1)
      const n = Preprocess.normalise(p)
      assert.ok(Math.abs(Preprocess.boneScale(n.joints) - 1) < 1e-5)
      const mm = Preprocess.denormalise(n.joints, [n.scale])
      for (let i = 0; i < mm.length; i++) {
        const want = p[i]! - p[i % 3]!
        assert.ok(Math.abs(mm[i]! - want) <= 1e-4 * Math.max(1, Math.abs(want)) * 10, `value ${i}`)
      }
    }),
    runs({ seed: 77, numRuns: 100 }),
  )
})

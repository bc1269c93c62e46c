/** Laws of the synthetic generator and the batch stream. */
import assert from "node:assert/strict"
import { test } from "node:test"
import fc from "fast-check"
import * as Random from "../../src/data/random.ts"
import * as Stream from "../../src/data/stream.ts"
import * as Domain from "../../src/data/synthetic/domain.ts"
import * as Generate from "../../src/data/synthetic/generate.ts"
import * as Data from "../../src/dsl/Data.ts"
import { runs } from "../arbitraries/Runs.ts"

test("law: rendering is deterministic for (domain, size, seed, index), whatever was rendered before", () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...Data.SYNTHETIC_DOMAINS),
      fc.integer({ min: 0, max: 2 ** 31 }),
      fc.integer({ min: 0, max: 100_000 }),
      fc.constantFrom(16, 32),
      (name, seed, index, size) => {
        const d = Domain.get(name)
        const a = Generate.render(d, size, seed, index)
        Generate.render(d, size, seed + 1, index + 1) // a different sample in between, same canvas size
        const b = Generate.render(d, size, seed, index)
        assert.deepEqual(b.rgb, a.rgb)
        assert.deepEqual(b.depth, a.depth)
        assert.deepEqual(b.joints3d, a.joints3d)
        assert.deepEqual(b.joints2d, a.joints2d)
        const c = Generate.render(d, size, seed, index + 1)
        assert.notDeepEqual(c.joints3d, a.joints3d, "neighbouring samples differ")
      },
    ),
    runs({ seed: 31337, numRuns: 60 }),
  )
})

test("law: rendered 2D joints are the pinhole projection of the 3D joints", () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...Data.SYNTHETIC_DOMAINS),
      fc.integer({ min: 0, max: 1000 }),
      (name, index) => {
        const s = Generate.render(Domain.get(name), 32, 3, index)
        const k = s.intrinsics
        for (let j = 0; j < 21; j++) {
          const [x, y, z] = [s.joints3d[j * 3]!, s.joints3d[j * 3 + 1]!, s.joints3d[j * 3 + 2]!]
          assert.ok(z > 0, "in front of the camera")
          assert.ok(Math.abs(s.joints2d[j * 2]! - (k.fx * x) / z - k.cx) < 1e-3)
          assert.ok(Math.abs(s.joints2d[j * 2 + 1]! - (k.fy * y) / z - k.cy) < 1e-3)
        }
      },
    ),
    runs({ seed: 8, numRuns: 90 }),
  )
})

test("law: an epoch's order is a permutation that depends only on (seed, epoch)", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 500 }), fc.nat(), fc.nat(50), (n, seed, epoch) => {
      const o = { batchSize: 8, seed, epoch }
      const a = Stream.order(n, o)
      assert.deepEqual(Stream.order(n, o), a)
      assert.deepEqual(
        Float64Array.from(a).sort(),
        Float64Array.from({ length: n }, (_, i) => i),
      )
    }),
    runs({ seed: 2718, numRuns: 100 }),
  )
  assert.notDeepEqual(Random.permutation(Random.make(1, 0), 50), Random.permutation(Random.make(1, 1), 50))
})

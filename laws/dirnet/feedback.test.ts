/**
 * Laws of Table 3's "Iter. w/out AMG" feedback (`feedback: "upsample"`):
 * - at every loop point it type-checks and its map has FE's shape, with no
 *   parameters and no MACs: the network has the plain network's parameters
 *   plus RF's batch norms per extra iteration, and every iteration costs
 *   what iteration 0 does;
 * - stage 0 of the two variants is one network (same parameter paths and
 *   initial values), which is what lets them share it;
 * - the up-sampling it is built from: repeating channels ×4 before a ×2
 *   pixel shuffle is nearest-neighbour ×2 up-sampling.
 */
import assert from "node:assert/strict"
import { before, test } from "node:test"
import * as tf from "@tensorflow/tfjs-core"
import fc from "fast-check"
import * as Dirnet from "../../src/dsl/dirnet.ts"
import * as Net from "../../src/dsl/Net.ts"
import * as Costs from "../../src/interpreters/shape-check/dirnet.ts"
import * as Check from "../../src/interpreters/shape-check/index.ts"
import { apply } from "../../src/interpreters/tf/apply.ts"
import * as Init from "../../src/interpreters/tf/init.ts"
import { readyForLaws, runs } from "../arbitraries/Runs.ts"

before(async () => {
  await readyForLaws()
})

const defaults = { seed: 4242, numRuns: 30 }

const options = fc.record({
  loopPoint: fc.constantFrom(1 as const, 2 as const, 3 as const, 4 as const),
  width: fc.constantFrom(2, 4, 8),
  hidden: fc.constantFrom(4, 16),
  iterations: fc.integer({ min: 1, max: 5 }),
})
const imageSize = fc.constantFrom(32, 64)
const shape = (s: number): readonly [number, number, number] => [s, s, 3]

test("the feedback without AMG has FE's shape and costs no parameters and no MACs", () => {
  fc.assert(
    fc.property(options, imageSize, (o, s) => {
      const u = { ...o, feedback: "upsample" as const }
      const c = Check.check(Dirnet.dirnet(u), shape(s))
      assert.ok(c.ok, c.ok ? "" : c.errors.map(Check.formatError).join("\n"))
      for (let k = 1; k < o.iterations; k++)
        assert.deepEqual(c.summary.taps[`attention@${k}`], c.summary.taps.fe)
      assert.ok(c.summary.params.every((p) => Dirnet.partOf(p.path) !== "amg"))
      const costs = Costs.loopCosts(Dirnet.dirnet(u), shape(s))
      const plain = Check.check(Dirnet.plain(u), shape(s)).summary.cost.params
      assert.equal(costs.params, plain + (o.iterations - 1) * costs.batchNormParamsPerIteration)
      for (const m of costs.macsPerIteration) assert.equal(m, costs.macsPerIteration[0])
    }),
    runs(defaults),
  )
})

test("stage 0 with and without AMG is one network: same paths, same initial values", () => {
  fc.assert(
    fc.property(options, fc.nat({ max: 1000 }), (o, seed) => {
      const one = { ...o, iterations: 1 }
      assert.equal(
        Dirnet.stage0Key(Dirnet.resolve(one)),
        Dirnet.stage0Key(Dirnet.resolve({ ...one, feedback: "upsample" })),
      )
      const amg = Init.init(Dirnet.dirnet(one), shape(32), seed)
      const up = Init.init(Dirnet.dirnet({ ...one, feedback: "upsample" }), shape(32), seed)
      try {
        assert.deepEqual(
          Object.keys(up.params).sort(),
          Object.keys(amg.params)
            .filter((k) => Dirnet.partOf(k) !== "amg")
            .sort(),
        )
        for (const [k, t] of Object.entries(up.params))
          assert.deepEqual(t.dataSync(), amg.params[k]!.dataSync(), k)
      } finally {
        Init.dispose(amg.params, amg.state)
        Init.dispose(up.params, up.state)
      }
    }),
    runs({ ...defaults, numRuns: 24 }),
  )
})

test("repeating channels ×4 before a ×2 pixel shuffle is nearest-neighbour ×2 up-sampling", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 1, max: 5 }),
      fc.nat(),
      (side, channels, seed) => {
        const net = Net.seq(
          Net.concat(Net.identity, Net.identity, Net.identity, Net.identity),
          Net.pixelShuffle(2),
        )
        tf.tidy(() => {
          const x = tf.randomUniform([2, side, side, channels], -1, 1, "float32", seed) as tf.Tensor4D
          const y = apply(net, {}, {}, x, "eval").y
          const expected = tf.image.resizeNearestNeighbor(x, [2 * side, 2 * side])
          assert.deepEqual(y.shape, expected.shape)
          assert.equal(tf.max(tf.abs(tf.sub(y, expected))).dataSync()[0], 0)
        })
      },
    ),
    runs(defaults),
  )
})

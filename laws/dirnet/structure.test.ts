/**
 * Static laws of DIR-Net's IR9 (shape-check only), over generated options
 * (loop point 1–4, width, hidden units, image side, iterations):
 * - it type-checks, FE's output and AMG's attention map have the same shape;
 * - parameters: only RF's batch norms are per iteration, everything else is
 *   shared: going from l to l + 1 iterations adds exactly one copy of RF's
 *   batch-norm parameters for l ≥ 2, and additionally AMG's parameters for
 *   l = 1 (AMG first runs at iteration 1);
 * - MACs grow linearly with the loops by the static per-loop cost:
 *   `macsAtExit[k] = macsAtExit[0] + k·c` with `c` the cost of iteration 1
 *   (RF + AMG + heads), and a network with l iterations costs the same as
 *   the one with l + 1 iterations exiting after l.
 */
import assert from "node:assert/strict"
import { test } from "node:test"
import fc from "fast-check"
import * as Dirnet from "../../src/dsl/dirnet.ts"
import * as Costs from "../../src/interpreters/shape-check/dirnet.ts"
import * as Check from "../../src/interpreters/shape-check/index.ts"
import { runs } from "../arbitraries/Runs.ts"

const defaults = { seed: 7007, numRuns: 40 }

const options = fc.record({
  loopPoint: fc.constantFrom(1 as const, 2 as const, 3 as const, 4 as const),
  width: fc.constantFrom(2, 4, 8),
  hidden: fc.constantFrom(4, 16),
  iterations: fc.integer({ min: 1, max: 6 }),
})
const imageSize = fc.constantFrom(32, 64)

const shape = (s: number): readonly [number, number, number] => [s, s, 3]
const size = (p: Check.ParamSpec) => p.shape.reduce((a, b) => a * b, 1)

test("IR9 type-checks at every loop point; AMG's map has FE's shape; the readout is [pose 63, camera 3, α 2]", () => {
  fc.assert(
    fc.property(options, imageSize, (o, s) => {
      const c = Check.check(Dirnet.dirnet(o), shape(s))
      assert.ok(c.ok, c.ok ? "" : c.errors.map(Check.formatError).join("\n"))
      assert.deepEqual(c.summary.output, [Dirnet.READOUT_SIZE])
      const fe = c.summary.taps.fe!
      assert.deepEqual(fe, [
        s / Dirnet.parts(o).feStride,
        s / Dirnet.parts(o).feStride,
        Dirnet.parts(o).feChannels,
      ])
      for (let k = 1; k < o.iterations; k++) assert.deepEqual(c.summary.taps[`attention@${k}`], fe)
      assert.deepEqual(c.summary.taps["pose@0"], [63])
      assert.deepEqual(c.summary.taps["camera@0"], [3])
      assert.deepEqual(c.summary.taps["logvar@0"], [2])
      assert.deepEqual(c.summary.taps.gateFeatures, [o.hidden])
      assert.equal(Dirnet.parts(o).shuffles, Math.log2(32 / Dirnet.parts(o).feStride))
    }),
    runs(defaults),
  )
})

test("per-iteration batch norms are distinct, every other parameter is shared", () => {
  fc.assert(
    fc.property(options, imageSize, (o, s) => {
      const at = (l: number) => Check.check(Dirnet.dirnet({ ...o, iterations: l }), shape(s))
      const one = at(1)
      assert.ok(one.ok)
      const bnPaths = one.summary.params.filter(
        (p) => Dirnet.partOf(p.path) === "rf" && (p.role === "gamma" || p.role === "beta"),
      )
      const bnSize = bnPaths.reduce((a, p) => a + size(p), 0)
      const amgSize = at(2)
        .summary.params.filter((p) => Dirnet.partOf(p.path) === "amg")
        .reduce((a, p) => a + size(p), 0)
      assert.ok(bnSize > 0 && amgSize > 0)
      const l = o.iterations
      const big = at(l + 1)
      const small = at(l)
      const added = big.summary.params.filter((p) => !small.summary.params.some((q) => q.path === p.path))
      // The new parameters: iteration l's copies of RF's batch norms (and AMG when l = 1).
      for (const p of added)
        assert.ok(
          Dirnet.iterationOf(p.path) === l || (l === 1 && Dirnet.partOf(p.path) === "amg"),
          `unexpected new parameter ${p.path}`,
        )
      assert.equal(big.summary.cost.params - small.summary.cost.params, bnSize + (l === 1 ? amgSize : 0))
      // Every batch norm of RF has one copy per iteration, with distinct paths.
      const copies = big.summary.params.filter((p) => Dirnet.iterationOf(p.path) !== undefined)
      assert.equal(new Set(copies.map((p) => p.path)).size, copies.length)
      assert.equal(copies.length, bnPaths.length * (l + 1))
      // Nothing outside RF's batch norms is per iteration.
      for (const p of copies) assert.equal(Dirnet.partOf(p.path), "rf")
      // The shape checker's per-iteration parameter counts agree.
      const costs = Costs.loopCosts(Dirnet.dirnet({ ...o, iterations: l + 1 }), shape(s))
      assert.equal(costs.batchNormParamsPerIteration, bnSize)
      assert.deepEqual(costs.paramsUpTo.at(-1), big.summary.cost.params)
      for (let k = 2; k <= l; k++) assert.equal(costs.paramsUpTo[k]! - costs.paramsUpTo[k - 1]!, bnSize)
    }),
    runs(defaults),
  )
})

test("MACs grow linearly with the loops by the static per-loop cost", () => {
  fc.assert(
    fc.property(options, imageSize, (o, s) => {
      const l = Math.max(2, o.iterations)
      const costs = Costs.loopCosts(Dirnet.dirnet({ ...o, iterations: l }), shape(s))
      const perLoop = costs.macsPerIteration[1]!
      assert.ok(perLoop > costs.macsPerIteration[0]!, "iteration ≥ 1 also runs AMG")
      for (let k = 0; k < l; k++) assert.equal(costs.macsAtExit[k], costs.macsAtExit[0]! + k * perLoop)
      // A network with k + 1 iterations costs what the l-iteration one costs when exiting after k.
      for (let k = 0; k < l; k++) {
        const smaller = Check.check(Dirnet.dirnet({ ...o, iterations: k + 1 }), shape(s))
        assert.equal(smaller.summary.cost.macs, costs.macsAtExit[k])
      }
      // Expected MACs are linear in the exit distribution.
      const uniform = new Array(l).fill(1 / l)
      const expected = Costs.expectedMacs(costs, uniform)
      assert.ok(Math.abs(expected - (costs.macsAtExit[0]! + ((l - 1) / 2) * perLoop)) < 1e-6 * expected)
      assert.equal(costs.gflopsAtExit[0], (2 * costs.macsAtExit[0]!) / 1e9)
    }),
    runs(defaults),
  )
})

test("the paper-sized IR9 (width 32, 512 units, 224², l_max = 5) is close to the paper's Tables 1–3", () => {
  // Paper: no iteration 1.44M params / 0.46 GFLOPs; loop point (3) with AMG 1.68M / 1.51 GFLOPs at l = 5.
  const c3 = Costs.loopCosts(Dirnet.dirnet({ loopPoint: 3 }), shape(224))
  assert.ok(Math.abs(c3.paramsUpTo[0]! - 1.44e6) < 0.1e6, `${c3.paramsUpTo[0]}`)
  assert.ok(Math.abs(c3.gflopsAtExit[0]! - 0.46) < 0.06, `${c3.gflopsAtExit[0]}`)
  assert.ok(Math.abs(c3.gflopsAtExit[5]! - 1.51) < 0.1, `${c3.gflopsAtExit[5]}`)
  // GFLOPs at l_max fall with later loop points, as in Table 2.
  const last = ([1, 2, 3, 4] as const).map(
    (p) => Costs.loopCosts(Dirnet.dirnet({ loopPoint: p }), shape(224)).gflopsAtExit[5]!,
  )
  for (let i = 1; i < 4; i++) assert.ok(last[i]! < last[i - 1]!, `${last}`)
})

test("the plain network has iteration 0's parameters under the same paths (batch norms without @0)", () => {
  fc.assert(
    fc.property(options, imageSize, (o, s) => {
      const loop = Check.check(Dirnet.dirnet({ ...o, iterations: 1 }), shape(s))
      const plain = Check.check(Dirnet.plain(o), shape(s))
      assert.ok(loop.ok && plain.ok)
      assert.deepEqual(
        loop.summary.params.map((p) => Dirnet.plainPath(p.path)).sort(),
        plain.summary.params.map((p) => p.path).sort(),
      )
      assert.equal(loop.summary.cost.macs, plain.summary.cost.macs)
    }),
    runs({ ...defaults, numRuns: 40 }),
  )
})

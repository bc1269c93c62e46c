/**
 * Laws of the network algebra under the shape-check interpreter: composition
 * is associative for shapes and costs, identities change nothing, the cost of
 * a sequence is the sum of its parts, and the checker is total.
 */
import assert from "node:assert/strict"
import { test } from "node:test"
import fc from "fast-check"
import * as Net from "../../src/dsl/Net.ts"
import * as Check from "../../src/interpreters/shape-check/index.ts"
import * as Arb from "../../src/laws/net.ts"
import { runs } from "../arbitraries/Runs.ts"

const defaults = { seed: 20261121, numRuns: 200 }

/** What must agree between two equivalent networks: shapes, costs, taps and parameter shapes by path. */
const meaning = (c: Check.Checked) => ({
  ok: c.ok,
  output: c.summary.output,
  cost: c.summary.cost,
  taps: c.summary.taps,
  params: c.summary.params.map((p) => [p.path, p.shape]),
})

/** Three consecutive well-shaped pieces a, b, c on a generated input. */
const threePieces = Arb.imageShape().chain((input) =>
  Arb.wellShapedLayers(input, { loops: true, groups: true, sigmoid: true }, 9).map((ls) => {
    const i = Math.floor(ls.length / 3)
    const j = Math.floor((2 * ls.length) / 3)
    return { input, a: Net.seq(...ls.slice(0, i)), b: Net.seq(...ls.slice(i, j)), c: Net.seq(...ls.slice(j)) }
  }),
)

test("seq is associative for shapes, costs, taps and parameter paths", () => {
  fc.assert(
    fc.property(threePieces, ({ input, a, b, c }) => {
      const left = Check.check(Net.seq(a, Net.seq(b, c)), input)
      const right = Check.check(Net.seq(Net.seq(a, b), c), input)
      assert.ok(left.ok, JSON.stringify(!left.ok && left.errors))
      assert.deepEqual(meaning(left), meaning(right))
    }),
    runs(defaults),
  )
})

test("identity layers change neither shapes nor costs", () => {
  fc.assert(
    fc.property(
      Arb.imageShape().chain((input) =>
        Arb.wellShaped(input, { loops: true }).map((net) => ({ input, net })),
      ),
      ({ input, net }) => {
        const plain = meaning(Check.check(net, input))
        for (const wrapped of [
          Net.seq(Net.identity, net),
          Net.seq(net, Net.identity),
          Net.seq(net, Net.tap("extra")),
        ]) {
          const m = meaning(Check.check(wrapped, input))
          assert.deepEqual(m.output, plain.output)
          assert.deepEqual(m.cost, plain.cost)
        }
      },
    ),
    runs(defaults),
  )
})

test("the cost of a sequence is the sum of the costs of its parts", () => {
  fc.assert(
    fc.property(threePieces, ({ input, a, b }) => {
      const ca = Check.check(a, input)
      assert.ok(ca.ok)
      const cb = Check.check(b, ca.summary.output)
      const cab = Check.check(Net.seq(Net.scope("a", a), Net.scope("b", b)), input)
      assert.ok(cb.ok && cab.ok)
      assert.deepEqual(cab.summary.cost, {
        params: ca.summary.cost.params + cb.summary.cost.params,
        macs: ca.summary.cost.macs + cb.summary.cost.macs,
        buffers: ca.summary.cost.buffers + cb.summary.cost.buffers,
      })
    }),
    runs(defaults),
  )
})

test("per-layer costs add up to the network's total", () => {
  fc.assert(
    fc.property(
      Arb.imageShape().chain((input) => Arb.wellShaped(input, { head: true }).map((net) => ({ input, net }))),
      ({ input, net }) => {
        const c = Check.check(net, input)
        assert.ok(c.ok)
        const params = c.summary.layers.reduce((s, l) => s + l.cost.params, 0)
        const macs = c.summary.layers.reduce((s, l) => s + l.cost.macs, 0)
        assert.equal(params, c.summary.cost.params)
        assert.equal(macs, c.summary.cost.macs)
      },
    ),
    runs(defaults),
  )
})

test("the checker never throws: any network on any shape gives shapes or typed errors with paths", () => {
  fc.assert(
    fc.property(Arb.anyNet, Arb.anyShape, (net, input) => {
      const c = Check.check(net, input)
      if (c.ok) assert.ok(c.summary.output.every((d) => Number.isInteger(d) && d > 0))
      else
        for (const e of c.errors) {
          assert.equal(e._tag, "ShapeError")
          assert.equal(typeof e.path, "string")
          assert.ok(e.message.length > 0)
        }
    }),
    runs({ ...defaults, numRuns: 1000 }),
  )
})

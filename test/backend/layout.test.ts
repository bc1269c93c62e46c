// Slice and PadV2 on cmkg-cpu (block copies) equal tfjs's cpu kernels exactly, on every rank
// up to 5 and every begin/size/padding, and so do their gradients (each is the other's).
import assert from "node:assert/strict"
import { before, describe, it } from "node:test"
import * as tf from "@tensorflow/tfjs-core"
import fc from "fast-check"
import { fallbackCalls, fastPathCalls, resetCallCounts, selectBackend } from "../../src/backend/index.ts"
import { data, on, tensor } from "./helpers.ts"

const shapes = fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 5 })

describe("cmkg-cpu Slice and PadV2", () => {
  before(async () => {
    await selectBackend("cmkg-cpu")
  })

  it("match the cpu kernels, values and gradients", () => {
    resetCallCounts()
    fc.assert(
      fc.property(
        shapes.chain((shape) =>
          fc.record({
            shape: fc.constant(shape),
            begin: fc.tuple(...shape.map((d) => fc.integer({ min: 0, max: d - 1 }))),
            fraction: fc.tuple(...shape.map(() => fc.double({ min: 0, max: 1, noNaN: true }))),
            pads: fc.tuple(...shape.map(() => fc.tuple(fc.nat(2), fc.nat(2)))),
            value: fc.constantFrom(0, -Infinity, 1.5),
            seed: fc.nat(1000),
          }),
        ),
        (p) => {
          const size = p.shape.map((d, i) => Math.round(p.fraction[i]! * (d - p.begin[i]!)))
          const x = data(p.shape, p.seed)
          const run = () => {
            const sl = (a: tf.Tensor) => tf.slice(a, p.begin, size)
            const pd = (a: tf.Tensor) => tf.pad(a, p.pads as Array<[number, number]>, p.value)
            const t = tensor(x)
            return [
              sl(t),
              pd(t),
              tf.grad((a: tf.Tensor) => tf.sum(tf.square(sl(a))))(t),
              tf.grad((a: tf.Tensor) => tf.sum(tf.square(pd(a))))(t),
            ]
          }
          const expected = on("cpu", run)
          const got = on("cmkg-cpu", run)
          expected.forEach((e, i) => {
            assert.deepEqual([...got[i]!], [...e], `output ${i} ${JSON.stringify(p)}`)
          })
        },
      ),
      { seed: 12, numRuns: 80 },
    )
    assert.ok(
      (fastPathCalls.Slice ?? 0) >= 80 && (fastPathCalls.PadV2 ?? 0) >= 80,
      JSON.stringify(fastPathCalls),
    )
    assert.equal(fallbackCalls.Slice ?? 0, 0)
  })
})

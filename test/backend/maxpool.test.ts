// Max pooling and its gradient on cmkg-cpu (native loops in the oneDNN addon) equal tfjs's cpu
// kernels, ties and -Infinity padding included (tfjs routes the gradient to the first strictly
// greatest in-bounds position of each window): the output exactly, the gradient up to the order
// in which overlapping windows' contributions are summed (1e-6 relative).
import assert from "node:assert/strict"
import { before, describe, it } from "node:test"
import * as tf from "@tensorflow/tfjs-core"
import fc from "fast-check"
import { dnnlCalls, selectBackend } from "../../src/backend/index.ts"
import { dnnlSkip, on, relErr } from "./helpers.ts"

describe("cmkg-cpu max pooling", { skip: dnnlSkip() }, () => {
  before(async () => {
    await selectBackend("cmkg-cpu")
  })

  it("forward and gradient equal the cpu kernels", () => {
    const before = { f: dnnlCalls.MaxPool ?? 0, g: dnnlCalls.MaxPoolGrad ?? 0 }
    let runs = 0
    fc.assert(
      fc.property(
        fc.record({
          n: fc.integer({ min: 1, max: 3 }),
          h: fc.integer({ min: 2, max: 9 }),
          w: fc.integer({ min: 2, max: 9 }),
          c: fc.integer({ min: 1, max: 5 }),
          k: fc.integer({ min: 1, max: 3 }),
          stride: fc.integer({ min: 1, max: 3 }),
          pad: fc.constantFrom<"same" | "valid">("same", "valid"),
          padInfinity: fc.nat(1),
          seed: fc.nat(1000),
        }),
        (p) => {
          fc.pre(p.pad === "same" || (p.h >= p.k && p.w >= p.k))
          // Small integers make ties common.
          const values = Float32Array.from(
            { length: p.n * p.h * p.w * p.c },
            (_, i) => ((i * 7919 + p.seed) % 5) - 2,
          )
          const run = () => {
            const f = (x: tf.Tensor) => {
              // The interpreter's explicit padding: -Infinity borders, then a valid pool.
              const padded =
                p.padInfinity === 1
                  ? tf.pad(
                      x,
                      [
                        [0, 0],
                        [1, 1],
                        [1, 1],
                        [0, 0],
                      ],
                      -Infinity,
                    )
                  : x
              return tf.maxPool(padded as tf.Tensor4D, p.k, p.stride, p.pad)
            }
            const x = tf.tensor(values, [p.n, p.h, p.w, p.c])
            // (tfjs treats seed 0 as "no seed")
            const w = tf.randomNormal(f(x).shape, 0, 1, "float32", p.seed + 1)
            return [f(x), tf.grad((a: tf.Tensor) => tf.sum(tf.mul(f(a), w)))(x)]
          }
          const expected = on("cpu", run)
          const got = on("cmkg-cpu", run)
          runs++
          assert.deepEqual([...got[0]!], [...expected[0]!], `y ${JSON.stringify(p)}`)
          assert.ok(relErr(expected[1]!, got[1]!) <= 1e-6, `dx ${JSON.stringify(p)}`)
        },
      ),
      { seed: 4, numRuns: 60 },
    )
    // Each cmkg-cpu run pools three times (the output, the weights' shape, inside the gradient).
    assert.equal((dnnlCalls.MaxPool ?? 0) - before.f, 3 * runs)
    assert.equal((dnnlCalls.MaxPoolGrad ?? 0) - before.g, runs)
  })
})

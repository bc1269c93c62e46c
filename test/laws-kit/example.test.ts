/**
 * The example of docs/laws-kit.md, run by CI: laws of a user's own block,
 * written with the laws kit. (The doc imports `cmkg` and `cmkg/laws`; inside
 * this repository the same modules are imported by path.)
 */
import { before, test } from "node:test"
import * as tf from "@tensorflow/tfjs-core"
import fc from "fast-check"
import * as Net from "../../src/dsl/Net.ts"
import * as Laws from "../../src/laws/index.ts"

/** The block under test: conv → batch norm → sigmoid → a residual conv, then a small head. */
const block = (channels: number) =>
  Net.seq(
    Net.conv2d(channels, 3),
    Net.batchNorm(),
    Net.sigmoid,
    Net.residual(Net.seq(Net.conv2d(channels, 3, { bias: false }), Net.batchNorm())),
    Net.globalAvgPool,
    Net.dense(2),
  )

before(() => Laws.ready())

test("my block: shape-check, tf and the float64 reference agree, at every width and input size", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 3 }), Laws.imageShape(5), fc.nat(), (channels, input, seed) => {
      Laws.assertInterpretersAgree({ net: block(channels), input }, { seed })
    }),
    { seed: 1, numRuns: 8 },
  )
})

test("my block: gradients and Hessian-vector products of ½‖y‖² match float64 finite differences", () => {
  const inputAndBatch = Laws.imageShape(5).chain((input) =>
    fc.tuple(fc.constant(input), Laws.batchOf(input, 2)),
  )
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 3 }), inputAndBatch, fc.nat(), (channels, [input, x], seed) => {
      const net = block(channels)
      const { params, state } = Laws.drawParams(net, input, seed)
      // The same function twice: on the tf backend (its autodiff is under test) and in float64,
      // batch norm on batch statistics ("batch-stats": train mode without updating the running ones).
      const onTf = (p: Laws.TfInterpreter.Tree) => {
        const y = Laws.TfInterpreter.apply(net, p, Laws.treeToTf(state), Laws.toTf(x), "batch-stats").y
        return tf.mul(0.5, tf.sum(tf.square(y))) as tf.Scalar
      }
      const inFloat64 = (p: Laws.Reference.Params) =>
        Laws.Reference.apply(net, p, state, x, "train").y.data.reduce((s, v) => s + (v * v) / 2, 0)
      const depth = Laws.Tolerances.depth(net)
      Laws.assertGradientsMatchFiniteDifferences({ tf: onTf, float64: inFloat64 }, params, { depth })
      Laws.assertHvpMatchesFiniteDifferences({ tf: onTf, float64: inFloat64 }, params, { depth, seed })
    }),
    { seed: 2, numRuns: 5 },
  )
})

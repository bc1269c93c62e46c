/**
 * Measured training throughput of the active backend, in multiply-accumulates
 * per second, for turning an experiment's static compute into a wall-time
 * estimate.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core"
import type * as Program from "../../dsl/Program.ts"
import * as Check from "../shape-check/index.ts"
import { apply } from "./apply.ts"
import { valueAndGrad } from "./autodiff.ts"
import * as Init from "./init.ts"

/**
 * Times `steps` forward-backward passes of `model` on a random batch (after
 * one warm-up) and returns training MACs per second (3 × forward MACs per
 * sample, the convention of the experiment's static cost).
 */
export const measure = (model: Program.Model, batch: number, steps = 2): number => {
  const checked = Check.check(model.net, model.input)
  if (!checked.ok) throw new Error(`${model.name}: ill-formed network`)
  const { params, state } = Init.init(model.net, model.input, 0)
  const x = tf.randomNormal([batch, ...model.input])
  const once = () =>
    tf.tidy(() => {
      const { grads } = valueAndGrad(
        (p) => tf.mean(apply(model.net, p, state, x, "train").y) as tf.Scalar,
        params,
      )
      for (const g of Object.values(grads)) g.dataSync()
    })
  once()
  const t0 = performance.now()
  for (let i = 0; i < steps; i++) once()
  const seconds = (performance.now() - t0) / 1000 / steps
  x.dispose()
  Init.dispose(params, state)
  return (3 * checked.summary.cost.macs * batch) / seconds
}

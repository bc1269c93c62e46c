/**
 * The training workloads as cmkg DSL programs run through the tf interpreter
 * (`init`, `apply`, `valueAndGrad`, the DSL's Adam): the cmkg column of the bench.
 */
import * as tf from "@tensorflow/tfjs-core"
import * as Optimizer from "../src/dsl/Optimizer.ts"
import * as Zoo from "../src/dsl/zoo.ts"
import { apply, init, type Tree, valueAndGrad } from "../src/interpreters/tf/index.ts"
import * as Opt from "../src/interpreters/tf/optimizer.ts"

const keepAll = (t: Tree): Tree => {
  for (const v of Object.values(t)) tf.keep(v)
  return t
}

/** One Adam training step of `net` on (x, y) with MSE, BatchNorm in training mode; everything old is disposed. */
export const dslTrain = (
  which: "tiny" | "resnet18",
  batch: number,
  size: number,
): { step: () => number; dispose: () => void } => {
  const net = which === "tiny" ? Zoo.smallResNet({ outputs: 63 }) : Zoo.resnet18({ outputs: 63 })
  const first = init(net, [size, size, 3], 1)
  let params = first.params
  let state = first.state
  const o = Optimizer.adam({ lr: 2.5e-4 })
  let os = Opt.init(o, params)
  const x = tf.randomNormal([batch, size, size, 3])
  const y = tf.randomNormal([batch, 63])
  const step = (): number => {
    const old = [...Object.values(params), ...Object.values(state), ...Opt.tensors(os)]
    const r = tf.tidy(() => {
      let newState: Tree = state
      const { value, grads } = valueAndGrad((p) => {
        const a = apply(net, p, state, x, "train")
        newState = a.state
        return tf.mean(tf.square(tf.sub(a.y, y))) as tf.Scalar
      }, params)
      const u = Opt.update(o, grads, os, params)
      const next = Opt.applyUpdates(params, u.updates)
      return {
        value,
        params: keepAll(next),
        state: keepAll(newState),
        os: {
          count: u.state.count,
          slots: u.state.slots.map((s) =>
            Object.fromEntries(Object.entries(s).map(([k, t]) => [k, keepAll(t)])),
          ),
        },
      }
    })
    const loss = r.value.dataSync()[0] as number
    r.value.dispose()
    const keep = new Set([...Object.values(r.params), ...Object.values(r.state), ...Opt.tensors(r.os)])
    for (const t of old) if (!keep.has(t)) t.dispose()
    params = r.params
    state = r.state
    os = r.os
    return loss
  }
  const dispose = (): void => {
    tf.dispose([...Object.values(params), ...Object.values(state), ...Opt.tensors(os), x, y])
  }
  return { step, dispose }
}

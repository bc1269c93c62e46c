/**
 * Training with the tf interpreter: a small ResNet on a toy regression drives
 * its loss down by 10×, and a 200-step loop holds the live tensor count
 * constant (every step's tensors are released).
 */
import assert from "node:assert/strict"
import { before, test } from "node:test"
import * as tf from "@tensorflow/tfjs-core"
import * as Optimizer from "../../src/dsl/Optimizer.ts"
import * as Zoo from "../../src/dsl/zoo.ts"
import * as Tf from "../../src/interpreters/tf/index.ts"
import * as Optim from "../../src/interpreters/tf/optimizer.ts"

before(async () => {
  await Tf.ready("auto")
})

const net = Zoo.smallResNet({ outputs: 2, widths: [4, 8] })

/** One Adam step on the mean squared error; returns the new parameters/state/optimizer state and the loss. */
const step = (
  params: Tf.Tree,
  state: Tf.Tree,
  opt: Optim.State,
  optimizer: ReturnType<typeof Optimizer.adam>,
  x: tf.Tensor,
  y: tf.Tensor,
) => {
  let newState: Tf.Tree = state
  let result: { params: Tf.Tree; opt: Optim.State; loss: tf.Scalar } | undefined
  tf.tidy(() => {
    const { value, grads } = Tf.valueAndGrad((p) => {
      const out = Tf.apply(net, p, state, x, "train")
      newState = out.state
      return tf.mean(tf.square(tf.sub(out.y, y))) as tf.Scalar
    }, params)
    const u = Optim.update(optimizer, grads, opt, params)
    const next = Optim.applyUpdates(params, u.updates)
    for (const t of [...Object.values(next), ...Optim.tensors(u.state), value]) tf.keep(t)
    result = { params: next, opt: u.state, loss: value }
  })
  if (result === undefined) throw new Error("unreachable")
  // The previous step's tensors are released; the new running statistics were kept by apply.
  for (const t of [...Object.values(params), ...Optim.tensors(opt)]) t.dispose()
  for (const [k, t] of Object.entries(state)) if (newState[k] !== t) t.dispose()
  const loss = result.loss.dataSync()[0]!
  result.loss.dispose()
  return { params: result.params, state: newState, opt: result.opt, loss }
}

test("a small ResNet on a toy regression drives its loss down by at least 10×", () => {
  // Target: the mean brightness of the left and right halves of a random image, a function the net can represent.
  const x = tf.randomUniform([32, 8, 8, 1], 0, 1, "float32", 7)
  const y = tf.tidy(() =>
    tf.reshape(
      tf.concat(
        [
          tf.mean(tf.slice(x, [0, 0, 0, 0], [32, 8, 4, 1]), [1, 2, 3], true),
          tf.mean(tf.slice(x, [0, 0, 4, 0], [32, 8, 4, 1]), [1, 2, 3], true),
        ],
        1,
      ),
      [32, 2],
    ),
  )
  let { params, state } = Tf.init(net, [8, 8, 1], 1)
  const optimizer = Optimizer.adam({ lr: 1e-2 })
  let opt = Optim.init(optimizer, params)
  let first = Number.NaN
  let last = Number.NaN
  for (let i = 0; i < 150; i++) {
    const r = step(params, state, opt, optimizer, x, y)
    ;({ params, state, opt } = r)
    if (i === 0) first = r.loss
    last = r.loss
  }
  assert.ok(last * 10 <= first, `loss ${first} → ${last}`)
  Tf.dispose(params, state)
  for (const t of Optim.tensors(opt)) t.dispose()
  x.dispose()
  y.dispose()
})

test("the live tensor count is the same after step 1 and after step 200", () => {
  const x = tf.randomNormal([8, 8, 8, 1], 0, 1, "float32", 3)
  const y = tf.randomNormal([8, 2], 0, 1, "float32", 4)
  let { params, state } = Tf.init(net, [8, 8, 1], 2)
  const optimizer = Optimizer.sgd({ lr: 1e-2, momentum: 0.9, weightDecay: 1e-4, clip: 1 })
  let opt = Optim.init(optimizer, params)
  let afterFirst = 0
  for (let i = 0; i < 200; i++) {
    ;({ params, state, opt } = step(params, state, opt, optimizer, x, y))
    if (i === 0) afterFirst = Tf.liveTensors()
  }
  assert.equal(Tf.liveTensors(), afterFirst)
  Tf.dispose(params, state)
  for (const t of Optim.tensors(opt)) t.dispose()
  x.dispose()
  y.dispose()
})

test("Optimizer.nonNegative projects onto θ ≥ 0: crossing updates stop at 0, others are SGD's", () => {
  const params = { phi: tf.tensor1d([0.5, 0.1, 0, -0.0, 2]) }
  const grads = { phi: tf.tensor1d([1, 20, 3, -4, -1]) }
  const projected = Optimizer.nonNegative(Optimizer.sgd({ lr: 0.1 }))
  const { updates } = Optim.update(projected, grads, Optim.init(projected, params), params)
  const next = Optim.applyUpdates(params, updates)
  // SGD alone gives [0.4, -1.9, -0.3, 0.4, 2.1]: the two negative entries become 0.
  const got = Array.from(next.phi!.dataSync())
  assert.deepEqual(
    got.map((v) => (v === 0 ? 0 : Number(v.toFixed(6)))),
    [0.4, 0, 0, 0.4, 2.1],
  )
  assert.equal(Optimizer.learningRate(projected), 0.1)
  Tf.dispose(params, grads, updates, next)
})

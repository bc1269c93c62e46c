// Laws of the cmkg-cpu backend as a whole: gradients of a small conv net equal the
// cpu backend's (tolerance 1e-3 relative: long float32 reductions in a different
// order), and training does not leak tensors.
import assert from "node:assert/strict"
import { before, describe, it } from "node:test"
import * as tf from "@tensorflow/tfjs-core"
import { fastPathCalls, resetCallCounts, selectBackend, setMinElements } from "../../src/backend/index.ts"
import { data, on, relErr, tensor } from "../../test/backend/helpers.ts"

const net = (
  x: tf.Tensor4D,
  w1: tf.Tensor4D,
  g: tf.Tensor1D,
  b: tf.Tensor1D,
  w2: tf.Tensor4D,
  d: tf.Tensor2D,
): tf.Scalar => {
  let h = tf.conv2d(x, w1, 1, "same")
  const { mean, variance } = tf.moments(h, [0, 1, 2])
  h = tf.relu(tf.batchNorm4d(h, mean as tf.Tensor1D, variance as tf.Tensor1D, b, g, 1e-5))
  h = tf.maxPool(h, 2, 2, "valid")
  h = tf.relu(tf.conv2d(h, w2, 2, 1))
  const y = tf.matMul(tf.mean(h, [1, 2]) as tf.Tensor2D, d)
  return tf.mean(tf.square(y))
}

describe("cmkg-cpu training", () => {
  before(async () => {
    tf.env().set("PROD", true)
    await selectBackend("cmkg-cpu")
    setMinElements(64)
  })

  it("gradients of a conv-BN-relu-pool-conv-dense net equal the cpu backend's", () => {
    resetCallCounts()
    const shapes = [[4, 12, 12, 3], [3, 3, 3, 8], [8], [8], [3, 3, 8, 16], [16, 5]]
    const vals = shapes.map((s, i) => data(s, 100 + i))
    const run = () => {
      const ts = vals.map(tensor)
      const f = (...a: Array<tf.Tensor>) =>
        net(
          a[0] as tf.Tensor4D,
          a[1] as tf.Tensor4D,
          a[2] as tf.Tensor1D,
          a[3] as tf.Tensor1D,
          a[4] as tf.Tensor4D,
          a[5] as tf.Tensor2D,
        )
      const { value, grads } = tf.valueAndGrads(f)(ts)
      return [value, ...grads]
    }
    const a = on("cpu", run)
    const b = on("cmkg-cpu", run)
    a.forEach((v, i) => {
      assert.ok(relErr(v, b[i] as Float32Array) <= 1e-3, `gradient ${i}: ${relErr(v, b[i] as Float32Array)}`)
    })
    for (const k of ["Conv2D", "Conv2DBackpropFilter", "Conv2DBackpropInput", "Sum", "Multiply"])
      assert.ok((fastPathCalls[k] ?? 0) > 0, k)
  })

  it("100 Adam steps leave the live-tensor count unchanged", () => {
    tf.setBackend("cmkg-cpu")
    setMinElements(8192)
    const vars = [[3, 3, 3, 8], [8], [8], [3, 3, 8, 16], [16, 5]].map((s, i) =>
      tf.variable(tf.randomNormal(s, 0, 0.3, "float32", i)),
    )
    const x = tf.randomNormal([4, 12, 12, 3], 0, 1, "float32", 9) as tf.Tensor4D
    const opt = tf.train.adam(1e-3)
    const step = () => {
      const c = opt.minimize(
        () =>
          net(
            x,
            vars[0] as tf.Tensor4D,
            vars[1] as tf.Tensor1D,
            vars[2] as tf.Tensor1D,
            vars[3] as tf.Tensor4D,
            vars[4] as tf.Tensor2D,
          ),
        true,
      )
      const l = c?.dataSync()[0]
      c?.dispose()
      return l as number
    }
    const first = step()
    step()
    const live = tf.memory().numTensors
    let last = first
    for (let i = 0; i < 100; i++) last = step()
    assert.equal(tf.memory().numTensors, live)
    assert.ok(last < first, `loss ${first} -> ${last}`)
    tf.dispose([x, ...vars])
    opt.dispose()
  })
})

// Higher-order gradient registration: nested tf.grad through a conv net runs,
// leaks nothing, and differentiating through an unrolled SGD step (the CMKG
// meta-learning pattern) matches finite differences.

import assert from "node:assert/strict"
import { before, describe, it } from "node:test"
import * as tf from "@tensorflow/tfjs-core"
import "@tensorflow/tfjs-backend-cpu"
import { ensureGradients } from "../../src/backend/gradients.ts"
import {
  higherOrderGradientKernels,
  logSoftmax,
  registerHigherOrderGradients,
} from "../../src/interpreters/tf/gradients.ts"

const k4 = (t: tf.Tensor) => t as tf.Tensor4D

/** conv -> batch norm (train) -> relu -> max pool -> dense -> log-softmax cross-entropy. */
const net = (x: tf.Tensor, [w, gamma, beta, wd, bd]: readonly tf.Tensor[], labels: tf.Tensor): tf.Scalar => {
  const h = tf.conv2d(k4(x), k4(w as tf.Tensor), 1, "same")
  const mu = tf.mean(h, [0, 1, 2], true)
  const c = tf.sub(h, mu)
  const z = tf.add(
    tf.mul(tf.mul(c, tf.rsqrt(tf.add(tf.mean(tf.square(c), [0, 1, 2], true), 1e-3))), gamma as tf.Tensor),
    beta as tf.Tensor,
  )
  const m = tf.maxPool(k4(tf.relu(z)), 2, 2, "valid")
  const logits = tf.add(tf.matMul(tf.reshape(m, [m.shape[0], -1]), wd as tf.Tensor), bd as tf.Tensor)
  return tf.neg(tf.mean(tf.sum(tf.mul(labels, logSoftmax(logits)), -1))) as tf.Scalar
}

const setup = () => {
  const x = tf.randomNormal([2, 4, 4, 2], 0, 1, "float32", 7)
  const labels = tf.oneHot(tf.tensor1d([0, 2], "int32"), 3)
  const params = [
    tf.randomNormal([3, 3, 2, 3], 0, 0.5, "float32", 1),
    tf.randomUniform([3], 0.5, 1.5, "float32", 2),
    tf.randomNormal([3], 0, 0.1, "float32", 3),
    tf.randomNormal([12, 3], 0, 0.5, "float32", 4),
    tf.randomNormal([3], 0, 0.1, "float32", 5),
  ]
  return { x, labels, params }
}

describe("higher-order gradients", () => {
  before(async () => {
    await ensureGradients()
    registerHigherOrderGradients()
    tf.env().set("PROD", true)
    assert.ok(await tf.setBackend("cpu"))
  })

  it("registers every listed kernel, idempotently, and restores itself over stock gradients", () => {
    const ours = higherOrderGradientKernels.map((k) => tf.getGradient(k))
    assert.ok(ours.every((g) => g !== undefined))
    registerHigherOrderGradients()
    assert.deepEqual(
      higherOrderGradientKernels.map((k) => tf.getGradient(k)),
      ours,
    )
    const conv = tf.getGradient(tf.Conv2D) as tf.GradConfig
    tf.registerGradient({ ...conv }) // e.g. stock gradients imported later
    assert.notEqual(tf.getGradient(tf.Conv2D), conv)
    registerHigherOrderGradients()
    assert.equal(tf.getGradient(tf.Conv2D), conv)
  })

  it("nested tf.grad(tf.grad(...)) through conv -> batchnorm -> relu -> maxpool -> dense runs and leaks no tensors", () => {
    const { x, labels, params } = setup()
    const [w, ...rest] = params as [tf.Tensor, ...tf.Tensor[]]
    const v = tf.randomUniform(w.shape, -1, 1, "float32", 9)
    const before = tf.memory().numTensors
    const norm = tf.tidy(() => {
      // d/dw <d loss/dw, v>: a Hessian-vector product via nested tf.grad
      const gradW = tf.grad((ww: tf.Tensor) => net(x, [ww, ...rest], labels))
      const hv = tf.grad((ww: tf.Tensor) => tf.sum(tf.mul(gradW(ww), v)))(w)
      assert.deepEqual(hv.shape, w.shape)
      return tf.norm(hv).dataSync()[0] as number
    })
    assert.ok(Number.isFinite(norm) && norm > 0, `HVP norm ${norm}`)
    assert.equal(tf.memory().numTensors, before, "tensors leaked by the nested gradient")
    tf.dispose([x, labels, v, ...params])
  })

  it("hyper-gradient through an unrolled SGD step matches finite differences", () => {
    const { x, labels, params } = setup()
    const xVal = tf.randomNormal([2, 4, 4, 2], 0, 1, "float32", 11)
    const labelsVal = tf.oneHot(tf.tensor1d([1, 2], "int32"), 3)
    // validation loss after one SGD step with learning rate lr, as a function of lr
    const afterStep = (lr: tf.Tensor): tf.Scalar => {
      const gs = tf.grads((...ps: tf.Tensor[]) => net(x, ps, labels))(params)
      return net(
        xVal,
        params.map((p, i) => tf.sub(p, tf.mul(lr, gs[i] as tf.Tensor))),
        labelsVal,
      )
    }
    const before = tf.memory().numTensors
    const [analytic, numeric] = tf.tidy(() => {
      const lr = tf.scalar(0.1)
      const a = tf.grad(afterStep)(lr).dataSync()[0] as number
      const eps = 1e-2
      const n =
        ((afterStep(tf.scalar(0.1 + eps)).dataSync()[0] as number) -
          (afterStep(tf.scalar(0.1 - eps)).dataSync()[0] as number)) /
        (2 * eps)
      return [a, n]
    })
    assert.equal(tf.memory().numTensors, before)
    // float32, eps = 1e-2 on lr: same tolerance argument as the laws
    assert.ok(
      Math.abs(analytic - numeric) <= 2e-2 * Math.max(Math.abs(analytic), Math.abs(numeric), 1e-3),
      `d val-loss / d lr: ${analytic} vs finite difference ${numeric}`,
    )
    tf.dispose([x, labels, xVal, labelsVal, ...params])
  })
})

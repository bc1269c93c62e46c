// Higher-order gradient registration: a Hessian-vector product through a conv
// net (nested tf.grad) equals finite differences of its gradient and leaks
// nothing, and the gradient of a validation loss through an unrolled SGD step
// with respect to the starting parameters (second order, as MAML and CMKG's
// meta-learning) matches finite differences where first-order MAML does not.

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

  /** conv output z and relu output a: the pieces whose relu / max-pool patterns must not change within ±eps. */
  const patterns = (x: tf.Tensor, w: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor[] => {
    const h = tf.conv2d(k4(x), k4(w), 1, "same")
    const c = tf.sub(h, tf.mean(h, [0, 1, 2], true))
    const z = tf.add(
      tf.mul(tf.mul(c, tf.rsqrt(tf.add(tf.mean(tf.square(c), [0, 1, 2], true), 1e-3))), gamma),
      beta,
    )
    const a = tf.relu(z)
    return [tf.step(z), tf.grad((u: tf.Tensor) => tf.sum(tf.maxPool(k4(u), 2, 2, "valid")))(a)]
  }
  const samePatterns = (a: tf.Tensor[], b: tf.Tensor[]) =>
    a.every((t, i) => tf.all(tf.equal(t, b[i] as tf.Tensor)).dataSync()[0] === 1)
  const relativeError = (a: tf.Tensor, b: tf.Tensor): number =>
    tf.norm(tf.sub(a, b)).dataSync()[0]! / Math.max(tf.norm(a).dataSync()[0]!, tf.norm(b).dataSync()[0]!)

  it("nested tf.grad(tf.grad(...)) through conv -> batchnorm -> relu -> maxpool -> dense: the HVP equals finite differences of the gradient, and leaks no tensors", () => {
    const { x, labels, params } = setup()
    const [w, gamma, beta, ...rest] = params as [tf.Tensor, tf.Tensor, tf.Tensor, ...tf.Tensor[]]
    const v = tf.randomUniform(w.shape, -1, 1, "float32", 9)
    const before = tf.memory().numTensors
    const err = tf.tidy(() => {
      // d/dw <d loss/dw, v>: a Hessian-vector product via nested tf.grad
      const gradW = tf.grad((ww: tf.Tensor) => net(x, [ww, gamma, beta, ...rest], labels))
      const hv = tf.grad((ww: tf.Tensor) => tf.sum(tf.mul(gradW(ww), v)))(w)
      assert.deepEqual(hv.shape, w.shape)
      // Central differences of the gradient along v, within which no relu or max-pool choice changes.
      const eps = 1e-3
      const [up, down] = [tf.add(w, tf.mul(v, eps)), tf.sub(w, tf.mul(v, eps))]
      assert.ok(
        samePatterns(patterns(x, up, gamma, beta), patterns(x, down, gamma, beta)),
        "a kink within ±eps",
      )
      const fd = tf.div(tf.sub(gradW(up), gradW(down)), 2 * eps)
      assert.ok(tf.norm(fd).dataSync()[0]! > 0.1, "a vanishing HVP would test nothing")
      return relativeError(hv, fd)
    })
    // float32 gradients (~1e-7 relative) divided by 2·eps: ~1e-4 of noise (7.7e-5 seen).
    assert.ok(err <= 1e-3, `HVP vs finite differences of the gradient: relative error ${err}`)
    assert.equal(tf.memory().numTensors, before, "tensors leaked by the nested gradient")
    tf.dispose([x, labels, v, ...params])
  })

  it("second-order hyper-gradient (MAML): d/dθ of the validation loss after an unrolled SGD step from θ matches finite differences, and the first-order approximation does not", () => {
    const { x, labels, params } = setup()
    const xVal = tf.randomNormal([2, 4, 4, 2], 0, 1, "float32", 11)
    const labelsVal = tf.oneHot(tf.tensor1d([1, 2], "int32"), 3)
    const lr = 0.5
    const trainGrads = (ps: tf.Tensor[]) => tf.grads((...qs: tf.Tensor[]) => net(x, qs, labels))(ps)
    // F(θ) = L_val(θ − lr ∇L_train(θ)): its gradient (I − lr H_train) ∇L_val needs train's Hessian.
    const afterStep = (...ps: tf.Tensor[]): tf.Scalar => {
      const gs = trainGrads(ps)
      return net(
        xVal,
        ps.map((p, i) => tf.sub(p, tf.mul(lr, gs[i] as tf.Tensor))),
        labelsVal,
      )
    }
    const before = tf.memory().numTensors
    const [secondOrder, firstOrder] = tf.tidy(() => {
      const vs = params.map((p, i) => tf.randomUniform(p.shape, -1, 1, "float32", 20 + i))
      const dot = (gs: tf.Tensor[]) =>
        gs.reduce((s, g, i) => s + tf.sum(tf.mul(g, vs[i] as tf.Tensor)).dataSync()[0]!, 0)
      const analytic = dot(tf.grads(afterStep)(params))
      // First-order MAML: ∇L_val at the stepped parameters, train's gradient held constant.
      const gs = trainGrads(params)
      const stepped = params.map((p, i) => tf.sub(p, tf.mul(lr, gs[i] as tf.Tensor)))
      const firstOrderOnly = dot(tf.grads((...qs: tf.Tensor[]) => net(xVal, qs, labelsVal))(stepped))
      const eps = 1e-3
      const at = (s: number) => params.map((p, i) => tf.add(p, tf.mul(vs[i] as tf.Tensor, s)))
      for (const s of [eps, -eps]) {
        const moved = at(s)
        const movedStep = moved.map((p, i) => tf.sub(p, tf.mul(lr, trainGrads(moved)[i] as tf.Tensor)))
        assert.ok(
          samePatterns(
            patterns(x, moved[0]!, moved[1]!, moved[2]!),
            patterns(x, params[0]!, params[1]!, params[2]!),
          ) &&
            samePatterns(
              patterns(xVal, movedStep[0]!, movedStep[1]!, movedStep[2]!),
              patterns(xVal, stepped[0]!, stepped[1]!, stepped[2]!),
            ),
          "a kink within ±eps",
        )
      }
      const numeric =
        (afterStep(...at(eps)).dataSync()[0]! - afterStep(...at(-eps)).dataSync()[0]!) / (2 * eps)
      const rel = (a: number) => Math.abs(a - numeric) / Math.max(Math.abs(a), Math.abs(numeric))
      return [rel(analytic), rel(firstOrderOnly)]
    })
    assert.equal(tf.memory().numTensors, before)
    // float32 losses (~1e-7 relative) divided by 2·eps: ~1e-4 of noise (1.1e-4 seen).
    assert.ok(
      secondOrder! <= 1e-2,
      `d val-loss / dθ along v: relative error ${secondOrder} against finite differences`,
    )
    // The test is second order: without the Hessian term the directional derivative is far off.
    assert.ok(
      firstOrder! > 0.1,
      `first-order MAML is as close (${firstOrder}): the test does not need second derivatives`,
    )
    tf.dispose([x, labels, xVal, labelsVal, ...params])
  })

  it("|x|'s gradient is sign x, 0 at 0 as in PyTorch (stock tfjs: −1 there), on every ℓ1 norm's path", () => {
    registerHigherOrderGradients()
    const x = tf.tensor1d([-2, -0.5, 0, 0, 1.5])
    const g = tf.grad((v: tf.Tensor) => tf.sum(tf.abs(v)))(x)
    assert.deepEqual([...g.dataSync()], [-1, -1, 0, 0, 1])
    tf.dispose([x, g])
  })
})

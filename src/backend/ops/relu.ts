/**
 * Relu's gradient as one kernel where the backend has it.
 *
 * tfjs differentiates relu as dy · step(x): two passes over the activation and
 * a temporary, for the most common activation of a conv net. `cmkg-cpu` has a
 * one-pass kernel `CmkgReluGrad`; elsewhere the gradient is tfjs's formula.
 * Both give the same values, NaN included (step(NaN) = NaN), and the kernel's
 * own gradient keeps second order exact: linear in dy, piecewise constant in x.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core"

/** Inputs {dy, x}; output dy · step(x). */
export const RELU_GRAD = "CmkgReluGrad"

const reluGrad = (dy: tf.Tensor, x: tf.Tensor): tf.Tensor =>
  tf.getKernel(RELU_GRAD, tf.getBackend()) !== undefined && x.dtype === "float32" && dy.dtype === "float32"
    ? (tf.engine().runKernel(RELU_GRAD, { dy, x } as unknown as tf.NamedTensorMap) as tf.Tensor)
    : tf.mul(dy, tf.step(tf.cast(x, "float32")))

export const reluGradients: ReadonlyArray<tf.GradConfig> = [
  {
    kernelName: tf.Relu,
    inputsToSave: ["x"],
    gradFunc: (dy, saved) => ({ x: () => reluGrad(dy as tf.Tensor, saved[0] as tf.Tensor) }),
  },
  {
    kernelName: RELU_GRAD,
    inputsToSave: ["x"],
    gradFunc: (ddx, saved) => {
      const x = saved[0] as tf.Tensor
      return { dy: () => reluGrad(ddx as tf.Tensor, x), x: () => tf.zerosLike(x) }
    },
  },
]

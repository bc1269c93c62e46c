/**
 * The hand-written tfjs column: the workloads that have one (every one but the
 * meta-step) written directly against tfjs with bench/nets.ts, with the same
 * fused kernels as the interpreter (training batch norm, Adam's update), so that
 * DSL ÷ hand-written is the DSL's own overhead.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core"
import { distLoss, fusedAdam, mse, type Net, resnet18, tiny } from "./nets.ts"

export interface HandWorkload {
  /** One training step (disposes everything it makes); returns the loss. */
  readonly step: () => number
  readonly dispose: () => void
}

const disposeNet = (n: Net): void => {
  for (const p of n.params) p.v.dispose()
}

/** One network trained with MSE and Adam on random `size`×`size`×3 inputs and random 63-d targets. */
const singleNetwork = (net: Net, b: number, size: number): HandWorkload => {
  const x = tf.randomNormal([b, size, size, 3]) as tf.Tensor4D
  const y = tf.randomNormal([b, 63]) as tf.Tensor2D
  const optimizer = fusedAdam(
    net.params.map((p) => p.v),
    2.5e-4,
  )
  return {
    step: () => {
      const updates: Array<() => void> = []
      const loss = optimizer.step(() => mse(net.forward(x, "train", updates).y, y))
      for (const u of updates) u()
      return loss
    },
    dispose: () => {
      optimizer.dispose()
      disposeNet(net)
      tf.dispose([x, y])
    },
  }
}

/** Distillation from a frozen depth teacher (eval mode, no gradients): L_REG + L_ACT + 1e3·L_ATT, Adam. */
const distillation = (b: number, size: number): HandWorkload => {
  const student = resnet18(3, 63)
  const teacher = resnet18(1, 63, false)
  const x = tf.randomNormal([b, size, size, 3]) as tf.Tensor4D
  const xd = tf.randomNormal([b, size, size, 1]) as tf.Tensor4D
  const y = tf.randomNormal([b, 63]) as tf.Tensor2D
  const optimizer = fusedAdam(
    student.params.map((p) => p.v),
    2.5e-4,
  )
  return {
    step: () => {
      const updates: Array<() => void> = []
      const ta = tf.tidy(() => teacher.forward(xd, "eval", []).taps)
      const loss = optimizer.step(() => {
        const s = student.forward(x, "train", updates)
        return tf.add(mse(s.y, y), distLoss(s.taps, ta))
      })
      tf.dispose(ta)
      for (const u of updates) u()
      return loss
    },
    dispose: () => {
      optimizer.dispose()
      disposeNet(student)
      disposeNet(teacher)
      tf.dispose([x, xd, y])
    },
  }
}

/** The hand-written side of each workload that has one. */
export const HANDWRITTEN: Readonly<Record<string, (batch: number, size: number) => HandWorkload>> = {
  "tiny-64-train": (b, size) => singleNetwork(tiny(3, 63), b, size),
  "resnet18-128-train": (b, size) => singleNetwork(resnet18(3, 63), b, size),
  "cmkd-resnet18-128": distillation,
}

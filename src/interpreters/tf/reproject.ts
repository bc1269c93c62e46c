/**
 * The tf meaning of the `Reproject` signal: DIR-Net's weak-perspective
 * re-projection (Eq. 2 without MANO, R = I), `J2D = S·(s·Π J3D + t + ½)`
 * with `s = s₀·exp(clip(c₀, −4, 4))`, `t = (c₁, c₂)` (see `Loss.Signal`).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core"

/** `pose [B, 3J]`, `camera [B, 3]` → 2D joints `[B, 2J]` in pixels of an `imageSize` input. */
export const reproject = (
  pose: tf.Tensor,
  camera: tf.Tensor,
  imageSize: number,
  baseScale: number,
): tf.Tensor2D => {
  // No tidy here: this runs inside differentiated functions, whose caller owns the intermediates.
  const b = pose.shape[0]!
  const joints = pose.shape[1]! / 3
  const xy = tf.slice(tf.reshape(pose, [b, joints, 3]), [0, 0, 0], [b, joints, 2])
  const c = tf.reshape(camera, [b, 1, 3])
  const s = tf.mul(tf.exp(tf.clipByValue(tf.slice(c, [0, 0, 0], [b, 1, 1]), -4, 4)), baseScale)
  const t = tf.add(tf.slice(c, [0, 0, 1], [b, 1, 2]), 0.5)
  return tf.reshape(tf.mul(tf.add(tf.mul(xy, s), t), imageSize), [b, 2 * joints]) as tf.Tensor2D
}

// Float32 tensors on cmkg-cpu that tfjs built from int32 or bool data reach the fast kernels
// (onnxruntime, oneDNN), which take only a Float32Array. tfjs's cpu Cast to float32 shares the
// input's Int32Array/Uint8Array; `npm run bench` crashed on cmkd-resnet18-128 in the gradient of
// tf.norm(attention, 2, 1) (it casts its int32 exponent 2 and multiplies it by the whole map)
// once a map had 8192 elements, onnxruntime's threshold: [32, 256] at 128², batch 32.
// Elementwise values must equal tfjs's cpu backend exactly (one float32 rounding each); the norm's
// gradient, whose row sums may add in another order, within 1e-6 relative (1.1e-8 seen).
import assert from "node:assert/strict"
import { before, describe, it } from "node:test"
import type { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu"
import * as tf from "@tensorflow/tfjs-core"
import { fastPathCalls, MIN_ELEMENTS, resetCallCounts } from "../../src/backend/index.ts"
import { ready } from "../../src/interpreters/tf/index.ts"
import { data, on, relErr, tensor } from "./helpers.ts"

/** The typed array behind a tensor on the current backend. */
const storage = (t: tf.Tensor): unknown => (tf.backend() as MathBackendCPU).data.get(t.dataId).values

describe("cmkg-cpu float32 tensors made from int32 and bool data", () => {
  before(async () => {
    await ready("cmkg-cpu")
  })

  it("the gradient of tf.norm over a [32, 256] attention map (the cmkd bench at 128²) equals cpu's", () => {
    assert.equal(MIN_ELEMENTS(), 8192, "the map must be exactly at onnxruntime's threshold")
    const m = data([32, 256], 5)
    // The bench's attention normalisation: m / max(‖m‖₂ per row, 1e-12).
    const run = () =>
      tf.grad((x: tf.Tensor) => tf.sum(tf.square(tf.div(x, tf.maximum(tf.norm(x, 2, 1, true), 1e-12)))))(
        tensor(m),
      )
    const cpu = on("cpu", run)[0] as Float32Array
    resetCallCounts()
    const fast = on("cmkg-cpu", run)[0] as Float32Array
    assert.ok((fastPathCalls.Multiply ?? 0) > 0, JSON.stringify(fastPathCalls))
    assert.ok(relErr(cpu, fast) <= 1e-6, `relative error ${relErr(cpu, fast)}`)
  })

  it("Cast of int32 and bool to float32 owns a Float32Array, and relu, square, mul, add read it", () => {
    const n = 3 * 8192
    const ints = Int32Array.from({ length: n }, (_, i) => ((i * 7919) % 23) - 11)
    const run = (): Array<tf.Tensor> => {
      const fromInt = tf.cast(tf.tensor1d(ints, "int32"), "float32")
      const fromBool = tf.cast(tf.greater(fromInt, 0), "float32")
      if (tf.getBackend() === "cmkg-cpu") {
        assert.ok(storage(fromInt) instanceof Float32Array, "cast int32 → float32")
        assert.ok(storage(fromBool) instanceof Float32Array, "cast bool → float32")
      }
      return [tf.relu(fromInt), tf.square(fromInt), tf.mul(fromInt, fromBool), tf.add(fromBool, fromInt)]
    }
    const cpu = on("cpu", run)
    const fast = on("cmkg-cpu", run)
    for (const [i, c] of cpu.entries()) assert.deepEqual(fast[i], c, `output ${i}`)
  })

  it("a float32 tensor over an Int32Array (as other cpu kernels may leave one) runs through the fast kernels", () => {
    const n = 2 * 8192
    const ints = Int32Array.from({ length: n }, (_, i) => (i % 13) - 6)
    const expected = on("cpu", () => {
      const x = tf.tensor1d(Float32Array.from(ints))
      return [tf.relu(x), tf.square(x), tf.mul(x, x)]
    })
    const got = on("cmkg-cpu", () => {
      const b = tf.backend() as MathBackendCPU
      const x = tf.engine().makeTensorFromTensorInfo(b.makeTensorInfo([n], "float32", ints.slice()))
      return [tf.relu(x), tf.square(x), tf.mul(x, x)]
    })
    for (const [i, e] of expected.entries()) assert.deepEqual(got[i], e, `output ${i}`)
  })
})

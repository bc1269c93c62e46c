// selectBackend falls back cleanly along tensorflow-gpu → tensorflow → cmkg-cpu → wasm → cpu,
// and the wasm backend trains convolutions (the kernels it lacks are bridged to cpu).
import assert from "node:assert/strict"
import { describe, it } from "node:test"
import * as tf from "@tensorflow/tfjs-core"
import { selectBackend, simulatedFailures } from "../../src/backend/index.ts"
import { data, on, relErr, tensor } from "./helpers.ts"

describe("selectBackend", () => {
  it("auto picks the first backend that initialises and says why others were skipped", async () => {
    tf.env().set("PROD", true)
    const s = await selectBackend("auto")
    assert.equal(tf.getBackend(), s.name)
    let nodeLoads = true
    try {
      await import("@tensorflow/tfjs-node" as string)
    } catch {
      nodeLoads = false
    }
    if (!nodeLoads) {
      assert.equal(s.name, "cmkg-cpu")
      assert.match(s.note, /skipped tensorflow-gpu .*tensorflow \(/)
    }
  })

  it("falls back to wasm, then cpu, when the faster ones fail", async () => {
    for (const f of ["tensorflow-gpu", "tensorflow", "cmkg-cpu"] as const) simulatedFailures.add(f)
    try {
      const w = await selectBackend("auto")
      assert.equal(w.name, "wasm")
      assert.match(w.note, /cmkg-cpu \(cmkg-cpu disabled/)
      simulatedFailures.add("wasm")
      const c = await selectBackend("auto")
      assert.equal(c.name, "cpu")
      simulatedFailures.add("cpu")
      await assert.rejects(selectBackend("auto"), /no tfjs backend initialised/)
    } finally {
      simulatedFailures.clear()
    }
  })

  it("an explicit preference is tried first", async () => {
    assert.equal((await selectBackend("cpu")).name, "cpu")
    assert.equal((await selectBackend("wasm")).name, "wasm")
    assert.equal((await selectBackend("cmkg-cpu")).name, "cmkg-cpu")
  })

  it("wasm computes conv and depthwise filter/input gradients (bridged) equal to cpu", async () => {
    await selectBackend("wasm")
    const x = data([2, 7, 7, 3], 1)
    const f = data([3, 3, 3, 4], 2)
    const d = data([3, 3, 3, 2], 3)
    const run = () => [
      ...tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, "same"))),
      )([tensor(x), tensor(f)]),
      ...tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.square(tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, "same"))),
      )([tensor(x), tensor(d)]),
    ]
    const a = on("cpu", run)
    const b = on("wasm", run)
    a.forEach((v, i) => {
      assert.ok(relErr(v, b[i] as Float32Array) <= 1e-4, String(i))
    })
  })
})

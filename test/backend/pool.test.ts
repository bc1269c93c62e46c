// Recycled buffers on cmkg-cpu: a disposed tensor's buffer is reused, and nothing a caller
// still holds (a dataSync() result, a slice of the disposed tensor) changes when it is.
import assert from "node:assert/strict"
import { before, describe, it } from "node:test"
import * as tf from "@tensorflow/tfjs-core"
import { selectBackend } from "../../src/backend/index.ts"
import { pooledBytes } from "../../src/backend/pool.ts"

const N = 1 << 16 // above the pool's minimum size

describe("cmkg-cpu buffer pool", () => {
  before(async () => {
    await selectBackend("cmkg-cpu")
  })

  it("reuses a disposed activation's buffer", () => {
    const x = tf.randomNormal([N])
    const y = tf.relu(x)
    const waitingBefore = pooledBytes()
    y.dispose()
    assert.equal(pooledBytes(), waitingBefore + N * 4)
    const z = tf.relu(x)
    assert.equal(pooledBytes(), waitingBefore)
    tf.dispose([x, z])
  })

  it("a dataSync() result and a slice outlive their tensor's buffer being reused", () => {
    const x = tf.randomNormal([N])
    const y = tf.relu(x)
    const read = y.dataSync()
    const expected = Float32Array.from(read)
    const head = tf.slice(y, 0, 8)
    const headExpected = Float32Array.from(expected.subarray(0, 8))
    y.dispose()
    // Reuse the buffer and overwrite it with other values.
    const z = tf.neg(tf.abs(x))
    assert.ok(z.dataSync()[0]! <= 0)
    assert.deepEqual(read, expected)
    assert.deepEqual(head.dataSync(), headExpected)
    tf.dispose([x, z, head])
  })
})

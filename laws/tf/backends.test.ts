/**
 * The same program and seed give the same numbers on every backend this
 * machine has: cpu (the reference), wasm (with cmkg's bridged training
 * kernels) and cmkg-cpu (onnxruntime and loop kernels), forward and gradients,
 * on generated networks. Each backend is asserted to have actually run.
 *
 * Tolerance: float32 kernels with different summation orders:
 * |a − b| ≤ 1e-3·(1 + |b|) per value; all gradients as one vector ≤ 1e-2 relative in norm.
 */
import assert from "node:assert/strict"
import { before, test } from "node:test"
import * as tf from "@tensorflow/tfjs-core"
import fc from "fast-check"
import { fastPathCalls, resetCallCounts, selectBackend } from "../../src/backend/index.ts"
import * as Shape from "../../src/dsl/Shape.ts"
import * as Check from "../../src/interpreters/shape-check/index.ts"
import * as Tf from "../../src/interpreters/tf/index.ts"
import * as Arb from "../../src/laws/net.ts"
import { runs } from "../arbitraries/Runs.ts"

const backends = ["cpu", "wasm", "cmkg-cpu"] as const

before(async () => {
  for (const b of backends) await selectBackend(b)
  await Tf.ready("cpu")
})

const run = (backend: string, net: Parameters<typeof Tf.apply>[0], input: Shape.Shape, seed: number) => {
  tf.setBackend(backend)
  assert.equal(tf.getBackend(), backend)
  return tf.tidy(() => {
    const { params, state } = Tf.init(net, input, seed)
    const rand = Tf.prngFor(seed + 1)
    const x = tf.tensor(
      Float32Array.from({ length: 2 * Shape.size(input) }, () => 2 * rand() - 1),
      [2, ...input],
    )
    const y = Tf.apply(net, params, state, x, "train").y
    const { grads } = Tf.valueAndGrad(
      (p) => tf.sum(tf.square(Tf.apply(net, p, state, x, "train").y)) as tf.Scalar,
      params,
    )
    return {
      y: Array.from(y.dataSync()),
      grads: Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, Array.from(g.dataSync())])),
    }
  })
}

test("cpu, wasm and cmkg-cpu agree on outputs and gradients for the same program and seed", () => {
  resetCallCounts()
  fc.assert(
    fc.property(
      Arb.imageShape(8).chain((input) =>
        Arb.wellShaped(input, { groups: true, head: true }, 5).map((net) => ({ input, net })),
      ),
      fc.nat(1000),
      ({ input, net }, seed) => {
        assert.ok(Check.check(net, input).ok)
        const ref = run("cpu", net, input, seed)
        for (const b of ["wasm", "cmkg-cpu"]) {
          const other = run(b, net, input, seed)
          for (const [i, v] of ref.y.entries())
            assert.ok(
              Math.abs(other.y[i]! - v) <= 1e-3 * (1 + Math.abs(v)),
              `${b} y[${i}]: ${other.y[i]} vs ${v}`,
            )
          // Compared as one vector: a parameter whose gradient cancels to ~0 (a conv bias before batch norm) is float noise alone.
          let diff = 0
          let norm = 0
          for (const [k, g] of Object.entries(ref.grads))
            g.forEach((v, i) => {
              diff += (v - other.grads[k]![i]!) ** 2
              norm += v * v
            })
          assert.ok(
            Math.sqrt(diff) <= 1e-2 * Math.sqrt(norm) + 1e-6,
            `${b} gradients: error ${Math.sqrt(diff)}, norm ${Math.sqrt(norm)}`,
          )
        }
      },
    ),
    runs({ seed: 77, numRuns: 50 }),
  )
  // The fast path actually ran on cmkg-cpu.
  assert.ok(
    (fastPathCalls.Conv2D ?? 0) > 0 && (fastPathCalls.Conv2DBackpropFilter ?? 0) > 0,
    JSON.stringify(fastPathCalls),
  )
})

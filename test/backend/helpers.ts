/** Shared helpers for the backend tests: run a kernel on two backends and compare. */
import assert from "node:assert/strict"
import { test } from "node:test"
import * as tf from "@tensorflow/tfjs-core"
import { dnnlUnavailable } from "../../src/backend/index.ts"

/** Run `f` on `backend`, returning plain values (the tensors are disposed). */
export const on = (backend: string, f: () => tf.Tensor | Array<tf.Tensor>): Array<Float32Array> => {
  tf.setBackend(backend)
  // The values are read outside tidy: tidy walks what its function returns looking for tensors, element by
  // element for a typed array (≈ 1 s for 2²⁰ floats), while the tensors themselves it just keeps.
  const results = tf.tidy(() => {
    const r = f()
    return Array.isArray(r) ? r : [r]
  })
  const values = results.map((t) => t.dataSync() as Float32Array)
  for (const t of results) t.dispose()
  return values
}

/** Max |a-b| over max(1, max|a|): the float32 error scaled to the output's magnitude. */
export const relErr = (a: Float32Array, b: Float32Array): number => {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY
  let m = 0
  let s = 1
  for (let i = 0; i < a.length; i++) {
    m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)))
    s = Math.max(s, Math.abs(a[i] as number))
  }
  return m / s
}

/** Input tensors created on `cpu` and copied into plain arrays, so both backends see the same data. */
export const data = (
  shape: ReadonlyArray<number>,
  seed: number,
): { shape: Array<number>; values: Float32Array } => {
  tf.setBackend("cpu")
  const t = tf.randomNormal([...shape], 0, 1, "float32", seed)
  const values = t.dataSync() as Float32Array
  t.dispose()
  return { shape: [...shape], values: values.slice() }
}
export const tensor = (d: { shape: Array<number>; values: Float32Array }): tf.Tensor =>
  tf.tensor(d.values.slice(), d.shape, "float32")

const onCI = (): boolean => {
  const ci = process.env.CI ?? ""
  return ci !== "" && ci !== "0" && ci !== "false"
}
let reportedMissing = false

/**
 * Why the oneDNN suites of this file are skipped (the `skip` option of a
 * `describe`), or undefined when the addon is loaded. On CI (`CI=true`) a
 * missing addon is a failing test unless `CMKG_DNNL=0` says to test without
 * it, so that CI cannot go green with the fast path untested.
 */
export const dnnlSkip = (): string | undefined => {
  const why = dnnlUnavailable()
  if (why === undefined) return undefined
  if (onCI() && process.env.CMKG_DNNL !== "0" && !reportedMissing) {
    reportedMissing = true
    test("the oneDNN addon is loaded on CI", () => {
      assert.fail(
        `CI=${process.env.CI} but ${why}: run bash scripts/install-onednn.sh, then npm ci; or set CMKG_DNNL=0 to test without oneDNN`,
      )
    })
  }
  return why
}

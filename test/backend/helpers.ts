/** Shared helpers for the backend tests: run a kernel on two backends and compare. */
import * as tf from "@tensorflow/tfjs-core"

/** Run `f` on `backend`, returning plain values (the tensors are disposed). */
export const on = (backend: string, f: () => tf.Tensor | Array<tf.Tensor>): Array<Float32Array> => {
  tf.setBackend(backend)
  return tf.tidy(() => {
    const r = f()
    return (Array.isArray(r) ? r : [r]).map((t) => t.dataSync() as Float32Array)
  })
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

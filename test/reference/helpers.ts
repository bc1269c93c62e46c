import assert from "node:assert/strict"
import type { Tensor } from "../../src/interpreters/reference/index.ts"
import { formatShape, make } from "../../src/interpreters/reference/Tensor.ts"

/** Asserts `t` has `shape` and its elements equal `expected` within `tol`. */
export const assertTensor = (
  t: Tensor,
  shape: readonly number[],
  expected: readonly number[],
  tol = 1e-12,
): void => {
  assert.deepEqual([...t.shape], [...shape], `shape ${formatShape(t.shape)} ≠ ${formatShape(shape)}`)
  assert.equal(t.data.length, expected.length)
  expected.forEach((e, i) => {
    const a = t.data[i]!
    assert.ok(Math.abs(a - e) <= tol * Math.max(1, Math.abs(e)), `element ${i}: ${a} ≠ ${e}`)
  })
}

/** Asserts two tensors are equal within `tol`. */
export const assertClose = (a: Tensor, b: Tensor, tol = 1e-12): void =>
  assertTensor(a, b.shape, Array.from(b.data), tol)

/** Channels `from … to − 1` of the last axis. */
export const sliceLast = (t: Tensor, from: number, to: number): Tensor => {
  const C = t.shape[t.shape.length - 1]!
  const outer = t.data.length / C
  const values: number[] = []
  for (let o = 0; o < outer; o++) for (let c = from; c < to; c++) values.push(t.data[o * C + c]!)
  return make([...t.shape.slice(0, -1), to - from], values)
}

/** Wraps `params` so that every key read is recorded in `seen`. */
export const recording = <P extends object>(params: P, seen: Set<string>): P =>
  new Proxy(params, {
    get: (target, key, receiver) => {
      if (typeof key === "string") seen.add(key)
      return Reflect.get(target, key, receiver)
    },
  })

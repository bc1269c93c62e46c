/**
 * The reference interpreter's tensors: a shape and a row-major `Float64Array`.
 *
 * Deliberately minimal: constructors, element counts and comparison. Every
 * operation of the interpreter is written out as explicit loops over these.
 *
 * @module
 */

/** A dense float64 tensor, row-major; images are NHWC with the batch first. */
export interface Tensor {
  readonly shape: readonly number[]
  readonly data: Float64Array
}

/** Number of elements of a shape (1 for a scalar). */
export const size = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1)

/** A tensor of the given shape holding `values` in row-major order (copied). */
export const make = (shape: readonly number[], values: ArrayLike<number>): Tensor => {
  if (!shape.every((d) => Number.isInteger(d) && d >= 0))
    throw new Error(`invalid shape [${shape.join(", ")}]`)
  if (values.length !== size(shape))
    throw new Error(`shape [${shape.join(", ")}] needs ${size(shape)} values, got ${values.length}`)
  return { shape: [...shape], data: Float64Array.from(values) }
}

/** A tensor filled with `value` (default 0). */
export const fill = (shape: readonly number[], value = 0): Tensor =>
  make(shape, new Float64Array(size(shape)).fill(value))

/** A tensor whose element at row-major index `i` is `f(i)`. */
export const generate = (shape: readonly number[], f: (i: number) => number): Tensor =>
  make(
    shape,
    Float64Array.from({ length: size(shape) }, (_, i) => f(i)),
  )

/** Whether two shapes are equal. */
export const sameShape = (a: readonly number[], b: readonly number[]): boolean =>
  a.length === b.length && a.every((d, i) => d === b[i])

/** Largest absolute element-wise difference (Infinity when the shapes differ). */
export const maxAbsDiff = (a: Tensor, b: Tensor): number => {
  if (!sameShape(a.shape, b.shape)) return Number.POSITIVE_INFINITY
  let m = 0
  for (let i = 0; i < a.data.length; i++) m = Math.max(m, Math.abs(a.data[i]! - b.data[i]!))
  return m
}

/** The elements as a plain array (for assertions and printing). */
export const toArray = (t: Tensor): number[] => Array.from(t.data)

/** `[2, 3]` → `"[2, 3]"`. */
export const formatShape = (shape: readonly number[]): string => `[${shape.join(", ")}]`

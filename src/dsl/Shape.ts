/**
 * Shapes of one sample, without the batch dimension: `[H, W, C]` for an
 * image-like activation (NHWC layout once batched), `[D]` for a vector.
 *
 * @module
 */

/** A per-sample shape, e.g. `[224, 224, 3]` or `[1000]`. */
export type Shape = readonly number[]

// ---- constructors -----------------------------------------------------------

/** An image-like shape `[height, width, channels]`. */
export const image = (height: number, width: number, channels: number): Shape => [height, width, channels]

/** A vector shape `[size]`. */
export const vector = (size: number): Shape => [size]

// ---- folds -------------------------------------------------------------------

/** Number of elements in one sample. */
export const size = (shape: Shape): number => shape.reduce((a, b) => a * b, 1)

/** `[224, 224, 3]` → `"224×224×3"`. */
export const format = (shape: Shape | undefined): string => (shape === undefined ? "?" : shape.join("×"))

/** Element-wise equality. */
export const equals = (a: Shape, b: Shape): boolean => a.length === b.length && a.every((d, i) => d === b[i])

/** Whether every dimension is a positive integer. */
export const isValid = (shape: Shape): boolean => shape.every((d) => Number.isInteger(d) && d > 0)

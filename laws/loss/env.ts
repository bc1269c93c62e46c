/**
 * Generated loss environments for the laws: one flat record of float64
 * tensors (values exactly representable in float32, so the tf and reference
 * interpreters see the same inputs), viewed as a tf `Env` or a reference `Env`.
 *
 * Flat keys: `out|model`, `tap|model|name`, `field|name`, `param|group|path`, `meta|phi|path`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core"
import fc from "fast-check"
import type * as Loss from "../../src/dsl/Loss.ts"
import * as Ref from "../../src/interpreters/reference/index.ts"
import type * as RefLoss from "../../src/interpreters/reference/loss.ts"
import type { Tree } from "../../src/interpreters/tf/init.ts"
import type * as TfLoss from "../../src/interpreters/tf/loss.ts"

export type Flat = Record<string, Ref.Tensor>

export const rng = (seed: number): (() => number) => Ref.mulberry32(seed)

/** Values uniform in ±[lo, hi] (random sign), rounded to float32. */
export const tensor = (shape: readonly number[], rand: () => number, lo = 0, hi = 1): Ref.Tensor =>
  Ref.Tensors.generate(shape, () => Math.fround((rand() < 0.5 ? -1 : 1) * (lo + (hi - lo) * rand())))

/** Values uniform in [lo, hi], rounded to float32. */
export const uniform = (shape: readonly number[], rand: () => number, lo: number, hi: number): Ref.Tensor =>
  Ref.Tensors.generate(shape, () => Math.fround(lo + (hi - lo) * rand()))

const build = <T>(flat: Readonly<Record<string, T>>) => {
  const outputs: Record<string, { y: T; taps: Record<string, T> }> = {}
  const batch: Record<string, T> = {}
  const params: Record<string, Record<string, T>> = {}
  const meta: Record<string, Record<string, T>> = {}
  const model = (m: string) => {
    outputs[m] ??= { y: undefined as unknown as T, taps: {} }
    return outputs[m]
  }
  for (const [k, v] of Object.entries(flat)) {
    const [kind, a, b] = k.split("|") as [string, string, string]
    if (kind === "out") model(a).y = v
    else if (kind === "tap") model(a).taps[b] = v
    else if (kind === "field") batch[a] = v
    else if (kind === "param") params[a] = { ...params[a], [b]: v }
    else if (kind === "meta") meta[a] = { ...meta[a], [b]: v }
    else throw new Error(`bad key ${k}`)
  }
  return { outputs, batch, params, meta }
}

export const refEnv = (flat: Readonly<Record<string, Ref.Tensor>>): RefLoss.Env =>
  build(flat) as unknown as RefLoss.Env

export const tfEnv = (flat: Readonly<Record<string, tf.Tensor>>): TfLoss.Env =>
  build(flat) as unknown as TfLoss.Env

export const toTf = (t: Ref.Tensor): tf.Tensor =>
  tf.tensor(Float32Array.from(t.data), [...t.shape], "float32")
export const toRef = (t: tf.Tensor): Ref.Tensor => Ref.Tensors.make(t.shape, Float64Array.from(t.dataSync()))
export const flatToTf = (flat: Flat): Tree =>
  Object.fromEntries(Object.entries(flat).map(([k, v]) => [k, toTf(v)]))

export const signals = {
  out: (model: string): Loss.Signal => ({ _tag: "Output", model }),
  tap: (model: string, tap: string): Loss.Signal => ({ _tag: "Tap", model, tap }),
  field: (field: Loss.Field): Loss.Signal => ({ _tag: "Field", field }),
}

/** Shapes of a small image activation batch. */
export const imageDims = fc.record({
  B: fc.integer({ min: 1, max: 3 }),
  H: fc.integer({ min: 1, max: 4 }),
  W: fc.integer({ min: 1, max: 4 }),
  C: fc.integer({ min: 1, max: 4 }),
})

export const seed = fc.integer({ min: 0, max: 2 ** 31 - 1 })

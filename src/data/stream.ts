/**
 * Streaming batches out of a random-access source of examples: a seeded
 * shuffle per epoch, samples read one at a time into batch buffers, so a
 * real dataset is never held in memory (only its annotations are).
 *
 * @module
 */
import type * as Data from "../dsl/Data.ts"
import * as Joints from "./joints.ts"
import * as Random from "./random.ts"

/** One preprocessed example, as a source yields it. */
export interface Example {
  /** `S·S·3`, 8-bit RGB (absent when the source has no `rgb`). */
  readonly rgb?: Uint8Array
  /** `S·S`, normalised depth (see `Preprocess.normaliseDepth`). */
  readonly depth?: Float32Array
  /** `63`, root-relative, in units of the middle MCP–PIP bone. */
  readonly joints3d: Float32Array
  /** `42`, pixels of the `S×S` input. */
  readonly joints2d: Float32Array
  /** Middle MCP–PIP bone length, mm. */
  readonly scale: number
}

/** An open handle on a source's samples (holds file descriptors until `close`). */
export interface Reader {
  readonly read: (index: number) => Example
  readonly close: () => void
}

/** A random-access collection of examples. */
export interface Source {
  readonly size: number
  readonly imageSize: number
  readonly modalities: readonly Data.Modality[]
  readonly open: () => Reader
}

/** A batch of `size` examples, NHWC row-major. */
export interface Batch {
  readonly size: number
  /** Positions of the examples in the source (after subsetting). */
  readonly indices: Uint32Array
  /** `B·S·S·3` in [0, 1] (empty when the source has no rgb). */
  readonly rgb: Float32Array
  /** `B·S·S·1`, normalised depth; only when the source has depth. */
  readonly depth?: Float32Array
  /** `B·63`, root-relative, in units of the middle MCP–PIP bone. */
  readonly joints3d: Float32Array
  /** `B·42`, pixels of the input. */
  readonly joints2d: Float32Array
  /** `B`, the MCP–PIP bone length in mm: `joints3d · scale` is in mm. */
  readonly scale: Float32Array
}

export interface BatchOptions {
  readonly batchSize: number
  readonly seed: number
  readonly epoch: number
  /** Shuffle the order (default true); the order depends only on (seed, epoch). */
  readonly shuffle?: boolean
  /** Drop a last, smaller batch (default false). */
  readonly dropLast?: boolean
}

/** The order in which an epoch visits a source's `n` samples. */
export const order = (n: number, o: BatchOptions): Uint32Array =>
  o.shuffle === false
    ? Uint32Array.from({ length: n }, (_, i) => i)
    : Random.permutation(Random.make("cmkg/shuffle", o.seed, o.epoch), n)

/**
 * Which samples a spec names, in their natural order: everything that picks
 * them (dataset, split or sequences, synthetic seed and count, subset), and
 * nothing that only changes how they are read (input size, modalities, the
 * directory a dataset sits in). Two stages on the same split, whatever they
 * read of it, share this key and therefore their batch order.
 */
export const splitKey = (spec: Data.Spec): string => {
  const { imageSize: _size, modalities: _modalities, ...picked } = spec
  const { dir: _dir, ...located } = picked as typeof picked & { readonly dir?: string }
  return canonical(located)
}

/** JSON with every object's keys sorted, so that a spec's key is independent of how it was built. */
const canonical = (v: unknown): string =>
  Array.isArray(v)
    ? `[${v.map(canonical).join(",")}]`
    : typeof v === "object" && v !== null
      ? `{${Object.keys(v)
          .sort()
          .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
          .join(",")}}`
      : JSON.stringify(v)

/**
 * The shuffle seed of a training run's batches over a split: a function of
 * the run's seed and the split alone (not of the stage's place in the
 * program), so that rows compared in a table see the same batch order within
 * a seed, and inserting a stage changes no other stage's batches.
 */
export const batchSeed = (seed: number, spec: Data.Spec): number =>
  Random.hash("cmkg/batches", seed, splitKey(spec))

/** Batches of one epoch. Identical for the same (source, seed, epoch). */
export function* batches(source: Source, o: BatchOptions): Generator<Batch> {
  if (!(Number.isInteger(o.batchSize) && o.batchSize > 0))
    throw new Error(`batches: batchSize must be a positive integer, got ${o.batchSize}`)
  const perm = order(source.size, o)
  const s = source.imageSize
  const hasRgb = source.modalities.includes("rgb")
  const hasDepth = source.modalities.includes("depth")
  const reader = source.open()
  try {
    for (let start = 0; start < perm.length; start += o.batchSize) {
      const b = Math.min(o.batchSize, perm.length - start)
      if (b < o.batchSize && o.dropLast === true) break
      const rgb = new Float32Array(hasRgb ? b * s * s * 3 : 0)
      const depth = hasDepth ? new Float32Array(b * s * s) : undefined
      const joints3d = new Float32Array(b * Joints.COUNT * 3)
      const joints2d = new Float32Array(b * Joints.COUNT * 2)
      const scale = new Float32Array(b)
      const indices = perm.slice(start, start + b)
      for (let i = 0; i < b; i++) {
        const e = reader.read(indices[i]!)
        if (hasRgb) {
          const px = e.rgb!
          const o3 = i * s * s * 3
          for (let k = 0; k < px.length; k++) rgb[o3 + k] = px[k]! / 255
        }
        if (depth !== undefined) depth.set(e.depth!, i * s * s)
        joints3d.set(e.joints3d, i * Joints.COUNT * 3)
        joints2d.set(e.joints2d, i * Joints.COUNT * 2)
        scale[i] = e.scale
      }
      yield { size: b, indices, rgb, ...(depth !== undefined ? { depth } : {}), joints3d, joints2d, scale }
    }
  } finally {
    reader.close()
  }
}

/** The samples `[from·n, to·n)` of a source, renumbered from 0. */
export const subset = (source: Source, sub: Data.Subset): Source => {
  if (sub.from === 0 && sub.to === 1) return source
  const a = Math.round(sub.from * source.size)
  const b = Math.round(sub.to * source.size)
  return {
    ...source,
    size: Math.max(0, b - a),
    open: () => {
      const r = source.open()
      return { read: (i) => r.read(a + i), close: r.close }
    },
  }
}

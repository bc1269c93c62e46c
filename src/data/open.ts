/**
 * Gives a `Data.Spec` its meaning: a dataset that streams preprocessed
 * batches.
 *
 * @module
 */
import type * as Data from "../dsl/Data.ts"
import * as Freihand from "./readers/freihand.ts"
import * as Rhd from "./readers/rhd.ts"
import * as Stb from "./readers/stb.ts"
import * as Stream from "./stream.ts"
import * as Synthetic from "./synthetic/set.ts"

/** An opened data source. */
export interface Dataset {
  readonly spec: Data.Spec
  /** Number of samples (after the spec's subset). */
  readonly size: number
  readonly imageSize: number
  readonly modalities: readonly Data.Modality[]
  /** The batches of one epoch: identical for the same (spec, seed, epoch). */
  readonly batches: (options: Stream.BatchOptions) => Iterable<Stream.Batch>
  /** For synthetic sets: the cache file and whether it was already there. */
  readonly cache?: Synthetic.CacheInfo
}

/**
 * Opens a source. Synthetic sets are generated into the cache on first open
 * (synchronously); real datasets read their annotations now and their images
 * batch by batch.
 */
export const open = (spec: Data.Spec): Dataset => {
  let source: Stream.Source
  let cache: Synthetic.CacheInfo | undefined
  switch (spec._tag) {
    case "Synthetic": {
      const s = Synthetic.open(spec)
      source = s.source
      cache = s.cache
      break
    }
    case "Rhd":
      source = Rhd.source(spec)
      break
    case "Stb":
      source = Stb.source(spec)
      break
    case "Freihand":
      source = Freihand.source(spec)
      break
  }
  const sub = Stream.subset(source, spec.subset)
  return {
    spec,
    size: sub.size,
    imageSize: sub.imageSize,
    modalities: sub.modalities,
    batches: (options) => ({ [Symbol.iterator]: () => Stream.batches(sub, options) }),
    ...(cache !== undefined ? { cache } : {}),
  }
}

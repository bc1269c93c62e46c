// The batch order's key: the samples a spec picks, not how they are read.
import assert from "node:assert/strict"
import { test } from "node:test"
import * as Stream from "../../src/data/stream.ts"
import * as Data from "../../src/dsl/Data.ts"

const rhd = Data.synthetic({ domain: "rhd", count: 64, imageSize: 32, seed: 1 })
const real = Data.rhd({ dir: "/data/RHD", split: "training", imageSize: 64 })

test("the same split read at another size, with other modalities or from another directory keeps its key", () => {
  const key = Stream.splitKey(rhd)
  assert.equal(Stream.splitKey(Data.withImageSize(rhd, 64)), key)
  assert.equal(Stream.splitKey(Data.withModalities(rhd, ["depth"])), key)
  // Keys do not depend on the order in which a spec's fields were written.
  const { subset, seed, ...rest } = rhd
  assert.equal(Stream.splitKey({ subset, ...rest, seed }), key)
  assert.equal(Stream.splitKey({ ...real, dir: "/mnt/elsewhere/RHD" }), Stream.splitKey(real))
  assert.equal(Stream.batchSeed(3, Data.withModalities(rhd, ["rgb"])), Stream.batchSeed(3, rhd))
})

test("other samples, another split or another run seed change the batch order's seed", () => {
  const seeds = [
    Stream.batchSeed(3, rhd),
    Stream.batchSeed(4, rhd),
    Stream.batchSeed(3, { ...rhd, seed: 2 }),
    Stream.batchSeed(3, { ...rhd, count: 65 }),
    Stream.batchSeed(3, Data.split(rhd, { test: 0.5 }).train),
    Stream.batchSeed(3, Data.split(rhd, { test: 0.5 }).test),
    Stream.batchSeed(3, real),
    Stream.batchSeed(3, { ...real, split: "evaluation" }),
  ]
  assert.equal(new Set(seeds).size, seeds.length)
})

/**
 * Checkpoints read back: a flipped bit in `weights.bin` is an error naming
 * the file (its SHA-256 is in `model.json`), and a `model.json` that is not
 * JSON or lacks cmkg's metadata fails with one line naming the file and the
 * path inside it.
 */
import assert from "node:assert/strict"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { after, test } from "node:test"
import "@tensorflow/tfjs-backend-cpu"
import * as tf from "@tensorflow/tfjs-core"
import * as Checkpoint from "../../src/interpreters/tf/checkpoint.ts"

const root = mkdtempSync(join(tmpdir(), "cmkg-checkpoint-"))
after(() => rmSync(root, { recursive: true, force: true }))
let n = 0
/** A small checkpoint in a fresh directory. */
const saved = (): string => {
  const dir = join(root, String(n++))
  Checkpoint.save(
    dir,
    { "params/net": { kernel: tf.tensor([1, 2, 3, 4, 5, 6], [2, 3]), bias: tf.zeros([3]) } },
    { hello: 1 },
  )
  return dir
}
/** The error `fn` throws, as a message. */
const failure = (fn: () => unknown): string => {
  try {
    fn()
  } catch (e) {
    return e instanceof Error ? e.message : String(e)
  }
  assert.fail("expected an error")
}

test("a checkpoint records the SHA-256 of weights.bin and loads back", () => {
  const dir = saved()
  const json = JSON.parse(readFileSync(join(dir, "model.json"), "utf8"))
  assert.match(json.userDefinedMetadata.weightsSha256, /^[0-9a-f]{64}$/)
  const loaded = Checkpoint.load(dir)
  assert.deepEqual(Array.from(loaded.groups["params/net"]!.kernel!.dataSync()), [1, 2, 3, 4, 5, 6])
  assert.deepEqual(loaded.meta, { hello: 1 })
})

test("one flipped bit in weights.bin is an error naming the file, not a different tensor", () => {
  const dir = saved()
  const bin = readFileSync(join(dir, "weights.bin"))
  bin[5] = bin[5]! ^ 0x10
  writeFileSync(join(dir, "weights.bin"), bin)
  const message = failure(() => Checkpoint.load(dir))
  assert.ok(message.startsWith(`${join(dir, "weights.bin")}: SHA-256 `), message)
  assert.match(message, /differs from .* model\.json records/)
})

test("a model.json that is not JSON fails with one line naming it", () => {
  const dir = saved()
  writeFileSync(join(dir, "model.json"), "garbage{\n  more")
  const message = failure(() => Checkpoint.load(dir))
  assert.ok(message.startsWith(`${join(dir, "model.json")}: not valid JSON (`), message)
  assert.ok(!message.includes("\n"), message)
})

test("a model.json without cmkg's metadata, or with a bad manifest, fails naming the file and the path inside it", () => {
  const dir = saved()
  const file = join(dir, "model.json")
  const json = JSON.parse(readFileSync(file, "utf8"))
  writeFileSync(file, JSON.stringify({ ...json, userDefinedMetadata: undefined }))
  assert.equal(
    failure(() => Checkpoint.load(dir)),
    `${file}: userDefinedMetadata: missing`,
  )
  json.weightsManifest[0].weights[1].shape = ["3"]
  writeFileSync(file, JSON.stringify(json))
  assert.equal(
    failure(() => Checkpoint.load(dir)),
    `${file}: weightsManifest[0].weights[1].shape[0]: expected number, got "3"`,
  )
})

test("a truncated weights.bin fails naming it and both sizes", () => {
  const dir = saved()
  writeFileSync(join(dir, "weights.bin"), readFileSync(join(dir, "weights.bin")).subarray(0, 10))
  assert.equal(
    failure(() => Checkpoint.load(dir)),
    `${join(dir, "weights.bin")}: 10 bytes, the manifest in model.json needs 36`,
  )
})

/**
 * Checkpoints in the TensorFlow.js weights format: `model.json` (a
 * `weightsManifest`) plus `weights.bin` (the tensors' float32 data
 * concatenated in manifest order, little-endian), loadable by plain tfjs
 * (`tf.io.decodeWeights`, `loadWeights`).
 *
 * Writes are atomic: files go to a temporary sibling directory that is
 * renamed into place only once complete, so a crash never leaves a
 * half-written checkpoint under its final name.
 *
 * @module
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import * as tf from "@tensorflow/tfjs-core"

/** Named tensor groups, e.g. `{ "params/student": tree, "state/student": tree }`. */
export type Groups = Readonly<Record<string, Readonly<Record<string, tf.Tensor>>>>

/** A group name and a key inside it are joined by this separator in the manifest. */
const SEP = "::"

/** Writes `groups` and a JSON-serialisable `meta` to `dir` atomically. */
export const save = (dir: string, groups: Groups, meta: unknown): void => {
  const specs: { name: string; shape: number[]; dtype: "float32" }[] = []
  const chunks: Float32Array[] = []
  for (const [group, tree] of Object.entries(groups))
    for (const [key, t] of Object.entries(tree)) {
      specs.push({ name: `${group}${SEP}${key}`, shape: [...t.shape], dtype: "float32" })
      chunks.push(t.dataSync() as Float32Array)
    }
  const total = chunks.reduce((a, c) => a + c.length, 0)
  const data = new Float32Array(total)
  let offset = 0
  for (const c of chunks) {
    data.set(c, offset)
    offset += c.length
  }
  const modelJson = {
    format: "cmkg-checkpoint",
    generatedBy: "cmkg",
    convertedBy: null,
    modelTopology: null,
    weightsManifest: [{ paths: ["weights.bin"], weights: specs }],
    userDefinedMetadata: { cmkg: meta },
  }
  if (existsSync(dir)) throw new Error(`${dir}: a checkpoint already exists here`)
  mkdirSync(dirname(dir), { recursive: true })
  const tmp = `${dir}.partial-${process.pid}`
  rmSync(tmp, { recursive: true, force: true })
  mkdirSync(tmp)
  writeFileSync(join(tmp, "weights.bin"), new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
  writeFileSync(join(tmp, "model.json"), JSON.stringify(modelJson))
  renameSync(tmp, dir)
}

/** Writes a small file atomically (temporary file, then rename over the old one). */
export const writeAtomically = (path: string, text: string): void => {
  const tmp = `${path}.partial-${process.pid}`
  writeFileSync(tmp, text)
  renameSync(tmp, path)
}

export interface Loaded {
  readonly groups: Record<string, Record<string, tf.Tensor>>
  readonly meta: unknown
}

/** Reads a checkpoint written by {@link save}; fails naming the file and what is wrong. */
export const load = (dir: string): Loaded => {
  const jsonPath = join(dir, "model.json")
  const binPath = join(dir, "weights.bin")
  if (!existsSync(jsonPath)) throw new Error(`${jsonPath}: no checkpoint here`)
  const modelJson = JSON.parse(readFileSync(jsonPath, "utf8")) as {
    weightsManifest?: { weights: tf.io.WeightsManifestEntry[] }[]
    userDefinedMetadata?: { cmkg?: unknown }
  }
  const specs = modelJson.weightsManifest?.[0]?.weights
  if (specs === undefined) throw new Error(`${jsonPath}: no weightsManifest`)
  const bin = readFileSync(binPath)
  const expected = specs.reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1) * 4, 0)
  if (bin.byteLength !== expected)
    throw new Error(`${binPath}: ${bin.byteLength} bytes, the manifest needs ${expected}`)
  const buffer = bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength)
  const named = tf.io.decodeWeights(buffer, specs)
  const groups: Record<string, Record<string, tf.Tensor>> = {}
  for (const [name, t] of Object.entries(named)) {
    const i = name.indexOf(SEP)
    const group = name.slice(0, i)
    const tree = groups[group] ?? {}
    tree[name.slice(i + SEP.length)] = t
    groups[group] = tree
  }
  return { groups, meta: modelJson.userDefinedMetadata?.cmkg }
}

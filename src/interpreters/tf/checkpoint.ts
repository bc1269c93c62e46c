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
 * A run directory's checkpoints (`checkpoints/NNNNNN/` and `LATEST`, the
 * newest two kept), shared by every runner (`experiment.ts`, `dirnet/run.ts`):
 * {@link saveNumbered} writes a world of named trees and optimizer states
 * with the runner's position, {@link loadLatest} reads the newest back.
 *
 * @module
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs"
import { dirname, join } from "node:path"
import * as tf from "@tensorflow/tfjs-core"
import { writeFile } from "../../run-dir/write-file.ts"
import type { Tree } from "./init.ts"
import type * as Optimizer from "./optimizer.ts"

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
  writeFile(join(tmp, "weights.bin"), new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
  writeFile(join(tmp, "model.json"), JSON.stringify(modelJson))
  renameSync(tmp, dir)
}

/** Writes a small file atomically (temporary file, then rename over the old one). */
export const writeAtomically = (path: string, text: string): void => {
  const tmp = `${path}.partial-${process.pid}`
  writeFile(tmp, text)
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

// ---- a run directory's checkpoints ---------------------------------------------------------------

/** What a runner checkpoints (the shape of `step.ts`'s `World`): trees by name and optimizer states by key. */
export interface World {
  readonly params: Readonly<Record<string, Tree>>
  readonly state: Readonly<Record<string, Tree>>
  readonly meta: Readonly<Record<string, Tree>>
  readonly opt: Readonly<Record<string, Optimizer.State>>
}

/** A world's tensors as checkpoint groups: `params/<name>`, `state/<name>`, `meta/<name>`, `opt/<key>/<slot>/<name>`. */
export const toGroups = (w: World): Groups => {
  const groups: Record<string, Tree> = {}
  for (const [k, v] of Object.entries(w.params)) groups[`params/${k}`] = v
  for (const [k, v] of Object.entries(w.state)) groups[`state/${k}`] = v
  for (const [k, v] of Object.entries(w.meta)) groups[`meta/${k}`] = v
  for (const [k, s] of Object.entries(w.opt))
    s.slots.forEach((slot, i) => {
      for (const [name, tree] of Object.entries(slot)) groups[`opt/${k}/${i}/${name}`] = tree
    })
  return groups
}

/** Optimizer step counts and slot counts by key: what {@link fromGroups} needs besides the tensors. */
export type Counts = Record<string, { count: number; slots: number }>

/** The world {@link toGroups} made `groups` from. */
export const fromGroups = (groups: Record<string, Record<string, tf.Tensor>>, counts: Counts): World => {
  const pick = (prefix: string) =>
    Object.fromEntries(
      Object.entries(groups)
        .filter(([g]) => g.startsWith(`${prefix}/`) && g.split("/").length === 2)
        .map(([g, t]) => [g.slice(prefix.length + 1), t]),
    )
  const opt: Record<string, Optimizer.State> = {}
  for (const [key, { count, slots }] of Object.entries(counts)) {
    const slotTrees: Record<string, Tree>[] = Array.from({ length: slots }, () => ({}))
    for (const [g, tree] of Object.entries(groups)) {
      if (!g.startsWith(`opt/${key}/`)) continue
      const rest = g.slice(`opt/${key}/`.length).split("/")
      slotTrees[Number(rest[0])]![rest[1]!] = tree
    }
    opt[key] = { count, slots: slotTrees }
  }
  return { params: pick("params"), state: pick("state"), meta: pick("meta"), opt }
}

/** Disposes every tensor of a world. */
export const disposeWorld = (w: World): void => {
  for (const t of Object.values(toGroups(w))) for (const v of Object.values(t)) v.dispose()
}

/** A run directory's checkpoints. */
export const directory = (out: string): string => join(out, "checkpoints")

/**
 * Writes checkpoint number `serial` of the run in `out` (`checkpoints/NNNNNN`,
 * atomically), with the runner's `position`, then points `LATEST` at it and
 * keeps only it and its predecessor. Returns its directory.
 */
export const saveNumbered = (out: string, world: World, position: unknown, serial: number): string => {
  const dir = join(directory(out), String(serial).padStart(6, "0"))
  const counts: Counts = Object.fromEntries(
    Object.entries(world.opt).map(([k, s]) => [k, { count: s.count, slots: s.slots.length }]),
  )
  save(dir, toGroups(world), { position, counts, serial })
  writeAtomically(join(directory(out), "LATEST"), String(serial).padStart(6, "0"))
  // Keep the newest two: the one just written and its predecessor.
  for (const name of readdirSync(directory(out)))
    if (/^\d{6}$/.test(name) && Number(name) < serial - 1)
      rmSync(join(directory(out), name), { recursive: true, force: true })
  return dir
}

/** The checkpoint `LATEST` names in the run directory `out`, or undefined when there is none. */
export const loadLatest = <Position>(
  out: string,
): { world: World; position: Position; serial: number; dir: string } | undefined => {
  const pointer = join(directory(out), "LATEST")
  if (!existsSync(pointer)) return undefined
  const dir = join(directory(out), readFileSync(pointer, "utf8").trim())
  const { groups, meta } = load(dir)
  const m = meta as { position: Position; counts: Counts; serial: number }
  return { world: fromGroups(groups, m.counts), position: m.position, serial: m.serial, dir }
}

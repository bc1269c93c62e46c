/**
 * Checkpoints in the TensorFlow.js weights format: `model.json` (a
 * `weightsManifest`) plus `weights.bin` (the tensors' float32 data
 * concatenated in manifest order, little-endian), loadable by plain tfjs
 * (`tf.io.decodeWeights`, `loadWeights`).
 *
 * Writes are atomic: files go to a temporary sibling directory
 * (`NAME.partial-PID`) that is renamed into place only once complete, so a
 * crash never leaves a half-written checkpoint under its final name.
 * `model.json` records the SHA-256 of `weights.bin` (tfjs ignores the
 * field), checked at load: a flipped bit is an error naming the file.
 *
 * A run directory's checkpoints (`checkpoints/NNNNNN/` and `LATEST`, the
 * newest two kept), shared by every runner through `journal.ts`:
 * {@link saveNumbered} writes a world of named trees and optimizer states
 * with the runner's position, {@link loadNewest} reads back the one `LATEST`
 * names or, when it does not load, the newest that does, with the reasons
 * for those it skipped. Metadata read back is decoded with the Schemas of
 * `run-dir/checkpoint.ts`.
 *
 * @module
 */
import { createHash } from "node:crypto"
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs"
import { dirname, join } from "node:path"
import * as tf from "@tensorflow/tfjs-core"
import { Schema } from "effect"
import * as Read from "../../run-dir/read.ts"
import * as RunFiles from "../../run-dir/schema.ts"
import { writeFile } from "../../run-dir/write-file.ts"
import type { Tree } from "./init.ts"
import type * as Optimizer from "./optimizer.ts"

/** Named tensor groups, e.g. `{ "params/student": tree, "state/student": tree }`. */
export type Groups = Readonly<Record<string, Readonly<Record<string, tf.Tensor>>>>

/** A group name and a key inside it are joined by this separator in the manifest. */
const SEP = "::"

/** The suffix of a file or directory being written, before it is renamed into place: `.partial-PID`. */
const PARTIAL = ".partial-"

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex")

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
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  const modelJson = {
    format: "cmkg-checkpoint",
    generatedBy: "cmkg",
    convertedBy: null,
    modelTopology: null,
    weightsManifest: [{ paths: ["weights.bin"], weights: specs }],
    userDefinedMetadata: { cmkg: meta, weightsSha256: sha256(bytes) },
  }
  if (existsSync(dir)) throw new Error(`${dir}: a checkpoint already exists here`)
  mkdirSync(dirname(dir), { recursive: true })
  const tmp = `${dir}${PARTIAL}${process.pid}`
  rmSync(tmp, { recursive: true, force: true })
  mkdirSync(tmp)
  writeFile(join(tmp, "weights.bin"), bytes)
  writeFile(join(tmp, "model.json"), JSON.stringify(modelJson))
  renameSync(tmp, dir)
}

/** Writes a small file atomically (temporary file, then rename over the old one). */
export const writeAtomically = (path: string, text: string): void => {
  const tmp = `${path}${PARTIAL}${process.pid}`
  writeFile(tmp, text)
  renameSync(tmp, path)
}

export interface Loaded {
  readonly groups: Record<string, Record<string, tf.Tensor>>
  readonly meta: unknown
}

/**
 * Reads a checkpoint written by {@link save}; throws {@link Read.RunFileError}
 * naming the file (and the path inside `model.json`) and what is wrong.
 */
export const load = (dir: string): Loaded => {
  const jsonPath = join(dir, "model.json")
  const binPath = join(dir, "weights.bin")
  if (!existsSync(jsonPath)) throw Read.fileError(jsonPath, "", "missing: no checkpoint here")
  const modelJson = Read.readJson(jsonPath, RunFiles.ModelJson)
  const specs = modelJson.weightsManifest[0].weights
  if (!existsSync(binPath)) throw Read.fileError(binPath, "", "missing")
  const bin = readFileSync(binPath)
  const expected = specs.reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1) * 4, 0)
  if (bin.byteLength !== expected)
    throw Read.fileError(binPath, "", `${bin.byteLength} bytes, the manifest in model.json needs ${expected}`)
  const recorded = modelJson.userDefinedMetadata.weightsSha256
  if (recorded !== undefined) {
    const actual = sha256(bin)
    if (actual !== recorded)
      throw Read.fileError(
        binPath,
        "",
        `SHA-256 ${actual.slice(0, 12)}… differs from the ${recorded.slice(0, 12)}… model.json records: the file is damaged`,
      )
  }
  const buffer = bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength)
  const named = tf.io.decodeWeights(
    buffer,
    specs.map((s) => ({ ...s, shape: [...s.shape] })),
  )
  const groups: Record<string, Record<string, tf.Tensor>> = {}
  for (const [name, t] of Object.entries(named)) {
    const i = name.indexOf(SEP)
    const group = name.slice(0, i)
    const tree = groups[group] ?? {}
    tree[name.slice(i + SEP.length)] = t
    groups[group] = tree
  }
  return { groups, meta: modelJson.userDefinedMetadata.cmkg }
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

/** `000007`: a numbered checkpoint's directory name. */
export const numberName = (serial: number): string => String(serial).padStart(6, "0")

/** The numbers of the checkpoints in the run directory `out` (complete ones: under their final name), ascending. */
export const numbers = (out: string): number[] =>
  existsSync(directory(out))
    ? readdirSync(directory(out))
        .filter((n) => /^\d{6}$/.test(n))
        .map(Number)
        .sort((a, b) => a - b)
    : []

/**
 * Writes checkpoint number `serial` of the run in `out` (`checkpoints/NNNNNN`,
 * atomically), with the runner's `position`, then points `LATEST` at it and
 * removes the checkpoints older than `previous` (the one the run continued
 * from: resumed from or written last), so it and its predecessor are kept.
 * Returns its directory.
 */
export const saveNumbered = (
  out: string,
  world: World,
  position: unknown,
  serial: number,
  previous: number | undefined,
): string => {
  const dir = join(directory(out), numberName(serial))
  const counts: Counts = Object.fromEntries(
    Object.entries(world.opt).map(([k, s]) => [k, { count: s.count, slots: s.slots.length }]),
  )
  save(dir, toGroups(world), { position, counts, serial })
  writeAtomically(join(directory(out), "LATEST"), numberName(serial))
  for (const n of numbers(out))
    if (n < (previous ?? serial) && n !== serial)
      rmSync(join(directory(out), numberName(n)), { recursive: true, force: true })
  return dir
}

/** A numbered checkpoint read back: its world, the runner's position, its number and directory. */
export interface Numbered<Position> {
  readonly world: World
  readonly position: Position
  readonly serial: number
  readonly dir: string
}

/** `userDefinedMetadata.cmkg` of a numbered checkpoint, decoded where it sits in model.json (errors give that path). */
const NumberedModelJson = Schema.Struct({
  userDefinedMetadata: Schema.Struct({ cmkg: RunFiles.NumberedMeta }),
})

/**
 * Reads the numbered checkpoint in `dir`. `position`, when given, decodes the
 * runner's own fields of the position (the journal's are always checked).
 */
export const loadNumbered = <Position>(
  dir: string,
  position?: Schema.ConstraintDecoder<unknown>,
): Numbered<Position> => {
  const { groups, meta } = load(dir)
  const jsonPath = join(dir, "model.json")
  try {
    const m = Read.decode(jsonPath, NumberedModelJson, { userDefinedMetadata: { cmkg: meta } })
      .userDefinedMetadata.cmkg
    if (position !== undefined)
      Read.decode(
        jsonPath,
        Schema.Struct({ userDefinedMetadata: Schema.Struct({ cmkg: Schema.Struct({ position }) }) }),
        {
          userDefinedMetadata: { cmkg: meta },
        },
      )
    return {
      world: fromGroups(groups, m.counts),
      position: m.position as Position,
      serial: m.serial,
      dir,
    }
  } catch (e) {
    for (const tree of Object.values(groups)) for (const t of Object.values(tree)) t.dispose()
    throw e
  }
}

/** What `LATEST` names (trimmed), or undefined when there is no `LATEST`. */
export const latestName = (out: string): string | undefined => {
  const pointer = join(directory(out), "LATEST")
  return existsSync(pointer) ? readFileSync(pointer, "utf8").trim() : undefined
}

/** Whether process `pid` is running (on this machine). */
const running = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

/**
 * Removes what processes that are no longer running left half-written in
 * `dir` (`NAME.partial-PID`: killed between writing and renaming). Returns
 * the removed paths.
 */
export const removeLeftovers = (dir: string): string[] => {
  if (!existsSync(dir)) return []
  const removed: string[] = []
  for (const name of readdirSync(dir)) {
    const m = /\.partial-(\d+)$/.exec(name)
    if (m === null) continue
    const pid = Number(m[1])
    if (pid !== process.pid && running(pid)) continue
    rmSync(join(dir, name), { recursive: true, force: true })
    removed.push(join(dir, name))
  }
  return removed
}

/** The outcome of looking for the checkpoint to resume from. */
export interface Newest<Position> {
  /** The newest checkpoint that loads, `LATEST`'s first; undefined when none does. */
  readonly loaded: Numbered<Position> | undefined
  /** The checkpoints tried before it and why each did not load (one line each). */
  readonly skipped: readonly { readonly dir: string; readonly why: string }[]
  /** What `LATEST` names, or undefined without a `LATEST`. */
  readonly latest: string | undefined
}

/**
 * The checkpoint of the run in `out` to resume from: the one `LATEST` names,
 * or when it does not load (or `LATEST` is missing) the newest one that does.
 * Nothing is removed or written.
 */
export const loadNewest = <Position>(
  out: string,
  position?: Schema.ConstraintDecoder<unknown>,
): Newest<Position> => {
  const latest = latestName(out)
  const named = numbers(out)
    .reverse()
    .map((n) => join(directory(out), numberName(n)))
  const skipped: { dir: string; why: string }[] = []
  const pointer = join(directory(out), "LATEST")
  if (latest !== undefined && !/^\d{6}$/.test(latest))
    skipped.push({
      dir: pointer,
      why: `${pointer}: holds ${JSON.stringify(latest.slice(0, 40))}, not a checkpoint number`,
    })
  const first = latest === undefined || !/^\d{6}$/.test(latest) ? [] : [join(directory(out), latest)]
  const candidates = [...first, ...named.filter((d) => !first.includes(d))]
  for (const dir of candidates) {
    if (!existsSync(dir)) {
      skipped.push({ dir, why: `${pointer} names ${dir}, which does not exist` })
      continue
    }
    try {
      return { loaded: loadNumbered<Position>(dir, position), skipped, latest }
    } catch (e) {
      skipped.push({ dir, why: e instanceof Error ? e.message : String(e) })
    }
  }
  return { loaded: undefined, skipped, latest }
}

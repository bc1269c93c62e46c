/**
 * Reading selected tensors of a checkpoint (tfjs weights format, as written
 * by `interpreters/tf/checkpoint.ts`) as plain `Float32Array`s.
 *
 * The report only needs a few groups (`meta/*`, `params/*`); reading the
 * manifest directly avoids decoding every tensor (optimizer slots included)
 * into a tfjs backend.
 *
 * @module
 */
import { readFileSync } from "node:fs"
import { join } from "node:path"
import * as Read from "../run-dir/read.ts"
import * as RunFiles from "../run-dir/schema.ts"

const BYTES: Readonly<Record<string, number>> = { float32: 4, int32: 4, bool: 1 }

export interface Checkpoint {
  /** Its `model.json`. */
  readonly file: string
  /** cmkg's metadata (`userDefinedMetadata.cmkg`), for the caller to decode. */
  readonly meta: unknown
  /** `group` → `key` → values, for the groups `want` accepted. */
  readonly groups: Readonly<Record<string, Readonly<Record<string, Float32Array>>>>
}

/** The float32 tensors of `dir` whose group (the part of the name before `::`) satisfies `want`. */
export const read = (dir: string, want: (group: string) => boolean): Checkpoint => {
  const jsonPath = join(dir, "model.json")
  const json = Read.readJson(jsonPath, RunFiles.ModelJson)
  const groups: Record<string, Record<string, Float32Array>> = {}
  for (const manifest of json.weightsManifest) {
    // Shards are concatenated in order; entries index into the concatenation.
    const bin = Buffer.concat(manifest.paths.map((p) => readFileSync(join(dir, p))))
    let offset = 0
    for (const e of manifest.weights) {
      const bytes = e.shape.reduce((a, b) => a * b, 1) * (BYTES[e.dtype] ?? 4)
      const sep = e.name.indexOf("::")
      const group = sep < 0 ? "" : e.name.slice(0, sep)
      if (e.dtype === "float32" && want(group)) {
        if (offset + bytes > bin.byteLength)
          throw new Error(`${jsonPath}: ${e.name} runs past the end of the weights (${bin.byteLength} bytes)`)
        // Copy: the Buffer's offset need not be 4-byte aligned.
        const values = new Float32Array(
          bin.buffer.slice(bin.byteOffset + offset, bin.byteOffset + offset + bytes),
        )
        const tree = groups[group] ?? {}
        tree[e.name.slice(sep + 2)] = values
        groups[group] = tree
      }
      offset += bytes
    }
  }
  return { file: jsonPath, meta: json.userDefinedMetadata?.cmkg, groups }
}

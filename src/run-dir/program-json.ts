/**
 * A run directory's `program.json` as `cmkg run --resume` compares it (its
 * schema: `schema.ts`'s `ResumableProgramJson`): the
 * program's name, the options that decide what is trained (scale, data,
 * whether seeds live in `seed-N/`), and every parameter's path and shape.
 * {@link difference} names the first of these that differs from the
 * command's, so a resume that would continue another run is refused before
 * anything in the directory changes.
 *
 * @module
 */
import type { ResumableProgramJson } from "./schema.ts"

/** What a run is, for the comparison: program.json's fields, or the command's. */
export interface Identity {
  readonly name: string
  readonly scale: string
  readonly data: Readonly<Record<string, string>>
  /** Seeds in `seed-N/` directories (`--seeds` > 1 or `--first-seed`), or in the run directory itself. */
  readonly seedDirectories: boolean
  readonly parameters: Readonly<Record<string, readonly number[]>> | undefined
}

export const identity = (p: ResumableProgramJson): Identity => ({
  name: p.program.name,
  scale: p.options.scale,
  data: p.options.data,
  seedDirectories: p.options.seeds > 1 || p.options.firstSeed !== undefined,
  parameters: p.parameters,
})

const shape = (s: readonly number[] | undefined) =>
  s === undefined ? "absent" : s.length === 0 ? "a scalar" : s.join("×")
const dataArg = (d: Readonly<Record<string, string>>) =>
  Object.keys(d).length === 0
    ? "no --data (synthetic)"
    : `--data ${Object.entries(d)
        .map(([k, v]) => `${k}=${v}`)
        .join(",")}`

/** The first way the run `stored` differs from the command's `now`, in one phrase; undefined when they agree. */
export const difference = (stored: Identity, now: Identity): string | undefined => {
  if (stored.name !== now.name) return `program "${stored.name}" there, "${now.name}" in the command`
  if (stored.scale !== now.scale) return `--scale ${stored.scale} there, --scale ${now.scale} in the command`
  if (dataArg(stored.data) !== dataArg(now.data))
    return `${dataArg(stored.data)} there, ${dataArg(now.data)} in the command`
  if (stored.seedDirectories !== now.seedDirectories) {
    const where = (perSeed: boolean) =>
      perSeed ? "seeds in seed-N/ directories" : "one seed in the directory itself"
    return `${where(stored.seedDirectories)} there, ${where(now.seedDirectories)} in the command (--seeds, --first-seed)`
  }
  if (stored.parameters !== undefined && now.parameters !== undefined) {
    for (const path of new Set([...Object.keys(stored.parameters), ...Object.keys(now.parameters)])) {
      const a = stored.parameters[path]
      const b = now.parameters[path]
      if (a === undefined || b === undefined || a.join() !== b.join())
        return `parameter ${path} is ${shape(a)} there, ${shape(b)} in the command's program`
    }
  }
  return undefined
}

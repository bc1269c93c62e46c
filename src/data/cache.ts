/**
 * The on-disk cache for generated data: `.cache/cmkg/` under the working
 * directory, or `$CMKG_CACHE_DIR`. Entries are named by a hash of everything
 * that determines their content, and written atomically (temp file + rename)
 * so concurrent runs never read half a file.
 *
 * @module
 */
import { createHash } from "node:crypto"
import { closeSync, mkdirSync, openSync, renameSync, rmSync } from "node:fs"
import { join } from "node:path"
import * as Settings from "../settings.ts"

/** The cache directory (not created). */
export const dir = (): string => Settings.read(Settings.cacheDir)

// JSON with sorted keys, so equal parameters hash equally whatever their key order.
const canonical = (v: unknown): string =>
  Array.isArray(v)
    ? `[${v.map(canonical).join(",")}]`
    : v !== null && typeof v === "object"
      ? `{${Object.keys(v)
          .sort()
          .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
          .join(",")}}`
      : JSON.stringify(v)

/** A short content key for a parameter value. */
export const key = (params: unknown): string =>
  createHash("sha256").update(canonical(params)).digest("hex").slice(0, 24)

/**
 * Writes `path` through `write(fd)` on a temp file then renames it into
 * place; on failure nothing is left behind.
 */
export const writeAtomically = (path: string, write: (fd: number) => void): void => {
  mkdirSync(join(path, ".."), { recursive: true })
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`
  const fd = openSync(tmp, "w")
  try {
    write(fd)
    closeSync(fd)
    renameSync(tmp, path)
  } catch (e) {
    try {
      closeSync(fd)
    } catch {}
    rmSync(tmp, { force: true })
    throw e
  }
}

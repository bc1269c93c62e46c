/**
 * Where cmkg's own files are, whether this code runs from the TypeScript
 * sources (`src/`, through tsx) or from the compiled bundle (`dist/`, whose
 * chunks sit at other depths): found by walking up to cmkg's package.json,
 * not by a fixed number of `../`.
 *
 * @module
 */
import { existsSync, readFileSync } from "node:fs"
import { dirname, join, relative, sep } from "node:path"
import { fileURLToPath } from "node:url"

const find = (): string => {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const manifest = join(dir, "package.json")
    if (
      existsSync(manifest) &&
      (JSON.parse(readFileSync(manifest, "utf8")) as { name?: unknown }).name === "cmkg"
    )
      return dir
    const up = dirname(dir)
    if (up === dir)
      throw new Error(`cmkg: no package.json named "cmkg" above ${fileURLToPath(import.meta.url)}`)
    dir = up
  }
}

/** The directory holding cmkg's package.json. */
export const packageRoot: string = find()

/** True when this code runs from the compiled bundle in `dist/`. */
export const fromBundle: boolean =
  relative(packageRoot, fileURLToPath(import.meta.url)).split(sep)[0] === "dist"

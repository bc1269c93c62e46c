// A hash of cmkg's TypeScript sources (src/), their paths and contents.
// `npm run build` records it in dist/SOURCE-HASH; bin/cmkg.js runs the
// compiled bundle only when it matches, so a bundle older than an edit is
// never run in its place. Plain JS: the bin imports it before any TypeScript.
import { createHash } from "node:crypto"
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"

export const sourceHash = (root) => {
  const hash = createHash("sha256")
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
      a.name < b.name ? -1 : 1,
    )) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) walk(path)
      else {
        hash.update(`${path.slice(root.length)}\0`)
        hash.update(readFileSync(path))
      }
    }
  }
  walk(join(root, "src"))
  return hash.digest("hex")
}

/** Whether dist/ is the build of src/ as it is now (its SOURCE-HASH matches). */
export const bundleIsFresh = (root) => {
  const stamp = join(root, "dist", "SOURCE-HASH")
  return existsSync(stamp) && readFileSync(stamp, "utf8").trim() === sourceHash(root)
}

#!/usr/bin/env node
import { spawnSync } from "node:child_process"
// `npm run build` (also run by `npm ci` through `prepare`, and by `npm pack`):
// the compiled package in dist/.
// - One esbuild bundle for all entry points (the library "cmkg", the laws kit
//   "cmkg/laws", the CLI, the built-in programs) with shared chunks, so a
//   user's program that imports "cmkg" and the CLI that runs it share one copy
//   of every module. Effect is bundled (tree-shaken: loading its barrel took
//   most of `cmkg --version`'s 3.5 s); other packages stay external.
// - tsc's declarations in dist/types, for users' type-checking.
// - dist/SOURCE-HASH last: bin/cmkg.js runs the bundle only when it matches src/.
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import * as esbuild from "esbuild"
import { sourceHash } from "./source-hash.mjs"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const dist = join(root, "dist")
const started = Date.now()
rmSync(dist, { recursive: true, force: true })

const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8"))
const bundled = new Set(["effect", "@effect/platform-node", "@effect/platform-node-shared"])
const external = [
  ...Object.keys({ ...manifest.dependencies, ...manifest.optionalDependencies }).filter(
    (p) => !bundled.has(p),
  ),
].flatMap((p) => [p, `${p}/*`])

const programs = readdirSync(join(root, "src", "programs"))
  .filter((f) => f.endsWith(".ts") && f !== "settings.ts")
  .map((f) => join(root, "src", "programs", f))
const entryPoints = [
  join(root, "src", "index.ts"),
  join(root, "src", "cli", "main.ts"),
  ...(existsSync(join(root, "src", "laws", "index.ts")) ? [join(root, "src", "laws", "index.ts")] : []),
  ...programs,
]

await esbuild.build({
  entryPoints,
  outbase: join(root, "src"),
  outdir: dist,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  external,
  chunkNames: "chunks/[name]-[hash]",
  sourcemap: "linked",
  logLevel: "warning",
})

const tsc = spawnSync(
  process.execPath,
  [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.build.json"],
  {
    cwd: root,
    stdio: "inherit",
  },
)
if (tsc.status !== 0) {
  console.error("cmkg build: declarations failed (tsc above)")
  process.exit(1)
}

writeFileSync(join(dist, "SOURCE-HASH"), `${sourceHash(root)}\n`)
console.log(`cmkg: built dist/ (${((Date.now() - started) / 1000).toFixed(1)} s)`)

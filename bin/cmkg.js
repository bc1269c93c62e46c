#!/usr/bin/env node
// The bin is plain JS so it needs no TypeScript runner on PATH. It runs the
// compiled bundle (dist/, built by `npm run build`, which `npm ci` and
// `npm pack` run) when that was built from the sources as they are now, and
// otherwise the TypeScript sources through tsx, so an edit under src/ is never
// shadowed by an older bundle. Either way the CLI registers tsx itself when a
// program module is TypeScript.
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { bundleIsFresh } from "../scripts/source-hash.mjs"

if (bundleIsFresh(join(dirname(fileURLToPath(import.meta.url)), ".."))) await import("../dist/cli/main.js")
else {
  const [esm, cjs] = await Promise.all([import("tsx/esm/api"), import("tsx/cjs/api")])
  esm.register()
  cjs.register()
  // src/cli/load.ts registers tsx for TypeScript programs unless this says it is done.
  globalThis[Symbol.for("cmkg.tsx-registered")] = true
  await import("../src/cli/main.ts")
}

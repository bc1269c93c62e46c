/**
 * tfjs-core's Node build (`dist/tf-core.node.js`, what `import "@tensorflow/tfjs-core"`
 * loads) registers **no gradients**: they live only in its ESM build, whose
 * extensionless imports Node cannot resolve. `ensureGradients()` installs a tiny
 * resolve hook scoped to `@tensorflow/tfjs-core/dist/` and imports
 * `register_all_gradients.js` once. Gradients register into tfjs's global
 * registry and run on the shared global engine. Idempotent; ~1.5 s the first time.
 */
import { register } from "node:module"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import * as tf from "@tensorflow/tfjs-core"
import { packageRoot } from "../package-root.ts"

let pending: Promise<void> | undefined

export const ensureGradients = (): Promise<void> => {
  if (pending !== undefined) return pending
  if (tf.getGradient("Conv2D") !== undefined && tf.getGradient("Sum") !== undefined) {
    pending = Promise.resolve()
    return pending
  }
  // Gradients registered before (e.g. the interpreter's higher-order ones) win over stock ones.
  const registry = (globalThis as { _tfGlobals?: Map<string, unknown> })._tfGlobals?.get("gradRegistry") as
    | Map<string, unknown>
    | undefined
  const before = new Map(registry ?? [])
  // The hook ships as a source file (the bundle in dist/ has no copy of it).
  register(pathToFileURL(join(packageRoot, "src", "backend", "gradients-hook.mjs")))
  const spec = "@tensorflow/tfjs-core/dist/register_all_gradients.js"
  pending = import(spec).then(() => {
    for (const [k, v] of before) registry?.set(k, v)
  })
  return pending
}

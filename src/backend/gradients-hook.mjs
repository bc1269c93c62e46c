// ESM resolve hook: tfjs-core's ESM build (dist/*.js) uses extensionless relative
// imports ("./gradients", "../ops/cast") that Node's ESM resolver rejects. Inside
// @tensorflow/tfjs-core/dist only, resolve "x" to "x.js" (or "x/index.js").
import { existsSync, statSync } from "node:fs"
import { fileURLToPath } from "node:url"

export async function resolve(specifier, context, next) {
  const parent = context.parentURL
  if (
    parent?.includes("/@tensorflow/tfjs-core/dist/") &&
    (specifier.startsWith("./") || specifier.startsWith("../")) &&
    !specifier.endsWith(".js")
  ) {
    for (const candidate of [`${specifier}.js`, `${specifier}/index.js`]) {
      const url = new URL(candidate, parent)
      const path = fileURLToPath(url)
      if (existsSync(path) && statSync(path).isFile())
        return { url: url.href, format: "module", shortCircuit: true }
    }
  }
  return next(specifier, context)
}
export async function load(url, context, next) {
  if (url.includes("/@tensorflow/tfjs-core/dist/") && url.endsWith(".js") && !url.endsWith(".node.js"))
    return next(url, { ...context, format: "module" })
  return next(url, context)
}

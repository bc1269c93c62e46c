// postinstall: build the optional oneDNN addon (native/dnnl) when Debian's
// libdnnl-dev is installed. Never fails the install: without the addon the
// cmkg-cpu backend runs its convolutions and batch norm on onnxruntime / JS.
import { spawnSync } from "node:child_process"
import { existsSync, rmSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const dir = join(root, "native", "dnnl")
const addon = join(dir, "build", "Release", "cmkg_dnnl.node")
const say = (m) => console.log(`cmkg: ${m}`)

if (process.env.CMKG_DNNL === "0") {
  say("CMKG_DNNL=0: not building the oneDNN addon; CPU training uses the onnxruntime kernels.")
  process.exit(0)
}
if (!existsSync("/usr/include/oneapi/dnnl/dnnl.hpp")) {
  say(
    "oneDNN headers not found (Debian: apt-get install libdnnl-dev); CPU training uses the onnxruntime kernels.",
  )
  process.exit(0)
}
const candidates = [
  process.env.npm_config_node_gyp,
  join(
    dirname(process.execPath),
    "..",
    "lib",
    "node_modules",
    "npm",
    "node_modules",
    "node-gyp",
    "bin",
    "node-gyp.js",
  ),
].filter((p) => p !== undefined && existsSync(p))
if (candidates.length === 0) {
  say("node-gyp not found; CPU training uses the onnxruntime kernels.")
  process.exit(0)
}
// Node's own headers, where this machine keeps them, so node-gyp needs no download.
const nodedir = existsSync("/usr/include/node/node_api.h") ? ["--nodedir=/usr"] : []
const build = spawnSync(process.execPath, [candidates[0], "rebuild", ...nodedir], {
  cwd: dir,
  encoding: "utf8",
})
const check =
  build.status === 0
    ? spawnSync(process.execPath, ["-e", `console.log(require(${JSON.stringify(addon)}).version())`], {
        encoding: "utf8",
      })
    : undefined
if (build.status !== 0 || check?.status !== 0) {
  const out = `${build.stdout ?? ""}${build.stderr ?? ""}${check?.stderr ?? ""}`
    .trim()
    .split("\n")
    .slice(-8)
    .join("\n")
  say(`building the oneDNN addon failed; CPU training uses the onnxruntime kernels.\n${out}`)
  rmSync(join(dir, "build"), { recursive: true, force: true })
  process.exit(0)
}
say(`built the oneDNN ${check.stdout.trim()} addon for CPU training (native/dnnl).`)

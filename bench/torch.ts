/**
 * Whether the PyTorch reference (bench/torch_ref.py) can run, and when not,
 * why and how to get it.
 *
 * @module
 */
import { spawnSync } from "node:child_process"
import { existsSync } from "node:fs"

/** The interpreter Debian's python3-torch installs into. */
export const PYTHON = "/usr/bin/python3"
export const INSTALL = "apt-get install python3-torch python3-torchvision"

/** Why `python` cannot import torch and torchvision (its last error line), or undefined when it can. */
export const torchProblem = (python = PYTHON, env: NodeJS.ProcessEnv = process.env): string | undefined => {
  if (!existsSync(python)) return `${python} does not exist`
  const r = spawnSync(python, ["-c", "import torch, torchvision"], { encoding: "utf8", env })
  if (r.status === 0) return undefined
  const last = `${r.stderr ?? ""}`.trim().split("\n").pop() ?? ""
  return last === ""
    ? `${python} -c "import torch, torchvision" failed (exit ${r.status})`
    : `${python}: ${last}`
}

/** The line the bench prints when the reference cannot run. */
export const skipMessage = (problem: string, python = PYTHON): string =>
  `PyTorch reference skipped: ${problem}. To get it (Debian): ${INSTALL}; the bench runs it with ${python} (--python PATH for another).`

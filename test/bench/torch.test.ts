/**
 * When the PyTorch reference cannot run, the bench says why (the interpreter's
 * own error) and how to get it (Debian's packages).
 */
import assert from "node:assert/strict"
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { test } from "node:test"
import { PYTHON, skipMessage, torchProblem } from "../../bench/torch.ts"

test("a missing interpreter is named, with the packages that provide the reference", () => {
  const problem = torchProblem("/nonexistent/python3")
  assert.equal(problem, "/nonexistent/python3 does not exist")
  assert.equal(
    skipMessage(problem!, "/nonexistent/python3"),
    "PyTorch reference skipped: /nonexistent/python3 does not exist. To get it (Debian): apt-get install python3-torch python3-torchvision; the bench runs it with /nonexistent/python3 (--python PATH for another).",
  )
})

test("a module that does not import is reported with the interpreter's last error line", (t) => {
  const python = PYTHON
  if (!existsSync(python)) return t.skip(`${python} is not installed`)
  // A torchvision that fails as a missing one does, shadowing any installed one.
  const dir = mkdtempSync(join(tmpdir(), "cmkg-bench-torch-"))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  for (const m of ["torch", "torchvision"]) {
    mkdirSync(join(dir, m))
    writeFileSync(join(dir, m, "__init__.py"), `raise ModuleNotFoundError("No module named '${m}'")\n`)
  }
  const problem = torchProblem(python, { ...process.env, PYTHONPATH: dir })
  assert.equal(problem, `${python}: ModuleNotFoundError: No module named 'torch'`)
})

/** `cmkg check` end to end: the golden ResNet figures, ill-formed programs, bad invocations. */
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import { test } from "node:test"

const cmkg = (...args: string[]) => {
  const r = spawnSync(process.execPath, ["bin/cmkg.js", ...args], { encoding: "utf8" })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

test("resnet18-imagenet: exactly torchvision's 11,689,512 parameters and 1,814,073,344 MACs", () => {
  const r = cmkg("check", "programs/resnet18-imagenet.ts", "--json")
  assert.equal(r.code, 0, r.stderr)
  const j = JSON.parse(r.stdout)
  assert.deepEqual(
    j.networks.map((n: any) => [n.name, n.input, n.output, n.params, n.macs]),
    [["resnet18", [224, 224, 3], [1000], 11_689_512, 1_814_073_344]],
  )
})

test("resnet50-imagenet: exactly torchvision's 25,557,032 parameters and 4,089,184,256 MACs", () => {
  const r = cmkg("check", "programs/resnet50-imagenet.ts", "--json")
  assert.equal(r.code, 0, r.stderr)
  const [n] = JSON.parse(r.stdout).networks
  assert.equal(n.params, 25_557_032)
  assert.equal(n.macs, 4_089_184_256)
})

test("the table shows per-layer rows with torchvision's paths and the totals", () => {
  const r = cmkg("check", "programs/resnet18-imagenet.ts")
  assert.equal(r.code, 0)
  assert.match(r.stdout, /layer3\/0\/conv1\s+Conv2d\s+14×14×256\s+294,912\s+57,802,752/)
  assert.match(r.stdout, /Total params: 11,689,512/)
  assert.match(r.stdout, /Total MACs: 1,814,073,344/)
})

test("a channel mismatch exits 1 naming every offending path and both shapes", () => {
  const r = cmkg("check", "test/fixtures/programs/mismatch.ts")
  assert.equal(r.code, 1)
  assert.match(r.stderr, /student\/layer3\/0\/conv1: expects 128 input channels, got 64/)
  assert.match(r.stderr, /student\/block: residual body gives 32×32×32 but the shortcut gives 32×32×128/)
  assert.match(r.stderr, /2 error\(s\)/)
})

test("bad invocations exit 2 with a one-line message naming the file", () => {
  const missing = cmkg("check", "no/such/program.ts")
  assert.equal(missing.code, 2)
  assert.match(missing.stderr, /no\/such\/program\.ts: no such file/)
  const noExport = cmkg("check", "test/fixtures/programs/no-export.ts")
  assert.equal(noExport.code, 2)
  assert.match(noExport.stderr, /no-export\.ts: the module has no program as its default export/)
  const syntax = cmkg("check", "test/fixtures/programs/syntax-error.ts")
  assert.equal(syntax.code, 2)
  assert.match(syntax.stderr, /syntax-error\.ts: cannot load the module/)
  assert.equal(syntax.stderr.trim().split("\n").length, 1)
  const noArg = cmkg("check")
  assert.equal(noArg.code, 2)
})

/**
 * Laws of the progressive protocol (Algorithm 1, Sec. 5) as `cmkg run` runs
 * it: the DIR-Net program (`programs/dirnet-stb.ts`'s `build`, a staged
 * `Experiment` from `Dirnet.experiment`) through the one runner
 * (`tf/experiment.ts`), on a few synthetic hands; the trained stage models
 * are read back from the run's last checkpoint.
 * - FE's parameters are unchanged after stage 0 (bit for bit), in every
 *   variant that continues from the shared stage 0, while RF, AMG and the
 *   heads keep learning;
 * - each stage starts from the previous stage's parameters, except the new
 *   iteration's batch norms (γ = 1, β = 0) and, at stage 1, AMG;
 * - the stage steps say so: FE is outside `wrt` after stage 0, AMG keeps the
 *   base rate and the rest trains at the base rate ÷ 10^k.
 */
import assert from "node:assert/strict"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { after, before, test } from "node:test"
import { Effect } from "effect"
import * as Dirnet from "../../src/dsl/dirnet.ts"
import type * as Experiment from "../../src/dsl/Experiment.ts"
import * as Optimizer from "../../src/dsl/Optimizer.ts"
import * as Params from "../../src/dsl/Params.ts"
import type * as Program from "../../src/dsl/Program.ts"
import * as Checkpoint from "../../src/interpreters/tf/checkpoint.ts"
import * as Runner from "../../src/interpreters/tf/experiment.ts"
import * as Tf from "../../src/interpreters/tf/index.ts"
import type * as Init from "../../src/interpreters/tf/init.ts"
import { build, dirnetSettings } from "../../src/programs/dirnet-stb.ts"
import { readyForLaws } from "../arbitraries/Runs.ts"

const root = mkdtempSync(join(tmpdir(), "cmkg-progressive-"))
const tiny = dirnetSettings("tiny")
const program = (later: number) =>
  build(
    {
      ...tiny,
      data: { ...tiny.data, imageSize: 32, trainCount: 16, testCount: 8, batchSize: 8 },
      width: 2,
      hidden: 4,
      iterations: 3,
      epochs: { first: 2, later },
      lr: 1e-2,
      gate: { steps: 2 },
      loopPoints: [3],
      tauVarQuantiles: [],
      tauGate: [],
    },
    { scale: "tiny", data: {} },
  )

type Snapshot = Record<string, Record<string, Float32Array>>
/** Runs a program with the one runner and reads every model's parameters from its last checkpoint. */
const trainedModels = async (p: Program.Program<Experiment.Experiment>, name: string): Promise<Snapshot> => {
  const out = join(root, name)
  await Effect.runPromise(
    Runner.run(p, { out, seed: 1, resume: false, reporter: { progress: () => {}, log: () => {} } }).pipe(
      Effect.provideService(Tf.Backend, backend),
    ),
  )
  const loaded = Checkpoint.loadNumbered(join(Checkpoint.directory(out), Checkpoint.latestName(out)!))
  const snap = (t: Init.Tree) =>
    Object.fromEntries(Object.entries(t).map(([k, v]) => [k, Float32Array.from(v.dataSync())]))
  const models = Object.fromEntries(Object.entries(loaded.world.params).map(([m, t]) => [m, snap(t)]))
  Checkpoint.disposeWorld(loaded.world)
  return models
}

const same = (a: Float32Array, b: Float32Array) => a.length === b.length && a.every((x, i) => x === b[i])

let backend: Tf.Selected
let trained: Snapshot
let started: Snapshot
before(async () => {
  backend = await readyForLaws()
  trained = await trainedModels(program(1), "trained")
  // Later stages of no epochs: each stage model is what its stage starts from.
  started = await trainedModels(program(0), "started")
})
after(() => rmSync(root, { recursive: true, force: true }))

const S0 = "ir9-loop3-stage0"
const continued = ["ir9-loop3-stage1", "ir9-loop3", "ir9-loop3-no-amg-stage1", "ir9-loop3-no-amg"]

test("FE is frozen after the shared stage 0 in every variant; RF, AMG and the heads keep learning", () => {
  const stage0 = trained[S0]!
  const fe = Object.keys(stage0).filter((k) => Dirnet.partOf(k) === "fe")
  assert.ok(fe.length > 0)
  for (const m of continued)
    for (const k of fe) assert.ok(same(trained[m]![k]!, stage0[k]!), `${m}: ${k} changed after stage 0`)
  const chain = [S0, "ir9-loop3-stage1", "ir9-loop3"]
  for (const [s, m] of chain.entries()) {
    if (s === 0) continue
    const prev = trained[chain[s - 1]!]!
    const learning = Object.keys(prev).filter(
      (k) => (Dirnet.partOf(k) === "rf" && k.endsWith("kernel")) || Dirnet.partOf(k) === "heads",
    )
    assert.ok(learning.length > 0)
    assert.ok(
      learning.some((k) => !same(trained[m]![k]!, prev[k]!)),
      `stage ${s} learned nothing`,
    )
  }
  // AMG first exists at stage 1 and keeps learning in stage 2; iteration k's batch norms are new at stage k.
  const amg = Object.keys(trained["ir9-loop3-stage1"]!).filter((k) => Dirnet.partOf(k) === "amg")
  assert.ok(amg.length > 0 && !Object.keys(trained[S0]!).some((k) => Dirnet.partOf(k) === "amg"))
  assert.ok(amg.some((k) => !same(trained["ir9-loop3"]![k]!, trained["ir9-loop3-stage1"]![k]!)))
  assert.ok(Object.keys(trained["ir9-loop3"]!).some((k) => Dirnet.iterationOf(k) === 2))
  assert.ok(!Object.keys(trained["ir9-loop3-stage1"]!).some((k) => Dirnet.iterationOf(k) === 2))
})

test("each stage starts from the previous stage's parameters; new batch norms start at γ = 1, β = 0", () => {
  for (const [from, to] of [
    [S0, "ir9-loop3-stage1"],
    ["ir9-loop3-stage1", "ir9-loop3"],
    [S0, "ir9-loop3-no-amg-stage1"],
  ] as const) {
    const before = started[from]!
    for (const [k, v] of Object.entries(started[to]!)) {
      if (before[k] !== undefined) assert.ok(same(v, before[k]!), `${to}: ${k} not inherited from ${from}`)
      else if (Dirnet.iterationOf(k) !== undefined)
        assert.ok(
          v.every((x) => x === (k.endsWith("gamma") ? 1 : 0)),
          `${to}: ${k} not fresh`,
        )
      else assert.equal(Dirnet.partOf(k), "amg", `${to}: unexpected new parameter ${k}`)
    }
  }
})

test("the stage steps: FE outside wrt after stage 0, AMG at the base rate, the rest at the base rate ÷ 10^k", () => {
  const e = program(1).experiment!
  const lr = 1e-2
  for (const stage of e.stages) {
    if (stage._tag !== "Train" || stage.step._tag !== "Minimize") continue
    const k = Number(/stage (\d)/.exec(stage.name)![1])
    const s = stage.step
    if (k === 0) {
      assert.equal(s.select, undefined)
      assert.equal(Optimizer.learningRate(s.optimizer as Optimizer.Chain), lr)
      continue
    }
    const model = s.wrt[0]!
    assert.deepEqual(s.select, { [model]: Params.not(Params.prefix("fe")) })
    const o = s.optimizer as Optimizer.Partition
    assert.equal(Optimizer.labelOf(o, "loop/feedback/conv/kernel"), "amg")
    assert.equal(Optimizer.labelOf(o, "loop/body/layer3/0/conv1/kernel"), "rest")
    assert.equal(Optimizer.learningRate(o.optimizers.amg as Optimizer.Chain), lr)
    assert.ok(Math.abs(Optimizer.learningRate(o.optimizers.rest as Optimizer.Chain) - lr / 10 ** k) < 1e-15)
  }
})

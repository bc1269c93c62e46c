/**
 * What a stage reads of earlier stages and what it writes (`StageGraph.access`),
 * form by form: init entries in the runner's order, meta-steps, adapters,
 * batch-norm policies, evaluations; and the dependencies and critical path
 * they give on small hand-written experiments.
 */
import assert from "node:assert/strict"
import { test } from "node:test"
import * as Data from "../../src/dsl/Data.ts"
import * as Experiment from "../../src/dsl/Experiment.ts"
import * as Loss from "../../src/dsl/Loss.ts"
import * as Optimizer from "../../src/dsl/Optimizer.ts"
import * as Program from "../../src/dsl/Program.ts"
import * as StageGraph from "../../src/dsl/StageGraph.ts"
import * as Step from "../../src/dsl/Step.ts"
import * as Zoo from "../../src/dsl/zoo.ts"

const net = Zoo.smallResNet({ outputs: 63, widths: [4, 8] })
const [a, b, c] = ["a", "b", "c"].map((n) => Program.model(n, net, [32, 32, 3])) as [
  Program.Model<"layer1" | "layer2">,
  Program.Model<"layer1" | "layer2">,
  Program.Model<"layer1" | "layer2">,
]
const data = Data.synthetic({ domain: "rhd", count: 64, imageSize: 32 })
const sgd = Optimizer.sgd({ lr: 0.1 })
const train = (step: Step.Step, init: Record<string, Experiment.Init> = {}, name = "t") =>
  Experiment.train({ name, data, epochs: 1, batchSize: 8, step, init })
const evaluate = (m: Program.Model) =>
  Experiment.evaluate({ name: `evaluate ${m.name}`, model: m, data, table: "T", row: m.name })
const keys = (rs: readonly StageGraph.Resource[]) => rs.map(StageGraph.key).sort()
const accessOf = (s: Experiment.Stage) => {
  const x = StageGraph.access(s)
  return { reads: keys(x.reads), writes: keys(x.writes) }
}

test("a train stage reads the models its loss reads and what it updates, and writes what it updates", () => {
  const distil = Loss.sum(
    Loss.regression(a),
    Loss.activationMatch(Loss.tap(a, "layer2"), Loss.tap(b, "layer2")),
  )
  assert.deepEqual(accessOf(train(Step.minimize({ loss: distil, wrt: a, optimizer: sgd }))), {
    reads: ["params/a", "params/b"],
    writes: ["params/a"],
  })
  // Updating a model the loss does not read still starts from its current parameters.
  assert.deepEqual(
    accessOf(train(Step.minimize({ loss: Loss.regression(a), wrt: [a, c], optimizer: sgd }))),
    {
      reads: ["params/a", "params/c"],
      writes: ["params/a", "params/c"],
    },
  )
})

test("init: Scratch writes without reading, Copy reads its source, Keep reads the model; in the runner's order", () => {
  const step = Step.minimize({ loss: Loss.regression(a), wrt: a, optimizer: sgd })
  assert.deepEqual(accessOf(train(step, { a: Experiment.scratch })), { reads: [], writes: ["params/a"] })
  assert.deepEqual(accessOf(train(step, { a: Experiment.keep })), {
    reads: ["params/a"],
    writes: ["params/a"],
  })
  assert.deepEqual(accessOf(train(step, { a: Experiment.copy(b) })), {
    reads: ["params/b"],
    writes: ["params/a"],
  })
  // Keep of a model the step does not touch is still a read (its value is what the model continues from).
  assert.deepEqual(accessOf(train(step, { a: Experiment.scratch, c: Experiment.keep })), {
    reads: ["params/c"],
    writes: ["params/a"],
  })
  // Init entries apply in order: copying b after b's own fresh start reads nothing earlier of b …
  assert.deepEqual(accessOf(train(step, { b: Experiment.scratch, a: Experiment.copy(b) })), {
    reads: [],
    writes: ["params/a", "params/b"],
  })
  // … copying it before does.
  assert.deepEqual(accessOf(train(step, { a: Experiment.copy(b), b: Experiment.scratch })), {
    reads: ["params/b"],
    writes: ["params/a", "params/b"],
  })
})

test("a meta-step reads φ, its inner models and its losses' models, and writes φ only", () => {
  const G = Loss.sum(Loss.regression(a), Loss.activationMatch(Loss.tap(a, "layer2"), Loss.tap(b, "layer2")))
  const F = Loss.sum(Loss.regression(a), Loss.weightedNorm(a, "phi"))
  const meta = Step.metaMinimize({
    outer: G,
    inner: Step.inner({ loss: F, wrt: a, rate: 0.1 }),
    wrt: "phi",
    optimizer: sgd,
  })
  assert.deepEqual(accessOf(train(meta)), {
    reads: ["meta/phi", "params/a", "params/b"],
    writes: ["meta/phi"],
  })
  // Algorithm 1: with the θ step beside it, the model is written too.
  const both = Step.together(meta, Step.minimize({ loss: G, wrt: a, optimizer: sgd }))
  assert.deepEqual(accessOf(train(both, { a: Experiment.copy(c) })), {
    reads: ["meta/phi", "params/b", "params/c"],
    writes: ["meta/phi", "params/a"],
  })
})

test("an adapter is state like a model: a transfer loss reads it, training it writes it", () => {
  const loss = Loss.transfer(Loss.tap(a, "layer1"), Loss.tap(b, "layer1"), "t")
  assert.deepEqual(accessOf(train(Step.minimize({ loss, wrt: [a, "t"], optimizer: sgd }))), {
    reads: ["params/a", "params/b", "params/t"],
    writes: ["params/a", "params/t"],
  })
})

test("batch-norm running statistics: written under policy train for the trained models the loss applies", () => {
  const loss = Loss.sum(
    Loss.regression(a),
    Loss.activationMatch(Loss.tap(a, "layer2"), Loss.tap(b, "layer2")),
  )
  const with_ = (batchNorm: Step.BatchNormPolicy) =>
    Step.minimize({ loss, wrt: a, optimizer: sgd, batchNorm })
  assert.deepEqual(StageGraph.batchNormWrites(with_("train")), ["a"])
  assert.deepEqual(StageGraph.batchNormWrites(with_("batch-stats")), [])
  assert.deepEqual(StageGraph.batchNormWrites(with_("running")), [])
  // The frozen teacher runs in eval mode: its statistics are only read.
  assert.deepEqual(accessOf(train(with_("train"))), { reads: ["params/a", "params/b"], writes: ["params/a"] })
})

test("an evaluate stage reads its model and writes nothing", () => {
  assert.deepEqual(accessOf(evaluate(a)), { reads: ["params/a"], writes: [] })
})

test("dependencies: read after write, and in one shared world write after read and write after write", () => {
  const fit = (m: Program.Model, init: Experiment.Init, name: string) =>
    train(Step.minimize({ loss: Loss.regression(m), wrt: m, optimizer: sgd }), { [m.name]: init }, name)
  const e = Experiment.experiment({
    feeds: { a: "rgb", b: "rgb" },
    stages: [
      fit(a, Experiment.scratch, "a"), // 0
      evaluate(a), // 1
      fit(b, Experiment.copy(a), "b from a"), // 2
      fit(a, Experiment.scratch, "a again"), // 3: overwrites what 1 and 2 read, and 0's write
      evaluate(a), // 4
    ],
  })
  const g = StageGraph.graph(e)
  const edges = g.edges.map((x) => `${x.from}→${x.to} ${x.kind} ${StageGraph.key(x.resource)}`).sort()
  assert.deepEqual(edges, [
    "0→1 read-after-write params/a",
    "0→2 read-after-write params/a",
    "0→3 write-after-write params/a",
    "1→3 write-after-read params/a",
    "2→3 write-after-read params/a",
    "3→4 read-after-write params/a",
  ])
  assert.deepEqual(g.inputs[4], [{ resource: { space: "params", name: "a" }, writer: 3 }])
  assert.deepEqual(StageGraph.needs(g, "per-stage"), [[], [0], [0], [], [3]])
  assert.deepEqual(StageGraph.needs(g, "shared"), [[], [0], [0], [0, 1, 2], [3]])
  // Costs 1, 2, 4, 8, 16: the chain 0 → 2 → 3 → 4 in one world; 3 → 4 alone with per-stage versions.
  const cost = [1, 2, 4, 8, 16]
  assert.deepEqual(StageGraph.criticalPath(g, cost, "shared"), { stages: [0, 2, 3, 4], cost: 29, total: 31 })
  assert.deepEqual(StageGraph.criticalPath(g, cost, "per-stage"), { stages: [3, 4], cost: 24, total: 31 })
})

test("a sweep is one copy of the graph per seed, with no edge between seeds", () => {
  const e = Experiment.experiment({
    feeds: { a: "rgb" },
    stages: [train(Step.minimize({ loss: Loss.regression(a), wrt: a, optimizer: sgd })), evaluate(a)],
  })
  assert.deepEqual(StageGraph.sweep(StageGraph.graph(e), [7, 8], "shared"), [
    { id: "7/0", seed: 7, stage: 0, needs: [] },
    { id: "7/1", seed: 7, stage: 1, needs: ["7/0"] },
    { id: "8/0", seed: 8, stage: 0, needs: [] },
    { id: "8/1", seed: 8, stage: 1, needs: ["8/0"] },
  ])
})

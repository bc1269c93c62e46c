/**
 * Laws of the training protocols (Sec. 5), on a tiny DIR-Net and random data:
 * - progressive training (Algorithm 1) leaves FE's parameters unchanged
 *   after stage 0 (bit for bit), while RF, AMG and the heads keep learning;
 * - each stage starts from the previous stage's parameters, except the new
 *   iteration's batch norms, which start at their initial values (γ = 1, β = 0);
 * - an end-to-end step changes every part, FE included.
 */
import assert from "node:assert/strict"
import { before, test } from "node:test"
import * as tf from "@tensorflow/tfjs-core"
import type * as Stream from "../../src/data/stream.ts"
import * as Dirnet from "../../src/dsl/dirnet.ts"
import * as Train from "../../src/interpreters/tf/dirnet/train.ts"
import * as Init from "../../src/interpreters/tf/init.ts"
import { readyForLaws } from "../arbitraries/Runs.ts"

before(async () => {
  await readyForLaws()
})

const S = 32
const randomBatch = (size: number, seed: number): Stream.Batch => {
  const rand = Init.prng(seed)
  const fill = (n: number, f: () => number) => Float32Array.from({ length: n }, f)
  return {
    size,
    indices: Uint32Array.from({ length: size }, (_, i) => i),
    rgb: fill(size * S * S * 3, rand),
    joints3d: fill(size * 63, () => 4 * rand() - 2),
    joints2d: fill(size * 42, () => S * rand()),
    scale: fill(size, () => 10),
  }
}

const snapshot = (t: Init.Tree): Record<string, Float32Array> =>
  Object.fromEntries(Object.entries(t).map(([k, v]) => [k, Float32Array.from(v.dataSync())]))
const same = (a: Float32Array, b: Float32Array) => a.length === b.length && a.every((x, i) => x === b[i])

const options: Dirnet.Options = { iterations: 3, width: 2, hidden: 4, loopPoint: 3 }

test("progressive training freezes FE after stage 0 and inherits everything but the new batch norms", () => {
  const stages: Record<string, Float32Array>[] = []
  const losses: number[] = []
  const trained = Train.progressive({
    dirnet: options,
    imageSize: S,
    batches: (epoch) => [randomBatch(4, epoch), randomBatch(4, 100 + epoch)],
    epochs: () => 1,
    lr: 1e-2,
    onStep: (i) => losses.push(i.loss),
    onStage: (_, t) => stages.push(snapshot(t.params)),
  })
  assert.equal(stages.length, 3)
  assert.ok(losses.every(Number.isFinite))
  const fe = Object.keys(stages[0]!).filter((k) => Dirnet.partOf(k) === "fe")
  assert.ok(fe.length > 0)
  for (const s of [1, 2])
    for (const k of fe) assert.ok(same(stages[s]![k]!, stages[0]![k]!), `stage ${s}: ${k} changed`)
  // RF's shared convolutions and the heads did learn in stages 1 and 2.
  const learning = Object.keys(stages[0]!).filter(
    (k) => (Dirnet.partOf(k) === "rf" && k.endsWith("kernel")) || Dirnet.partOf(k) === "heads",
  )
  for (const s of [1, 2])
    assert.ok(
      learning.some((k) => !same(stages[s]![k]!, stages[s - 1]![k]!)),
      `stage ${s} learned nothing`,
    )
  // AMG first exists at stage 1 and keeps learning at the base rate in stage 2.
  const amg = Object.keys(stages[1]!).filter((k) => Dirnet.partOf(k) === "amg")
  assert.ok(amg.length > 0 && !Object.keys(stages[0]!).some((k) => Dirnet.partOf(k) === "amg"))
  assert.ok(amg.some((k) => !same(stages[2]![k]!, stages[1]![k]!)))
  // Iteration 2's batch norms are new in stage 2; iterations 0 and 1's were inherited.
  assert.ok(Object.keys(stages[2]!).some((k) => Dirnet.iterationOf(k) === 2))
  assert.ok(!Object.keys(stages[1]!).some((k) => Dirnet.iterationOf(k) === 2))
  Train.dispose(trained)
})

test("the stage-l network starts from stage l − 1's parameters; new batch norms start at γ = 1, β = 0", () => {
  let captured: { before: Record<string, Float32Array>; start: Record<string, Float32Array> } | undefined
  let previous: Record<string, Float32Array> | undefined
  const trained = Train.progressive({
    dirnet: { ...options, iterations: 2 },
    imageSize: S,
    batches: () => [randomBatch(4, 1)],
    epochs: (s) => (s === 0 ? 1 : 0),
    onStage: (s, t) => {
      if (s === 0) previous = snapshot(t.params)
      else captured = { before: previous!, start: snapshot(t.params) }
    },
  })
  Train.dispose(trained)
  assert.ok(captured !== undefined)
  for (const [k, v] of Object.entries(captured.start)) {
    if (captured.before[k] !== undefined) assert.ok(same(v, captured.before[k]!), `${k} not inherited`)
    else if (Dirnet.iterationOf(k) === 1)
      assert.ok(
        v.every((x) => x === (k.endsWith("gamma") ? 1 : 0)),
        `${k} not fresh`,
      )
    else assert.equal(Dirnet.partOf(k), "amg", `unexpected new parameter ${k}`)
  }
})

test("continuing from a (shared) stage 0 is exactly one progressive run, and leaves that stage 0 intact", () => {
  const common = {
    imageSize: S,
    batches: (epoch: number) => [randomBatch(4, epoch)],
    epochs: () => 1,
    lr: 1e-2,
  }
  const whole = Train.progressive({ ...common, dirnet: options })
  const stage0 = Train.progressive({ ...common, dirnet: { ...options, iterations: 1 } })
  const kept = snapshot(stage0.params)
  const continued = Train.progressive({ ...common, dirnet: options, from: stage0 })
  const a = snapshot(whole.params)
  const b = snapshot(continued.params)
  assert.deepEqual(Object.keys(b).sort(), Object.keys(a).sort())
  for (const k of Object.keys(a)) assert.ok(same(a[k]!, b[k]!), `${k} differs`)
  for (const [k, v] of Object.entries(snapshot(stage0.params)))
    assert.ok(same(v, kept[k]!), `stage 0's ${k} changed`)
  for (const t of [whole, stage0, continued]) Train.dispose(t)
})

test("an end-to-end step updates every part, FE included, and leaves no tensor behind", () => {
  const live = tf.memory().numTensors
  const net = Dirnet.dirnet(options)
  const { params, state } = Init.init(net, [S, S, 3], 0)
  const before = snapshot(params)
  const groups = [
    Train.group(
      Object.keys(params),
      { _tag: "Optimizer", name: "sgd", chain: [{ _tag: "Scale", factor: -0.1 }] },
      params,
    ),
  ]
  const batch = Train.toTensors(randomBatch(4, 2), S)
  const r = Train.step(
    { net, imageSize: S, loss: Dirnet.totalLoss(Train.model(net, S), 3) },
    params,
    state,
    groups,
    batch,
  )
  const after = snapshot(r.params)
  for (const part of ["fe", "rf", "amg", "heads"] as const)
    assert.ok(
      Object.keys(after).some((k) => Dirnet.partOf(k) === part && !same(after[k]!, before[k]!)),
      `${part} unchanged`,
    )
  Train.disposeBatch(batch)
  Init.dispose(r.params, r.state, params, state)
  assert.equal(tf.memory().numTensors, live)
})

test("the end-to-end protocol trains one l_max-loop network on Eq. 12", () => {
  const losses: number[] = []
  const trained = Train.endToEnd({
    dirnet: options,
    imageSize: S,
    batches: () => [randomBatch(4, 3), randomBatch(4, 4)],
    epochs: 1,
    onStep: (i) => losses.push(i.loss),
  })
  assert.equal(losses.length, 2)
  assert.ok(losses.every(Number.isFinite))
  assert.equal(trained.options.iterations, 3)
  assert.ok(Object.keys(trained.params).some((k) => Dirnet.iterationOf(k) === 2))
  Train.dispose(trained)
})

/**
 * The bench's meta workload times the step `cmkg run` runs for cmkg-stb's
 * Algorithm 1 stage (Step.together of the exact l = 1 Step.metaMinimize on φ
 * for R in its ℓ2 form and the θ step): one batch through the bench
 * (bench/dsl.ts) and one step of that stage through the experiment runner
 * (src/interpreters/tf/experiment.ts, read back from its checkpoint) give the
 * same parameters, φ and running statistics. Tiny sizes (cmkg-stb's tiny
 * backbone, 32×32, batch 4).
 */
import assert from "node:assert/strict"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { after, before, test } from "node:test"
import * as tf from "@tensorflow/tfjs-core"
import { Effect } from "effect"
import { metaWorkload, stageOf } from "../../bench/dsl.ts"
import { open } from "../../src/data/open.ts"
import { batchSeed } from "../../src/data/stream.ts"
import * as Data from "../../src/dsl/Data.ts"
import * as Experiment from "../../src/dsl/Experiment.ts"
import type * as Loss from "../../src/dsl/Loss.ts"
import * as Program from "../../src/dsl/Program.ts"
import * as Checkpoint from "../../src/interpreters/tf/checkpoint.ts"
import { run } from "../../src/interpreters/tf/experiment.ts"
import * as Tf from "../../src/interpreters/tf/index.ts"
import cmkgStb from "../../src/programs/cmkg-stb.ts"

const BATCH = 4
const SIZE = 32
const SEED = 1
const STUDENT = "student-meta-l2"
const PHI = "phi-l2"

let out = ""
before(async () => {
  await Tf.ready("auto")
  out = mkdtempSync(join(tmpdir(), "cmkg-bench-meta-"))
})
after(() => rmSync(out, { recursive: true, force: true }))

const values = (t: Readonly<Record<string, tf.Tensor>>): Record<string, number[]> =>
  Object.fromEntries(
    Object.keys(t)
      .sort()
      .map((k) => [k, Array.from(t[k]!.dataSync())]),
  )

test("the bench's meta step and cmkg run's step of cmkg-stb's ℓ2 meta-train stage give the same θ, φ and running statistics", async () => {
  // Named here, not taken from the bench: the stage `cmkg run programs/cmkg-stb.ts` runs for R in its ℓ2 form.
  const { program, stage } = stageOf(cmkgStb, "tiny", "meta-train φ (R (ℓ2 form, Eq. 10))")
  const e = program.experiment!
  assert.equal(stage.step._tag, "Together")
  const data = Data.synthetic({
    domain: "rhd",
    count: BATCH,
    imageSize: SIZE,
    seed: 3,
    modalities: ["rgb", "depth"],
  })

  // The runner: a one-stage experiment whose stage is cmkg-stb's, one batch, one epoch (then a checkpoint).
  const oneStep = Program.program({
    name: "cmkg-stb-meta-step",
    description: "one step of cmkg-stb's ℓ2 meta-train stage",
    models: program.models,
    experiment: Experiment.experiment({
      feeds: e.feeds,
      metaParams: e.metaParams,
      stages: [
        Experiment.train({
          name: "meta-train",
          data,
          epochs: 1,
          batchSize: BATCH,
          step: stage.step,
          init: {},
        }),
      ],
    }),
  })
  await Effect.runPromise(
    run(oneStep, { out, seed: SEED, resume: false, reporter: { progress: () => {}, log: () => {} } }).pipe(
      Effect.provide(Tf.backendLayer("auto")),
    ),
  )
  const latest = Checkpoint.latestName(out)
  assert.ok(latest !== undefined, "the runner wrote no checkpoint")
  const runner = Checkpoint.load(join(Checkpoint.directory(out), latest)).groups

  // The bench: its meta workload on the batch the runner drew (the split's batch order for this seed, epoch 0).
  const [b] = [
    ...open(data).batches({ batchSize: BATCH, seed: batchSeed(SEED, data), epoch: 0, dropLast: true }),
  ]
  assert.ok(b !== undefined)
  const batch: Partial<Record<Loss.Field, tf.Tensor>> = {
    rgb: tf.tensor4d(b.rgb, [BATCH, SIZE, SIZE, 3]),
    depth: tf.tensor4d(b.depth!, [BATCH, SIZE, SIZE, 1]),
    joints3d: tf.tensor2d(b.joints3d, [BATCH, 63]),
  }
  const bench = metaWorkload({ scale: "tiny", imageSize: SIZE, batch: BATCH, seed: SEED, data: batch })
  const initial = values(bench.world().params[STUDENT]!)
  const losses = bench.step()
  assert.ok(Object.values(losses).every(Number.isFinite))
  const w = bench.world()

  // Not vacuous: the step moved θ and φ.
  const theta = values(w.params[STUDENT]!)
  assert.notDeepEqual(theta, initial)
  assert.ok(
    Object.values(values(w.meta[PHI]!)).some((v) => v.some((x) => x !== 0)),
    "φ stayed 0",
  )

  assert.deepEqual(theta, values(runner[`params/${STUDENT}`]!))
  assert.deepEqual(values(w.meta[PHI]!), values(runner[`meta/${PHI}`]!))
  assert.deepEqual(values(w.state[STUDENT]!), values(runner[`state/${STUDENT}`]!))
  bench.dispose()
  for (const t of Object.values(batch)) t.dispose()
  for (const g of Object.values(runner)) for (const t of Object.values(g)) t.dispose()
})

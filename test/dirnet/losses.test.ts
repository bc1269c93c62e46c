/** DIR-Net's re-projection and loss values (Eqs. 2, 3, 8, 9, 12) against hand computations; no leaks per step. */
import assert from "node:assert/strict"
import { before, test } from "node:test"
import * as tf from "@tensorflow/tfjs-core"
import * as Dirnet from "../../src/dsl/dirnet.ts"
import * as Loss from "../../src/dsl/Loss.ts"
import * as Params from "../../src/dsl/Params.ts"
import * as Program from "../../src/dsl/Program.ts"
import * as Step from "../../src/dsl/Step.ts"
import * as Checkpoint from "../../src/interpreters/tf/checkpoint.ts"
import * as Tf from "../../src/interpreters/tf/index.ts"
import * as Init from "../../src/interpreters/tf/init.ts"
import * as Losses from "../../src/interpreters/tf/loss.ts"
import { reproject } from "../../src/interpreters/tf/reproject.ts"
import * as Steps from "../../src/interpreters/tf/step.ts"

before(async () => {
  await Tf.ready("cpu")
})

const close = (a: number, b: number, tol = 1e-4) =>
  assert.ok(Math.abs(a - b) <= tol * (1 + Math.abs(b)), `${a} vs ${b}`)

test("weak-perspective re-projection: J2D = S·(s₀·e^{c₀}·(x, y) + (c₁, c₂) + ½)", () => {
  tf.tidy(() => {
    const pose = new Float32Array(63).map((_, i) => (i % 3 === 2 ? 100 : i / 10))
    const cam = [Math.log(2), 0.1, -0.2]
    const uv = reproject(
      tf.tensor2d(pose, [1, 63]),
      tf.tensor2d(cam, [1, 3]),
      64,
      Dirnet.camera.baseScale,
    ).dataSync()
    for (let j = 0; j < 21; j++) {
      close(uv[2 * j]!, 64 * (0.25 * 2 * pose[3 * j]! + 0.1 + 0.5))
      close(uv[2 * j + 1]!, 64 * (0.25 * 2 * pose[3 * j + 1]! - 0.2 + 0.5))
    }
  })
})

test("L_3D, L_2D and the uncertainty losses per sample", () => {
  tf.tidy(() => {
    const env: Losses.Env = {
      outputs: {
        m: {
          y: tf.zeros([2, 1]),
          taps: {
            p: tf.tensor2d([
              [1, 2],
              [0, 0],
            ]),
            a: tf.tensor2d([
              [0.5, -1],
              [0, 2],
            ]),
          },
        },
      },
      batch: {
        joints3d: tf.tensor2d([
          [0, 0],
          [3, 4],
        ]),
      },
      params: {},
      meta: {},
    }
    const m = { _tag: "Tap", model: "m", tap: "p" } as const
    const t = Loss.field("joints3d")
    assert.deepEqual(
      [...Losses.perSampleValues(Loss.squaredError(m, t, "mean"), env).dataSync()],
      [2.5, 12.5],
    )
    assert.deepEqual([...Losses.perSampleValues(Loss.squaredError(m, t, "sum"), env).dataSync()], [5, 25])
    assert.deepEqual(
      [...Losses.perSampleValues(Loss.absoluteError(m, t, "mean"), env).dataSync()],
      [1.5, 3.5],
    )
    const alpha = Loss.slice({ _tag: "Tap", model: "m", tap: "a" }, 1, 1)
    // Eq. 8 bounded: e^{−α}/2·L + α/2, L the mean squared error.
    const l2 = Losses.perSampleValues(
      Loss.uncertainty({ prediction: m, target: t, logVariance: alpha, norm: "l2", reduce: "mean" }),
      env,
    ).dataSync()
    close(l2[0]!, (Math.exp(1) / 2) * 2.5 - 0.5)
    close(l2[1]!, (Math.exp(-2) / 2) * 12.5 + 1)
    // Eq. 9 when every coordinate is off by ≥ 1: e^{−α}(L − ½) + α/2, L the mean absolute error.
    const l1 = Losses.perSampleValues(
      Loss.uncertainty({ prediction: m, target: t, logVariance: alpha, norm: "l1", reduce: "mean" }),
      env,
    ).dataSync()
    close(l1[0]!, Math.exp(1) * (1.5 - 0.5) - 0.5)
    close(l1[1]!, Math.exp(-2) * (3.5 - 0.5) + 1)
    // Scale and sum; the scalar is the batch mean.
    close(
      Losses.evaluate(
        Loss.sum(Loss.scale(2, Loss.squaredError(m, t, "mean")), Loss.absoluteError(m, t, "mean")),
        env,
      ).dataSync()[0]!,
      (2 * 2.5 + 1.5 + 2 * 12.5 + 3.5) / 2,
    )
  })
})

test("Eq. 12 is summed over every loop's taps; a training step leaks no tensors", () => {
  const options = { iterations: 2, width: 2, hidden: 4 }
  const net = Dirnet.dirnet(options)
  const model = Program.model("dirnet", net, [32, 32, 3])
  const total = Dirnet.totalLoss(model, 2)
  const tapsOf = (s: Loss.Signal): string[] =>
    s._tag === "Tap"
      ? [s.tap]
      : s._tag === "Slice"
        ? tapsOf(s.signal)
        : s._tag === "Reproject"
          ? [...tapsOf(s.pose), ...tapsOf(s.camera)]
          : []
  const taps = new Set(Loss.signals(total).flatMap(tapsOf))
  assert.deepEqual([...taps].sort(), ["camera@0", "camera@1", "logvar@0", "logvar@1", "pose@0", "pose@1"])
  // One step of the runner's step interpreter on Eq. 12 (stage 1's: FE left out, AMG at its own rate) leaks nothing.
  const step = Step.minimize({
    loss: total,
    wrt: Params.only(model, Dirnet.afterStage0),
    optimizer: Dirnet.stageOptimizer(1e-3, 1),
  })
  const { params, state } = Init.init(net, [32, 32, 3], 0)
  const rand = Init.prng(1)
  const batch: Steps.Batch = {
    rgb: tf.tensor4d(Float32Array.from({ length: 2 * 32 * 32 * 3 }, rand), [2, 32, 32, 3]),
    joints3d: tf.zeros([2, 63]),
    joints2d: tf.fill([2, 42], 16),
  }
  const ctx: Steps.Context = { models: { [model.name]: model }, feeds: { [model.name]: "rgb" } }
  let world: Steps.World = {
    params: { [model.name]: params },
    state: { [model.name]: state },
    meta: {},
    opt: {},
  }
  const counts: number[] = []
  for (let i = 0; i < 3; i++) {
    const r = Steps.run(step, world, batch, ctx)
    world = r.world
    assert.ok(Number.isFinite(r.losses.minimize))
    counts.push(tf.memory().numTensors)
  }
  assert.equal(counts[2], counts[1])
  tf.dispose(Object.values(batch) as tf.Tensor[])
  Checkpoint.disposeWorld(world)
})

test("the parameter norms have no per-sample values", () => {
  const env: Losses.Env = { outputs: {}, batch: {}, params: { m: { w: tf.ones([2]) } }, meta: {} }
  assert.throws(
    () => Losses.perSampleValues({ _tag: "Norm", model: "m", sigma: 1, p: 2 }, env),
    /Norm of "m" reads parameters, not the batch: it has no per-sample values/,
  )
  assert.equal(Losses.evaluate({ _tag: "Norm", model: "m", sigma: 1, p: 2 }, env).dataSync()[0], 2)
})

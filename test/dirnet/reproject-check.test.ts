/**
 * The shape checker on DIR-Net's re-projection (`Loss.reproject`): Eq. 12 of
 * a DIR-Net checks clean; a re-projection whose pose is not `[3J]` or whose
 * camera is not `[3]` is refused, naming the loss term's path and the tap —
 * also in the whole DIR-Net program, where the path starts at its stage.
 */
import assert from "node:assert/strict"
import { test } from "node:test"
import * as Dirnet from "../../src/dsl/dirnet.ts"
import type * as Experiment from "../../src/dsl/Experiment.ts"
import * as Loss from "../../src/dsl/Loss.ts"
import * as Program from "../../src/dsl/Program.ts"
import * as ExperimentCheck from "../../src/interpreters/shape-check/experiment.ts"
import * as Check from "../../src/interpreters/shape-check/index.ts"
import * as LossCheck from "../../src/interpreters/shape-check/loss.ts"
import dirnetStb from "../../src/programs/dirnet-stb.ts"

const options = { iterations: 2, width: 2, hidden: 4 }
const model = Program.model("ir9", Dirnet.dirnet(options), Dirnet.inputShape(32, options))
const ctx: LossCheck.LossContext = {
  models: { ir9: Check.check(model.net, model.input).summary },
  fields: { joints3d: [63], joints2d: [42], rgb: [32, 32, 3] },
  metaParams: [],
}
const messages = (l: Loss.Loss) => LossCheck.checkLoss(l, ctx).errors.map((e) => `${e.path}: ${e.message}`)

test("Eq. 12 of a DIR-Net checks clean, its re-projections [42] against joints2d", () => {
  assert.deepEqual(messages(Dirnet.totalLoss(model, 2)), [])
})

test("a re-projection through a camera that is not [3] is refused, naming the term and the tap", () => {
  const wrongCamera = Loss.reproject(Loss.tap(model, "pose@1"), Loss.tap(model, "logvar@1"), {
    imageSize: 32,
    baseScale: 0.25,
  })
  assert.deepEqual(messages(Loss.sum(Loss.absoluteError(wrongCamera, Loss.field("joints2d"), "mean"))), [
    'loss/Sum/term 0/AbsoluteError/prediction/reproject/camera: the camera must be [3] (scale, x and y translation), but tap "logvar@1" of "ir9" has shape 2',
  ])
})

test("a re-projection of something that is not 3D joints is refused, naming the term and the tap", () => {
  const wrongPose = Loss.reproject(Loss.tap(model, "features@0"), Loss.tap(model, "camera@0"), {
    imageSize: 32,
    baseScale: 0.25,
  })
  assert.deepEqual(messages(Loss.absoluteError(wrongPose, Loss.field("joints2d"), "mean")), [
    'loss/AbsoluteError/prediction/reproject/pose: the re-projected pose must be 3D joints [3J] (e.g. [63]), but tap "features@0" of "ir9" has shape 16',
  ])
  // [3J] joints of another count re-project to [2J], which the 2D labels then do not fit.
  const fewer = Loss.reproject(Loss.slice(Loss.tap(model, "pose@0"), 0, 30), Loss.tap(model, "camera@0"), {
    imageSize: 32,
    baseScale: 0.25,
  })
  assert.deepEqual(messages(Loss.absoluteError(fewer, Loss.field("joints2d"), "mean")), [
    'loss/AbsoluteError: prediction and target differ: reproject(tap "pose@0" of "ir9"[0:30], tap "camera@0" of "ir9") has shape 20 but field "joints2d" has 42',
  ])
})

test("cmkg check refuses a DIR-Net program whose re-projection reads a camera that does not fit, naming the stage, loss term and tap", () => {
  const p = Program.resolve(dirnetStb, { scale: "tiny", data: {} }) as Program.Program<Experiment.Experiment>
  assert.deepEqual(ExperimentCheck.check(p).errors, [])
  // Stage 1 of ir9-loop3 re-projects its iteration-1 pose through the log-variances instead of the camera.
  const stages = p.experiment!.stages.map((s) =>
    s.name === "ir9-loop3 · stage 1"
      ? (JSON.parse(JSON.stringify(s).replaceAll('"camera@1"', '"logvar@1"')) as Experiment.Stage)
      : s,
  )
  const broken = { ...p, experiment: { ...p.experiment!, stages } }
  const errors = ExperimentCheck.check(broken).errors.map((e) => `${e.path}: ${e.message}`)
  assert.ok(errors.length > 0)
  for (const e of errors)
    assert.match(
      e,
      /^stage 2 "ir9-loop3 · stage 1"\/step\/minimize\/loss\/Sum\/term 1\/Sum\/term \d\/Scale\/(AbsoluteError\/prediction|Sum\/term 0\/Uncertainty\/prediction)\/reproject\/camera: the camera must be \[3\] \(scale, x and y translation\), but tap "logvar@1" of "ir9-loop3-stage1" has shape 2$/,
    )
})

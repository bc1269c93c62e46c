/** The shape checker of losses: each kind of ill-formed loss, adapter specs and MACs. */
import assert from "node:assert/strict"
import { test } from "node:test"
import * as Experiment from "../../src/dsl/Experiment.ts"
import * as Loss from "../../src/dsl/Loss.ts"
import * as Net from "../../src/dsl/Net.ts"
import * as Program from "../../src/dsl/Program.ts"
import * as Check from "../../src/interpreters/shape-check/index.ts"
import { checkLoss, type LossContext } from "../../src/interpreters/shape-check/loss.ts"

const body = Net.seq(
  Net.conv2d(4, 3, { stride: 2 }),
  Net.relu,
  Net.tap("mid"),
  Net.globalAvgPool,
  Net.dense(63),
)
const student = Program.model("student", body, [8, 8, 3])
const teacher = Program.model(
  "teacher",
  Net.seq(Net.conv2d(4, 5, { stride: 2 }), Net.relu, Net.tap("mid"), Net.globalAvgPool, Net.dense(63)),
  [8, 8, 1],
)
const other = Program.model("other", Net.seq(Net.conv2d(2, 1), Net.globalAvgPool, Net.dense(63)), [8, 8, 3])

const ctx: LossContext = {
  models: Object.fromEntries(
    [student, teacher, other].map((m) => [m.name, Check.check(m.net, m.input).summary]),
  ),
  fields: { joints3d: [63], rgb: [8, 8, 3] },
  metaParams: [
    Experiment.metaParam("phi", student),
    { name: "ghost", like: "nobody", init: 0 },
    Experiment.metaParam("wrong", other),
  ],
}

const errors = (l: Loss.Loss) => checkLoss(l, ctx).errors

test("well-formed CMKG losses have no errors", () => {
  const G = Loss.sum(
    Loss.regression(student),
    Loss.distillation({ student, teacher, last: "mid", taps: ["mid"] }),
  )
  const F = Loss.sum(Loss.regression(student), Loss.weightedNorm(student, "phi"), Loss.norm(student, 1e-4))
  assert.deepEqual(errors(G), [])
  assert.deepEqual(errors(F), [])
})

test("an unknown model, an unknown tap (via a cast), a missing field", () => {
  const ghost = Program.model("ghost", body, [8, 8, 3])
  const [e1] = errors(Loss.regression(ghost))
  assert.equal(e1?.path, "loss/SquaredError/prediction")
  assert.match(e1!.message, /unknown model "ghost"/)
  const [e2] = errors(Loss.squaredError(Loss.tap(student, "nope" as "mid"), Loss.tap(teacher, "mid")))
  assert.equal(e2?.path, "loss/SquaredError/prediction")
  assert.match(e2!.message, /no tap "nope"/)
  const [e3] = errors(Loss.squaredError(Loss.output(student), Loss.field("joints2d")))
  assert.match(e3!.message, /no field "joints2d"/)
})

test("squared error between different shapes names both", () => {
  const [e] = errors(Loss.activationMatch(Loss.output(student), Loss.field("rgb")))
  assert.equal(e?.path, "loss/SquaredError")
  assert.match(e!.message, /63.*8×8×3/)
})

test("weighted norms: unknown φ, φ like an unknown model, φ shaped like another network", () => {
  assert.match(errors(Loss.weightedNorm(student, "psi"))[0]!.message, /unknown meta-parameters "psi"/)
  assert.match(errors(Loss.weightedNorm(student, "ghost"))[0]!.message, /unknown model "nobody"/)
  assert.match(errors(Loss.weightedNorm(student, "wrong"))[0]!.message, /differ from "student"/)
})

test("uncertainty needs one log-variance per sample; slices must fit", () => {
  const [e] = errors(
    Loss.uncertainty({
      prediction: Loss.output(student),
      target: Loss.field("joints3d"),
      logVariance: Loss.output(teacher),
      norm: "l2",
    }),
  )
  assert.equal(e?.path, "loss/Uncertainty/logVariance")
  const ok = Loss.uncertainty({
    prediction: Loss.output(student),
    target: Loss.field("joints3d"),
    logVariance: Loss.slice(Loss.output(teacher), 62, 1),
    norm: "l1",
  })
  assert.deepEqual(errors(ok), [])
  assert.match(
    errors(Loss.squaredError(Loss.slice(Loss.output(student), 60, 4), Loss.field("joints3d")))[0]!.message,
    /outside the last axis/,
  )
})

test("adapters: parameter specs (1×1 conv and dense) and MACs", () => {
  const r = checkLoss(
    Loss.sum(
      Loss.transfer(Loss.tap(student, "mid"), Loss.tap(teacher, "mid"), "t"),
      Loss.transfer(Loss.output(student), Loss.output(teacher), "d"),
    ),
    ctx,
  )
  assert.deepEqual(r.errors, [])
  assert.deepEqual(
    r.adapters.t?.map((p) => [p.path, p.shape]),
    [
      ["kernel", [1, 1, 4, 4]],
      ["bias", [4]],
    ],
  )
  assert.deepEqual(
    r.adapters.d?.map((p) => p.shape),
    [[63, 63], [63]],
  )
  assert.equal(r.macs, 4 * 4 * 4 * 4 + 63 * 63)
  const clash = checkLoss(
    Loss.sum(
      Loss.transfer(Loss.tap(student, "mid"), Loss.tap(teacher, "mid"), "t"),
      Loss.transfer(Loss.output(student), Loss.output(teacher), "t"),
    ),
    ctx,
  )
  assert.match(clash.errors[0]!.message, /adapter "t" is used with kernel/)
  const [e] = errors(Loss.transfer(Loss.tap(student, "mid"), Loss.output(teacher)))
  assert.match(e!.message, /without an adapter/)
})

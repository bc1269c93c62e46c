/**
 * Parameter selection in a step's `wrt` (`Params.only`) and partitioned
 * optimizers, under the step interpreter (only the selected, unfrozen
 * parameters move; the others stay bit-identical) and the shape checker
 * (what a step trains, counted; a filter that selects nothing, a label
 * without an optimizer, a selection of a model `wrt` lacks: errors naming
 * the path). Filters are data: a step holding them survives JSON.
 */
import assert from "node:assert/strict"
import { before, test } from "node:test"
import * as tf from "@tensorflow/tfjs-core"
import { disposeWorld, setup } from "../../laws/step/fixture.ts"
import * as Loss from "../../src/dsl/Loss.ts"
import * as Optimizer from "../../src/dsl/Optimizer.ts"
import * as Params from "../../src/dsl/Params.ts"
import * as Step from "../../src/dsl/Step.ts"
import * as Check from "../../src/interpreters/shape-check/index.ts"
import { checkStep, type StepContext } from "../../src/interpreters/shape-check/step.ts"
import * as Tf from "../../src/interpreters/tf/index.ts"
import * as Steps from "../../src/interpreters/tf/step.ts"

before(async () => {
  await Tf.ready("cpu")
})

const arch = { size: 4, c1: 2, c2: 2, out: 2, pool: "max" } as const

const values = (w: Steps.World) =>
  Object.fromEntries(Object.entries(w.params.student!).map(([k, t]) => [k, Array.from(t.dataSync())]))

test("filters select paths by whole segments, iterations, and their combinations", () => {
  const paths = [
    "fe/conv1/kernel",
    "feature/x",
    "loop/body/bn0@0/gamma",
    "loop/body/bn0@2/gamma",
    "loop/feedback/conv/kernel",
  ]
  assert.deepEqual(Params.select(Params.prefix("fe"), paths), ["fe/conv1/kernel"])
  assert.deepEqual(Params.select(Params.prefix("loop/body/"), paths), [
    "loop/body/bn0@0/gamma",
    "loop/body/bn0@2/gamma",
  ])
  assert.deepEqual(Params.select(Params.iteration(2), paths), ["loop/body/bn0@2/gamma"])
  assert.deepEqual(Params.select(Params.and(Params.iteration(), Params.not(Params.iteration(0))), paths), [
    "loop/body/bn0@2/gamma",
  ])
  assert.deepEqual(
    Params.select(Params.or(Params.prefix("feature"), Params.prefix("loop/feedback")), paths),
    ["feature/x", "loop/feedback/conv/kernel"],
  )
  assert.deepEqual(Params.select(Params.none, paths), [])
})

test("a step whose wrt selects part of a model trains only that part; the rest stays bit-identical", () => {
  const o = setup(arch, 3, 2)
  const head = Params.or(Params.prefix("9"), Params.prefix("5"))
  const step = Step.minimize({
    loss: Loss.regression(o.student),
    wrt: Params.only(o.student, head),
    optimizer: Optimizer.adam({ lr: 0.05 }),
  })
  // The value is data: what program.json holds reads back the same, and runs the same.
  assert.deepEqual(JSON.parse(JSON.stringify(step)), step)
  const before = values(o.world)
  let world = o.world
  for (let i = 0; i < 3; i++) world = Steps.run(step, world, o.batch, o.ctx).world
  const after = values(world)
  for (const k of Object.keys(before))
    if (Params.matches(head, k)) assert.notDeepEqual(after[k], before[k], `${k} did not move`)
    else assert.deepEqual(after[k], before[k], `${k} moved`)
  // Adam's state holds the selected parameters only.
  const slots = world.opt.minimize!.slots.flatMap((s) => Object.values(s).flatMap((t) => Object.keys(t)))
  assert.ok(slots.length > 0 && slots.every((k) => Params.matches(head, k.split("\u0000")[1]!)))
  disposeWorld(world)
  tf.dispose(Object.values(o.batch))
})

test("a step naming a model whole has no select field (program values of whole-model steps are unchanged)", () => {
  const o = setup(arch, 3, 2)
  const step = Step.minimize({
    loss: Loss.regression(o.student),
    wrt: o.student,
    optimizer: Optimizer.sgd({ lr: 1 }),
  })
  assert.equal("select" in step, false)
  // Naming the model whole and a part of it trains it whole.
  const both = Step.minimize({
    loss: Loss.regression(o.student),
    wrt: [o.student, Params.only(o.student, Params.prefix("9"))],
    optimizer: Optimizer.sgd({ lr: 1 }),
  })
  assert.equal("select" in both, false)
  disposeWorld(o.world)
  tf.dispose(Object.values(o.batch))
})

const o = setup(arch, 1, 1)
const ctx: StepContext = {
  models: {
    student: Check.check(o.student.net, o.student.input).summary,
    teacher: Check.check(o.teacher.net, o.teacher.input).summary,
  },
  fields: { joints3d: [2], rgb: [4, 4, 2], depth: [4, 4, 1] },
  metaParams: [],
}
const sizes = Object.fromEntries(
  ctx.models.student!.params.map((p) => [p.path, p.shape.reduce((a, b) => a * b, 1)]),
)
const total = Object.values(sizes).reduce((a, b) => a + b, 0)

test("the shape checker counts what a step trains: selection less a partition's frozen labels", () => {
  const loss = Loss.regression(o.student)
  const sgd = Optimizer.sgd({ lr: 0.1 })
  assert.equal(checkStep(Step.minimize({ loss, wrt: o.student, optimizer: sgd }), ctx).trainedParams, total)
  const part = checkStep(
    Step.minimize({ loss, wrt: Params.only(o.student, Params.prefix("9")), optimizer: sgd }),
    ctx,
  )
  assert.deepEqual(part.errors, [])
  assert.equal(part.trainedParams, sizes["9/kernel"]! + sizes["9/bias"]!)
  const frozen = checkStep(
    Step.minimize({
      loss,
      wrt: o.student,
      optimizer: Optimizer.partition({
        optimizers: { frozen: Optimizer.frozen, rest: sgd },
        rules: [Optimizer.rule("frozen", Params.prefix("0"))],
        otherwise: "rest",
      }),
    }),
    ctx,
  )
  assert.deepEqual(frozen.errors, [])
  assert.equal(frozen.trainedParams, total - sizes["0/kernel"]! - sizes["0/bias"]!)
})

test("the shape checker names ill-posed selections and partitions by path", () => {
  const loss = Loss.regression(o.student)
  const messages = (s: Step.Step) => checkStep(s, ctx, "step").errors.map((e) => `${e.path}: ${e.message}`)
  assert.deepEqual(
    messages(
      Step.minimize({
        loss,
        wrt: Params.only(o.student, Params.prefix("fe")),
        optimizer: Optimizer.sgd({ lr: 1 }),
      }),
    ),
    [
      `step/minimize/select/student: the filter fe/… selects none of the ${ctx.models.student!.params.length} parameters of "student"`,
    ],
  )
  assert.deepEqual(
    messages(
      Step.minimize({
        loss,
        wrt: o.student,
        optimizer: Optimizer.partition({
          optimizers: { rest: Optimizer.sgd({ lr: 1 }) },
          rules: [Optimizer.rule("slow", Params.prefix("0"))],
          otherwise: "rest",
        }),
      }),
    ),
    ['step/minimize/optimizer/rules/0: label "slow" has no optimizer (labels: rest)'],
  )
  assert.deepEqual(
    messages(
      Step.minimize({
        loss,
        wrt: o.student,
        optimizer: Optimizer.partition({
          optimizers: { frozen: Optimizer.frozen },
          rules: [],
          otherwise: "frozen",
        }),
      }),
    ),
    ["step/minimize/optimizer: the partition freezes every parameter the step selects: it trains nothing"],
  )
  const stray: Step.Step = {
    _tag: "Minimize",
    loss,
    wrt: ["student"],
    select: { teacher: Params.all },
    optimizer: Optimizer.sgd({ lr: 1 }),
    batchNorm: "train",
  }
  assert.deepEqual(messages(stray), [
    'step/minimize/select/teacher: selects parameters of "teacher", which wrt does not name',
  ])
})

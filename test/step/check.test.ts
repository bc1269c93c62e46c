/** The shape checker of steps: Algorithm 1 is clean; each ill-posed step is named by its path. */
import assert from "node:assert/strict"
import { test } from "node:test"
import * as Experiment from "../../src/dsl/Experiment.ts"
import * as Loss from "../../src/dsl/Loss.ts"
import * as Net from "../../src/dsl/Net.ts"
import * as Optimizer from "../../src/dsl/Optimizer.ts"
import * as Program from "../../src/dsl/Program.ts"
import * as Step from "../../src/dsl/Step.ts"
import * as Check from "../../src/interpreters/shape-check/index.ts"
import { checkStep, type StepContext } from "../../src/interpreters/shape-check/step.ts"

const net = (stride: number) =>
  Net.seq(
    Net.conv2d(4, 3, { stride }),
    Net.batchNorm(),
    Net.relu,
    Net.tap("a"),
    Net.conv2d(4, 3),
    Net.relu,
    Net.tap("b"),
    Net.globalAvgPool,
    Net.dense(63),
  )
const student = Program.model("student", net(1), [8, 8, 3])
const teacher = Program.model("teacher", net(1), [8, 8, 1])
const coarse = Program.model("coarse", net(2), [8, 8, 1])

const ctx: StepContext = {
  models: Object.fromEntries(
    [student, teacher, coarse].map((m) => [m.name, Check.check(m.net, m.input).summary]),
  ),
  fields: { joints3d: [63], rgb: [8, 8, 3], depth: [8, 8, 1] },
  metaParams: [Experiment.metaParam("phi", student), { name: "lost", like: "nobody", init: 0 }],
}

const F = Loss.sum(Loss.regression(student), Loss.weightedNorm(student, "phi"))
const G = Loss.sum(
  Loss.regression(student),
  Loss.distillation({ student, teacher, last: "b", taps: ["a", "b"] }),
)
const sgd = Optimizer.sgd({ lr: 0.1 })
const alg1 = (
  o: { outer?: Loss.Loss; inner?: Loss.Loss; wrt?: string; steps?: number; mode?: Step.MetaMode } = {},
) =>
  Step.together(
    Step.metaMinimize({
      outer: o.outer ?? G,
      inner: Step.inner({ loss: o.inner ?? F, wrt: student, rate: 0.1, steps: o.steps ?? 1 }),
      wrt: o.wrt ?? "phi",
      optimizer: sgd,
      ...(o.mode === undefined ? {} : { mode: o.mode }),
    }),
    Step.minimize({ loss: G, wrt: student, optimizer: sgd }),
  )

const messages = (s: Step.Step, path?: string) =>
  checkStep(s, ctx, path).errors.map((e) => `${e.path}: ${e.message}`)

test("CMKG's Algorithm 1 and 2 check clean", () => {
  assert.deepEqual(messages(alg1()), [])
  assert.deepEqual(messages(alg1({ mode: "closed-form" })), [])
  assert.deepEqual(messages(Step.minimize({ loss: F, wrt: student, optimizer: sgd })), [])
})

test("attention transfer between taps of different size inside the outer loss is named by its full path", () => {
  const bad = Loss.sum(
    Loss.regression(student),
    Loss.distillation({ student, teacher: coarse, last: "b", taps: ["a"] }),
  )
  const errs = messages(alg1({ outer: bad }), 'stage "meta-train"/step')
  assert.ok(
    errs.some(
      (e) =>
        e.startsWith(
          'stage "meta-train"/step/0/metaMinimize/outer/Sum/term 1/Sum/term 1/Scale/AttentionTransfer/pair 0:',
        ) &&
        e.includes("8×8×4") &&
        e.includes("4×4×4"),
    ),
    errs.join("\n"),
  )
})

test("meta-parameters: unknown, like an unknown model, unread by the inner loss", () => {
  assert.match(
    messages(alg1({ wrt: "psi" })).join("\n"),
    /step\/0\/metaMinimize\/wrt: unknown meta-parameters "psi"/,
  )
  assert.match(
    messages(alg1({ wrt: "lost", inner: Loss.regression(student) })).join("\n"),
    /shaped like unknown model "nobody"/,
  )
  assert.match(messages(alg1({ inner: Loss.regression(student) })).join("\n"), /meta-gradient would be zero/)
})

test("closed form needs one inner step and weighted norms over the inner models", () => {
  assert.match(
    messages(alg1({ mode: "closed-form", steps: 2 })).join("\n"),
    /step\/0\/metaMinimize\/mode: closed-form needs exactly 1 inner step/,
  )
  const viaTransfer = Loss.sum(Loss.regression(student), Loss.weightedNorm(teacher, "phi"))
  assert.match(
    messages(alg1({ mode: "closed-form", inner: viaTransfer })).join("\n"),
    /not over the inner step's models/,
  )
})

test("minimize: unknown names in wrt; adapters of the step's losses are known", () => {
  assert.match(
    messages(Step.minimize({ loss: G, wrt: "ghost", optimizer: sgd })).join("\n"),
    /step\/minimize\/wrt: "ghost" is neither a model/,
  )
  const transfer = Loss.transfer(Loss.tap(student, "b"), Loss.tap(teacher, "b"), "t")
  const r = checkStep(Step.minimize({ loss: transfer, wrt: [student, "t"], optimizer: sgd }), ctx)
  assert.deepEqual(r.errors, [])
  assert.deepEqual(Object.keys(r.adapters), ["t"])
})

/**
 * Every way a step cannot run on its world, batch or context, as the
 * `StepError` message a user reads (the step's path, the model, field or
 * meta-parameter by name); nothing of the world is consumed by a refused step.
 */
import assert from "node:assert/strict"
import { after, before, describe, test } from "node:test"
import * as tf from "@tensorflow/tfjs-core"
import { disposeWorld, setup } from "../../laws/step/fixture.ts"
import * as Dirnet from "../../src/dsl/dirnet.ts"
import * as Exits from "../../src/dsl/Exits.ts"
import * as Loss from "../../src/dsl/Loss.ts"
import * as Optimizer from "../../src/dsl/Optimizer.ts"
import * as Program from "../../src/dsl/Program.ts"
import * as Step from "../../src/dsl/Step.ts"
import * as Tf from "../../src/interpreters/tf/index.ts"
import * as Init from "../../src/interpreters/tf/init.ts"
import * as Steps from "../../src/interpreters/tf/step.ts"

before(async () => {
  await Tf.ready("cpu")
})

const arch = { size: 4, c1: 2, c2: 2, out: 2, pool: "max" } as const
const o = setup(arch, 21, 2)
after(() => {
  disposeWorld(o.world)
  tf.dispose(Object.values(o.batch))
})
const sgd = Optimizer.sgd({ lr: 0.1 })

/** Asserts that `step` is refused with exactly `message`, and that the world is left whole. */
const refused = (
  step: Step.Step,
  message: string,
  w: { world?: Steps.World; batch?: Steps.Batch; ctx?: Steps.Context } = {},
) => {
  const live = tf.memory().numTensors
  assert.throws(
    () => Steps.run(step, w.world ?? o.world, w.batch ?? o.batch, w.ctx ?? o.ctx),
    (e: unknown) => {
      assert.ok(e instanceof Steps.StepError, `not a StepError: ${String(e)}`)
      assert.equal(e._tag, "StepError")
      assert.equal(e.message, message)
      return true
    },
  )
  assert.equal(tf.memory().numTensors, live, "a refused step leaves no tensors behind")
  for (const tree of Object.values(o.world.params))
    for (const t of Object.values(tree)) assert.equal(t.isDisposed, false)
}

const distil = Step.minimize({ loss: o.G, wrt: o.student, optimizer: sgd })
const meta = (
  inner: Partial<Step.Inner>,
  extra: { mode?: Step.MetaMode; wrt?: string; outer?: Loss.Loss } = {},
) =>
  Step.metaMinimize({
    outer: extra.outer ?? o.G,
    inner: { ...Step.inner({ loss: o.F, wrt: o.student, rate: 0.1 }), ...inner },
    wrt: extra.wrt ?? "phi",
    optimizer: sgd,
    ...(extra.mode === undefined ? {} : { mode: extra.mode }),
  })

describe("what a step reads", () => {
  test("parameters to train that the world does not have", () => {
    refused(
      Step.minimize({ loss: Loss.regression(o.student), wrt: "ghost", optimizer: sgd }),
      'step minimize: "ghost" has no parameters (not a model or adapter of this world)',
    )
    refused(
      Step.together(
        distil,
        Step.minimize({ loss: Loss.regression(o.student), wrt: "ghost", optimizer: sgd }),
      ),
      'step 1/minimize: "ghost" has no parameters (not a model or adapter of this world)',
    )
    refused(
      meta({ wrt: ["ghost"] }),
      'step metaMinimize/inner: "ghost" has no parameters (not a model or adapter of this world)',
    )
  })

  test("a frozen model without parameters, feed, input field or definition", () => {
    const { teacher: _t, ...params } = o.world.params
    refused(distil, 'model "teacher" has no parameters', { world: { ...o.world, params } })
    refused(distil, 'model "teacher" has no feed (ctx.feeds)', {
      ctx: { ...o.ctx, feeds: { student: "rgb" } },
    })
    const { depth: _d, ...batch } = o.batch
    refused(distil, 'model "teacher" reads field "depth", which the batch lacks', { batch })
    refused(distil, 'unknown model "teacher"', { ctx: { ...o.ctx, models: { student: o.student } } })
  })

  test("a trained model without definition or input", () => {
    refused(distil, 'unknown model "student"', { ctx: { ...o.ctx, models: { teacher: o.teacher } } })
    const { rgb: _r, ...batch } = o.batch
    refused(distil, 'model "student" reads field "rgb", which the batch lacks', { batch })
  })
})

describe("meta-steps", () => {
  test("meta-parameters the world does not have", () => {
    refused(meta({}, { wrt: "psi" }), 'step metaMinimize: no meta-parameters "psi"')
    refused(Step.together(distil, meta({}, { wrt: "psi" })), 'step 1/metaMinimize: no meta-parameters "psi"')
  })

  test("inner steps must be a non-negative integer (0 is allowed: G at θ, its direct φ-gradient)", () => {
    for (const steps of [-1, 1.5, Number.NaN])
      refused(meta({ steps }), `step metaMinimize: inner steps must be a non-negative integer, got ${steps}`)
    const z = setup(arch, 22, 2)
    const r = Steps.run(meta({ steps: 0 }), z.world, z.batch, z.ctx)
    assert.ok(Number.isFinite(r.losses.metaMinimize!))
    disposeWorld(r.world)
    tf.dispose(Object.values(z.batch))
  })

  test("the closed form: exactly one inner step, φ read only through weighted norms of the inner step's models", () => {
    refused(
      meta({ steps: 2 }, { mode: "closed-form" }),
      "step metaMinimize: the closed-form meta-gradient needs exactly 1 inner step, got 2",
    )
    refused(
      meta({ loss: Loss.regression(o.student) }, { mode: "closed-form" }),
      'step metaMinimize: the closed-form meta-gradient needs the inner loss to read "phi" only through weighted norms',
    )
    refused(
      meta(
        { loss: Loss.sum(Loss.regression(o.student), Loss.weightedNorm(o.teacher, "phi")) },
        { mode: "closed-form" },
      ),
      'step metaMinimize: the weighted norm of "teacher" is not over the inner step\'s parameters (student)',
    )
  })
})

describe("REINFORCE steps", () => {
  test("a network or gate that is not a model of the world", () => {
    const step = (network: string, gate: string) =>
      Exits.reinforce({ network, gate, lambda: 1, flopsWeight: 1, temperature: 1, optimizer: sgd })
    refused(step("ghost", "student"), 'step reinforce: unknown model "ghost"')
    refused(step("student", "ghost"), 'step reinforce: unknown model "ghost"')
    refused(step("student", "teacher"), 'step reinforce: the gate "teacher" has no parameters', {
      world: { ...o.world, params: { student: o.world.params.student! } },
    })
    refused(step("student", "teacher"), 'step reinforce: "student" has no parameters', {
      world: { ...o.world, params: { teacher: o.world.params.teacher! } },
    })
  })

  test("a batch without the joints the reward reads", () => {
    const ir = Program.model("ir", Dirnet.dirnet({ iterations: 2, width: 2, hidden: 4 }), [32, 32, 3])
    const gate = Program.model("gate", Dirnet.gate({ inFeatures: 4, hidden: 8 }), [4])
    const net = Init.init(ir.net, ir.input, 2)
    const g = Init.init(gate.net, gate.input, 3)
    const world: Steps.World = {
      params: { ir: net.params, gate: g.params },
      state: { ir: net.state },
      meta: {},
      opt: {},
    }
    const ctx: Steps.Context = { models: { ir, gate }, feeds: { ir: "rgb" }, seed: 4 }
    const full = { rgb: tf.zeros([2, 32, 32, 3]), joints3d: tf.zeros([2, 63]), joints2d: tf.zeros([2, 42]) }
    const step = Exits.reinforce({
      network: "ir",
      gate: "gate",
      lambda: 1,
      flopsWeight: 1,
      temperature: 1,
      optimizer: sgd,
    })
    refused(step, "step reinforce: the batch has no joints3d", {
      world,
      batch: { rgb: full.rgb, joints2d: full.joints2d },
      ctx,
    })
    refused(step, "step reinforce: the batch has no joints2d", {
      world,
      batch: { rgb: full.rgb, joints3d: full.joints3d },
      ctx,
    })
    // The same step on the whole batch runs: what was refused was the missing field.
    const r = Steps.run(step, world, full, ctx)
    assert.ok(Number.isFinite(r.losses.reinforce!))
    disposeWorld(r.world)
    tf.dispose(Object.values(full))
  })
})

describe("adapters", () => {
  test("an adapter whose shape cannot be inferred (it reads a data field whose shape is not given)", () => {
    const step = Step.minimize({
      loss: Loss.transfer(Loss.field("depth"), Loss.tap(o.teacher, "b"), "bridge"),
      wrt: "bridge",
      optimizer: sgd,
    })
    assert.throws(
      () => Steps.prepare(step, o.world, o.ctx, 1),
      (e: unknown) =>
        e instanceof Steps.StepError &&
        e.message ===
          'cannot infer the shape of adapter "bridge" (does it read a data field? pass its shape)',
    )
  })
})

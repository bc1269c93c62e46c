/**
 * The step interpreter: tensor lifetimes over many steps, optimizer state
 * keys, batch-norm policies, adapters, and its errors.
 */
import assert from "node:assert/strict"
import { before, test } from "node:test"
import * as tf from "@tensorflow/tfjs-core"
import { disposeWorld, setup } from "../../laws/step/fixture.ts"
import * as Loss from "../../src/dsl/Loss.ts"
import * as Optimizer from "../../src/dsl/Optimizer.ts"
import * as Step from "../../src/dsl/Step.ts"
import * as Tf from "../../src/interpreters/tf/index.ts"
import type { Tree } from "../../src/interpreters/tf/init.ts"
import * as Steps from "../../src/interpreters/tf/step.ts"

before(async () => {
  await Tf.ready("cpu")
})

const arch = { size: 4, c1: 2, c2: 2, out: 2, pool: "max" } as const

const values = (t: Tree) =>
  Object.keys(t)
    .sort()
    .map((k) => Array.from(t[k]!.dataSync()))

test("the live tensor count is constant over 200 steps of Algorithm 1 (exact), and over Adam/momentum and first-order meta-steps", () => {
  const o = setup(arch, 5, 2)
  const alg1 = Step.together(
    Step.metaMinimize({
      outer: o.G,
      inner: Step.inner({ loss: o.F, wrt: o.student, rate: 0.01 }),
      wrt: "phi",
      optimizer: Optimizer.sgd({ lr: 0.01 }),
    }),
    Step.minimize({ loss: o.G, wrt: o.student, optimizer: Optimizer.sgd({ lr: 0.01 }) }),
  )
  const stateful = Step.together(
    Step.metaMinimize({
      outer: o.G,
      inner: Step.inner({ loss: o.F, wrt: o.student, rate: 0.01, steps: 2 }),
      wrt: "phi",
      optimizer: Optimizer.adam({ lr: 1e-3 }),
      mode: "first-order",
    }),
    Step.minimize({
      loss: o.G,
      wrt: o.student,
      optimizer: Optimizer.sgd({ lr: 0.01, momentum: 0.9, weightDecay: 1e-4 }),
    }),
  )
  let world = o.world
  for (const [step, n] of [
    [alg1, 200],
    [stateful, 15],
  ] as const) {
    world = Steps.run(step, world, o.batch, o.ctx).world // creates the optimizer states
    const live = tf.memory().numTensors
    for (let i = 0; i < n; i++) {
      const r = Steps.run(step, world, o.batch, o.ctx)
      world = r.world
      assert.ok(Object.values(r.losses).every(Number.isFinite))
    }
    assert.equal(tf.memory().numTensors, live)
  }
  disposeWorld(world)
  tf.dispose(Object.values(o.batch))
})

test("optimizer states are kept under the step's path; together adds the updates of its sub-steps", () => {
  const o = setup(arch, 6, 2)
  const sgd = Optimizer.sgd({ lr: 0.01, momentum: 0.5 })
  const one = Step.minimize({
    loss: Loss.regression(o.student),
    wrt: o.student,
    optimizer: sgd,
    batchNorm: "batch-stats",
  })
  const first = Steps.run(Step.together(one, one), o.world, o.batch, o.ctx)
  assert.deepEqual(Object.keys(first.world.opt).sort(), ["0/minimize", "1/minimize"])
  // Two identical sub-steps from the same start: θ + 2u, the same as one step at twice the rate.
  const o2 = setup(arch, 6, 2)
  const double = Steps.run(
    Step.minimize({
      loss: Loss.regression(o2.student),
      wrt: o2.student,
      optimizer: Optimizer.sgd({ lr: 0.02, momentum: 0.5 }),
      batchNorm: "batch-stats",
    }),
    o2.world,
    o2.batch,
    o2.ctx,
  )
  assert.deepEqual(Object.keys(double.world.opt), ["minimize"])
  const a = values(first.world.params.student!).flat()
  const b = values(double.world.params.student!).flat()
  for (const [i, x] of a.entries())
    assert.ok(Math.abs(x - b[i]!) <= 1e-6 * (1 + Math.abs(x)), `${x} vs ${b[i]}`)
  disposeWorld(first.world)
  disposeWorld(double.world)
  tf.dispose([...Object.values(o.batch), ...Object.values(o2.batch)])
})

test("batch-norm policies: train writes running statistics, batch-stats and running leave them", () => {
  for (const policy of ["train", "batch-stats", "running"] as const) {
    const o = setup(arch, 8, 3)
    const before = values(o.world.state.student!)
    const { world } = Steps.run(
      Step.minimize({
        loss: Loss.regression(o.student),
        wrt: o.student,
        optimizer: Optimizer.sgd({ lr: 0.01 }),
        batchNorm: policy,
      }),
      o.world,
      o.batch,
      o.ctx,
    )
    const after = values(world.state.student!)
    if (policy === "train") assert.notDeepEqual(after, before)
    else assert.deepEqual(after, before)
    disposeWorld(world)
    tf.dispose(Object.values(o.batch))
  }
})

test("supervision transfer: prepare initialises the adapter, minimize trains it with the student", () => {
  const o = setup(arch, 9, 2)
  const loss = Loss.transfer(Loss.tap(o.student, "a"), Loss.tap(o.teacher, "a"), "t")
  const step = Step.minimize({ loss, wrt: [o.student, "t"], optimizer: Optimizer.sgd({ lr: 0.01 }) })
  let world = Steps.prepare(step, o.world, o.ctx, 1)
  assert.deepEqual(
    Object.entries(world.params.t!).map(([k, v]) => [k, v.shape]),
    [
      ["kernel", [1, 1, 2, 2]],
      ["bias", [2]],
    ],
  )
  const first = Steps.run(step, world, o.batch, o.ctx)
  world = first.world
  let last = first.losses.minimize!
  for (let i = 0; i < 20; i++) {
    const r = Steps.run(step, world, o.batch, o.ctx)
    world = r.world
    last = r.losses.minimize!
  }
  assert.ok(last < first.losses.minimize!, `transfer loss ${first.losses.minimize} → ${last}`)
  disposeWorld(world)
  tf.dispose(Object.values(o.batch))
})

test("errors: closed form without a weighted norm, unknown models and meta-parameters", () => {
  const o = setup(arch, 10, 2)
  const closed = Step.metaMinimize({
    outer: o.G,
    inner: Step.inner({
      loss: Loss.sum(Loss.regression(o.student), Loss.norm(o.student, 0.1)),
      wrt: o.student,
      rate: 0.1,
    }),
    wrt: "phi",
    optimizer: Optimizer.sgd({ lr: 0.1 }),
    mode: "closed-form",
  })
  assert.throws(
    () => Steps.run(closed, o.world, o.batch, o.ctx),
    /closed-form meta-gradient needs the inner loss to read "phi" only through weighted norms/,
  )
  const unknown = Step.minimize({
    loss: Loss.regression(o.student),
    wrt: "ghost",
    optimizer: Optimizer.sgd({ lr: 0.1 }),
  })
  assert.throws(() => Steps.run(unknown, o.world, o.batch, o.ctx), /"ghost" has no parameters/)
  const noPhi = Step.metaMinimize({
    outer: o.G,
    inner: Step.inner({ loss: o.F, wrt: o.student, rate: 0.1 }),
    wrt: "psi",
    optimizer: Optimizer.sgd({ lr: 0.1 }),
  })
  assert.throws(() => Steps.run(noPhi, o.world, o.batch, o.ctx), /no meta-parameters "psi"/)
  disposeWorld(o.world)
  tf.dispose(Object.values(o.batch))
})

test("a together's sub-steps share the frozen teacher's outputs: applied once per batch, the same world as each sub-step alone", async () => {
  const alg1 = (o: ReturnType<typeof setup>) => {
    const meta = Step.metaMinimize({
      outer: o.G,
      inner: Step.inner({ loss: o.F, wrt: o.student, rate: 0.01 }),
      wrt: "phi",
      optimizer: Optimizer.sgd({ lr: 0.01 }),
    })
    const theta = Step.minimize({ loss: o.G, wrt: o.student, optimizer: Optimizer.sgd({ lr: 0.01 }) })
    return { meta, theta, both: Step.together(meta, theta) }
  }
  const o = setup(arch, 11, 2)
  const live = tf.memory().numTensors
  let together: ReturnType<typeof Steps.run> | undefined
  const profile = await tf.profile(() => {
    together = Steps.run(alg1(o).both, o.world, o.batch, o.ctx)
  })
  // The teacher reads the one-channel depth input: its first convolution is the only one on one channel.
  const teacherStems = profile.kernels.filter((k) => k.name === "Conv2D" && k.inputShapes[0]?.[3] === 1)
  assert.equal(teacherStems.length, 1)
  // Nothing kept beyond the step: the world's tensors were replaced one for one.
  assert.equal(tf.memory().numTensors, live)
  // θ from the θ step alone and φ from the meta-step alone, bit for bit (each starts from the same world).
  const a = setup(arch, 11, 2)
  const thetaAlone = Steps.run(alg1(a).theta, a.world, a.batch, a.ctx)
  const b = setup(arch, 11, 2)
  const metaAlone = Steps.run(alg1(b).meta, b.world, b.batch, b.ctx)
  assert.deepEqual(values(together!.world.params.student!), values(thetaAlone.world.params.student!))
  assert.deepEqual(values(together!.world.meta.phi!), values(metaAlone.world.meta.phi!))
  assert.deepEqual(together!.losses, {
    "0/metaMinimize": metaAlone.losses.metaMinimize,
    "1/minimize": thetaAlone.losses.minimize,
  })
  for (const r of [together!, thetaAlone, metaAlone]) disposeWorld(r.world)
  tf.dispose([...Object.values(o.batch), ...Object.values(a.batch), ...Object.values(b.batch)])
})

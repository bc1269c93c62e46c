/**
 * What a step does to its world, each against an oracle outside the code it
 * checks:
 * - the meta-gradient's three modes on the regularisers and outer losses the
 *   meta-gradient law does not draw (a scaled and an ℓ1 weighted norm, an
 *   outer loss that reads φ itself, an inner loss that does not), and
 *   first-order mode for l = 2 against its formula
 *   Σᵢ −α·2θ̈ᵢ ⊙ ∇_θ G(θ̈_l), the θ̈ᵢ taken by plain SGD steps;
 * - momentum carried from one step to the next, for θ and for φ, with another
 *   step in between (each step keeps its own optimizer state);
 * - the batch-norm policies: `running` evaluates with the running statistics
 *   and leaves them, `batch-stats` leaves them, `train` updates them;
 * - adapters that `prepare` initialises: those of a meta-step's losses too,
 *   never one the world has, each from its own seed, a convolution's by He's
 *   rule.
 */
import assert from "node:assert/strict"
import { after, before, describe, test } from "node:test"
import * as tf from "@tensorflow/tfjs-core"
import { cloneWorld, disposeWorld, flatValues, setup } from "../../laws/step/fixture.ts"
import * as Loss from "../../src/dsl/Loss.ts"
import * as Optimizer from "../../src/dsl/Optimizer.ts"
import * as Step from "../../src/dsl/Step.ts"
import { apply } from "../../src/interpreters/tf/apply.ts"
import * as Tf from "../../src/interpreters/tf/index.ts"
import * as TfLoss from "../../src/interpreters/tf/loss.ts"
import * as Steps from "../../src/interpreters/tf/step.ts"

before(async () => {
  await Tf.ready("cpu")
})

const arch = { size: 5, c1: 2, c2: 3, out: 3, pool: "avg" } as const
/**
 * ∇_θ of `loss` for the student at a copy of `world`: what one plain SGD step at rate 1 subtracts
 * (evaluated under `batchNorm`, as the step under test evaluates it).
 */
const gradientAt = (
  o: ReturnType<typeof setup>,
  loss: Loss.Loss,
  world: Steps.World,
  batchNorm: Step.BatchNormPolicy,
): number[] => {
  const c = cloneWorld(world)
  const before = flatValues(c.params.student!)
  const plain = Step.minimize({ loss, wrt: o.student, optimizer: Optimizer.sgd({ lr: 1 }), batchNorm })
  const r = Steps.run(plain, c, o.batch, o.ctx)
  const g = flatValues(r.world.params.student!).map((x, i) => before[i]! - x)
  disposeWorld(r.world)
  return g
}
/** Asserts a ≈ b element by element, to float32's rounding of a few operations. */
const close = (a: readonly number[], b: readonly number[], what: string, rel = 1e-4) => {
  assert.equal(a.length, b.length, `${what}: lengths`)
  const scale = Math.max(1e-3, ...b.map(Math.abs))
  const worst = Math.max(...a.map((x, i) => Math.abs(x - b[i]!)))
  assert.ok(
    worst <= rel * scale,
    `${what}: max |Δ| = ${worst.toExponential(2)} (scale ${scale.toExponential(2)})`,
  )
}
const meta = (
  o: ReturnType<typeof setup>,
  mode: Step.MetaMode,
  w: { inner?: Loss.Loss; outer?: Loss.Loss; steps?: number; rate?: number; momentum?: number } = {},
) =>
  Step.metaMinimize({
    outer: w.outer ?? o.G,
    inner: Step.inner({ loss: w.inner ?? o.F, wrt: o.student, rate: w.rate ?? 0.3, steps: w.steps ?? 1 }),
    wrt: "phi",
    optimizer: Optimizer.sgd({ lr: 0.1, ...(w.momentum === undefined ? {} : { momentum: w.momentum }) }),
    mode,
  })
const metaGrad = (o: ReturnType<typeof setup>, s: Step.Step, world = o.world) =>
  tf.tidy(() => {
    const r = Steps.metaGradient(s as Extract<Step.Step, { _tag: "MetaMinimize" }>, world, o.batch, o.ctx)
    return flatValues(r.grads)
  })

describe("the meta-gradient's modes", () => {
  const o = setup(arch, 17, 3)
  after(() => {
    disposeWorld(o.world)
    tf.dispose(Object.values(o.batch))
  })

  test("for l = 1 closed-form and first-order equal exact on a regulariser of scaled ℓ2 and ℓ1 weighted norms", () => {
    const inner = Loss.sum(
      Loss.regression(o.student),
      Loss.scale(0.5, Loss.weightedNorm(o.student, "phi")),
      Loss.scale(3, Loss.weightedNorm(o.student, "phi", 1)),
    )
    const exact = metaGrad(o, meta(o, "exact", { inner }))
    for (const mode of ["closed-form", "first-order"] as const)
      close(metaGrad(o, meta(o, mode, { inner })), exact, mode)
  })

  test("an outer loss that reads φ itself: its direct gradient is added in every mode", () => {
    const outer = Loss.sum(o.G, Loss.scale(0.7, Loss.weightedNorm(o.student, "phi")))
    const exact = metaGrad(o, meta(o, "exact", { outer }))
    const without = metaGrad(o, meta(o, "exact"))
    assert.ok(
      exact.some((x, i) => Math.abs(x - without[i]!) > 1e-3),
      "the direct term changes the meta-gradient",
    )
    for (const mode of ["closed-form", "first-order"] as const)
      close(metaGrad(o, meta(o, mode, { outer })), exact, mode)
  })

  test("an inner loss that does not read φ: the meta-gradient is the outer loss's direct one", () => {
    const outer = Loss.sum(o.G, Loss.scale(0.7, Loss.weightedNorm(o.student, "phi")))
    const inner = Loss.regression(o.student)
    const exact = metaGrad(o, meta(o, "exact", { outer, inner }))
    close(metaGrad(o, meta(o, "first-order", { outer, inner })), exact, "first-order")
    // ∂/∂φ of 0.7·Σ φ ⊙ θ̈² is 0.7·θ̈², θ̈ one SGD step on the regression loss.
    const s = Step.minimize({
      loss: inner,
      wrt: o.student,
      optimizer: Optimizer.sgd({ lr: 0.3 }),
      batchNorm: "batch-stats",
    })
    const { world } = Steps.run(s, cloneWorld(o.world), o.batch, o.ctx)
    close(
      exact,
      flatValues(world.params.student!).map((x) => 0.7 * x * x),
      "0.7·θ̈²",
    )
    disposeWorld(world)
  })

  test("first-order for l = 2 is Σᵢ −α·2θ̈ᵢ ⊙ ∇_θ G(θ̈₂), the θ̈ᵢ taken by plain SGD", () => {
    const alpha = 0.3
    // The inner step as the meta-step takes it: SGD at rate α on F, batch statistics.
    const inner = Step.minimize({
      loss: o.F,
      wrt: o.student,
      optimizer: Optimizer.sgd({ lr: alpha }),
      batchNorm: "batch-stats",
    })
    const t0 = cloneWorld(o.world)
    const theta0 = flatValues(t0.params.student!)
    const t1 = Steps.run(inner, t0, o.batch, o.ctx).world
    const theta1 = flatValues(t1.params.student!)
    const t2 = Steps.run(inner, t1, o.batch, o.ctx).world
    const g = gradientAt(o, o.G, t2, "batch-stats")
    disposeWorld(t2)
    const expected = g.map((gi, i) => -alpha * 2 * (theta0[i]! + theta1[i]!) * gi)
    close(
      metaGrad(o, meta(o, "first-order", { steps: 2, rate: alpha })),
      expected,
      "first-order, l = 2",
      1e-3,
    )
  })

  test("metaGradient on a world without the meta-parameters names them", () => {
    assert.throws(
      () => Steps.metaGradient(meta(o, "exact") as never, { ...o.world, meta: {} }, o.batch, o.ctx),
      (e: unknown) =>
        e instanceof Steps.StepError && e.message === 'step metaMinimize: no meta-parameters "phi"',
    )
  })

  test("closed-form with meta-parameters for a parameter the model lacks names it", () => {
    const ghost = tf.zeros([2])
    const world = { ...o.world, meta: { phi: { ...o.world.meta.phi!, ghost } } }
    assert.throws(
      () => Steps.run(meta(o, "closed-form"), world, o.batch, o.ctx),
      (e: unknown) =>
        e instanceof Steps.StepError &&
        e.message === 'step metaMinimize: "student" has no parameter "ghost" for meta-parameters "phi"',
    )
    ghost.dispose()
  })
})

describe("optimizer state across steps", () => {
  test("momentum carries over from one step to the next, for θ and for φ, with the other step in between", () => {
    const o = setup(arch, 29, 3)
    const lr = 0.05
    const mu = 0.9
    const A = Step.minimize({ loss: o.G, wrt: o.student, optimizer: Optimizer.sgd({ lr, momentum: mu }) })
    const B = meta(o, "exact", { momentum: mu })
    // Gradients at a world, from a copy of it: θ's by gradientAt (A's batch-norm policy), φ's by metaGradient.
    const gradTheta = (w: Steps.World) => gradientAt(o, o.G, w, "train")
    const w0 = o.world
    const gA1 = gradTheta(w0)
    const theta0 = flatValues(w0.params.student!)
    const w1 = Steps.run(A, w0, o.batch, o.ctx).world
    const gB1 = metaGrad(o, B, w1)
    const w2 = Steps.run(B, w1, o.batch, o.ctx).world
    const gA2 = gradTheta(w2)
    const theta2 = flatValues(w2.params.student!)
    assert.ok(
      theta0.some((x, i) => x !== theta2[i]!),
      "A moved θ",
    )
    const w3 = Steps.run(A, w2, o.batch, o.ctx).world
    // θ₃ = θ₂ − lr·(μ·g₁ + g₂) (a trace: v ← μv + g), g₁ taken at w₀ and g₂ at w₂.
    close(
      flatValues(w3.params.student!),
      theta2.map((x, i) => x - lr * (mu * gA1[i]! + gA2[i]!)),
      "θ after A's second momentum step",
    )
    const gB2 = metaGrad(o, B, w3)
    const phi3 = flatValues(w3.meta.phi!)
    const w4 = Steps.run(B, w3, o.batch, o.ctx).world
    close(
      flatValues(w4.meta.phi!),
      phi3.map((x, i) => x - 0.1 * (mu * gB1[i]! + gB2[i]!)),
      "φ after B's second momentum step",
    )
    disposeWorld(w4)
    tf.dispose(Object.values(o.batch))
  })
})

describe("batch-norm policies of a Minimize step", () => {
  test("running: evaluated with the running statistics, which stay; batch-stats leaves them; train updates them", () => {
    const o = setup(arch, 31, 3)
    // Non-trivial running statistics, so that evaluating with them differs from the batch's.
    const state = Object.fromEntries(
      Object.entries(o.world.state.student!).map(([k, v]) => [
        k,
        k.endsWith("variance") ? tf.fill(v.shape, 2.5) : tf.fill(v.shape, 0.3),
      ]),
    )
    tf.dispose(Object.values(o.world.state.student!))
    const world0: Steps.World = { ...o.world, state: { ...o.world.state, student: state } }
    const loss = Loss.regression(o.student)
    const stepWith = (batchNorm: Step.BatchNormPolicy) =>
      Step.minimize({ loss, wrt: o.student, optimizer: Optimizer.sgd({ lr: 0.1 }), batchNorm })
    const lossIn = (mode: "eval" | "batch-stats") =>
      tf.tidy(() => {
        const r = apply(o.student.net, world0.params.student!, state, o.batch.rgb!, mode)
        const env = {
          outputs: { student: { y: r.y, taps: r.taps } },
          batch: o.batch,
          params: world0.params,
          meta: {},
        }
        return TfLoss.evaluate(loss, env).dataSync()[0]!
      })
    const evalLoss = lossIn("eval")
    const batchLoss = lossIn("batch-stats")
    assert.ok(
      Math.abs(evalLoss - batchLoss) > 1e-3 * Math.abs(batchLoss),
      "the two statistics give different losses",
    )
    const before = flatValues(state)
    for (const [policy, expected, moves] of [
      ["running", evalLoss, false],
      ["batch-stats", batchLoss, false],
      ["train", batchLoss, true],
    ] as const) {
      const r = Steps.run(stepWith(policy), cloneWorld(world0), o.batch, o.ctx)
      const reported = r.losses.minimize!
      assert.ok(
        Math.abs(reported - expected) <= 1e-5 * Math.abs(expected),
        `${policy}: loss ${reported}, expected ${expected}`,
      )
      const after = flatValues(r.world.state.student!)
      assert.equal(
        after.some((x, i) => x !== before[i]!),
        moves,
        `${policy}: the running statistics ${moves ? "move" : "stay"}`,
      )
      disposeWorld(r.world)
    }
    disposeWorld(world0)
    tf.dispose(Object.values(o.batch))
  })
})

describe("adapters that prepare initialises", () => {
  const o = setup({ size: 4, c1: 8, c2: 2, out: 2, pool: "max" }, 37, 2)
  after(() => {
    disposeWorld(o.world)
    tf.dispose(Object.values(o.batch))
  })
  // A 1×1 convolution from the student's tap "a" to the teacher's (both 8 channels).
  const bridge = (name: string) => Loss.transfer(Loss.tap(o.student, "a"), Loss.tap(o.teacher, "a"), name)
  const sgd = Optimizer.sgd({ lr: 0.1 })

  test("those of a meta-step's outer and inner losses, each from its own seed, a convolution's by He's rule", () => {
    const s = Step.metaMinimize({
      outer: Loss.sum(o.G, bridge("up")),
      inner: Step.inner({ loss: Loss.sum(o.F, bridge("down")), wrt: o.student, rate: 0.1 }),
      wrt: "phi",
      optimizer: sgd,
    })
    const w = Steps.prepare(s, o.world, o.ctx, 5)
    for (const a of ["up", "down"]) assert.ok(w.params[a] !== undefined, `adapter "${a}" initialised`)
    const kernel = (a: string) => {
      const ks = Object.values(w.params[a]!).filter((t) => t.rank === 4)
      assert.equal(ks.length, 1, `adapter "${a}" has one convolution kernel`)
      return [...ks[0]!.dataSync()]
    }
    const up = kernel("up")
    assert.equal(up.length, 64)
    assert.notDeepEqual(up, kernel("down"), "two adapters of one shape start apart (seeded by name)")
    // He-normal, std √(2/fan-out) = 0.5 over 64 draws; a dense layer's uniform(±1/√8) has std 0.20.
    const std = Math.sqrt(up.reduce((a, x) => a + x * x, 0) / up.length)
    assert.ok(std > 0.35 && std < 0.7, `kernel std ${std}`)
    for (const a of ["up", "down"]) tf.dispose(Object.values(w.params[a]!))
  })

  test("never one the world already has", () => {
    const s = Step.minimize({
      loss: Loss.sum(o.G, bridge("up")),
      wrt: [o.student.name, "up"],
      optimizer: sgd,
    })
    const w = Steps.prepare(s, o.world, o.ctx, 5)
    const again = Steps.prepare(s, w, o.ctx, 6)
    assert.equal(again, w, "nothing to initialise: the same world")
    const other = Steps.prepare(
      Step.minimize({ loss: Loss.sum(o.G, bridge("up"), bridge("side")), wrt: o.student, optimizer: sgd }),
      w,
      o.ctx,
      6,
    )
    for (const [k, t] of Object.entries(w.params.up!)) assert.equal(other.params.up![k], t, `up/${k} kept`)
    assert.ok(other.params.side !== undefined)
    tf.dispose([...Object.values(w.params.up!), ...Object.values(other.params.side!)])
  })
})

/**
 * Every optimizer and transform of `dsl/Optimizer.ts` that PyTorch has, against
 * torch.optim's trajectories (`test/fixtures/optimizers.json`, written by
 * `test/fixtures/make_optimizer_fixtures.py` in float64): the same initial
 * parameters and per-step gradients, six steps, the parameters compared
 * element by element after every step and the optimizer's moments after the
 * last.
 *
 * Tolerance, per tensor: |ours − torch| ≤ 2e-6 · max|torch| over the tensor.
 * Ours runs in float32 (unit round-off 6e-8) through a handful of ops per
 * step, six steps; a scale relative to the tensor rather than to the element,
 * because a parameter that an update sends to ~0 (0.05 − 0.1·0.5) is
 * cancellation, whose float32 error is relative to the operands.
 * The largest error seen, 7e-7, is not rounding: torch's clip_grad_norm_
 * divides by ‖g‖ + 1e-6 and ours by ‖g‖ + 1e-12 (5.6e-7 relative at the
 * fixture's ‖g‖ = 1.8). A dropped
 * bias correction (×3 on Adam's first step), a momentum without its decay or a
 * clip coefficient off by its norm are errors of order 1.
 */
import assert from "node:assert/strict"
import { readFileSync } from "node:fs"
import { before, test } from "node:test"
import * as tf from "@tensorflow/tfjs-core"
import { selectBackend } from "../../src/backend/index.ts"
import * as Optimizer from "../../src/dsl/Optimizer.ts"
import * as Tf from "../../src/interpreters/tf/index.ts"
import * as Optim from "../../src/interpreters/tf/optimizer.ts"

const TOL = 2e-6

interface Case {
  readonly name: string
  readonly torch: string
  /** Parameters after each step. */
  readonly params: readonly Record<string, number[]>[]
  /** torch's momentum_buffer / exp_avg / exp_avg_sq after the last step, under cmkg's slot names. */
  readonly state: Readonly<Record<string, Record<string, number[]>>>
}
interface Fixture {
  readonly producer: string
  readonly shapes: Record<string, number[]>
  readonly init: Record<string, number[]>
  readonly grads: readonly Record<string, number[]>[]
  readonly cases: readonly Case[]
}

const fixture: Fixture = JSON.parse(
  readFileSync(new URL("../fixtures/optimizers.json", import.meta.url), "utf8"),
) as Fixture

/** cmkg's optimizer for each torch case; a schedule is the same chain with its learning rate scaled from a step on. */
const ours: Record<
  string,
  { readonly optimizer: Optimizer.Optimizer; readonly lrFactorFrom?: [number, number] }
> = {
  sgd: { optimizer: Optimizer.sgd({ lr: 0.1 }) },
  "sgd-momentum": { optimizer: Optimizer.sgd({ lr: 0.1, momentum: 0.9 }) },
  "sgd-weight-decay": { optimizer: Optimizer.sgd({ lr: 0.1, weightDecay: 0.05 }) },
  "sgd-clip-norm-momentum-weight-decay": {
    optimizer: Optimizer.sgd({ lr: 0.05, momentum: 0.8, weightDecay: 0.01, clip: 1 }),
  },
  "sgd-clip-value-momentum": {
    optimizer: Optimizer.chain(
      "clip-value",
      Optimizer.clipByValue(0.5),
      Optimizer.trace(0.5),
      Optimizer.scale(-0.1),
    ),
  },
  adam: { optimizer: Optimizer.adam({ lr: 0.01 }) },
  "adam-betas-eps-weight-decay": {
    optimizer: Optimizer.adam({ lr: 0.02, b1: 0.8, b2: 0.99, eps: 1e-3, weightDecay: 0.05 }),
  },
  "adam-clip-norm": { optimizer: Optimizer.adam({ lr: 0.01, clip: 2 }) },
  // AdamW is Adam's scaling followed by decoupled decay, both under the learning rate (optax's adamw).
  adamw: {
    optimizer: Optimizer.chain(
      "adamw",
      Optimizer.scaleByAdam(),
      Optimizer.addDecayedWeights(0.1),
      Optimizer.scale(-0.01),
    ),
  },
  "adam-lr-schedule": { optimizer: Optimizer.adam({ lr: 0.01 }), lrFactorFrom: [4, 0.1] },
  "sgd-non-negative": { optimizer: Optimizer.nonNegative(Optimizer.sgd({ lr: 0.1 })) },
  "adam-non-negative": { optimizer: Optimizer.nonNegative(Optimizer.adam({ lr: 0.05 })) },
}

/** Every backend this machine initialises: the fused Adam kernel (cmkg-cpu) and the composite (cpu, wasm) both. */
const backends: string[] = []
before(async () => {
  for (const b of ["cpu", "wasm", "cmkg-cpu"] as const)
    if ((await selectBackend(b)).name === b) backends.push(b)
  await Tf.ready("cpu")
})

const tree = (values: Record<string, number[]>): Tf.Tree =>
  Object.fromEntries(Object.entries(values).map(([k, v]) => [k, tf.tensor(v, fixture.shapes[k]!, "float32")]))

/** Asserts |actual − expected| ≤ TOL·max|expected| element by element; returns the worst error in those units. */
const agree = (actual: tf.Tensor, expected: readonly number[], what: string): number => {
  const a = actual.dataSync()
  assert.equal(a.length, expected.length, `${what}: length`)
  const scale = Math.max(...expected.map(Math.abs), Number.MIN_VALUE)
  let worst = 0
  for (let i = 0; i < a.length; i++) {
    const err = Math.abs(a[i]! - expected[i]!) / scale
    assert.ok(
      err <= TOL,
      `${what}[${i}]: ours ${a[i]}, torch ${expected[i]} (error ${err.toExponential(2)} of max|torch|)`,
    )
    worst = Math.max(worst, err)
  }
  return worst
}

test("the fixture covers exactly the optimizers this file maps to cmkg's", () => {
  assert.deepEqual(fixture.cases.map((c) => c.name).sort(), Object.keys(ours).sort())
})

for (const c of fixture.cases) {
  test(`${c.name} follows torch's ${c.torch} for ${c.params.length} steps, on every backend`, async () => {
    assert.ok(backends.includes("cpu"), `backends: ${backends.join(", ")}`)
    for (const backend of backends) {
      await tf.setBackend(backend)
      tf.tidy(() => follows(c, backend))
    }
  })
}

const follows = (c: Case, backend: string): void => {
  const { optimizer, lrFactorFrom } = ours[c.name]!
  let params = tree(fixture.init)
  let state = Optim.init(optimizer, params)
  let worst = 0
  fixture.grads.forEach((g, i) => {
    const step = i + 1
    const o =
      lrFactorFrom !== undefined && step >= lrFactorFrom[0]
        ? Optimizer.scaleLearningRate(optimizer, lrFactorFrom[1])
        : optimizer
    const grads = tree(g)
    const u = Optim.update(o, grads, state, params)
    params = Optim.applyUpdates(params, u.updates)
    state = u.state
    for (const [k, expected] of Object.entries(c.params[i]!))
      worst = Math.max(worst, agree(params[k]!, expected, `${backend}: step ${step} ${k}`))
  })
  // The moments torch keeps, under the transform that keeps them in ours.
  const slots = Object.assign({}, ...state.slots) as Record<string, Tf.Tree>
  assert.deepEqual(Object.keys(c.state).sort(), Object.keys(slots).sort(), "optimizer state slots")
  for (const [slot, values] of Object.entries(c.state))
    for (const [k, expected] of Object.entries(values))
      worst = Math.max(worst, agree(slots[slot]![k]!, expected, `${backend}: state ${slot} ${k}`))
  if (process.env.CMKG_VERBOSE)
    console.log(`# ${c.name} on ${backend}: worst error ${worst.toExponential(2)} of max|torch|`)
}

test("applyUpdates moves only the parameters that have an update, and leaves the others as they were", () => {
  tf.tidy(() => {
    const params = { a: tf.tensor1d([1, 2]), b: tf.tensor1d([3, 4]) }
    const moved = Optim.applyUpdates(params, { a: tf.tensor1d([0.5, -0.5]) })
    assert.deepEqual(Array.from(moved.a!.dataSync()), [1.5, 1.5])
    // The very same tensor: a parameter outside a step's `wrt` (a frozen subset) is not even copied.
    assert.equal(moved.b, params.b)
  })
})

/**
 * Laws of DIR-Net's exits.
 *
 * Variance threshold (Sec. 4.1): with τ_var = +∞ every sample exits at the
 * first loop, with τ_var = −∞ at the last; a sample's exit is non-increasing
 * in τ_var.
 *
 * Gate temperature (Sec. 4.2). The paper samples EXIT/CONTINUE from
 * `softmax(z/τ_gate)` and reports that a higher τ_gate gives a softer
 * distribution and earlier exits. Precisely, with `p_l(τ) = σ((z_exit −
 * z_cont)/τ)` the probability of exiting at loop l once reached:
 * (i) `|p_l(τ) − ½|` is non-increasing in τ and p_l → ½ as τ → ∞: the policy
 *     approaches uniform, keeping the sign of its preference;
 * (ii) hence, for a sample whose gate prefers CONTINUE at every loop
 *     (z_exit ≤ z_cont — the regime of a gate trained to refine, the
 *     paper's 4.2 loops on average), the exit CDF `P(exit ≤ k)` is
 *     non-decreasing in τ for every k: exits move earlier (first-order
 *     stochastic dominance) and the expected MACs fall. (For a gate that
 *     prefers EXIT the same softening moves exits later.)
 *
 * REINFORCE (Eqs. 10, 11): with a reward favouring early exits the gate's
 * exit probability increases after training (and decreases with a reward
 * favouring late exits); the `Reinforce` step the runner runs pays each
 * sampled exit the shape checker's GFLOPs of that loop.
 */
import assert from "node:assert/strict"
import { before, test } from "node:test"
import * as tf from "@tensorflow/tfjs-core"
import fc from "fast-check"
import * as Metrics from "../../src/data/metrics.ts"
import * as Dirnet from "../../src/dsl/dirnet.ts"
import * as Step from "../../src/dsl/Exits.ts"
import * as Optimizer from "../../src/dsl/Optimizer.ts"
import * as Program from "../../src/dsl/Program.ts"
import * as Costs from "../../src/interpreters/shape-check/dirnet.ts"
import * as Exits from "../../src/interpreters/tf/exits.ts"
import * as Init from "../../src/interpreters/tf/init.ts"
import * as Steps from "../../src/interpreters/tf/step.ts"
import { readyForLaws, runs } from "../arbitraries/Runs.ts"

before(async () => {
  await readyForLaws()
})

const defaults = { seed: 1234, numRuns: 50 }

const logvars = fc
  .record({ iterations: fc.integer({ min: 1, max: 6 }), size: fc.integer({ min: 1, max: 8 }) })
  .chain(({ iterations, size }) =>
    fc
      .array(fc.float({ min: -30, max: 30, noNaN: true }), {
        minLength: iterations * size * 2,
        maxLength: iterations * size * 2,
      })
      .map((v) => ({
        iterations,
        size,
        logvar: Array.from({ length: iterations }, (_, k) =>
          Float32Array.from(v.slice(k * size * 2, (k + 1) * size * 2)),
        ),
      })),
  )

test("τ_var = +∞ exits every sample at the first loop, τ_var = −∞ at the last; exits are non-increasing in τ_var", () => {
  fc.assert(
    fc.property(
      logvars,
      fc.double({ min: -1e3, max: 1e3, noNaN: true }),
      fc.double({ min: 0, max: 1e3, noNaN: true }),
      (its, tau, delta) => {
        assert.ok(Exits.varianceExits(its, Number.POSITIVE_INFINITY).every((k) => k === 0))
        assert.ok(Exits.varianceExits(its, Number.NEGATIVE_INFINITY).every((k) => k === its.iterations - 1))
        const lo = Exits.varianceExits(its, tau)
        const hi = Exits.varianceExits(its, tau + delta)
        for (let b = 0; b < its.size; b++) assert.ok(hi[b]! <= lo[b]!)
      },
    ),
    runs(defaults),
  )
})

test("τ_var = ±∞ on a real (untrained) DIR-Net's predicted variances", () => {
  const options = Dirnet.resolve({ iterations: 3, width: 2, hidden: 4 })
  const net = Dirnet.dirnet(options)
  const { params, state } = Init.init(net, [32, 32, 3], 5)
  const rand = Init.prng(5)
  const batch: Exits.Batch = {
    x: tf.tensor4d(
      Float32Array.from({ length: 4 * 32 * 32 * 3 }, () => rand()),
      [4, 32, 32, 3],
    ),
    joints3d: tf.zeros([4, 63]),
    joints2d: tf.zeros([4, 42]),
  }
  const its = Exits.iterations({ model: Program.model("ir9", net, [32, 32, 3]), params, state }, batch)
  assert.deepEqual([...Exits.varianceExits(its, Number.POSITIVE_INFINITY)], [0, 0, 0, 0])
  assert.deepEqual([...Exits.varianceExits(its, Number.NEGATIVE_INFINITY)], [2, 2, 2, 2])
  tf.dispose([batch.x, batch.joints3d, batch.joints2d])
  Init.dispose(params, state)
})

// ---- fixed depth and the oracle --------------------------------------------------------------

/** Predictions of every loop, labels and per-sample scales, as an exit evaluation reads them. */
const evaluated = fc
  .record({ iterations: fc.integer({ min: 1, max: 5 }), size: fc.integer({ min: 1, max: 6 }) })
  .chain(({ iterations, size }) => {
    const poses = (n: number) =>
      fc
        .array(fc.float({ min: -2, max: 2, noNaN: true }), { minLength: n, maxLength: n })
        .map((v) => Float32Array.from(v))
    return fc.record({
      pose: fc.array(poses(size * 63), { minLength: iterations, maxLength: iterations }),
      truth: poses(size * 63),
      scale: fc
        .array(fc.float({ min: 1, max: 300, noNaN: true }), { minLength: size, maxLength: size })
        .map((v) => Float32Array.from(v)),
      iterations: fc.constant(iterations),
      size: fc.constant(size),
    })
  })
  .map(
    ({ pose, truth, scale, iterations, size }): Exits.Evaluated => ({
      its: { iterations, size, pose, joints2d: [], logvar: [], gateFeatures: [], hidden: 0, poseLoss: [] },
      truth,
      scale,
    }),
  )

test("the oracle's EPE is at most every fixed depth's, and each sample exits at its least-error loop", () => {
  fc.assert(
    fc.property(evaluated, (ev) => {
      const macs = Array.from({ length: ev.its.iterations }, (_, k) => 10 + k)
      const oracle = Exits.oracleExits(ev)
      const atOracle = Exits.measure(ev, oracle, macs)
      for (let k = 0; k < ev.its.iterations; k++) {
        const fixed = Exits.measure(ev, Exits.loopExits(ev.its, k), macs)
        assert.ok(atOracle.epe <= fixed.epe + 1e-9, `oracle ${atOracle.epe} > loop ${k + 1}'s ${fixed.epe}`)
        assert.equal(fixed.meanExit, k)
        assert.equal(fixed.gflops, Costs.gflops(10 + k))
      }
      // Each sample's own error in millimetres, loop by loop: the oracle's loop is the first least.
      for (let b = 0; b < ev.its.size; b++) {
        const errs = ev.its.pose.map((p) => {
          const one = (x: Float32Array) => x.subarray(b * 63, b * 63 + 63)
          return Metrics.report3d(one(p), one(ev.truth), [ev.scale[b]!]).epe
        })
        const [chosen, least] = [errs[oracle[b]!]!, Math.min(...errs)]
        assert.ok(chosen <= least * (1 + 1e-6) + 1e-9, `sample ${b}: ${errs} → loop ${oracle[b]! + 1}`)
      }
    }),
    runs(defaults),
  )
})

test("the oracle picks a loop whose prediction is exact, and the first loop when every loop predicts the same", () => {
  const size = 3
  const truth = Float32Array.from({ length: size * 63 }, (_, i) => Math.sin(i))
  const off = (d: number) => truth.map((x) => x + d)
  const its = (pose: Float32Array[]): Exits.Evaluated => ({
    its: {
      iterations: pose.length,
      size,
      pose,
      joints2d: [],
      logvar: [],
      gateFeatures: [],
      hidden: 0,
      poseLoss: [],
    },
    truth,
    scale: new Float32Array(size).fill(100),
  })
  assert.deepEqual([...Exits.oracleExits(its([off(0.3), off(-0.1), truth, off(0.05)]))], [2, 2, 2])
  assert.deepEqual([...Exits.oracleExits(its([off(0.1), off(0.1), off(0.1)]))], [0, 0, 0])
})

// ---- temperature ----------------------------------------------------------------------------

/** A gate with random weights whose last layer's bias favours `continue` by `bias`. */
const biasedGate = (hidden: number, seed: number, bias: number): Exits.Gate => {
  const g = Exits.initGate(hidden, seed, 8)
  const params = { ...g.params, "fc2/bias": tf.tensor1d([-bias / 2, bias / 2]) }
  g.params["fc2/bias"]!.dispose()
  return { net: g.net, params }
}

const features = (iterations: number, size: number, hidden: number, seed: number) => {
  const rand = Init.prng(seed)
  return {
    iterations,
    size,
    hidden,
    gateFeatures: Array.from({ length: iterations }, () =>
      Float32Array.from({ length: size * hidden }, () => 2 * rand()),
    ),
  }
}

const temperatures = fc.tuple(
  fc.double({ min: 0.05, max: 50, noNaN: true }),
  fc.double({ min: 1, max: 20, noNaN: true }),
)

test("(i) as τ_gate grows the policy approaches uniform: |p_exit − ½| non-increasing, same side of ½", () => {
  fc.assert(
    fc.property(
      fc.nat({ max: 1e6 }),
      fc.double({ min: -6, max: 6, noNaN: true }),
      temperatures,
      (seed, bias, [t, factor]) => {
        const g = biasedGate(6, seed, bias)
        const its = features(4, 6, 6, seed)
        const lo = Exits.exitProbabilities(g, its, t)
        const hi = Exits.exitProbabilities(g, its, t * factor)
        const far = Exits.exitProbabilities(g, its, 1e6)
        for (let k = 0; k < 3; k++)
          for (let b = 0; b < its.size; b++) {
            const [a, c] = [lo[k]![b]! - 0.5, hi[k]![b]! - 0.5]
            assert.ok(Math.abs(c) <= Math.abs(a) + 1e-6, `k ${k}: |${c}| > |${a}|`)
            assert.ok(a * c >= -1e-12, "same side of ½")
            assert.ok(Math.abs(far[k]![b]! - 0.5) < 1e-4)
          }
        Init.dispose(g.params)
      },
    ),
    runs({ ...defaults, numRuns: 25 }),
  )
})

test("(ii) for samples whose gate prefers CONTINUE at every loop, exits move earlier as τ_gate grows", () => {
  let checked = 0
  fc.assert(
    fc.property(
      fc.nat({ max: 1e6 }),
      fc.double({ min: 0, max: 6, noNaN: true }),
      temperatures,
      (seed, bias, [t, factor]) => {
        const g = biasedGate(6, seed, bias)
        const its = features(5, 8, 6, seed + 1)
        const p1 = Exits.exitProbabilities(g, its, 1)
        const lo = Exits.exitDistributions(Exits.exitProbabilities(g, its, t))
        const hi = Exits.exitDistributions(Exits.exitProbabilities(g, its, t * factor))
        const macs = [10, 13, 16, 19, 22]
        const costs = { macsAtExit: macs }
        for (let b = 0; b < its.size; b++) {
          if (![0, 1, 2, 3].every((k) => p1[k]![b]! <= 0.5)) continue
          checked++
          let [cLo, cHi] = [0, 0]
          for (let k = 0; k < 5; k++) {
            cLo += lo[b]![k]!
            cHi += hi[b]![k]!
            assert.ok(cHi >= cLo - 1e-9, `P(exit ≤ ${k}) fell from ${cLo} to ${cHi}`)
          }
          assert.ok(Costs.expectedMacs(costs, [...hi[b]!]) <= Costs.expectedMacs(costs, [...lo[b]!]) + 1e-9)
        }
        Init.dispose(g.params)
      },
    ),
    runs({ ...defaults, numRuns: 25 }),
  )
  assert.ok(checked > 20, `only ${checked} samples preferred continuing`)
})

// ---- REINFORCE -------------------------------------------------------------------------------

const meanExitAtFirst = (g: Exits.Gate, its: ReturnType<typeof features>): number => {
  const p = Exits.exitProbabilities(g, its, 1)[0]!
  return p.reduce((a, b) => a + b, 0) / p.length
}

test("REINFORCE: a reward favouring early exits raises the gate's exit probability (and a late one lowers it)", () => {
  const its = features(4, 16, 8, 77)
  const costs = { gflopsAtExit: [1, 2, 3, 4] }
  const noLoss = { iterations: 4, size: 16, poseLoss: Array.from({ length: 4 }, () => new Float32Array(16)) }
  // r_l = −μ·GFLOPs(l): exiting early pays less.
  const early = Exits.rewards(noLoss, costs, { lambda: 1, flopsWeight: 1 })
  const late = early.map((r) => r.map((x) => -x))
  for (const [reward, direction] of [
    [early, 1],
    [late, -1],
  ] as const) {
    const g0 = Exits.initGate(8, 3, 16)
    const before = meanExitAtFirst(g0, its)
    const g1 = Exits.trainGate(g0, its, reward, { steps: 30, lr: 0.05, seed: 1 })
    const after = meanExitAtFirst(g1, its)
    assert.ok(direction * (after - before) > 0.1, `p_exit(0): ${before} → ${after}`)
    Init.dispose(g1.params)
  }
})

test("REINFORCE reward (Eq. 11): GFLOPs are the shape checker's, and with a large λ the most accurate loop pays best", () => {
  const options = { iterations: 3, width: 2, hidden: 4 }
  const costs = Costs.loopCosts(Dirnet.dirnet(options), [32, 32, 3])
  // Loss falls with the loops: loop 2 is exact, loop 0 off by 1.
  const its = {
    iterations: 3,
    size: 2,
    poseLoss: [new Float32Array([1, 1]), new Float32Array([0.5, 0.5]), new Float32Array([0, 0])],
  }
  const r = Exits.rewards(its, costs, { lambda: 10, flopsWeight: 1 })
  for (let l = 0; l < 3; l++) assert.equal(r[l]![0], -10 * its.poseLoss[l]![0]! - costs.gflopsAtExit[l]!)
  assert.ok(r[2]![0]! > r[0]![0]!)
})

test("the Reinforce step (what the runner runs): −R̄ is μ·GFLOPs of the sampled exit, the shape checker's; it learns to exit early when loops cost", () => {
  const options = { iterations: 3, width: 2, hidden: 4 }
  const ir9 = Program.model("ir9", Dirnet.dirnet(options), [32, 32, 3])
  const gate = Program.model("gate", Dirnet.gate({ inFeatures: 4, hidden: 8 }), [4])
  const costs = Costs.loopCosts(ir9.net, ir9.input)
  const mu = 1e4
  const step = Step.reinforce({
    gate,
    network: ir9,
    lambda: 0,
    flopsWeight: mu,
    temperature: 1,
    updates: 1,
    optimizer: Optimizer.adam({ lr: 0.05 }),
  })
  const net = Init.init(ir9.net, ir9.input, 2)
  const g = Init.init(gate.net, gate.input, 3)
  const rand = Init.prng(9)
  // Four samples: the batch-mean baseline of one would leave no advantage to learn from.
  const B = 4
  const one: Steps.Batch = {
    rgb: tf.tensor4d(Float32Array.from({ length: B * 32 * 32 * 3 }, rand), [B, 32, 32, 3]),
    joints3d: tf.zeros([B, 63]),
    joints2d: tf.zeros([B, 42]),
  }
  const ctx: Steps.Context = { models: { ir9, gate }, feeds: { ir9: "rgb" }, seed: 4 }
  let world: Steps.World = {
    params: { ir9: net.params, gate: g.params },
    state: { ir9: net.state },
    meta: {},
    opt: {},
  }
  const pExitFirst = (w: Steps.World) => {
    const its = Exits.iterations(
      { model: ir9, params: w.params.ir9!, state: w.state.ir9! },
      {
        x: one.rgb!,
        joints3d: one.joints3d!,
        joints2d: one.joints2d!,
      },
    )
    const p = Exits.exitProbabilities({ net: gate.net, params: w.params.gate! }, its, 1)[0]!
    return p.reduce((a, x) => a + x, 0) / p.length
  }
  const before = pExitFirst(world)
  // −R̄ is the mean of μ·GFLOPs(exit_b) over the batch: one of these means.
  const paid = costs.gflopsAtExit.map((x) => mu * x)
  const gflops = [
    ...new Set(
      Array.from({ length: paid.length ** B }, (_, i) =>
        Array.from({ length: B }, (_, b) => paid[Math.floor(i / paid.length ** b) % paid.length]!).reduce(
          (a, x) => a + x / B,
          0,
        ),
      ),
    ),
  ]
  for (let i = 0; i < 40; i++) {
    const r = Steps.run(step, world, one, ctx)
    world = r.world
    const loss = r.losses.reinforce!
    assert.ok(
      // The logged loss is a float32 scalar: equal up to its rounding.
      gflops.some((c) => Math.abs(loss - c) <= 1e-6 * c),
      `−R̄ = ${loss} is no mean of μ·GFLOPs(l) over ${B} exits (μ·GFLOPs: ${paid.join(", ")})`,
    )
  }
  const after = pExitFirst(world)
  assert.ok(after - before > 0.1, `p_exit(1): ${before} → ${after}`)
  // The network is frozen: the step updates the gate only.
  for (const [k, t] of Object.entries(world.params.ir9!)) assert.ok(t === net.params[k], `${k} was replaced`)
  tf.dispose([...(Object.values(one) as tf.Tensor[])])
})

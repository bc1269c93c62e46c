/**
 * CMKG's Algorithms 1 and 2 as compositions of steps, checked against
 * hand-written computations (plain tfjs gradients, hand-written losses) on a
 * tiny conv net:
 *
 * Algorithm 1 = together(
 *   metaMinimize({ outer: G, inner: inner({ loss: F, wrt: student, rate: α }), wrt: "phi", optimizer: sgd(β) }),
 *   minimize({ loss: G, wrt: student, optimizer: sgd(α) }))
 * with F = L_REG + R(θ; φ), G = L_REG + L_DIST; one step must give
 *   θ̈ = θ − α∇_θ F(θ, φ)                 (E-step, batch statistics)
 *   φ' = φ − β∇_φ G(θ̈(φ))                 (M-step)
 *   θ' = θ − α∇_θ G(θ)                     (from the same θ; batch norm in train mode)
 * and the student's new running statistics from the θ-step's forward pass;
 * the teacher (frozen, eval mode) unchanged.
 *
 * Algorithm 2 = minimize({ loss: F, wrt: student, optimizer: sgd(α) }) with φ frozen.
 *
 * Tolerances: both sides compute the same float32 quantities in different
 * orders (the hand-written attention omits the ε = 1e-12 of the interpreter):
 * each update Δ (θ' − θ, φ' − φ) agrees to ‖Δ_run − Δ_hand‖ ≤ 1e-3·‖Δ_hand‖ + 1e-6;
 * running statistics and loss values to 1e-5 relative.
 */
import assert from "node:assert/strict"
import { before, test } from "node:test"
import * as tf from "@tensorflow/tfjs-core"
import * as Optimizer from "../../src/dsl/Optimizer.ts"
import * as Step from "../../src/dsl/Step.ts"
import { apply } from "../../src/interpreters/tf/apply.ts"
import type { Tree } from "../../src/interpreters/tf/init.ts"
import * as Steps from "../../src/interpreters/tf/step.ts"
import { readyForLaws } from "../arbitraries/Runs.ts"
import { disposeWorld, setup } from "./fixture.ts"

before(async () => {
  await readyForLaws()
})

const arch = { size: 6, c1: 3, c2: 2, out: 3, pool: "max" } as const
const LAMBDA = 10
const ALPHA = 0.05
const BETA = 0.5

const close = (what: string, before: Tree, run: Tree, hand: Tree) => {
  for (const k of Object.keys(hand)) {
    const dRun = tf.sub(run[k]!, before[k]!)
    const dHand = tf.sub(hand[k]!, before[k]!)
    const err = tf.norm(tf.sub(dRun, dHand)).arraySync() as number
    const scale = tf.norm(dHand).arraySync() as number
    assert.ok(err <= 1e-3 * scale + 1e-6, `${what} ${k}: ‖Δrun − Δhand‖ = ${err}, ‖Δhand‖ = ${scale}`)
  }
}

const names = (t: Tree) => Object.keys(t).sort()

test("Algorithm 1 as together(metaMinimize, minimize) equals a hand-written step", () => {
  const o = setup(arch, 42, 3, 0.05, LAMBDA)
  const { student, teacher, batch, world } = o
  const alg1 = Step.together(
    Step.metaMinimize({
      outer: o.G,
      inner: Step.inner({ loss: o.F, wrt: student, rate: ALPHA }),
      wrt: "phi",
      optimizer: Optimizer.sgd({ lr: BETA }),
    }),
    Step.minimize({ loss: o.G, wrt: student, optimizer: Optimizer.sgd({ lr: ALPHA }) }),
  )
  const theta = world.params.student!
  const phi = world.meta.phi!
  const sState = world.state.student!
  const keep = (t: Tree): Tree =>
    Object.fromEntries(Object.entries(t).map(([k, v]) => [k, tf.keep(v.clone())]))
  const snapshot = {
    theta: keep(theta),
    phi: keep(phi),
    sState: keep(sState),
    tParams: keep(world.params.teacher!),
    tState: keep(world.state.teacher!),
  }

  // ---- by hand ----
  const hand = tf.tidy(() => {
    const t = apply(teacher.net, world.params.teacher!, world.state.teacher!, batch.depth, "eval")
    const attention = (q: tf.Tensor) => {
      const a = tf.reshape(tf.sum(tf.square(q), -1), [q.shape[0]!, -1])
      return tf.div(a, tf.sqrt(tf.sum(tf.square(a), 1, true)))
    }
    const G = (params: Tree, mode: "train" | "batch-stats") => {
      const s = apply(student.net, params, sState, batch.rgb, mode)
      const reg = tf.mean(tf.sum(tf.square(tf.sub(s.y, batch.joints3d)), 1))
      const act = tf.mean(tf.sum(tf.reshape(tf.square(tf.sub(s.taps.b!, t.taps.b!)), [3, -1]), 1))
      const att = tf.addN(
        ["a", "b"].map((k) =>
          tf.mean(tf.sum(tf.square(tf.sub(attention(s.taps[k]!), attention(t.taps[k]!))), 1)),
        ),
      )
      return { value: tf.add(tf.add(reg, act), tf.mul(att, LAMBDA)) as tf.Scalar, state: s.state }
    }
    const F = (params: Tree, w: Tree) => {
      const s = apply(student.net, params, sState, batch.rgb, "batch-stats")
      const reg = tf.mean(tf.sum(tf.square(tf.sub(s.y, batch.joints3d)), 1))
      return tf.add(
        reg,
        tf.addN(Object.keys(params).map((k) => tf.sum(tf.mul(w[k]!, tf.square(params[k]!))))),
      ) as tf.Scalar
    }
    const keys = names(theta)
    const pkeys = names(phi)
    // M-step: φ' = φ − β ∇_φ G(θ − α ∇_θ F(θ, φ)).
    const metaLoss = (...ps: tf.Tensor[]) => {
      const w = Object.fromEntries(pkeys.map((k, i) => [k, ps[i]!]))
      const g = tf.grads((...ts: tf.Tensor[]) => F(Object.fromEntries(keys.map((k, i) => [k, ts[i]!])), w))(
        keys.map((k) => theta[k]!),
      )
      const thetaDd = Object.fromEntries(keys.map((k, i) => [k, tf.sub(theta[k]!, tf.mul(g[i]!, ALPHA))]))
      return G(thetaDd, "batch-stats").value
    }
    const { value: gAtInner, grads: gPhi } = tf.valueAndGrads(metaLoss)(pkeys.map((k) => phi[k]!))
    const phiNext = Object.fromEntries(pkeys.map((k, i) => [k, tf.sub(phi[k]!, tf.mul(gPhi[i]!, BETA))]))
    // θ-step from the same θ, batch norm in train mode.
    let newState: Tree = {}
    const { value: gAtTheta, grads: gTheta } = tf.valueAndGrads((...ts: tf.Tensor[]) => {
      const r = G(Object.fromEntries(keys.map((k, i) => [k, ts[i]!])), "train")
      newState = r.state
      return r.value
    })(keys.map((k) => theta[k]!))
    const thetaNext = Object.fromEntries(
      keys.map((k, i) => [k, tf.sub(theta[k]!, tf.mul(gTheta[i]!, ALPHA))]),
    )
    return { phiNext, thetaNext, newState, gAtInner, gAtTheta }
  })

  // ---- by the interpreter ----
  const { world: next, losses } = Steps.run(alg1, world, batch, o.ctx)
  assert.deepEqual(Object.keys(losses).sort(), ["0/metaMinimize", "1/minimize"])
  assert.ok(
    Math.abs(losses["0/metaMinimize"]! - hand.gAtInner.arraySync()) <=
      1e-5 * (1 + Math.abs(losses["0/metaMinimize"]!)),
  )
  assert.ok(
    Math.abs(losses["1/minimize"]! - hand.gAtTheta.arraySync()) <=
      1e-5 * (1 + Math.abs(losses["1/minimize"]!)),
  )
  close("θ", snapshot.theta, next.params.student!, hand.thetaNext)
  close("φ", snapshot.phi, next.meta.phi!, hand.phiNext)
  for (const k of names(snapshot.sState)) {
    const d = tf.max(tf.abs(tf.sub(next.state.student![k]!, hand.newState[k]!))).arraySync() as number
    assert.ok(d <= 1e-5, `running statistic ${k}: ${d}`)
  }
  // The teacher is frozen: same parameters and running statistics.
  for (const [a, b] of [
    [snapshot.tParams, next.params.teacher!],
    [snapshot.tState, next.state.teacher!],
  ] as const)
    for (const k of names(a)) assert.deepEqual(Array.from(b[k]!.dataSync()), Array.from(a[k]!.dataSync()))
  // The meta-step never writes running statistics, and φ really moved.
  assert.ok(
    Object.keys(next.meta.phi!).some(
      (k) => (tf.max(tf.abs(tf.sub(next.meta.phi![k]!, snapshot.phi[k]!))).arraySync() as number) > 0,
    ),
  )

  disposeWorld(next)
  for (const t of Object.values(snapshot)) tf.dispose(Object.values(t))
  tf.dispose([
    ...Object.values(hand.phiNext),
    ...Object.values(hand.thetaNext),
    ...Object.values(hand.newState),
    hand.gAtInner,
    hand.gAtTheta,
  ])
  tf.dispose(Object.values(batch))
})

test("Algorithm 2 as minimize(F) with φ frozen equals θ − α∇_θ F(θ; φ_META)", () => {
  const o = setup(arch, 7, 2, 0.05, LAMBDA)
  const { student, batch, world } = o
  const keys = names(world.params.student!)
  const theta = Object.fromEntries(keys.map((k) => [k, world.params.student![k]!.clone()]))
  const phi = Object.fromEntries(keys.map((k) => [k, world.meta.phi![k]!.clone()]))
  const hand = tf.tidy(() => {
    const g = tf.grads((...ts: tf.Tensor[]) => {
      const ps = Object.fromEntries(keys.map((k, i) => [k, ts[i]!]))
      const s = apply(student.net, ps, world.state.student!, batch.rgb, "train")
      const reg = tf.mean(tf.sum(tf.square(tf.sub(s.y, batch.joints3d)), 1))
      for (const t of Object.values(s.state))
        if (!Object.values(world.state.student!).includes(t)) t.dispose()
      return tf.add(reg, tf.addN(keys.map((k) => tf.sum(tf.mul(phi[k]!, tf.square(ps[k]!)))))) as tf.Scalar
    })(keys.map((k) => theta[k]!))
    return Object.fromEntries(keys.map((k, i) => [k, tf.sub(theta[k]!, tf.mul(g[i]!, ALPHA))]))
  })
  const { world: next } = Steps.run(
    Step.minimize({ loss: o.F, wrt: student, optimizer: Optimizer.sgd({ lr: ALPHA }) }),
    world,
    batch,
    o.ctx,
  )
  close("θ", theta, next.params.student!, hand)
  for (const k of keys)
    assert.deepEqual(Array.from(next.meta.phi![k]!.dataSync()), Array.from(phi[k]!.dataSync()))
  disposeWorld(next)
  tf.dispose([
    ...Object.values(theta),
    ...Object.values(phi),
    ...Object.values(hand),
    ...Object.values(batch),
  ])
})

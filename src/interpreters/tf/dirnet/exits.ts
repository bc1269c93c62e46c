/**
 * DIR-Net's dynamic exits (Sec. 4): the variance threshold τ_var and the
 * gate 𝒢 trained with REINFORCE (Eqs. 10, 11), sampled at inference from a
 * softmax with temperature τ_gate.
 *
 * Inference runs every iteration once (batch norm in eval mode, so samples
 * are independent) and then reads each sample's prediction at its exit
 * iteration; the cost of a sample is the shape checker's `macsAtExit` of
 * its exit, so the accounting equals that of a loop that really stops.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core"
import type * as Stream from "../../../data/stream.ts"
import * as Dirnet from "../../../dsl/dirnet.ts"
import type * as Net from "../../../dsl/Net.ts"
import * as Optimizer from "../../../dsl/Optimizer.ts"
import type * as Costs from "../../shape-check/dirnet.ts"
import { apply } from "../apply.ts"
import { valueAndGrad } from "../autodiff.ts"
import * as Init from "../init.ts"
import * as Losses from "../loss.ts"
import * as Opt from "../optimizer.ts"
import { type Batch, disposeBatch, forward, model, signals, type Trained, tidy, toTensors } from "./train.ts"

// ---- per-iteration outputs -------------------------------------------------------------

/** What every iteration predicts for a batch, as plain arrays indexed `[k][sample]`. */
export interface Iterations {
  readonly iterations: number
  readonly size: number
  /** `[k]`: `B·63` 3D joints. */
  readonly pose: readonly Float32Array[]
  /** `[k]`: `B·42` re-projected 2D joints. */
  readonly joints2d: readonly Float32Array[]
  /** `[k]`: `B·2` log-variances `[α_2D, α_3D]`. */
  readonly logvar: readonly Float32Array[]
  /** `[k]`: `B·hidden` gate features (Ψ¹_var's output). */
  readonly gateFeatures: readonly Float32Array[]
  readonly hidden: number
  /** `[k]`: `B` per-sample pose error `L_2D^k + L_3D^k` (Eq. 11), when the batch had labels. */
  readonly poseLoss: readonly Float32Array[]
}

/** Runs every iteration of a trained DIR-Net on `batch` (eval mode). */
export const iterations = (t: Trained, batch: Batch): Iterations => {
  const n = t.options.iterations
  const m = model(t.net as Net.Net<Dirnet.Tap>, t.imageSize)
  return tidy(() => {
    const a = forward(t.net, t.params, t.state, batch.x, "eval", t.imageSize)
    const env = signals(a, batch)
    const read = (name: string) =>
      Array.from({ length: n }, (_, k) => a.taps[`${name}@${k}`]!.dataSync() as Float32Array)
    return {
      iterations: n,
      size: batch.x.shape[0],
      pose: read("pose"),
      joints2d: Array.from(
        { length: n },
        (_, k) => Losses.signal(Dirnet.reprojected(m, k), env).dataSync() as Float32Array,
      ),
      logvar: read("logvar"),
      gateFeatures: read("gateFeatures"),
      hidden: t.options.hidden,
      poseLoss: Array.from(
        { length: n },
        (_, k) => Losses.perSampleValues(Dirnet.poseLoss(m, k), env).dataSync() as Float32Array,
      ),
    }
  })
}

const concat = (parts: readonly Float32Array[]): Float32Array => {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0))
  let o = 0
  for (const p of parts) {
    out.set(p, o)
    o += p.length
  }
  return out
}

/** {@link iterations} over a whole data set, with its ground truth: 3D joints `N·63` and bone lengths `N` (mm). */
export interface Evaluated {
  readonly its: Iterations
  readonly truth: Float32Array
  readonly scale: Float32Array
}

/** Runs every iteration of a trained DIR-Net over every batch, concatenated. */
export const iterationsOver = (t: Trained, batches: Iterable<Stream.Batch>): Evaluated => {
  const parts: Iterations[] = []
  const truth: Float32Array[] = []
  const scale: Float32Array[] = []
  for (const raw of batches) {
    const b = toTensors(raw, t.imageSize)
    parts.push(iterations(t, b))
    disposeBatch(b)
    truth.push(raw.joints3d)
    scale.push(raw.scale)
  }
  const n = t.options.iterations
  const join = (f: (p: Iterations) => readonly Float32Array[]) =>
    Array.from({ length: n }, (_, k) => concat(parts.map((p) => f(p)[k]!)))
  return {
    its: {
      iterations: n,
      size: parts.reduce((a, p) => a + p.size, 0),
      hidden: t.options.hidden,
      pose: join((p) => p.pose),
      joints2d: join((p) => p.joints2d),
      logvar: join((p) => p.logvar),
      gateFeatures: join((p) => p.gateFeatures),
      poseLoss: join((p) => p.poseLoss),
    },
    truth: concat(truth),
    scale: concat(scale),
  }
}

/** Each sample's prediction at its exit: `B·63`. */
export const poseAtExit = (its: Iterations, exits: ArrayLike<number>): Float32Array => {
  const out = new Float32Array(its.size * 63)
  for (let b = 0; b < its.size; b++) out.set(its.pose[exits[b]!]!.subarray(b * 63, b * 63 + 63), b * 63)
  return out
}

// ---- the variance threshold (Sec. 4.1) -----------------------------------------------------

/** `mean(exp α_2D, exp α_3D)` of sample `b` at iteration k. */
export const averageVariance = (its: Pick<Iterations, "logvar">, k: number, b: number): number =>
  (Math.exp(its.logvar[k]![2 * b]!) + Math.exp(its.logvar[k]![2 * b + 1]!)) / 2

/** Exit at the first iteration whose average predicted variance is below `tau` (the last iteration otherwise). */
export const varianceExits = (
  its: Pick<Iterations, "logvar" | "iterations" | "size">,
  tau: number,
): Int32Array => {
  const exits = new Int32Array(its.size)
  for (let b = 0; b < its.size; b++) {
    let k = 0
    while (k < its.iterations - 1 && !(averageVariance(its, k, b) < tau)) k++
    exits[b] = k
  }
  return exits
}

// ---- the gate (Sec. 4.2) --------------------------------------------------------------------

export interface Gate {
  readonly net: Net.AnyNet
  readonly params: Init.Tree
}

export const initGate = (hidden: number, seed: number, gateHidden = 64): Gate => {
  const net = Dirnet.gate({ inFeatures: hidden, hidden: gateHidden })
  return { net, params: Init.init(net, [hidden], seed).params }
}

/** `log softmax(𝒢(f)/τ)`: `[B, 2]` log-probabilities of `[EXIT, CONTINUE]`. */
const logPolicy = (
  gate: Net.AnyNet,
  params: Init.Tree,
  features: tf.Tensor,
  temperature: number,
): tf.Tensor2D =>
  tf.logSoftmax(tf.div(apply(gate, params, {}, features, "eval").y, temperature)) as tf.Tensor2D

/** `exitProbabilities[k][b]`: the probability that sample b exits at iteration k given it reached it (1 at the last). */
export const exitProbabilities = (
  g: Gate,
  its: Pick<Iterations, "gateFeatures" | "iterations" | "size" | "hidden">,
  temperature: number,
): Float64Array[] =>
  Array.from({ length: its.iterations }, (_, k) => {
    if (k === its.iterations - 1) return new Float64Array(its.size).fill(1)
    return tidy(() => {
      const f = tf.tensor2d(its.gateFeatures[k]!, [its.size, its.hidden])
      return Float64Array.from(
        tf.exp(tf.slice(logPolicy(g.net, g.params, f, temperature), [0, 0], [its.size, 1])).dataSync(),
      )
    })
  })

/** The distribution of the exit iteration implied by per-iteration exit probabilities (`[k][b]` → `[b][k]`). */
export const exitDistributions = (pExit: readonly Float64Array[]): Float64Array[] => {
  const size = pExit[0]?.length ?? 0
  return Array.from({ length: size }, (_, b) => {
    const d = new Float64Array(pExit.length)
    let reach = 1
    for (let k = 0; k < pExit.length; k++) {
      const p = k === pExit.length - 1 ? 1 : pExit[k]![b]!
      d[k] = reach * p
      reach *= 1 - p
    }
    return d
  })
}

/** Samples each sample's exit iteration from per-iteration exit probabilities. */
export const sampleExits = (pExit: readonly Float64Array[], seed: number): Int32Array => {
  const rand = Init.prng(seed)
  const size = pExit[0]?.length ?? 0
  const exits = new Int32Array(size)
  for (let b = 0; b < size; b++) {
    let k = 0
    while (k < pExit.length - 1 && !(rand() < pExit[k]![b]!)) k++
    exits[b] = k
  }
  return exits
}

/** The gate's exits at temperature τ_gate. */
export const gateExits = (g: Gate, its: Iterations, temperature: number, seed: number): Int32Array =>
  sampleExits(exitProbabilities(g, its, temperature), seed)

/**
 * Eq. 11's reward of exiting after iteration l, per sample:
 * `r_l = −λ·(L_2D^l + L_3D^l) − μ·GFLOPs(l)`, where GFLOPs(l) is the shape
 * checker's cost of a sample that exits after l (`gflopsAtExit[l]`,
 * FE included: the paper's "l·GFLOPs", the computation taken by the
 * iterations so far) and μ (`flopsWeight`, default 1) trades it off.
 */
export const rewards = (
  its: Pick<Iterations, "poseLoss" | "iterations" | "size">,
  costs: Pick<Costs.LoopCosts, "gflopsAtExit">,
  o: { readonly lambda: number; readonly flopsWeight?: number },
): Float64Array[] =>
  Array.from({ length: its.iterations }, (_, l) =>
    Float64Array.from(
      its.poseLoss[l]!,
      (loss) => -o.lambda * loss - (o.flopsWeight ?? 1) * costs.gflopsAtExit[l]!,
    ),
  )

export interface GateTraining {
  readonly steps: number
  /** Adam's learning rate. Default 1e-2. */
  readonly lr?: number
  /** Temperature while training. Default 1. */
  readonly temperature?: number
  readonly seed?: number
  /** Called after each step with the sampled trajectories' mean return R̄ (Eq. 11's reward of their exits). */
  readonly onStep?: (step: number, meanReturn: number) => void
}

/**
 * Trains the gate with on-policy vanilla policy gradient (Eq. 10), the rest
 * of DIR-Net frozen (its features and rewards are inputs here). Each step
 * samples every sample's trajectory of EXIT/CONTINUE actions from the
 * current policy, takes its return R (the reward of the iteration it exited
 * at), and ascends `mean_b (R_b − R̄) Σ_{l ≤ exit_b, l < last} ∇ log 𝒢(A_l | f_l)`
 * (the batch-mean baseline R̄ reduces variance without biasing the
 * gradient). Returns the new gate (the old parameters are disposed).
 */
export const trainGate = (
  g: Gate,
  its: Pick<Iterations, "gateFeatures" | "iterations" | "size" | "hidden">,
  reward: readonly Float64Array[],
  o: GateTraining,
): Gate => {
  const temperature = o.temperature ?? 1
  const optimizer = Optimizer.adam({ lr: o.lr ?? 1e-2 })
  const last = its.iterations - 1
  const features = its.gateFeatures.slice(0, last).map((f) => tf.tensor2d(f, [its.size, its.hidden]))
  let params = g.params
  let opt = tidy(() => Opt.init(optimizer, params))
  for (let s = 0; s < o.steps; s++) {
    const pExit = exitProbabilities({ net: g.net, params }, its, temperature)
    const exits = sampleExits(pExit, (o.seed ?? 0) * 1_000_003 + s)
    const returns = Float64Array.from(exits, (k, b) => reward[k]![b]!)
    const baseline = returns.reduce((a, r) => a + r, 0) / Math.max(1, returns.length)
    const next = tidy(() => {
      // Per iteration l < last: one-hot of the action taken, weighted by the advantage when l ≤ exit.
      const weights = Array.from({ length: last }, (_, l) => {
        const w = new Float32Array(its.size * 2)
        for (let b = 0; b < its.size; b++)
          if (l <= exits[b]!) w[2 * b + (l === exits[b] ? 0 : 1)] = returns[b]! - baseline
        return tf.tensor2d(w, [its.size, 2])
      })
      const { grads } = valueAndGrad((p) => {
        const terms = features.map((f, l) => tf.sum(tf.mul(logPolicy(g.net, p, f, temperature), weights[l]!)))
        // Minimise the negated surrogate: gradient ascent on the expected reward.
        return tf.div(tf.neg(terms.length === 0 ? tf.scalar(0) : tf.addN(terms)), its.size) as tf.Scalar
      }, params)
      const { updates, state } = Opt.update(optimizer, grads, opt, params)
      return { params: Opt.applyUpdates(params, updates) as Record<string, tf.Tensor>, state }
    })
    tf.dispose([...Object.values(params), ...Opt.tensors(opt)])
    params = next.params
    opt = next.state
    o.onStep?.(s, baseline)
  }
  tf.dispose([...features, ...Opt.tensors(opt)])
  return { net: g.net, params }
}

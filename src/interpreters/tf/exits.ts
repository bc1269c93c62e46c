/**
 * The tf meaning of dynamic exits (`Exits`: DIR-Net, Sec. 4): the exit
 * policies (every loop, the variance threshold τ_var, the gate 𝒢 sampled
 * from a softmax with temperature τ_gate), the `EvaluateExits` stage and
 * the `Reinforce` step (Eqs. 10, 11), which the staged runner
 * (`experiment.ts`, `step.ts`) dispatches to.
 *
 * Inference runs every iteration once (batch norm in eval mode, so samples
 * are independent) and then reads each sample's prediction at its exit
 * iteration; the cost of a sample is the shape checker's `macsAtExit` of
 * its exit, so the accounting equals that of a loop that really stops.
 *
 * @module
 */
import { rmSync } from "node:fs"
import { join } from "node:path"
import * as tf from "@tensorflow/tfjs-core"
import * as Metrics from "../../data/metrics.ts"
import type { Dataset } from "../../data/open.ts"
import * as Preprocess from "../../data/preprocess.ts"
import type * as Stream from "../../data/stream.ts"
import * as Dirnet from "../../dsl/dirnet.ts"
import type * as ExitsDsl from "../../dsl/Exits.ts"
import type * as Net from "../../dsl/Net.ts"
import * as Optimizer from "../../dsl/Optimizer.ts"
import type * as Program from "../../dsl/Program.ts"
import * as Names from "../../run-dir/names.ts"
import type * as RunFiles from "../../run-dir/schema.ts"
import * as Costs from "../shape-check/dirnet.ts"
import * as Check from "../shape-check/index.ts"
import { apply } from "./apply.ts"
import { valueAndGrad } from "./autodiff.ts"
import * as Checkpoint from "./checkpoint.ts"
import * as Init from "./init.ts"
import * as Losses from "./loss.ts"
import * as Opt from "./optimizer.ts"

/** `tf.tidy` for results that hold tensors in plain objects. */
const tidy = <T>(f: () => T): T => tf.tidy(f as () => tf.TensorContainer) as T

/** A looped network (DIR-Net's taps per iteration) with its parameters and batch-norm state. */
export interface Network {
  readonly model: Program.Model
  readonly params: Init.Tree
  readonly state: Init.Tree
}

/** A batch as tensors: the input and the labels the pose losses read. */
export interface Batch {
  readonly x: tf.Tensor
  readonly joints3d: tf.Tensor
  readonly joints2d: tf.Tensor
}

const toTensors = (b: Stream.Batch, input: readonly number[]): Batch => ({
  x: tf.tensor(b.rgb, [b.size, ...input]),
  joints3d: tf.tensor2d(b.joints3d, [b.size, b.joints3d.length / b.size]),
  joints2d: tf.tensor2d(b.joints2d, [b.size, b.joints2d.length / b.size]),
})
const disposeBatch = (b: Batch): void => tf.dispose([b.x, b.joints3d, b.joints2d])

const costsCache = new WeakMap<Net.AnyNet, Costs.LoopCosts>()
/** The shape checker's per-loop costs of a looped model (cached per network value). */
export const loopCosts = (model: Program.Model): Costs.LoopCosts => {
  let c = costsCache.get(model.net)
  if (c === undefined) {
    c = Costs.loopCosts(model.net, model.input)
    costsCache.set(model.net, c)
  }
  return c
}

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

/** Runs every iteration of a looped network on `batch` (eval mode). */
export const iterations = (n: Network, batch: Batch): Iterations => {
  const count = loopCosts(n.model).iterations
  const m = n.model as Program.Model<Dirnet.Tap>
  return tidy(() => {
    const a = apply(n.model.net, n.params, n.state, batch.x, "eval")
    const env: Losses.Env = {
      outputs: { [m.name]: { y: a.y, taps: a.taps } },
      batch: { joints3d: batch.joints3d, joints2d: batch.joints2d, rgb: batch.x },
      params: {},
      meta: {},
    }
    const read = (name: string) =>
      Array.from({ length: count }, (_, k) => a.taps[`${name}@${k}`]!.dataSync() as Float32Array)
    const gateFeatures = read("gateFeatures")
    return {
      iterations: count,
      size: batch.x.shape[0]!,
      pose: read("pose"),
      joints2d: Array.from(
        { length: count },
        (_, k) => Losses.signal(Dirnet.reprojected(m, k), env).dataSync() as Float32Array,
      ),
      logvar: read("logvar"),
      gateFeatures,
      hidden: gateFeatures[0]!.length / batch.x.shape[0]!,
      poseLoss: Array.from(
        { length: count },
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

/** Runs every iteration of a looped network over every batch, concatenated. */
export const iterationsOver = (n: Network, batches: Iterable<Stream.Batch>): Evaluated => {
  const parts: Iterations[] = []
  const truth: Float32Array[] = []
  const scale: Float32Array[] = []
  for (const raw of batches) {
    const b = toTensors(raw, n.model.input)
    parts.push(iterations(n, b))
    disposeBatch(b)
    truth.push(raw.joints3d)
    scale.push(raw.scale)
  }
  const count = loopCosts(n.model).iterations
  const join = (f: (p: Iterations) => readonly Float32Array[]) =>
    Array.from({ length: count }, (_, k) => concat(parts.map((p) => f(p)[k]!)))
  return {
    its: {
      iterations: count,
      size: parts.reduce((a, p) => a + p.size, 0),
      hidden: parts[0]?.hidden ?? 0,
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

// ---- fixed depth and the oracle --------------------------------------------------------------

/** Every sample exits after loop `k`. */
export const loopExits = (its: Pick<Iterations, "size">, k: number): Int32Array =>
  new Int32Array(its.size).fill(k)

/**
 * Each sample exits at the loop whose 3D joints are nearest its labels (summed joint distance; the
 * earliest such loop on a tie, as it costs least). Distances are compared within a sample, whose
 * scale is one factor for every loop, so normalised coordinates give the same choice as millimetres.
 */
export const oracleExits = (ev: Pick<Evaluated, "its" | "truth">): Int32Array => {
  const { its, truth } = ev
  const exits = new Int32Array(its.size)
  for (let b = 0; b < its.size; b++) {
    const t = truth.subarray(b * 63, b * 63 + 63)
    let best = Number.POSITIVE_INFINITY
    for (let k = 0; k < its.iterations; k++) {
      let e = 0
      for (const d of Metrics.distances(its.pose[k]!.subarray(b * 63, b * 63 + 63), t, 3)) e += d
      if (e < best) {
        best = e
        exits[b] = k
      }
    }
  }
  return exits
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
 * One on-policy vanilla policy-gradient update of the gate (Eq. 10), the
 * rest of DIR-Net frozen (its features and rewards are inputs here): samples
 * every sample's trajectory of EXIT/CONTINUE actions from the current policy
 * (PRNG `seed`), takes its return R (the reward of the iteration it exited
 * at), and ascends `mean_b (R_b − R̄) Σ_{l ≤ exit_b, l < last} ∇ log 𝒢(A_l | f_l)`
 * (the batch-mean baseline R̄ reduces variance without biasing the
 * gradient). Returns the optimizer's updates and state and R̄; the caller
 * owns every tensor (run it inside a tidy).
 */
export const reinforceUpdate = (
  g: Gate,
  opt: { readonly optimizer: Optimizer.Optimizer; readonly state: Opt.State },
  its: Pick<Iterations, "gateFeatures" | "iterations" | "size" | "hidden">,
  features: readonly tf.Tensor2D[],
  reward: readonly Float64Array[],
  temperature: number,
  seed: number,
): { readonly updates: Init.Tree; readonly state: Opt.State; readonly meanReturn: number } => {
  const last = its.iterations - 1
  const pExit = exitProbabilities(g, its, temperature)
  const exits = sampleExits(pExit, seed)
  const returns = Float64Array.from(exits, (k, b) => reward[k]![b]!)
  const baseline = returns.reduce((a, r) => a + r, 0) / Math.max(1, returns.length)
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
  }, g.params)
  const { updates, state } = Opt.update(opt.optimizer, grads, opt.state, g.params)
  return { updates, state, meanReturn: baseline }
}

/** The gate's features of every iteration but the last (where it always exits), as tensors. */
const featureTensors = (its: Pick<Iterations, "gateFeatures" | "iterations" | "size" | "hidden">) =>
  its.gateFeatures.slice(0, its.iterations - 1).map((f) => tf.tensor2d(f, [its.size, its.hidden]))

/**
 * Trains the gate with `o.steps` {@link reinforceUpdate}s (step s sampling
 * with seed `o.seed·1 000 003 + s`). Returns the new gate (the old
 * parameters are disposed).
 */
export const trainGate = (
  g: Gate,
  its: Pick<Iterations, "gateFeatures" | "iterations" | "size" | "hidden">,
  reward: readonly Float64Array[],
  o: GateTraining,
): Gate => {
  const temperature = o.temperature ?? 1
  const optimizer = Optimizer.adam({ lr: o.lr ?? 1e-2 })
  const features = featureTensors(its)
  let params = g.params
  let opt = tidy(() => Opt.init(optimizer, params))
  for (let s = 0; s < o.steps; s++) {
    const next = tidy(() => {
      const u = reinforceUpdate(
        { net: g.net, params },
        { optimizer, state: opt },
        its,
        features,
        reward,
        temperature,
        (o.seed ?? 0) * 1_000_003 + s,
      )
      return {
        params: Opt.applyUpdates(params, u.updates) as Record<string, tf.Tensor>,
        state: u.state,
        meanReturn: tf.scalar(u.meanReturn),
      }
    })
    tf.dispose([...Object.values(params), ...Opt.tensors(opt)])
    params = next.params
    opt = next.state
    o.onStep?.(s, next.meanReturn.dataSync()[0]!)
    next.meanReturn.dispose()
  }
  tf.dispose([...features, ...Opt.tensors(opt)])
  return { net: g.net, params }
}

// ---- the Reinforce step ---------------------------------------------------------------------------

/**
 * The tf meaning of a `Reinforce` step on one batch (see `Exits.Reinforce`):
 * the frozen `network`'s iterations (eval mode), Eq. 11's rewards from the
 * shape checker's per-loop GFLOPs of that network, then `updates`
 * {@link reinforceUpdate}s of the gate from `opt`; update u samples with the
 * seed `seed·1 000 003 + count + u`, `count` the optimizer's steps so far,
 * so that a resumed run samples what an uninterrupted one does. Returns the
 * gate's total update (to be added), the new optimizer state and −R̄ of the
 * last update (the loss the runner logs). Run it inside a tidy.
 */
export const reinforceStep = (
  s: ExitsDsl.Reinforce,
  network: Network,
  gate: Gate,
  batch: Batch,
  opt: Opt.State,
  seed: number,
): { readonly update: Init.Tree; readonly state: Opt.State; readonly loss: tf.Scalar } => {
  const its = iterations(network, batch)
  const reward = rewards(its, loopCosts(network.model), { lambda: s.lambda, flopsWeight: s.flopsWeight })
  const features = featureTensors(its)
  let params: Init.Tree = gate.params
  let state = opt
  let meanReturn = 0
  for (let u = 0; u < s.updates; u++) {
    const r = reinforceUpdate(
      { net: gate.net, params },
      { optimizer: s.optimizer, state },
      its,
      features,
      reward,
      s.temperature,
      seed * 1_000_003 + opt.count + u,
    )
    params = Opt.applyUpdates(params, r.updates)
    state = r.state
    meanReturn = r.meanReturn
  }
  const update = Object.fromEntries(Object.entries(params).map(([k, t]) => [k, tf.sub(t, gate.params[k]!)]))
  return { update, state, loss: tf.scalar(-meanReturn) }
}

// ---- the EvaluateExits stage ------------------------------------------------------------------------

const PCK_THRESHOLDS = Metrics.thresholds(0, 50, 26)

/** What an exit evaluation measures: 3D metrics at each sample's exit and the average cost of those exits. */
type Measured = Omit<
  RunFiles.DirnetRow,
  "stage" | "table" | "row" | "column" | "model" | "evaluate" | "params"
>

/** 3D metrics of each sample's prediction at its exit, and the average cost of those exits. */
export const measure = (ev: Evaluated, exits: Int32Array, macsAtExit: readonly number[]): Measured => {
  const pred = poseAtExit(ev.its, exits)
  const report = Metrics.report3d(pred, ev.truth, ev.scale)
  const d = Metrics.distances(
    Preprocess.denormalise(pred, ev.scale),
    Preprocess.denormalise(ev.truth, ev.scale),
    3,
  )
  const curve = Metrics.pckCurve(d, PCK_THRESHOLDS)
  const dist = Costs.exitDistribution(exits, ev.its.iterations)
  return {
    samples: ev.its.size,
    epe: report.epe,
    auc20to50: report.auc20to50,
    auc0to50: report.auc0to50,
    pck: Object.fromEntries(Object.entries(report.pck)),
    pckCurve: Array.from(PCK_THRESHOLDS, (x, i) => [x, curve[i]!] as const),
    gflops: Costs.gflops(Costs.expectedMacs({ macsAtExit }, dist)),
    meanExit: dist.reduce((a, p, k) => a + p * k, 0),
    exits: dist,
  }
}

/** The `q`-quantile of sorted values (nearest rank). */
const quantile = (sorted: readonly number[], q: number): number =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))]!

const evalBatches = (ds: Dataset): Iterable<Stream.Batch> =>
  ds.batches({ batchSize: 64, seed: 0, epoch: 0, shuffle: false })

/**
 * Every iteration of a network over a data set, computed once per parameter
 * tree and data set: the rows and sweep points of one trained network read
 * the same predictions (a training step replaces the tree, so an entry never
 * outlives the parameters it was computed with).
 */
const evaluatedCache = new WeakMap<Init.Tree, Map<string, Evaluated>>()
const evaluatedOver = (n: Network, spec: ExitsDsl.Evaluate["data"], ds: Dataset): Evaluated => {
  let byData = evaluatedCache.get(n.params)
  if (byData === undefined) {
    byData = new Map()
    evaluatedCache.set(n.params, byData)
  }
  const key = JSON.stringify(spec)
  let ev = byData.get(key)
  if (ev === undefined) {
    ev = iterationsOver(n, evalBatches(ds))
    byData.set(key, ev)
  }
  return ev
}

/**
 * A results row of an exit evaluation as the runner keeps it until the
 * results are written: a DIR-Net row, and for a sweep stage the point it is.
 */
export type Row = RunFiles.DirnetRow & { readonly point?: RunFiles.SweepPoint }

/** What an exit evaluation reads from the run. */
export interface StageContext {
  readonly models: Readonly<Record<string, Program.Model>>
  readonly params: Readonly<Record<string, Init.Tree>>
  readonly state: Readonly<Record<string, Init.Tree>>
  readonly dataset: (spec: ExitsDsl.Evaluate["data"]) => Dataset
  readonly seed: number
  readonly out: string
  readonly log: (line: string) => void
}

/** Parameters of a model (the shape checker's count). */
const paramsOf = (model: Program.Model): number => Check.check(model.net, model.input).summary.cost.params

/** Writes a model's parameters and state to `models/<name>/` (tfjs weights format), replacing what was there. */
const saveModel = (out: string, name: string, groups: Checkpoint.Groups, meta: unknown) => {
  const dir = join(out, "models", Names.slug(name))
  rmSync(dir, { recursive: true, force: true })
  Checkpoint.save(dir, groups, meta)
}

/** Runs an `EvaluateExits` stage: the row (or sweep point) it files. */
export const evaluateStage = (stage: ExitsDsl.Evaluate, ctx: StageContext): Row => {
  const model = ctx.models[stage.model]
  const params = ctx.params[stage.model]
  const state = ctx.state[stage.model]
  if (model === undefined || params === undefined || state === undefined)
    throw new Error(`stage "${stage.name}": model "${stage.model}" was never trained or initialised`)
  const network: Network = { model, params, state }
  const costs = loopCosts(model)
  const ev = evaluatedOver(network, stage.data, ctx.dataset(stage.data))
  const p = stage.policy
  let exits: Int32Array
  let tau: number | undefined
  let extraParams = 0
  switch (p._tag) {
    case "Last":
      exits = loopExits(ev.its, ev.its.iterations - 1)
      break
    case "Loop":
      exits = loopExits(ev.its, p.loop)
      break
    case "Oracle":
      exits = oracleExits(ev)
      break
    case "Variance":
      tau = p.tau
      exits = varianceExits(ev.its, p.tau)
      break
    case "VarianceQuantile": {
      // τ_var as a quantile of the average variances on `of`, over every sample and loop.
      const on = evaluatedOver(network, p.of, ctx.dataset(p.of))
      const variances: number[] = []
      for (let k = 0; k < on.its.iterations; k++)
        for (let b = 0; b < on.its.size; b++) variances.push(averageVariance(on.its, k, b))
      variances.sort((a, b) => a - b)
      tau = quantile(variances, p.quantile)
      exits = varianceExits(ev.its, tau)
      break
    }
    case "Gate": {
      const gateModel = ctx.models[p.gate]
      const gateParams = ctx.params[p.gate]
      if (gateModel === undefined || gateParams === undefined)
        throw new Error(`stage "${stage.name}": gate "${p.gate}" was never trained or initialised`)
      tau = p.temperature
      extraParams = paramsOf(gateModel)
      exits = gateExits(
        { net: gateModel.net, params: gateParams },
        ev.its,
        p.temperature,
        ctx.seed * 1_000_003 + p.seed,
      )
      break
    }
    default: {
      const _: never = p
      throw new Error(`unknown exit policy ${(_ as ExitsDsl.Policy)._tag}`)
    }
  }
  const m = measure(ev, exits, costs.macsAtExit)
  const into = stage.into
  if (into._tag === "Sweep") {
    const point: RunFiles.SweepPoint = {
      series: into.series,
      tau: tau ?? Number.NaN,
      quantile: p._tag === "VarianceQuantile" ? p.quantile : undefined,
      auc20to50: m.auc20to50,
      epe: m.epe,
      gflops: m.gflops,
      meanExit: m.meanExit,
      exits: m.exits,
    }
    ctx.log(
      `Figure 7 · ${into.series} = ${point.tau.toPrecision(3)}${point.quantile === undefined ? "" : ` (quantile ${point.quantile})`}: 3D AUC(20-50) ${m.auc20to50.toFixed(3)}, ${Costs.gflopsText(m.gflops)} GFLOPs, mean exit loop ${(m.meanExit + 1).toFixed(2)}`,
    )
    return {
      stage: stage.name,
      table: "Figure 7",
      row: `${into.series} = ${point.tau}`,
      column: "test",
      model: into.variant,
      evaluate:
        p._tag === "Gate"
          ? { _tag: "Gate", temperature: p.temperature, seed: p.seed }
          : { _tag: "Variance", tau: point.tau },
      params: costs.params + extraParams,
      ...m,
      point,
    }
  }
  const row: Row = {
    stage: stage.name,
    table: into.table,
    row: into.row,
    column: into.column,
    model: into.variant,
    evaluate: into.label,
    params: costs.params + extraParams,
    ...m,
  }
  ctx.log(
    `${into.table} · ${into.row} (${into.variant}): 3D AUC(20-50) ${row.auc20to50.toFixed(3)}, EPE ${row.epe.toFixed(1)} mm, ` +
      `${Costs.gflopsText(row.gflops)} GFLOPs, ${row.params.toLocaleString("en-US")} params, mean exit loop ${(row.meanExit + 1).toFixed(2)}`,
  )
  if (into.label._tag !== "NoIter")
    saveModel(
      ctx.out,
      into.variant,
      { [`params/${stage.model}`]: params, [`state/${stage.model}`]: state },
      { model: stage.model, row: into.variant, table: "trained variants" },
    )
  if (p._tag === "Gate")
    saveModel(
      ctx.out,
      p.gate,
      { [`params/${p.gate}`]: ctx.params[p.gate]! },
      { model: p.gate, row: p.gate, table: "gates" },
    )
  return row
}

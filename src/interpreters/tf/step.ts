/**
 * The tf meaning of `Step` values: one batch's state transition of the world
 * (parameters, batch-norm state, meta-parameters φ, optimizer states).
 *
 * `run(step, world, batch, ctx)` takes ownership of `world`: every tensor it
 * replaces is disposed, so the number of live tensors is constant across
 * calls (after the first, which creates the optimizer states it needs).
 *
 * Evaluating a loss: every model the loss reads (outputs, taps) is applied to
 * the batch field `ctx.feeds[model]`. Models the step trains are applied with
 * the step's batch-norm policy (`train` → apply mode "train", and the new
 * running statistics are written to `world.state`; `batch-stats` →
 * "batch-stats"; `running` → "eval"); every other model is frozen and applied
 * once per step in "eval" mode (running statistics), outside any gradient.
 *
 * - `Minimize`: the gradient of the loss with respect to the parameters of
 *   `wrt` (models and adapters), one optimizer update. Optimizer state lives in
 *   `world.opt` under the step's path (e.g. `"1/minimize"`).
 * - `MetaMinimize`: the inner steps θ̈₀ = θ, θ̈ᵢ₊₁ = θ̈ᵢ − α∇_θ̈ᵢ F(θ̈ᵢ; φ) from the
 *   current parameters of `inner.wrt`, then the meta-gradient of G(θ̈_l; φ) with
 *   respect to φ = `world.meta[wrt]` and one optimizer update of φ. Meta-steps
 *   never write running statistics (θ̈ is a transient point): a `train` policy
 *   acts as `batch-stats` there. Modes:
 *   - `exact`: reverse-mode through the unrolled inner steps (second order:
 *     the inner gradients are themselves differentiated in φ);
 *   - `first-order`: dθ̈ᵢ₊₁/dφ ≈ dθ̈ᵢ/dφ − α·∂_φ∇_θ R(θ̈ᵢ; φ), i.e. the Hessian terms
 *     ∇²_θ F·dθ̈ᵢ/dφ are dropped and only the **direct** dependence of the inner
 *     gradient on φ is kept, through R = the terms of the inner loss that read φ
 *     (see `Loss.dependingOn`): ∇_φ = Σᵢ −α (∂_φ∇_θR(θ̈ᵢ; φ))ᵀ ∇_θ G(θ̈_l) (+ ∂_φ G if G
 *     reads φ). For l = 1 this equals the exact meta-gradient;
 *   - `closed-form`: l = 1 and φ read by the inner loss only through weighted
 *     norms c·Σφθ² / c·Σφ|θ| (c the product of enclosing scales) of models in
 *     `inner.wrt`: ∂θ̈/∂φ = −2αcθ (ℓ2) or −αc·sign(θ) (ℓ1) per coordinate, so
 *     ∇_φ = −2αc θ ⊙ ∇_θ̈ G(θ̈) (ℓ2); no second-order pass. Other cases are rejected.
 * - `Together`: every sub-step computed from the same starting world, then all
 *   their updates applied: parameter and φ updates are *added* (θ + Σ uᵢ);
 *   running statistics written by two sub-steps: the later one wins.
 *
 * `losses`: each leaf step's loss value (for `MetaMinimize`, G at θ̈), keyed by path.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core"
import { Data } from "effect"
import type * as ExitsDsl from "../../dsl/Exits.ts"
import type * as Loss from "../../dsl/Loss.ts"
import * as LossDsl from "../../dsl/Loss.ts"
import type * as Optimizer from "../../dsl/Optimizer.ts"
import type * as Program from "../../dsl/Program.ts"
import type * as Step from "../../dsl/Step.ts"
import * as StepDsl from "../../dsl/Step.ts"
import * as Check from "../shape-check/index.ts"
import * as LossCheck from "../shape-check/loss.ts"
import { apply, type Mode } from "./apply.ts"
import * as Exits from "./exits.ts"
import type { Tree } from "./init.ts"
import * as Init from "./init.ts"
import * as TfLoss from "./loss.ts"
import * as Optim from "./optimizer.ts"

export interface World {
  /** Parameter trees by model name and by adapter name. */
  readonly params: Readonly<Record<string, Tree>>
  /** Batch-norm running statistics by model name. */
  readonly state: Readonly<Record<string, Tree>>
  /** Meta-parameters φ by name. */
  readonly meta: Readonly<Record<string, Tree>>
  /** Optimizer states by step path. */
  readonly opt: Readonly<Record<string, Optim.State>>
}

export interface Context {
  readonly models: Readonly<Record<string, Program.Model>>
  /** Which batch field each model reads as its input. */
  readonly feeds: Readonly<Record<string, Loss.Field>>
  /** The run's seed, which keys a step's own sampling (`Reinforce`'s exits). Default 0. */
  readonly seed?: number
}

export type Batch = Readonly<Partial<Record<Loss.Field, tf.Tensor>>>

/** A step that cannot run on this world (unknown names, unsupported meta mode, ...). */
export class StepError extends Data.TaggedError("StepError")<{ readonly message: string }> {}

const fail = (message: string): never => {
  throw new StepError({ message })
}

// ---- paths and flat trees -------------------------------------------------------------------

/** The path of each leaf step: `minimize`, `metaMinimize`, and `i/…` inside a `Together`. */
export const leaves = (
  step: Step.Step,
  prefix = "",
): { path: string; step: Exclude<Step.Step, { _tag: "Together" }> }[] => {
  switch (step._tag) {
    case "Minimize":
      return [{ path: `${prefix}minimize`, step }]
    case "MetaMinimize":
      return [{ path: `${prefix}metaMinimize`, step }]
    case "Reinforce":
      return [{ path: `${prefix}reinforce`, step }]
    case "Together":
      return step.steps.flatMap((s, i) => leaves(s, `${prefix}${i}/`))
    default: {
      const _: never = step
      return _
    }
  }
}

const SEP = "\u0000"
const key = (group: string, path: string): string => `${group}${SEP}${path}`
const split = (k: string): [string, string] => {
  const i = k.indexOf(SEP)
  return [k.slice(0, i), k.slice(i + 1)]
}

/** The parameters of `groups` as one flat tree keyed `group␀path`. */
const flatten = (
  params: Readonly<Record<string, Tree>>,
  groups: readonly string[],
  what: string,
): Record<string, tf.Tensor> => {
  const out: Record<string, tf.Tensor> = {}
  for (const g of groups) {
    const tree = params[g] ?? fail(`${what}: "${g}" has no parameters (not a model or adapter of this world)`)
    for (const [p, t] of Object.entries(tree)) out[key(g, p)] = t
  }
  return out
}

const pickKeys = (tree: Tree, keys: readonly string[]): Record<string, tf.Tensor> =>
  Object.fromEntries(keys.map((k) => [k, tree[k]!]))

/** `base` with the entries of a flat tree substituted. */
const overlay = (base: Readonly<Record<string, Tree>>, flat: Tree): Record<string, Tree> => {
  const out: Record<string, Record<string, tf.Tensor>> = {}
  for (const [k, t] of Object.entries(flat)) {
    const [g, p] = split(k)
    out[g] ??= { ...base[g] }
    out[g][p] = t
  }
  return { ...base, ...out }
}

/**
 * Value and gradient of `f` with respect to every entry of `tree`, also for
 * entries `f` does not depend on (zero gradients, where `tf.valueAndGrads`
 * would throw). Those zeros are made only for the entries without a gradient:
 * no extra pass over the others (differentiable to any order, like
 * `valueAndGrads`, which calls the same `engine().gradients`).
 */
const gradOf = (f: (t: Tree) => tf.Scalar, tree: Tree): { value: tf.Scalar; grads: Tree } => {
  const keys = Object.keys(tree)
  const xs = keys.map((k) => tree[k]!)
  const { value, grads } = tf.engine().gradients(() => f(tree), xs, undefined, true)
  return {
    value: value as tf.Scalar,
    grads: Object.fromEntries(keys.map((k, i) => [k, grads[i] ?? tf.zerosLike(xs[i]!)])),
  }
}

// ---- evaluating losses --------------------------------------------------------------------

const policyMode = (policy: Step.BatchNormPolicy, meta: boolean): Mode =>
  policy === "running" ? "eval" : policy === "batch-stats" || meta ? "batch-stats" : "train"

/** Models whose outputs or taps a loss reads. */
const readModels = (loss: Loss.Loss): string[] => {
  return [...new Set(LossDsl.signals(loss).flatMap(LossDsl.signalModels))]
}

const input = (model: string, batch: Batch, ctx: Context): tf.Tensor => {
  const field = ctx.feeds[model] ?? fail(`model "${model}" has no feed (ctx.feeds)`)
  return batch[field] ?? fail(`model "${model}" reads field "${field}", which the batch lacks`)
}

const netOf = (model: string, ctx: Context) => (ctx.models[model] ?? fail(`unknown model "${model}"`)).net

type Outputs = Record<string, { y: tf.Tensor; taps: Readonly<Record<string, tf.Tensor>> }>

/**
 * The frozen models' outputs within one `run` of a step with several leaves: every leaf of a
 * `Together` starts from the same world and batch, so a frozen model's eval-mode output is the
 * same in each, and is computed once per batch instead of once per leaf (cmkg-stb's meta-train
 * stage applied its depth teacher twice: 20 of its 100 convolutions). Kept out of the leaves'
 * tidy scopes; `run` disposes them.
 */
let sharedFrozen: Map<string, Outputs[string]> | undefined

/**
 * The frozen models' eval-mode outputs, computed once per leaf step (once per `run` when it has
 * several leaves), eagerly: outside every gradient scope, so that no scope disposes them while
 * they are reused.
 */
class Frozen {
  private readonly cache: Outputs = {}
  constructor(
    losses: readonly Loss.Loss[],
    trained: ReadonlySet<string>,
    world: World,
    batch: Batch,
    ctx: Context,
  ) {
    for (const model of new Set(losses.flatMap(readModels))) {
      if (trained.has(model)) continue
      const shared = sharedFrozen?.get(model)
      if (shared !== undefined) {
        this.cache[model] = shared
        continue
      }
      const params = world.params[model] ?? fail(`model "${model}" has no parameters`)
      const r = apply(netOf(model, ctx), params, world.state[model] ?? {}, input(model, batch, ctx), "eval")
      this.cache[model] = { y: r.y, taps: r.taps }
      if (sharedFrozen !== undefined) {
        for (const t of [r.y, ...Object.values(r.taps)]) tf.keep(t)
        sharedFrozen.set(model, this.cache[model])
      }
    }
  }
  get(model: string): Outputs[string] {
    return this.cache[model] ?? fail(`model "${model}" is neither trained nor frozen in this step`)
  }
}

interface Evaluation {
  readonly loss: Loss.Loss
  /** Models evaluated with `mode` (the rest are frozen). */
  readonly trained: ReadonlySet<string>
  readonly mode: Mode
}

/** The loss at `params`/`meta`, and the new running statistics of trained models (mode "train" only). */
const evaluate = (
  e: Evaluation,
  params: Readonly<Record<string, Tree>>,
  meta: Readonly<Record<string, Tree>>,
  world: World,
  batch: Batch,
  ctx: Context,
  frozen: Frozen,
): { value: tf.Scalar; state: Record<string, Record<string, tf.Tensor>> } => {
  const outputs: Outputs = {}
  const newState: Record<string, Record<string, tf.Tensor>> = {}
  for (const m of readModels(e.loss)) {
    if (!e.trained.has(m)) {
      outputs[m] = frozen.get(m)
      continue
    }
    const before = world.state[m] ?? {}
    const r = apply(
      netOf(m, ctx),
      params[m] ?? fail(`model "${m}" has no parameters`),
      before,
      input(m, batch, ctx),
      e.mode,
    )
    outputs[m] = { y: r.y, taps: r.taps }
    if (e.mode === "train") {
      const changed = Object.entries(r.state).filter(([k, t]) => before[k] !== t)
      if (changed.length > 0) newState[m] = Object.fromEntries(changed)
    }
  }
  return { value: TfLoss.evaluate(e.loss, { outputs, batch, params, meta }), state: newState }
}

// ---- leaf steps ------------------------------------------------------------------------------

/** What a leaf step does to the world: additive updates, replacement state, new optimizer state. */
interface Effect {
  readonly params: Record<string, Record<string, tf.Tensor>>
  readonly meta: Record<string, Record<string, tf.Tensor>>
  readonly state: Record<string, Record<string, tf.Tensor>>
  readonly opt: Record<string, Optim.State>
  readonly loss: tf.Scalar
}

const unflatten = (flat: Tree): Record<string, Record<string, tf.Tensor>> => {
  const out: Record<string, Record<string, tf.Tensor>> = {}
  for (const [k, t] of Object.entries(flat)) {
    const [g, p] = split(k)
    out[g] ??= {}
    out[g][p] = t
  }
  return out
}

/**
 * The optimizer state kept under `path`, or a fresh one when there is none or
 * it does not fit this optimizer and parameters (e.g. a later stage reuses the
 * path with another optimizer); a replaced state is disposed by `run`.
 */
const optimizerState = (world: World, path: string, o: Optimizer.Optimizer, params: Tree): Optim.State => {
  const old = world.opt[path]
  return old !== undefined && Optim.fits(o, old, params, pathOf) ? old : Optim.init(o, params, pathOf)
}

/** The parameter path of a flat key `group␀path` (what a partition's rules read). */
const pathOf = (k: string): string => (k.includes(SEP) ? split(k)[1] : k)

const minimize = (
  s: Extract<Step.Step, { _tag: "Minimize" }>,
  path: string,
  world: World,
  batch: Batch,
  ctx: Context,
): Effect => {
  // Only what the step trains: the paths its `select` keeps, less a partition's frozen ones (no gradient is taken for the rest).
  const all = flatten(world.params, s.wrt, `step ${path}`)
  const selected = Object.keys(all).filter((k) => {
    const [group, p] = split(k)
    return StepDsl.trainedPaths(s, group, [p]).length === 1
  })
  const theta = pickKeys(all, Optim.trainable(s.optimizer, selected, pathOf))
  const e: Evaluation = { loss: s.loss, trained: new Set(s.wrt), mode: policyMode(s.batchNorm, false) }
  const frozen = new Frozen([s.loss], e.trained, world, batch, ctx)
  let state: Record<string, Record<string, tf.Tensor>> = {}
  const { value, grads } = gradOf((t) => {
    const r = evaluate(e, overlay(world.params, t), world.meta, world, batch, ctx, frozen)
    state = r.state
    return r.value
  }, theta)
  const u = Optim.update(s.optimizer, grads, optimizerState(world, path, s.optimizer, theta), theta, pathOf)
  return { params: unflatten(u.updates), meta: {}, state, opt: { [path]: u.state }, loss: value }
}

/** The weighted-norm terms of R (the φ-reading part of the inner loss), for the closed form. */
const weightedTerms = (
  loss: Loss.Loss | undefined,
  phi: string,
  factor = 1,
): { model: string; p: 1 | 2; c: number }[] | undefined => {
  if (loss === undefined) return []
  switch (loss._tag) {
    case "WeightedNorm":
      return loss.phi === phi ? [{ model: loss.model, p: loss.p, c: factor }] : []
    case "Sum": {
      const parts = loss.terms.map((t) => weightedTerms(t, phi, factor))
      return parts.some((p) => p === undefined)
        ? undefined
        : (parts.flat() as { model: string; p: 1 | 2; c: number }[])
    }
    case "Scale":
      return weightedTerms(loss.loss, phi, factor * loss.factor)
    default:
      return undefined
  }
}

type MetaStep = Extract<Step.Step, { _tag: "MetaMinimize" }>

/**
 * The meta-gradient ∇_φ G(θ̈(φ); φ) of a `MetaMinimize` step under its `mode`,
 * and the value G(θ̈), without updating anything (the caller owns the tensors).
 */
export const metaGradient = (
  s: MetaStep,
  world: World,
  batch: Batch,
  ctx: Context,
  path = "metaMinimize",
): { value: tf.Scalar; grads: Tree } => {
  const { inner } = s
  const phi0 = world.meta[s.wrt] ?? fail(`step ${path}: no meta-parameters "${s.wrt}"`)
  const theta0 = flatten(world.params, inner.wrt, `step ${path}/inner`)
  const trained = new Set(inner.wrt)
  const innerE: Evaluation = { loss: inner.loss, trained, mode: policyMode(inner.batchNorm, true) }
  const outerE: Evaluation = { loss: s.outer, trained, mode: policyMode(s.batchNorm, true) }
  const frozen = new Frozen([inner.loss, s.outer], trained, world, batch, ctx)
  const withPhi = (phi: Tree) => ({ ...world.meta, [s.wrt]: phi })
  const F = (theta: Tree, phi: Tree) =>
    evaluate(innerE, overlay(world.params, theta), withPhi(phi), world, batch, ctx, frozen).value
  const G = (theta: Tree, phi: Tree) =>
    evaluate(outerE, overlay(world.params, theta), withPhi(phi), world, batch, ctx, frozen).value
  const innerStep = (theta: Tree, phi: Tree): Tree => {
    const { grads } = gradOf((t) => F(t, phi), theta)
    return Object.fromEntries(
      Object.entries(theta).map(([k, t]) => [k, tf.sub(t, tf.mul(grads[k]!, inner.rate))]),
    )
  }
  if (!(Number.isInteger(inner.steps) && inner.steps >= 0))
    fail(`step ${path}: inner steps must be a non-negative integer, got ${inner.steps}`)

  let value: tf.Scalar
  let metaGrad: Tree
  if (s.mode === "exact") {
    const r = gradOf((phi) => {
      let theta: Tree = theta0
      for (let i = 0; i < inner.steps; i++) theta = innerStep(theta, phi)
      return G(theta, phi)
    }, phi0)
    value = r.value
    metaGrad = r.grads
  } else {
    const R = TfLoss.dependingOn(inner.loss, s.wrt)
    const terms = weightedTerms(R, s.wrt)
    if (s.mode === "closed-form") {
      if (inner.steps !== 1)
        fail(`step ${path}: the closed-form meta-gradient needs exactly 1 inner step, got ${inner.steps}`)
      if (terms === undefined || terms.length === 0)
        fail(
          `step ${path}: the closed-form meta-gradient needs the inner loss to read "${s.wrt}" only through weighted norms`,
        )
      for (const t of terms!)
        if (!trained.has(t.model))
          fail(
            `step ${path}: the weighted norm of "${t.model}" is not over the inner step's parameters (${inner.wrt.join(", ")})`,
          )
    }
    // The trajectory θ̈₀ … θ̈_l, as constants.
    const trajectory: Tree[] = [theta0]
    for (let i = 0; i < inner.steps; i++) trajectory.push(innerStep(trajectory[i]!, phi0))
    const last = trajectory[inner.steps]!
    // ∇_θ G(θ̈_l; φ) and ∂_φ G (direct), in one first-order pass.
    const phiKeys = Object.fromEntries(Object.entries(phi0).map(([p, t]) => [key(SEP, p), t]))
    const both = gradOf(
      (t) => {
        const theta = Object.fromEntries(Object.entries(t).filter(([k]) => !k.startsWith(SEP + SEP)))
        const phi = Object.fromEntries(
          Object.entries(t)
            .filter(([k]) => k.startsWith(SEP + SEP))
            .map(([k, v]) => [k.slice(2), v]),
        )
        return G(theta, phi)
      },
      { ...last, ...phiKeys },
    )
    value = both.value
    const gG = both.grads
    const direct: Record<string, tf.Tensor> = Object.fromEntries(
      Object.keys(phi0).map((p) => [p, gG[key(SEP, p)]!]),
    )
    if (s.mode === "closed-form") {
      // ∇_φ = Σ_terms −α c (2θ | sign θ) ⊙ ∇_θ̈ G, at θ = θ̈₀.
      metaGrad = Object.fromEntries(
        Object.entries(direct).map(([p, d]) => {
          let g = d
          for (const t of terms!) {
            const k = key(t.model, p)
            const th =
              theta0[k] ??
              fail(`step ${path}: "${t.model}" has no parameter "${p}" for meta-parameters "${s.wrt}"`)
            const dtheta = t.p === 2 ? tf.mul(th, 2) : tf.sign(th)
            g = tf.add(g, tf.mul(tf.mul(dtheta, gG[k]!), -inner.rate * t.c))
          }
          return [p, g]
        }),
      )
    } else if (R === undefined) metaGrad = direct
    else {
      // Σᵢ −α ⟨∇_θ R(θ̈ᵢ; φ), ∇_θ G⟩, differentiated in φ with θ̈ᵢ fixed.
      const gTheta = Object.fromEntries(Object.keys(last).map((k) => [k, gG[k]!]))
      const surrogate = gradOf((phi) => {
        const env = (theta: Tree): TfLoss.Env => ({
          outputs: {},
          batch,
          params: overlay(world.params, theta),
          meta: withPhi(phi),
        })
        const terms = trajectory.slice(0, inner.steps).map((theta) => {
          const { grads } = gradOf((t) => TfLoss.evaluate(R, env(t)), theta)
          return tf.mul(
            tf.addN(Object.keys(grads).map((k) => tf.sum(tf.mul(grads[k]!, gTheta[k]!)))),
            -inner.rate,
          )
        })
        return (terms.length === 0 ? tf.scalar(0) : tf.addN(terms)) as tf.Scalar
      }, phi0)
      metaGrad = Object.fromEntries(
        Object.entries(direct).map(([p, d]) => [p, tf.add(d, surrogate.grads[p]!)]),
      )
    }
  }
  return { value, grads: metaGrad }
}

const metaMinimize = (s: MetaStep, path: string, world: World, batch: Batch, ctx: Context): Effect => {
  const phi0 = world.meta[s.wrt] ?? fail(`step ${path}: no meta-parameters "${s.wrt}"`)
  const { value, grads } = metaGradient(s, world, batch, ctx, path)
  const u = Optim.update(s.optimizer, grads, optimizerState(world, path, s.optimizer, phi0), phi0)
  return { params: {}, meta: { [s.wrt]: { ...u.updates } }, state: {}, opt: { [path]: u.state }, loss: value }
}

/** A `Reinforce` step (`exits.ts`): the gate's update, the network frozen. */
const reinforce = (s: ExitsDsl.Reinforce, path: string, world: World, batch: Batch, ctx: Context): Effect => {
  const model = ctx.models[s.network] ?? fail(`step ${path}: unknown model "${s.network}"`)
  const gate = ctx.models[s.gate] ?? fail(`step ${path}: unknown model "${s.gate}"`)
  const gateParams = world.params[s.gate] ?? fail(`step ${path}: the gate "${s.gate}" has no parameters`)
  const network: Exits.Network = {
    model,
    params: world.params[s.network] ?? fail(`step ${path}: "${s.network}" has no parameters`),
    state: world.state[s.network] ?? {},
  }
  const r = Exits.reinforceStep(
    s,
    network,
    { net: gate.net, params: gateParams },
    {
      x: input(s.network, batch, ctx),
      joints3d: batch.joints3d ?? fail(`step ${path}: the batch has no joints3d`),
      joints2d: batch.joints2d ?? fail(`step ${path}: the batch has no joints2d`),
    },
    optimizerState(world, path, s.optimizer, gateParams),
    ctx.seed ?? 0,
  )
  return { params: { [s.gate]: r.update }, meta: {}, state: {}, opt: { [path]: r.state }, loss: r.loss }
}

// ---- run -------------------------------------------------------------------------------------

/** Adds a group of updates to a group of trees; returns the replaced tensors. */
const addInto = (
  base: Readonly<Record<string, Tree>>,
  updates: readonly Record<string, Record<string, tf.Tensor>>[],
): { trees: Record<string, Tree>; replaced: tf.Tensor[] } => {
  const trees: Record<string, Record<string, tf.Tensor>> = {}
  const replaced: tf.Tensor[] = []
  for (const u of updates)
    for (const [g, tree] of Object.entries(u))
      for (const [p, d] of Object.entries(tree)) {
        trees[g] ??= { ...base[g] }
        const old = trees[g][p] ?? fail(`update of "${g}/${p}", which does not exist`)
        trees[g][p] = tf.add(old, d)
        if (old === base[g]?.[p]) replaced.push(old)
        else old.dispose() // an intermediate sum
      }
  return { trees: { ...base, ...trees }, replaced }
}

/** Disposes an effect that will not be applied, except the optimizer-state tensors it kept from `kept`. */
const disposeEffect = (effect: Effect, kept: Optim.State | undefined): void => {
  const keep = new Set(kept === undefined ? [] : Optim.tensors(kept))
  const tensors = [
    effect.loss,
    ...[effect.params, effect.meta, effect.state].flatMap((u) =>
      Object.values(u).flatMap((t) => Object.values(t)),
    ),
    ...Object.values(effect.opt).flatMap((o) => Optim.tensors(o)),
  ]
  for (const t of new Set(tensors)) if (!keep.has(t) && !t.isDisposed) t.dispose()
}

/** Executes `step` on one batch; `world` is consumed (replaced tensors are disposed), unless a step is refused. */
export const run = (
  step: Step.Step,
  world: World,
  batch: Batch,
  ctx: Context,
): { world: World; losses: Record<string, number> } => {
  if (leaves(step).length < 2) return runLeaves(step, world, batch, ctx)
  sharedFrozen = new Map()
  try {
    return runLeaves(step, world, batch, ctx)
  } finally {
    const outputs = [...sharedFrozen.values()].flatMap((o) => [o.y, ...Object.values(o.taps)])
    sharedFrozen = undefined
    for (const t of new Set(outputs)) if (!t.isDisposed) t.dispose()
  }
}

const runLeaves = (
  step: Step.Step,
  world: World,
  batch: Batch,
  ctx: Context,
): { world: World; losses: Record<string, number> } => {
  const effects: { path: string; effect: Effect }[] = []
  try {
    // tidy keeps every tensor reachable from the returned effect and disposes the rest.
    for (const { path, step: s } of leaves(step))
      effects.push({
        path,
        effect: tf.tidy(
          () =>
            (s._tag === "Minimize"
              ? minimize(s, path, world, batch, ctx)
              : s._tag === "MetaMinimize"
                ? metaMinimize(s, path, world, batch, ctx)
                : reinforce(s, path, world, batch, ctx)) as unknown as tf.TensorContainer,
        ) as unknown as Effect,
      })
  } catch (e) {
    // A leaf was refused: the effects of the leaves before it are nobody's (the world is unchanged).
    for (const { path, effect } of effects) disposeEffect(effect, world.opt[path])
    throw e
  }
  const params = addInto(
    world.params,
    effects.map((e) => e.effect.params),
  )
  const meta = addInto(
    world.meta,
    effects.map((e) => e.effect.meta),
  )
  const garbage: tf.Tensor[] = [...params.replaced, ...meta.replaced]
  const state: Record<string, Tree> = { ...world.state }
  const opt: Record<string, Optim.State> = { ...world.opt }
  for (const { effect } of effects) {
    for (const [m, entries] of Object.entries(effect.state)) {
      const merged: Record<string, tf.Tensor> = { ...state[m] }
      for (const [k, t] of Object.entries(entries)) {
        const old = merged[k]
        if (old !== undefined && old !== t) garbage.push(old)
        merged[k] = t
      }
      state[m] = merged
    }
    for (const [k, s] of Object.entries(effect.opt)) {
      const kept = new Set(Optim.tensors(s))
      for (const t of world.opt[k] === undefined ? [] : Optim.tensors(world.opt[k]))
        if (!kept.has(t)) garbage.push(t)
      opt[k] = s
    }
  }
  const losses: Record<string, number> = {}
  for (const { path, effect } of effects) {
    losses[path] = effect.loss.dataSync()[0]!
    effect.loss.dispose()
    for (const u of [effect.params, effect.meta])
      for (const tree of Object.values(u)) for (const t of Object.values(tree)) t.dispose()
  }
  for (const t of new Set(garbage)) if (!t.isDisposed) t.dispose()
  return { world: { params: params.trees, state, meta: meta.trees, opt }, losses }
}

// ---- preparation -------------------------------------------------------------------------------

/**
 * Initialises (seeded) the parameters of every adapter the step's losses use
 * and the world lacks, from their static specs (see `shape-check/loss.ts`);
 * `fields` gives the data fields' per-sample shapes when an adapter reads one.
 */
export const prepare = (
  step: Step.Step,
  world: World,
  ctx: Context,
  seed: number,
  fields: Readonly<Partial<Record<Loss.Field, readonly number[]>>> = {},
): World => {
  const losses = leaves(step).flatMap(({ step: s }) =>
    s._tag === "Minimize" ? [s.loss] : s._tag === "MetaMinimize" ? [s.outer, s.inner.loss] : [],
  )
  const wanted = [...new Set(losses.flatMap(LossDsl.adapters))].filter((a) => world.params[a] === undefined)
  if (wanted.length === 0) return world
  const models = Object.fromEntries(
    Object.values(ctx.models).map((m) => [m.name, Check.check(m.net, m.input).summary]),
  )
  const params: Record<string, Tree> = { ...world.params }
  for (const loss of losses) {
    const report = LossCheck.checkLoss(loss, { models, fields, metaParams: [] })
    for (const a of wanted) {
      const specs = report.adapters[a]
      if (specs === undefined || params[a] !== undefined) continue
      params[a] = Object.fromEntries(
        specs.map((spec) => [
          spec.path,
          tf.tensor(
            Init.initialValue({ ...spec, path: `${a}/${spec.path}` }, seed, spec.shape.length === 4),
            [...spec.shape],
            "float32",
          ),
        ]),
      )
    }
  }
  for (const a of wanted)
    if (params[a] === undefined)
      fail(`cannot infer the shape of adapter "${a}" (does it read a data field? pass its shape)`)
  return { ...world, params }
}

/**
 * Training DIR-Net (Sec. 5): Eq. 12's loss summed over loops, the end-to-end
 * protocol and the progressive protocol (Algorithm 1), written directly on
 * the tf interpreter's `apply`, `valueAndGrad` and optimizers. A stage is
 * also available step by step ({@link beginStage}, {@link trainStep},
 * {@link finish}) for the runner, which checkpoints and resumes it.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core"
import type * as Stream from "../../../data/stream.ts"
import * as Dirnet from "../../../dsl/dirnet.ts"
import type * as Loss from "../../../dsl/Loss.ts"
import type * as Net from "../../../dsl/Net.ts"
import * as Optimizer from "../../../dsl/Optimizer.ts"
import * as Program from "../../../dsl/Program.ts"
import { type Applied, apply, type Mode } from "../apply.ts"
import { valueAndGrad } from "../autodiff.ts"
import * as Init from "../init.ts"
import * as Losses from "../loss.ts"
import * as Opt from "../optimizer.ts"

export type Tree = Init.Tree

/** `tf.tidy` for results that hold tensors in plain objects (optimizer states, trees). */
export const tidy = <T>(f: () => T): T => tf.tidy(f as () => tf.TensorContainer) as T

/** A DIR-Net with its parameters and batch-norm state. */
export interface Trained {
  readonly options: Dirnet.Resolved
  readonly imageSize: number
  readonly net: Net.AnyNet
  readonly params: Tree
  readonly state: Tree
}

/** One batch as tensors. */
export interface Batch {
  readonly x: tf.Tensor4D
  readonly joints3d: tf.Tensor2D
  readonly joints2d: tf.Tensor2D
}

/** Tensors of a data batch (`rgb`, `joints3d`, `joints2d`); dispose with {@link disposeBatch}. */
export const toTensors = (b: Stream.Batch, imageSize: number): Batch => ({
  x: tf.tensor4d(b.rgb, [b.size, imageSize, imageSize, 3]),
  joints3d: tf.tensor2d(b.joints3d, [b.size, 63]),
  joints2d: tf.tensor2d(b.joints2d, [b.size, 42]),
})
export const disposeBatch = (b: Batch): void => tf.dispose([b.x, b.joints3d, b.joints2d])

/** The one model a DIR-Net's losses name (the network in training or evaluation). */
const MODEL = "dirnet"
export const model = (net: Net.Net<Dirnet.Tap>, imageSize: number): Program.Model<Dirnet.Tap> =>
  Program.model(MODEL, net, [imageSize, imageSize, 3])

/** `apply` of a DIR-Net (its re-projections are `Loss.reproject` signals, computed by the losses that read them). */
export const forward = (
  net: Net.AnyNet,
  params: Tree,
  state: Tree,
  x: tf.Tensor,
  mode: Mode,
  _imageSize: number,
): Applied => apply(net, params, state, x, mode)

/** What a loss on {@link model} reads: a forward pass's output and taps, and the batch's fields. */
export const signals = (a: Applied, batch: Batch): Losses.Env => ({
  outputs: { [MODEL]: { y: a.y, taps: a.taps } },
  batch: { joints3d: batch.joints3d, joints2d: batch.joints2d, rgb: batch.x },
  params: {},
  meta: {},
})

// ---- one optimisation step --------------------------------------------------------------

/** Parameters updated by one optimizer: the progressive protocol uses two (AMG at the base rate, the rest at a reduced one). */
export interface Group {
  readonly keys: readonly string[]
  readonly optimizer: Optimizer.Optimizer
  state: Opt.State
}

/** A group of `keys` starting from `state` (a resumed run's) or from the optimizer's initial state. */
export const group = (
  keys: readonly string[],
  optimizer: Optimizer.Optimizer,
  params: Tree,
  state?: Opt.State,
): Group => {
  const sub = pick(params, keys)
  return { keys, optimizer, state: state ?? tidy(() => Opt.init(optimizer, sub)) }
}

const pick = (tree: Tree, keys: readonly string[]): Record<string, tf.Tensor> =>
  Object.fromEntries(keys.map((k) => [k, tree[k]!]))

/**
 * One step: the value of `loss` on `batch` (batch norm in train mode) and
 * each group's optimizer update. Returns the new parameters and state;
 * replaced tensors are disposed.
 */
export const step = (
  o: { readonly net: Net.AnyNet; readonly imageSize: number; readonly loss: Loss.Loss },
  params: Tree,
  state: Tree,
  groups: readonly Group[],
  batch: Batch,
): { readonly params: Tree; readonly state: Tree; readonly loss: number } => {
  let newState: Tree = state
  const keys = groups.flatMap((g) => g.keys)
  const out = tidy(() => {
    const { value, grads } = valueAndGrad(
      (p) => {
        const a = forward(o.net, p, state, batch.x, "train", o.imageSize)
        newState = a.state
        return Losses.evaluate(o.loss, signals(a, batch))
      },
      params,
      keys,
    )
    const updated: Record<string, tf.Tensor> = {}
    const optStates = groups.map((g) => {
      const { updates, state: s } = Opt.update(
        g.optimizer,
        pick(grads, g.keys),
        g.state,
        pick(params, g.keys),
      )
      for (const k of g.keys) updated[k] = tf.add(params[k]!, updates[k]!)
      return s
    })
    return { value, updated, optStates }
  })
  for (const [i, g] of groups.entries()) {
    tf.dispose(Opt.tensors(g.state))
    g.state = out.optStates[i]!
  }
  for (const k of keys) params[k]!.dispose()
  for (const [k, t] of Object.entries(state)) if (newState[k] !== t) t.dispose()
  const loss = out.value.dataSync()[0]!
  out.value.dispose()
  return { params: { ...params, ...out.updated }, state: newState, loss }
}

// ---- protocols ------------------------------------------------------------------------------

export interface Protocol {
  /** DIR-Net options; `iterations` is l_max + 1. */
  readonly dirnet: Dirnet.Options
  readonly imageSize: number
  /** Batches of one epoch (called once per epoch). */
  readonly batches: (epoch: number) => Iterable<Stream.Batch>
  /** Base learning rate (Adam). Default 1e-3 (the paper's). */
  readonly lr?: number
  readonly weights?: Dirnet.Weights
  readonly seed?: number
  /** Called after each step. */
  readonly onStep?: (info: {
    readonly stage: number
    readonly epoch: number
    /** The step within the epoch. */
    readonly step: number
    readonly loss: number
  }) => void
}

const adam = (lr: number) => Optimizer.adam({ lr })

/**
 * A network in training: its loss, its parameters and batch-norm state so
 * far (replaced by every step) and its optimizer groups. A run can save it
 * (parameters, state, each group's optimizer state) and rebuild it exactly
 * ({@link beginStage} with the saved optimizer states).
 */
export interface Training {
  /** Algorithm 1's `l_prog` (0 for the end-to-end protocol). */
  readonly stage: number
  readonly options: Dirnet.Resolved
  readonly imageSize: number
  readonly net: Net.Net<Dirnet.Tap>
  readonly loss: Loss.Loss
  params: Tree
  state: Tree
  readonly groups: readonly Group[]
}

/** One optimisation step of `t` on a data batch; returns its loss. */
export const trainStep = (t: Training, raw: Stream.Batch): number => {
  const batch = toTensors(raw, t.imageSize)
  const r = step({ net: t.net, imageSize: t.imageSize, loss: t.loss }, t.params, t.state, t.groups, batch)
  disposeBatch(batch)
  t.params = r.params
  t.state = r.state
  return r.loss
}

/** The trained network (the optimizer states are disposed). */
export const finish = (t: Training): Trained => {
  for (const g of t.groups) tf.dispose(Opt.tensors(g.state))
  return { options: t.options, imageSize: t.imageSize, net: t.net, params: t.params, state: t.state }
}

/** Disposes a network in training: parameters, state and optimizer states. */
export const disposeTraining = (t: Training): void => {
  disposeOptimizers(t.groups.map((g) => g.state))
  Init.dispose(t.params, t.state)
}

/** Disposes optimizer states. */
export const disposeOptimizers = (states: readonly Opt.State[]): void =>
  tf.dispose(states.flatMap(Opt.tensors))

const trainEpochs = (o: Protocol, t: Training, epochs: number): Trained => {
  for (let epoch = 0; epoch < epochs; epoch++) {
    let i = 0
    for (const raw of o.batches(epoch)) {
      const loss = trainStep(t, raw)
      o.onStep?.({ stage: t.stage, epoch, step: i++, loss })
    }
  }
  return finish(t)
}

/** The end-to-end protocol: one network with `l_max + 1` iterations trained on Eq. 12 for `epochs` epochs. */
export const endToEnd = (o: Protocol & { readonly epochs: number }): Trained => {
  const options = Dirnet.resolve(o.dirnet)
  const net = Dirnet.dirnet(options)
  const start = Init.init(net, Dirnet.inputShape(o.imageSize, options), o.seed ?? 0)
  const groups = [group(Object.keys(start.params), adam(o.lr ?? 1e-3), start.params)]
  const loss = Dirnet.totalLoss(model(net, o.imageSize), options.iterations, o.weights)
  return trainEpochs(o, { stage: 0, options, imageSize: o.imageSize, net, loss, ...start, groups }, o.epochs)
}

/**
 * Stage `stage` of the progressive protocol (Algorithm 1) ready to train:
 * a network with `stage + 1` iterations that starts from `previous` (the
 * network trained up to the stage before, whose tensors it takes over and
 * releases where it lacks them; nothing at stage 0), except the new
 * iteration's batch norms (and, at stage 1, AMG, which stage 0 does not
 * use), which are freshly initialised; FE is frozen (not updated) after
 * stage 0; the learning rate is the base rate ÷ 10^{stage} for everything
 * but AMG, which keeps the base rate.
 *
 * Resuming: `previous` is the saved network of this very stage and
 * `optimizers` its groups' saved states (then every parameter must come
 * from `previous`).
 */
export const beginStage = (
  o: Protocol,
  stage: number,
  previous: Pick<Trained, "params" | "state"> | undefined,
  optimizers?: readonly Opt.State[],
): Training => {
  const options = Dirnet.resolve(o.dirnet)
  const lr = o.lr ?? 1e-3
  const stageOptions: Dirnet.Resolved = { ...options, iterations: stage + 1 }
  const net = Dirnet.dirnet(stageOptions)
  const fresh = Init.init(net, Dirnet.inputShape(o.imageSize, options), (o.seed ?? 0) + stage)
  if (optimizers !== undefined) {
    const missing = Object.keys(fresh.params).filter((k) => previous?.params[k] === undefined)
    if (missing.length > 0) {
      Init.dispose(fresh.params, fresh.state)
      throw new Error(
        `stage ${stage}: the saved network lacks ${missing.length} parameter(s) (${missing.slice(0, 3).join(", ")}…); it is not this program's`,
      )
    }
  }
  const inherit = (tree: Tree, from: Tree | undefined): Tree => {
    const out: Record<string, tf.Tensor> = {}
    for (const [k, t] of Object.entries(tree)) {
      const old = from?.[k]
      if (old !== undefined) {
        out[k] = old
        t.dispose()
      } else out[k] = t
    }
    return out
  }
  const start: Init.Initialised = {
    params: inherit(fresh.params, previous?.params),
    state: inherit(fresh.state, previous?.state),
  }
  // Whatever this stage's network lacks is released: nothing while networks only grow, but `from` may be another variant's.
  for (const [from, to] of [
    [previous?.params, start.params],
    [previous?.state, start.state],
  ] as const)
    for (const [k, t] of Object.entries(from ?? {})) if (to[k] !== t) t.dispose()
  const keys = Object.keys(start.params)
  const amg = keys.filter((k) => Dirnet.partOf(k) === "amg")
  const rest = keys.filter((k) => Dirnet.partOf(k) !== "amg" && (stage === 0 || Dirnet.partOf(k) !== "fe"))
  const count = amg.length > 0 ? 2 : 1
  if (optimizers !== undefined && optimizers.length !== count) {
    Init.dispose(start.params, start.state)
    throw new Error(`stage ${stage}: ${optimizers.length} saved optimizer state(s), the stage has ${count}`)
  }
  const groups = [
    group(rest, adam(lr / 10 ** stage), start.params, optimizers?.[0]),
    ...(amg.length > 0 ? [group(amg, adam(lr), start.params, optimizers?.[1])] : []),
  ]
  const loss = Dirnet.totalLoss(model(net, o.imageSize), stage + 1, o.weights)
  return { stage, options: stageOptions, imageSize: o.imageSize, net, loss, ...start, groups }
}

/**
 * The progressive protocol (Algorithm 1): stages `l_prog = 0 … l_max`, stage
 * `l_prog` training a network with `l_prog + 1` iterations on Eq. 12 summed
 * over them, each starting from the previous one ({@link beginStage}).
 * `epochs(stage)` gives each stage's epochs (the paper: 50, then 20 each).
 * With `from` (a network trained up to stage `from.options.iterations − 1`,
 * e.g. a stage 0 that several variants share), training continues from it
 * at the next stage; `from` is copied, the caller keeps it.
 */
export const progressive = (
  o: Protocol & {
    readonly epochs: (stage: number) => number
    /** Called at the end of each stage with its parameters (still owned by the protocol). */
    readonly onStage?: (stage: number, trained: Trained) => void
    readonly from?: Trained
  },
): Trained => {
  const options = Dirnet.resolve(o.dirnet)
  let previous: Trained | undefined = o.from === undefined ? undefined : clone(o.from)
  for (let stage = o.from?.options.iterations ?? 0; stage < options.iterations; stage++) {
    previous = trainEpochs(o, beginStage(o, stage, previous), o.epochs(stage))
    o.onStage?.(stage, previous)
  }
  return previous!
}

const cloneTree = (t: Tree): Tree => Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v.clone()]))

/** A copy of a trained network with its own tensors. */
export const clone = (t: Trained): Trained => ({
  ...t,
  params: cloneTree(t.params),
  state: cloneTree(t.state),
})

/** Disposes a trained network's tensors. */
export const dispose = (t: Trained): void => Init.dispose(t.params, t.state)

/**
 * What the laws kit checks: a network on an input shape ({@link NetValue}) or
 * a loss over models ({@link LossValue}), and the float64 world a check draws
 * for one of them from a seed (inputs, data fields, parameters, state, φ).
 *
 * Every drawn number is a float32 number (rounded with `Math.fround`), so the
 * tf interpreter (float32) and the reference interpreter (float64) start from
 * exactly the same values and any difference is theirs. No tfjs here.
 *
 * @module
 */
import type * as Loss from "../dsl/Loss.ts"
import type * as Net from "../dsl/Net.ts"
import type * as Program from "../dsl/Program.ts"
import type * as Shape from "../dsl/Shape.ts"
import * as Ref from "../interpreters/reference/index.ts"
import type * as RefLoss from "../interpreters/reference/loss.ts"
import * as Check from "../interpreters/shape-check/index.ts"
import { checkLoss } from "../interpreters/shape-check/loss.ts"
import { depth } from "./tolerances.ts"

/** A network and the per-sample shape of its input (no batch axis), e.g. `[8, 8, 3]`. */
export interface NetValue {
  readonly net: Net.AnyNet
  readonly input: Shape.Shape
}

/** A loss over models (`Program.model(name, net, input)`) and the per-sample shapes of the data fields it reads. */
export interface LossValue {
  readonly loss: Loss.Loss
  readonly models: readonly Program.Model[]
  readonly fields: Readonly<Partial<Record<Loss.Field, Shape.Shape>>>
}

export type Value = NetValue | LossValue

export const isLossValue = (v: Value): v is LossValue => "loss" in v

/** The float64 world of a loss value: everything the loss reads, batch first where batched. */
export interface LossWorld {
  /** Each model's input batch `[B, ...input]`, by model name. */
  readonly inputs: Readonly<Record<string, Ref.Tensor>>
  readonly fields: Readonly<Partial<Record<Loss.Field, Ref.Tensor>>>
  /** Parameters by model name and by adapter name (`kernel`, `bias`). */
  readonly params: Readonly<Record<string, Ref.Params>>
  /** Batch-norm state by model name. */
  readonly state: Readonly<Record<string, Ref.State>>
  /** Meta-parameters φ by name, shaped like the parameters of the model they weight. */
  readonly meta: Readonly<Record<string, Ref.Params>>
}

/** Values uniform in [lo, hi], rounded to float32, from a seeded stream. */
export const uniformTensor = (shape: readonly number[], rand: () => number, lo = -1, hi = 1): Ref.Tensor =>
  Ref.Tensors.generate(shape, () => Math.fround(lo + (hi - lo) * rand()))

const rounded = (tree: Readonly<Record<string, Ref.Tensor>>): Record<string, Ref.Tensor> =>
  Object.fromEntries(
    Object.entries(tree).map(([k, t]) => [k, Ref.Tensors.make(t.shape, Array.from(t.data, Math.fround))]),
  )

/**
 * Parameters and state of `net` on `input` from `seed`, float32 values: kernels and
 * biases uniform in ±1/√fanIn, γ = 1 ± 0.1, β = ±0.1 (the reference's `init`), running
 * mean 0 and variance 1. Throws, naming the layer, when `net` does not type-check on `input`.
 */
export const drawParams = (
  net: Net.AnyNet,
  input: Shape.Shape,
  seed: number,
): { params: Ref.Params; state: Ref.State } => {
  const { params, state } = Ref.init(net, input, seed)
  return { params: rounded(params), state: rounded(state) }
}

/** The models' static summaries, by name; throws a one-line error naming the first ill-formed model. */
export const summaries = (models: readonly Program.Model[]): Record<string, Check.Summary> =>
  Object.fromEntries(
    models.map((m) => {
      const c = Check.check(m.net, m.input)
      if (!c.ok)
        throw new Error(
          `model "${m.name}" does not type-check on ${JSON.stringify(m.input)}: ${c.errors.map(Check.formatError).join("; ")}`,
        )
      return [m.name, c.summary]
    }),
  )

/** φ names the loss weights, with the model each one is shaped like (from its `WeightedNorm` terms). */
export const metaParamsOf = (loss: Loss.Loss): Record<string, string> => {
  const out: Record<string, string> = {}
  const go = (l: Loss.Loss): void => {
    if (l._tag === "WeightedNorm") out[l.phi] = l.model
    else if (l._tag === "Sum") l.terms.forEach(go)
    else if (l._tag === "Scale") go(l.loss)
  }
  go(loss)
  return out
}

/**
 * Draws the world of a loss value from `seed`: inputs and fields uniform in ±1, model
 * parameters as {@link drawParams}, adapters as kernels/biases in ±1/√fanIn, φ uniform
 * in [0, 1]. Throws a one-line error when a model or the loss does not type-check.
 */
export const drawLossWorld = (value: LossValue, batch: number, seed: number): LossWorld => {
  const models = summaries(value.models)
  const metaOf = metaParamsOf(value.loss)
  const report = checkLoss(value.loss, {
    models,
    fields: value.fields,
    metaParams: Object.entries(metaOf).map(([name, like]) => ({ name, like, init: 0 })),
  })
  if (report.errors.length > 0)
    throw new Error(`the loss does not type-check: ${report.errors.map(Check.formatError).join("; ")}`)
  const rand = Ref.mulberry32(seed)
  const inputs: Record<string, Ref.Tensor> = {}
  const params: Record<string, Ref.Params> = {}
  const state: Record<string, Ref.State> = {}
  value.models.forEach((m, i) => {
    inputs[m.name] = uniformTensor([batch, ...m.input], rand)
    const drawn = drawParams(m.net, m.input, seed + 7919 * (i + 1))
    params[m.name] = drawn.params
    state[m.name] = drawn.state
  })
  const fields: Partial<Record<Loss.Field, Ref.Tensor>> = {}
  for (const [f, shape] of Object.entries(value.fields) as [Loss.Field, Shape.Shape][])
    fields[f] = uniformTensor([batch, ...shape], rand)
  for (const [name, specs] of Object.entries(report.adapters))
    params[name] = Object.fromEntries(
      specs.map((s) => [
        s.path,
        uniformTensor(s.shape, rand, -1 / Math.sqrt(s.fanIn), 1 / Math.sqrt(s.fanIn)),
      ]),
    )
  const meta: Record<string, Ref.Params> = {}
  for (const [phi, model] of Object.entries(metaOf))
    meta[phi] = Object.fromEntries(
      Object.entries(params[model] ?? {}).map(([k, t]) => [k, uniformTensor(t.shape, rand, 0, 1)]),
    )
  return { inputs, fields, params, state, meta }
}

/** The reference loss environment of a world: every model run in `mode` on its input. */
export const referenceEnv = (value: LossValue, w: LossWorld, mode: Ref.Mode): RefLoss.Env => ({
  outputs: Object.fromEntries(
    value.models.map((m) => {
      const r = Ref.apply(m.net, w.params[m.name]!, w.state[m.name]!, w.inputs[m.name]!, mode)
      return [m.name, { y: r.y, taps: r.taps }]
    }),
  ),
  batch: w.fields,
  params: w.params,
  meta: w.meta,
})

/** Depth of a value for the tolerances: its deepest model's, plus 3 for the loss (signals, distances, reductions). */
export const depthOf = (v: Value): number =>
  isLossValue(v) ? 3 + Math.max(0, ...v.models.map((m) => depth(m.net))) : depth(v.net)

/** A short description for messages: `a network of depth 7 on [5, 5, 2]`, `a loss over student, teacher`. */
export const describe = (v: Value): string =>
  isLossValue(v)
    ? `a loss over ${v.models.map((m) => m.name).join(", ")}`
    : `a network of depth ${depth(v.net)} on [${v.input.join(", ")}]`

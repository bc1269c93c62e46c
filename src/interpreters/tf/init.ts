/**
 * Parameter initialisation: a parameter tree keyed by path, from the
 * shape-check interpreter's parameter specs.
 *
 * Values are drawn by a seeded JavaScript PRNG keyed by (seed, path), not by
 * tfjs's random ops, so the same seed gives bit-identical parameters on every
 * backend and adding a layer does not change the others' values.
 * Initialisers follow torchvision's ResNets: convolutions He-normal with
 * fan-out (`kaiming_normal_(mode="fan_out", nonlinearity="relu")`), batch
 * norm γ = 1 and β = 0, dense layers and conv biases PyTorch's default
 * U(−1/√fan_in, 1/√fan_in).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core"
import { Data } from "effect"
import type * as Net from "../../dsl/Net.ts"
import * as Shape from "../../dsl/Shape.ts"
import { mulberry32 } from "../../random.ts"
import * as Check from "../shape-check/index.ts"

/** Parameters or state, keyed by path (`layer1/0/conv1/kernel`, `bn1/mean`). */
export type Tree = Readonly<Record<string, tf.Tensor>>

export interface Initialised {
  readonly params: Tree
  readonly state: Tree
}

/** FNV-1a hash of a string mixed with a seed: the stream key of one parameter. */
const hash = (seed: number, s: string): number => {
  let h = (2166136261 ^ seed) >>> 0
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0
  return h
}

/** The seeded generator of `src/random.ts`. */
export const prng = mulberry32

const normal = (rand: () => number, n: number, std: number): Float32Array => {
  const out = new Float32Array(n)
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(rand(), 1e-12)
    const v = rand()
    const r = Math.sqrt(-2 * Math.log(u)) * std
    out[i] = r * Math.cos(2 * Math.PI * v)
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * v)
  }
  return out
}

const uniform = (rand: () => number, n: number, bound: number): Float32Array => {
  const out = new Float32Array(n)
  for (let i = 0; i < n; i++) out[i] = (2 * rand() - 1) * bound
  return out
}

/** The initial value of one parameter, as a Float32Array. */
export const initialValue = (spec: Check.ParamSpec, seed: number, isConv: boolean): Float32Array => {
  const n = Shape.size(spec.shape)
  const rand = prng(hash(seed, spec.path))
  switch (spec.role) {
    case "gamma":
      return new Float32Array(n).fill(1)
    case "beta":
      return new Float32Array(n)
    case "kernel":
      return isConv
        ? normal(rand, n, Math.sqrt(2 / spec.fanOut))
        : uniform(rand, n, 1 / Math.sqrt(spec.fanIn))
    case "bias":
      return uniform(rand, n, 1 / Math.sqrt(spec.fanIn))
  }
}

/** Error thrown when a network does not type-check: interpreters refuse ill-formed programs. */
export class IllFormed extends Data.TaggedError("IllFormed")<{
  readonly errors: readonly Check.ShapeError[]
  readonly message: string
}> {}

const illFormed = (errors: readonly Check.ShapeError[]): IllFormed =>
  new IllFormed({ errors, message: errors.map(Check.formatError).join("\n") })

/**
 * `init(net, input, seed)`: every parameter of `net` applied to per-sample
 * shape `input`, and the batch-norm running state (mean 0, variance 1).
 */
export const init = (net: Net.AnyNet, input: Shape.Shape, seed: number): Initialised => {
  const checked = Check.check(net, input)
  if (!checked.ok) throw illFormed(checked.errors)
  const params: Record<string, tf.Tensor> = {}
  for (const spec of checked.summary.params)
    params[spec.path] = tf.tensor(
      initialValue(spec, seed, spec.shape.length === 4),
      [...spec.shape],
      "float32",
    )
  const state: Record<string, tf.Tensor> = {}
  for (const s of checked.summary.state)
    state[s.path] = s.role === "mean" ? tf.zeros([...s.shape]) : tf.ones([...s.shape])
  return { params, state }
}

/** Disposes every tensor of the trees. */
export const dispose = (...trees: Tree[]): void => {
  for (const t of trees) for (const v of Object.values(t)) v.dispose()
}

/** Number of scalars in a tree. */
export const count = (tree: Tree): number => Object.values(tree).reduce((a, t) => a + t.size, 0)

/**
 * The network algebra: a closed tagged union of immutable, plain nodes.
 *
 * A `Net` holds no tensors, no closures and no backend types; parameters live
 * outside it, in a tree keyed by the node's **path** (see {@link children}).
 * Interpreters (shape-check, tf, reference) are total folds over this union:
 * adding a node kind here is a compile error in each of them until handled.
 *
 * The type parameter `T` is the union of tap names a network exposes, so a
 * loss that names a tap a network does not have fails to compile.
 *
 * @module
 */

// ---- models -------------------------------------------------------------------

/** Explicit padding `[[top, bottom], [left, right]]`. */
export type ExplicitPadding = readonly [readonly [number, number], readonly [number, number]]
/** `same` (TensorFlow's rule: output = ceil(input / stride)), `valid` (no padding) or explicit. */
export type Padding = "same" | "valid" | ExplicitPadding
export type Pair = readonly [number, number]

export interface Conv2d {
  readonly _tag: "Conv2d"
  /** Declared input channels, checked against the actual input when given (as PyTorch's `in_channels`). */
  readonly inChannels: number | undefined
  readonly filters: number
  readonly kernel: Pair
  readonly stride: Pair
  readonly padding: Padding
  readonly dilation: Pair
  readonly groups: number
  readonly bias: boolean
}
/** Batch normalisation over the last (channel) axis; torch's `eps` and `momentum` conventions. */
export interface BatchNorm {
  readonly _tag: "BatchNorm"
  readonly eps: number
  readonly momentum: number
}
export interface Relu {
  readonly _tag: "Relu"
}
export interface Sigmoid {
  readonly _tag: "Sigmoid"
}
export interface Identity {
  readonly _tag: "Identity"
}
export interface Pool {
  readonly _tag: "Pool"
  readonly op: "max" | "avg"
  readonly kernel: Pair
  readonly stride: Pair
  readonly padding: Padding
}
export interface GlobalAvgPool {
  readonly _tag: "GlobalAvgPool"
}
export interface Dense {
  readonly _tag: "Dense"
  /** Declared input features, checked when given. */
  readonly inFeatures: number | undefined
  readonly units: number
  readonly bias: boolean
}
export interface Flatten {
  readonly _tag: "Flatten"
}
export interface Reshape {
  readonly _tag: "Reshape"
  readonly shape: readonly number[]
}
/** Depth-to-space: `[H, W, C·r²]` → `[H·r, W·r, C]`. */
export interface PixelShuffle {
  readonly _tag: "PixelShuffle"
  readonly factor: number
}
export interface Seq {
  readonly _tag: "Seq"
  readonly nets: readonly AnyNet[]
}
/** A parameter namespace: the child's parameters live under `name/`. */
export interface Scope {
  readonly _tag: "Scope"
  readonly name: string
  readonly net: AnyNet
}
/** `body(x) + shortcut(x)`; the shortcut is the identity when absent. */
export interface Residual {
  readonly _tag: "Residual"
  readonly body: AnyNet
  readonly shortcut: AnyNet | undefined
}
/** Applies every branch to the same input and combines the results. */
export interface Parallel {
  readonly _tag: "Parallel"
  readonly combine: "add" | "mul" | "concat"
  readonly branches: readonly AnyNet[]
}
/** Identity that exposes the activation flowing through it under `name`. */
export interface Tap {
  readonly _tag: "Tap"
  readonly name: string
}
/**
 * Weight-shared iterative refinement (DIR-Net). With input `x`:
 * `h₀ = body⁽⁰⁾(x)`, `hₖ = body⁽ᵏ⁾(x ⊙ feedback(hₖ₋₁))`, `yₖ = readout(hₖ)`;
 * the output is `y` of the last iteration. `body`'s BatchNorm layers get
 * separate parameters per iteration when `batchNorm` is `perIteration`; all
 * other parameters are shared. A tap `t` inside the loop is exposed per
 * iteration as `t@k`, and as `t` for the last iteration.
 */
export interface Loop {
  readonly _tag: "Loop"
  readonly iterations: number
  readonly body: AnyNet
  readonly feedback: AnyNet
  readonly readout: AnyNet
  readonly batchNorm: "perIteration" | "shared"
}

/** Every node kind. Interpreters switch over `_tag` exhaustively. */
export type Node =
  | Conv2d
  | BatchNorm
  | Relu
  | Sigmoid
  | Identity
  | Pool
  | GlobalAvgPool
  | Dense
  | Flatten
  | Reshape
  | PixelShuffle
  | Seq
  | Scope
  | Residual
  | Parallel
  | Tap
  | Loop

export type Tag = Node["_tag"]

/** A network exposing the taps `T` (phantom: the property is never present at run time). */
export type Net<T extends string = never> = Node & { readonly "~taps"?: T }
/** A network with any taps; what interpreters accept. */
export type AnyNet = Net<string>
/** The tap names of a network type. */
export type TapsOf<N> = N extends { readonly "~taps"?: infer T } ? Exclude<T, undefined> & string : never

const node = <T extends string>(n: Node): Net<T> => Object.freeze(n) as Net<T>
const pair = (v: number | Pair): Pair => (typeof v === "number" ? [v, v] : v)

// ---- constructors -------------------------------------------------------------------

export interface Conv2dOptions {
  /** Input channels, checked by the shape checker when given. */
  readonly inChannels?: number
  readonly stride?: number | Pair
  /** Default `same`. A number `p` means `[[p, p], [p, p]]` (PyTorch's `padding=p`). */
  readonly padding?: Padding | number
  readonly dilation?: number | Pair
  readonly groups?: number
  /** Default true. */
  readonly bias?: boolean
}

/** 2-D convolution with `filters` output channels; kernel `[kh, kw, C_in/groups, filters]`. */
export const conv2d = (filters: number, kernel: number | Pair, options: Conv2dOptions = {}): Net => {
  const p = options.padding ?? "same"
  return node({
    _tag: "Conv2d",
    inChannels: options.inChannels,
    filters,
    kernel: pair(kernel),
    stride: pair(options.stride ?? 1),
    padding:
      typeof p === "number"
        ? [
            [p, p],
            [p, p],
          ]
        : p,
    dilation: pair(options.dilation ?? 1),
    groups: options.groups ?? 1,
    bias: options.bias ?? true,
  })
}

export const batchNorm = (options: { readonly eps?: number; readonly momentum?: number } = {}): Net =>
  node({ _tag: "BatchNorm", eps: options.eps ?? 1e-5, momentum: options.momentum ?? 0.1 })

export const relu: Net = node({ _tag: "Relu" })
export const sigmoid: Net = node({ _tag: "Sigmoid" })
export const identity: Net = node({ _tag: "Identity" })

const pool =
  (op: Pool["op"]) =>
  (
    kernel: number | Pair,
    options: { readonly stride?: number | Pair; readonly padding?: Padding | number } = {},
  ): Net => {
    const p = options.padding ?? "valid"
    return node({
      _tag: "Pool",
      op,
      kernel: pair(kernel),
      stride: pair(options.stride ?? kernel),
      padding:
        typeof p === "number"
          ? [
              [p, p],
              [p, p],
            ]
          : p,
    })
  }
/** Max pooling; stride defaults to the kernel, padding to `valid`. */
export const maxPool = pool("max")
/** Average pooling (padding excluded from the mean); stride defaults to the kernel. */
export const avgPool = pool("avg")
export const globalAvgPool: Net = node({ _tag: "GlobalAvgPool" })
/** Fully connected layer on a vector; kernel `[in, units]`. */
export const dense = (
  units: number,
  options: { readonly bias?: boolean; readonly inFeatures?: number } = {},
): Net => node({ _tag: "Dense", inFeatures: options.inFeatures, units, bias: options.bias ?? true })
export const flatten: Net = node({ _tag: "Flatten" })
export const reshape = (shape: readonly number[]): Net => node({ _tag: "Reshape", shape: [...shape] })
export const pixelShuffle = (factor: number): Net => node({ _tag: "PixelShuffle", factor })

/** Sequential composition, left to right. */
export const seq = <const Ns extends readonly AnyNet[]>(...nets: Ns): Net<TapsOf<Ns[number]>> =>
  node({ _tag: "Seq", nets: [...nets] })

/** Puts the child's parameters under `name/`. */
export const scope = <T extends string>(name: string, net: Net<T>): Net<T> =>
  node({ _tag: "Scope", name, net })

/** `body(x) + shortcut(x)` (identity shortcut when `shortcut` is omitted). */
export const residual = <B extends AnyNet, S extends AnyNet = Net>(
  body: B,
  shortcut?: S,
): Net<TapsOf<B> | TapsOf<S>> => node({ _tag: "Residual", body, shortcut })

const parallel =
  (combine: Parallel["combine"]) =>
  <const Ns extends readonly AnyNet[]>(...branches: Ns): Net<TapsOf<Ns[number]>> =>
    node({ _tag: "Parallel", combine, branches: [...branches] })
/** Element-wise sum of branches applied to the same input. */
export const add = parallel("add")
/** Element-wise product of branches applied to the same input (e.g. attention gating). */
export const mul = parallel("mul")
/** Channel-axis concatenation of branches applied to the same input. */
export const concat = parallel("concat")

/** Exposes the current activation under `name` for losses; the identity otherwise. */
export const tap = <const N extends string>(name: N): Net<N> => node({ _tag: "Tap", name })

/** See {@link Loop}. */
export const loop = <B extends AnyNet, F extends AnyNet, R extends AnyNet>(options: {
  readonly iterations: number
  readonly body: B
  readonly feedback: F
  readonly readout: R
  readonly batchNorm?: Loop["batchNorm"]
}): Net<LoopTaps<TapsOf<B> | TapsOf<F> | TapsOf<R>>> =>
  node({
    _tag: "Loop",
    iterations: options.iterations,
    body: options.body,
    feedback: options.feedback,
    readout: options.readout,
    batchNorm: options.batchNorm ?? "perIteration",
  })
export type LoopTaps<T extends string> = T | `${T}@${number}`

// ---- paths --------------------------------------------------------------------

/** Joins path segments: `join("student", "layer1")` → `"student/layer1"`. */
export const join = (path: string, segment: string): string => (path === "" ? segment : `${path}/${segment}`)

/** Name of the per-iteration copy of a parameter-owning node inside a loop. */
export const iterationPath = (path: string, iteration: number): string => `${path}@${iteration}`

/**
 * The children of a node with the path segment each adds, the one rule every
 * interpreter uses to name parameters: a `Scope` adds its name; a child of
 * `Seq`/`Parallel` adds its index unless it is itself a `Scope` (nested `Seq`s
 * are spliced first, so `seq(a, seq(b, c))` and `seq(seq(a, b), c)` name their
 * parameters alike); a residual's
 * body adds nothing and its shortcut adds `shortcut` (unless a `Scope`); a loop's parts add
 * `body`, `feedback` and `readout`.
 */
export const children = (n: Node): ReadonlyArray<readonly [segment: string | undefined, child: AnyNet]> => {
  const indexed = (nets: readonly AnyNet[]) =>
    nets.map((c, i) => [c._tag === "Scope" ? undefined : String(i), c] as const)
  switch (n._tag) {
    case "Seq":
      return indexed(spliceSeqs(n.nets))
    case "Parallel":
      return indexed(n.branches)
    case "Scope":
      return [[n.name, n.net]]
    case "Residual":
      return n.shortcut === undefined
        ? [[undefined, n.body]]
        : [
            [undefined, n.body],
            [n.shortcut._tag === "Scope" ? undefined : "shortcut", n.shortcut],
          ]
    case "Loop":
      return [
        ["body", n.body],
        ["feedback", n.feedback],
        ["readout", n.readout],
      ]
    default:
      return []
  }
}

const spliceSeqs = (nets: readonly AnyNet[]): AnyNet[] =>
  nets.flatMap((c) => (c._tag === "Seq" ? spliceSeqs(c.nets) : [c]))

/** Path of a child given its parent's path and the segment from {@link children}. */
export const childPath = (path: string, segment: string | undefined): string =>
  segment === undefined ? path : join(path, segment)

// ---- the structural fold ------------------------------------------------------------

/** Inside a loop: the iteration, and whether batch norms met here own a copy per iteration. */
export interface Iteration {
  readonly k: number
  readonly perIterationBatchNorm: boolean
}

/** Where a node sits: its path (the parameter-naming rule of {@link children}) and its loop iteration. */
export interface At {
  readonly path: string
  readonly iteration: Iteration | undefined
}

export const root = (path = ""): At => ({ path, iteration: undefined })

/** A child bound to its place: apply it to an input. */
export type Sub<V> = (input: V) => V

/** A loop's three parts for iteration `k`, each bound to its path and iteration. */
export interface LoopParts<V> {
  readonly body: Sub<V>
  readonly feedback: Sub<V>
  readonly readout: Sub<V>
}

type NodeOf<K extends Tag> = Extract<Node, { readonly _tag: K }>
type Composite = "Seq" | "Scope" | "Residual" | "Parallel" | "Loop"

/**
 * An interpreter of networks as a table of rules, one per node kind (a missing
 * kind is a compile error). A leaf's rule maps its input to its output at its
 * place; a composite's rule receives its children already bound to their
 * places, so paths and loop iterations are computed once, here, for every
 * interpreter.
 */
export type Rules<V> = { readonly [K in Exclude<Tag, Composite>]: (n: NodeOf<K>, x: V, at: At) => V } & {
  readonly Seq: (n: Seq, x: V, at: At, children: readonly Sub<V>[]) => V
  readonly Scope: (n: Scope, x: V, at: At, child: Sub<V>) => V
  readonly Residual: (n: Residual, x: V, at: At, body: Sub<V>, shortcut: Sub<V> | undefined) => V
  readonly Parallel: (n: Parallel, x: V, at: At, branches: readonly Sub<V>[]) => V
  readonly Loop: (n: Loop, x: V, at: At, iteration: (k: number) => LoopParts<V>) => V
}

/** The fold of a rule table: `fold(rules)(net, x)` interprets `net` applied to `x`. */
export const fold =
  <V>(rules: Rules<V>) =>
  (net: AnyNet, x: V, at: At = root()): V => {
    const go = (net: AnyNet, x: V, at: At): V => {
      const n = net as Node
      const bind =
        (segment: string | undefined, child: AnyNet, iteration = at.iteration): Sub<V> =>
        (v) =>
          go(child, v, { path: childPath(at.path, segment), iteration })
      switch (n._tag) {
        case "Seq":
          return rules.Seq(
            n,
            x,
            at,
            children(n).map(([s, c]) => bind(s, c)),
          )
        case "Scope":
          return rules.Scope(n, x, at, bind(n.name, n.net))
        case "Residual": {
          const [body, shortcut] = children(n)
          return rules.Residual(
            n,
            x,
            at,
            bind(...body!),
            shortcut === undefined ? undefined : bind(...shortcut),
          )
        }
        case "Parallel":
          return rules.Parallel(
            n,
            x,
            at,
            children(n).map(([s, c]) => bind(s, c)),
          )
        case "Loop":
          return rules.Loop(n, x, at, (k) => ({
            // Only the body's batch norms get a copy per iteration; feedback and readout share theirs.
            body: bind("body", n.body, { k, perIterationBatchNorm: n.batchNorm === "perIteration" }),
            feedback: bind("feedback", n.feedback, { k, perIterationBatchNorm: false }),
            readout: bind("readout", n.readout, { k, perIterationBatchNorm: false }),
          }))
        default: {
          const rule = rules[n._tag] as (n: Node, x: V, at: At) => V
          return rule(n, x, at)
        }
      }
    }
    return go(net, x, at)
  }

/** Sequential composition of bound children, left to right: the `Seq` and `Scope` rule of every interpreter. */
export const sequence = <V>(x: V, children: readonly Sub<V>[]): V =>
  children.reduce((y, child) => child(y), x)

/**
 * A loop's recurrence (see {@link Loop}): `h₀ = body⁽⁰⁾(x)`, `hₖ = body⁽ᵏ⁾(x ⊙ feedback(hₖ₋₁))`,
 * `yₖ = readout(hₖ)`; returns the last `y`. `gate(x, m)` is the interpreter's `x ⊙ m`.
 */
export const unroll = <V>(
  n: Loop,
  x: V,
  iteration: (k: number) => LoopParts<V>,
  gate: (x: V, m: V) => V,
): V => {
  let h: V | undefined
  let y: V | undefined
  for (let k = 0; k < n.iterations; k++) {
    const parts = iteration(k)
    h = parts.body(h === undefined ? x : gate(x, parts.feedback(h)))
    y = parts.readout(h)
  }
  return y as V
}

/** The path owning a batch norm's parameters at `at`: `path@k` for a per-iteration copy inside a loop. */
export const batchNormOwner = (at: At): string =>
  at.iteration?.perIterationBatchNorm ? iterationPath(at.path, at.iteration.k) : at.path

/** The names a tap registers at `at`: `name`, and inside a loop also `name@k`. */
export const tapKeys = (name: string, at: At): readonly string[] =>
  at.iteration === undefined ? [name] : [iterationPath(name, at.iteration.k), name]

// ---- folds -------------------------------------------------------------------------

/** Every tap name declared in a network (loop taps without their `@k` copies). */
export const tapNames = (n: AnyNet): string[] =>
  n._tag === "Tap" ? [n.name] : children(n).flatMap(([, c]) => tapNames(c))

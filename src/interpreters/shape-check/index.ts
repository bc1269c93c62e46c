/**
 * The shape-check interpreter: abstract evaluation of a network over shapes.
 *
 * A total fold over {@link Net.Node}: for every node it computes the output
 * shape, the parameters it owns (with their paths and shapes), its MACs and
 * its batch-norm buffers, and the shape of every tap. It never allocates a
 * tensor and never throws on a network value: ill-formed nodes become
 * {@link ShapeError}s carrying the node's path, and checking goes on (with the
 * best output shape that can still be inferred) so that every error of a
 * network is reported, not only the first.
 *
 * @module
 */
import * as Net from "../../dsl/Net.ts"
import * as Shape from "../../dsl/Shape.ts"
import * as Cost from "./Cost.ts"

// ---- models -------------------------------------------------------------------

/** A shape error at `path`, e.g. `student/layer3/0/conv1: expects 128 input channels, got 64`. */
export interface ShapeError {
  readonly _tag: "ShapeError"
  readonly path: string
  readonly message: string
}

export type ParamRole = "kernel" | "bias" | "gamma" | "beta"

/** A trainable parameter: `path` is `<node path>/<role>`. */
export interface ParamSpec {
  readonly path: string
  readonly shape: Shape.Shape
  readonly role: ParamRole
  /** Fan-in and fan-out of the owning layer, for initialisation (He/Glorot). */
  readonly fanIn: number
  readonly fanOut: number
}

/** Non-trainable state: batch-norm running statistics, `<node path>/mean|variance`. */
export interface StateSpec {
  readonly path: string
  readonly shape: Shape.Shape
  readonly role: "mean" | "variance"
}

/** One row of the per-layer table. `params` counts parameters first introduced by this node. */
export interface Layer {
  readonly path: string
  readonly tag: Net.Tag
  readonly output: Shape.Shape | undefined
  readonly cost: Cost.Cost
}

/** Cost of a loop, split so that the cost of exiting after any iteration is known statically. */
export interface LoopCost {
  readonly path: string
  readonly iterations: number
  /** MACs of iteration k alone (body, readout and, for k ≥ 1, feedback). */
  readonly macsPerIteration: readonly number[]
  /** Parameters of iteration k alone: all shared ones at k = 0, its own batch norms after. */
  readonly paramsPerIteration: readonly number[]
}

export interface Summary {
  readonly input: Shape.Shape
  readonly output: Shape.Shape | undefined
  readonly cost: Cost.Cost
  readonly layers: readonly Layer[]
  readonly taps: Readonly<Record<string, Shape.Shape>>
  readonly params: readonly ParamSpec[]
  readonly state: readonly StateSpec[]
  readonly loops: readonly LoopCost[]
}

export type Checked =
  | { readonly ok: true; readonly summary: Summary & { readonly output: Shape.Shape } }
  | { readonly ok: false; readonly errors: readonly ShapeError[]; readonly summary: Summary }

// ---- the fold -----------------------------------------------------------------

interface Context {
  readonly errors: ShapeError[]
  readonly layers: Layer[]
  readonly taps: Map<string, Shape.Shape>
  readonly params: Map<string, ParamSpec>
  readonly state: Map<string, StateSpec>
  readonly loops: LoopCost[]
  /** The cost so far: every recorded layer's cost, combined in the monoid of `Cost`. */
  total: Cost.Cost
  /** Set while re-visiting a loop body after its first iteration: shared parameters are expected again. */
  revisit: boolean
}

/** Checks `net` applied to one sample of shape `input` (no batch dimension). */
export const check = (net: Net.AnyNet, input: Shape.Shape, path = ""): Checked => {
  const ctx: Context = {
    errors: [],
    layers: [],
    taps: new Map(),
    params: new Map(),
    state: new Map(),
    loops: [],
    total: Cost.empty,
    revisit: false,
  }
  const valid = Shape.isValid(input) && input.length > 0
  if (!valid)
    fail(
      ctx,
      path,
      `input shape [${input.join(", ")}] must have positive integer dimensions and at least one axis`,
    )
  const output = Net.fold(rules(ctx))(net, valid ? input : undefined, Net.root(path))
  const params = [...ctx.params.values()]
  const state = [...ctx.state.values()]
  const summary: Summary = {
    input,
    output,
    // Each parameter and buffer enters the total once, with the layer that introduced it.
    cost: ctx.total,
    layers: ctx.layers,
    taps: Object.fromEntries(ctx.taps),
    params,
    state,
    loops: ctx.loops,
  }
  return ctx.errors.length === 0 && output !== undefined
    ? { ok: true, summary: { ...summary, output } }
    : { ok: false, errors: ctx.errors, summary }
}

const fail = (ctx: Context, path: string, message: string): undefined => {
  ctx.errors.push({ _tag: "ShapeError", path: path === "" ? "<root>" : path, message })
  return undefined
}

/** Formats an error the way the CLI prints it. */
export const formatError = (e: ShapeError): string => `${e.path}: ${e.message}`

const addParam = (ctx: Context, path: string, spec: Omit<ParamSpec, "path">): number => {
  const previous = ctx.params.get(path)
  if (previous !== undefined) {
    if (!ctx.revisit) fail(ctx, path, "two layers share this parameter path; wrap one in a scope")
    else if (!Shape.equals(previous.shape, spec.shape))
      fail(
        ctx,
        path,
        `shared parameter has shape ${Shape.format(previous.shape)} but is used with ${Shape.format(spec.shape)}`,
      )
    return 0
  }
  ctx.params.set(path, { path, ...spec })
  return Shape.size(spec.shape)
}

const record = (
  ctx: Context,
  path: string,
  tag: Net.Tag,
  output: Shape.Shape | undefined,
  cost: Cost.Cost,
) => {
  ctx.total = Cost.combine(ctx.total, cost)
  if (!ctx.revisit) ctx.layers.push({ path, tag, output, cost })
  return output
}

/** Checks that hyper-parameters are positive integers, reporting each one that is not. */
const positive = (ctx: Context, path: string, fields: Record<string, readonly number[]>): boolean => {
  let ok = true
  for (const [name, values] of Object.entries(fields))
    if (!values.every((v) => Number.isInteger(v) && v >= 1)) {
      fail(ctx, path, `${name} must be a positive integer, got ${values.join("×")}`)
      ok = false
    }
  return ok
}

/** Spatial output size of a window op along one axis, with the amount of padding. */
const windowOutput = (
  size: number,
  kernel: number,
  stride: number,
  dilation: number,
  padding: Net.Padding,
  axis: 0 | 1,
): number => {
  const effective = (kernel - 1) * dilation + 1
  if (padding === "same") return Math.ceil(size / stride)
  const [before, after] = padding === "valid" ? [0, 0] : padding[axis]
  return Math.floor((size + before + after - effective) / stride) + 1
}

const expectImage = (
  ctx: Context,
  path: string,
  what: string,
  x: Shape.Shape,
): x is readonly [number, number, number] =>
  x.length === 3 ||
  (fail(ctx, path, `${what} expects an image-like input H×W×C, got ${Shape.format(x)}`) as undefined) !==
    undefined

type Out = Shape.Shape | undefined

/** The shape meaning of every node kind: output shapes, with parameters, costs, taps and errors in `ctx`. */
const rules = (ctx: Context): Net.Rules<Out> => ({
  Conv2d: (n, x, { path }) => {
    if (
      !positive(ctx, path, {
        filters: [n.filters],
        kernel: n.kernel,
        stride: n.stride,
        dilation: n.dilation,
        groups: [n.groups],
      })
    )
      return unknownLayer(ctx, path, n)
    if (x === undefined || !expectImage(ctx, path, "conv2d", x)) return unknownLayer(ctx, path, n)
    const [h, w, c] = x
    if (n.inChannels !== undefined && n.inChannels !== c)
      fail(ctx, path, `expects ${n.inChannels} input channels, got ${c} (input ${Shape.format(x)})`)
    if (n.groups < 1 || c % n.groups !== 0 || n.filters % n.groups !== 0)
      fail(ctx, path, `groups=${n.groups} must divide both input channels (${c}) and filters (${n.filters})`)
    const cin = Math.max(1, Math.floor(c / n.groups))
    const ho = windowOutput(h, n.kernel[0], n.stride[0], n.dilation[0], n.padding, 0)
    const wo = windowOutput(w, n.kernel[1], n.stride[1], n.dilation[1], n.padding, 1)
    if (ho < 1 || wo < 1) {
      fail(
        ctx,
        path,
        `kernel ${n.kernel.join("×")} (dilation ${n.dilation.join("×")}) does not fit input ${Shape.format(x)}`,
      )
      return unknownLayer(ctx, path, n)
    }
    const fanIn = cin * n.kernel[0] * n.kernel[1]
    const fanOut = (n.filters / Math.max(1, n.groups)) * n.kernel[0] * n.kernel[1]
    let params = addParam(ctx, Net.join(path, "kernel"), {
      shape: [n.kernel[0], n.kernel[1], cin, n.filters],
      role: "kernel",
      fanIn,
      fanOut,
    })
    if (n.bias)
      params += addParam(ctx, Net.join(path, "bias"), { shape: [n.filters], role: "bias", fanIn, fanOut })
    const out: Shape.Shape = [ho, wo, n.filters]
    return record(ctx, path, n._tag, out, Cost.make({ params, macs: ho * wo * n.filters * fanIn }))
  },
  BatchNorm: (n, x, at) => {
    const path = at.path
    if (!(n.eps > 0) || !(n.momentum >= 0 && n.momentum <= 1))
      fail(
        ctx,
        path,
        `batch norm needs eps > 0 and momentum in [0, 1], got eps ${n.eps}, momentum ${n.momentum}`,
      )
    if (x === undefined || x.length === 0) {
      if (x !== undefined) fail(ctx, path, "batch norm needs at least one axis")
      return unknownLayer(ctx, path, n)
    }
    const c = x[x.length - 1]!
    const owner = Net.batchNormOwner(at)
    const spec = { shape: [c], fanIn: c, fanOut: c }
    const params =
      addParam(ctx, Net.join(owner, "gamma"), { ...spec, role: "gamma" }) +
      addParam(ctx, Net.join(owner, "beta"), { ...spec, role: "beta" })
    let buffers = 0
    for (const role of ["mean", "variance"] as const)
      if (!ctx.state.has(Net.join(owner, role))) {
        ctx.state.set(Net.join(owner, role), { path: Net.join(owner, role), shape: [c], role })
        buffers += c
      }
    return record(ctx, path, n._tag, x, Cost.make({ params, buffers }))
  },
  Relu: (n, x, { path }) => record(ctx, path, n._tag, x, Cost.empty),
  Sigmoid: (n, x, { path }) => record(ctx, path, n._tag, x, Cost.empty),
  Identity: (n, x, { path }) => record(ctx, path, n._tag, x, Cost.empty),
  Tap: (n, x, at) => {
    const path = at.path
    if (x !== undefined) {
      const [own, ...alias] = Net.tapKeys(n.name, at)
      if (ctx.taps.has(own!)) fail(ctx, path, `tap "${n.name}" is declared twice`)
      for (const key of [own!, ...alias]) ctx.taps.set(key, x)
    }
    return record(ctx, path, n._tag, x, Cost.empty)
  },
  Pool: (n, x, { path }) => {
    if (!positive(ctx, path, { kernel: n.kernel, stride: n.stride })) return unknownLayer(ctx, path, n)
    if (x === undefined || !expectImage(ctx, path, `${n.op} pool`, x)) return unknownLayer(ctx, path, n)
    const [h, w, c] = x
    const ho = windowOutput(h, n.kernel[0], n.stride[0], 1, n.padding, 0)
    const wo = windowOutput(w, n.kernel[1], n.stride[1], 1, n.padding, 1)
    if (ho < 1 || wo < 1) {
      fail(ctx, path, `pool window ${n.kernel.join("×")} does not fit input ${Shape.format(x)}`)
      return unknownLayer(ctx, path, n)
    }
    if (n.padding !== "same" && n.padding !== "valid") {
      const [[t, b], [l, r]] = n.padding
      if (Math.max(t, b) * 2 > n.kernel[0] || Math.max(l, r) * 2 > n.kernel[1])
        fail(
          ctx,
          path,
          `pool padding ${[t, b, l, r].join(",")} exceeds half the window ${n.kernel.join("×")}`,
        )
    }
    return record(ctx, path, n._tag, [ho, wo, c], Cost.empty)
  },
  GlobalAvgPool: (n, x, { path }) => {
    if (x === undefined || !expectImage(ctx, path, "global average pool", x))
      return unknownLayer(ctx, path, n)
    return record(ctx, path, n._tag, [x[2]], Cost.empty)
  },
  Dense: (n, x, { path }) => {
    if (!positive(ctx, path, { units: [n.units] })) return unknownLayer(ctx, path, n)
    if (x === undefined) return unknownLayer(ctx, path, n, [n.units])
    if (x.length !== 1) {
      fail(
        ctx,
        path,
        `dense expects a vector, got ${Shape.format(x)} (add flatten or globalAvgPool before it)`,
      )
      return unknownLayer(ctx, path, n, [n.units])
    }
    const d = x[0]!
    if (n.inFeatures !== undefined && n.inFeatures !== d)
      fail(ctx, path, `expects ${n.inFeatures} input features, got ${d}`)
    let params = addParam(ctx, Net.join(path, "kernel"), {
      shape: [d, n.units],
      role: "kernel",
      fanIn: d,
      fanOut: n.units,
    })
    if (n.bias)
      params += addParam(ctx, Net.join(path, "bias"), {
        shape: [n.units],
        role: "bias",
        fanIn: d,
        fanOut: n.units,
      })
    return record(ctx, path, n._tag, [n.units], Cost.make({ params, macs: d * n.units }))
  },
  Flatten: (n, x, { path }) =>
    record(ctx, path, n._tag, x === undefined ? undefined : [Shape.size(x)], Cost.empty),
  Reshape: (n, x, { path }) => {
    if (x === undefined) return unknownLayer(ctx, path, n)
    const free = n.shape.filter((d) => d === -1).length
    const known = n.shape.filter((d) => d !== -1).reduce((a, b) => a * b, 1)
    const total = Shape.size(x)
    const bad =
      n.shape.length === 0 ||
      free > 1 ||
      n.shape.some((d) => d === 0 || d < -1) ||
      (free === 0 ? known !== total : total % known !== 0)
    if (bad) {
      fail(ctx, path, `cannot reshape ${Shape.format(x)} (${total} elements) to ${n.shape.join("×")}`)
      return unknownLayer(ctx, path, n)
    }
    return record(
      ctx,
      path,
      n._tag,
      n.shape.map((d) => (d === -1 ? total / known : d)),
      Cost.empty,
    )
  },
  PixelShuffle: (n, x, { path }) => {
    if (x === undefined || !expectImage(ctx, path, "pixel shuffle", x)) return unknownLayer(ctx, path, n)
    const [h, w, c] = x
    const r2 = n.factor * n.factor
    if (!Number.isInteger(n.factor) || n.factor < 1 || c % r2 !== 0) {
      fail(ctx, path, `pixel shuffle by ${n.factor} needs channels divisible by ${r2}, got ${c}`)
      return unknownLayer(ctx, path, n)
    }
    return record(ctx, path, n._tag, [h * n.factor, w * n.factor, c / r2], Cost.empty)
  },
  Seq: (_, x, __, children) => Net.sequence(x, children),
  Scope: (_, x, __, child) => child(x),
  Residual: (n, x, { path }, body, shortcut) => {
    const y = body(x)
    const s = shortcut === undefined ? x : shortcut(x)
    if (y !== undefined && s !== undefined && !Shape.equals(y, s)) {
      fail(ctx, path, `residual body gives ${Shape.format(y)} but the shortcut gives ${Shape.format(s)}`)
      return unknownLayer(ctx, path, n, y)
    }
    return record(ctx, path, n._tag, y ?? s, Cost.empty)
  },
  Parallel: (n, x, { path }, branches) => {
    const ys = branches.map((branch) => branch(x))
    if (ys.length === 0) return fail(ctx, path, `${n.combine} of no branches`)
    if (ys.some((y) => y === undefined)) return unknownLayer(ctx, path, n)
    const shapes = ys as Shape.Shape[]
    const first = shapes[0]!
    if (n.combine === "concat") {
      const ok =
        first.length > 0 &&
        shapes.every((s) => s.length === first.length && s.slice(0, -1).every((d, i) => d === first[i]))
      if (!ok)
        return fail(
          ctx,
          path,
          `concat needs equal shapes but the last axis, got ${shapes.map(Shape.format).join(", ")}`,
        )
      const channels = shapes.reduce((a, s) => a + s[s.length - 1]!, 0)
      return record(ctx, path, n._tag, [...first.slice(0, -1), channels], Cost.empty)
    }
    if (!shapes.every((s) => Shape.equals(s, first)))
      return fail(ctx, path, `${n.combine} needs equal shapes, got ${shapes.map(Shape.format).join(", ")}`)
    return record(ctx, path, n._tag, first, Cost.empty)
  },
  Loop: (n, x, at, iteration) => loop(ctx, n, x, at, iteration),
})

/** A loop, iteration by iteration: shared parameters are expected again after the first, and each iteration's cost is kept. */
const loop = (
  ctx: Context,
  n: Net.Loop,
  x: Out,
  at: Net.At,
  iteration: (k: number) => Net.LoopParts<Out>,
): Out => {
  const path = at.path
  if (!Number.isInteger(n.iterations) || n.iterations < 1)
    return fail(ctx, path, `loop needs a positive integer number of iterations, got ${n.iterations}`)
  if (at.iteration !== undefined) return fail(ctx, path, "loops cannot be nested")
  const macsPerIteration: number[] = []
  const paramsPerIteration: number[] = []
  let y: Out
  let h: Out
  for (let k = 0; k < n.iterations; k++) {
    const before = ctx.total
    const parts = iteration(k)
    ctx.revisit = k > 0
    if (k > 0) {
      ctx.revisit = k > 1 // the feedback first runs at k = 1
      const m = parts.feedback(h)
      if (k === 1 && m !== undefined && x !== undefined && !Shape.equals(m, x))
        fail(
          ctx,
          Net.join(path, "feedback"),
          `loop feedback gives ${Shape.format(m)} but must match the loop input ${Shape.format(x)}`,
        )
      ctx.revisit = true
    }
    // x ⊙ feedback(h) has x's shape (checked above), so the body sees x's shape at every iteration.
    h = parts.body(x)
    y = parts.readout(h)
    macsPerIteration.push(ctx.total.macs - before.macs)
    paramsPerIteration.push(ctx.total.params - before.params)
  }
  ctx.revisit = false
  ctx.loops.push({ path, iterations: n.iterations, macsPerIteration, paramsPerIteration })
  return record(ctx, path, n._tag, y, Cost.empty)
}

const unknownLayer = (
  ctx: Context,
  path: string,
  n: Net.Node,
  output?: Shape.Shape,
): Shape.Shape | undefined => record(ctx, path, n._tag, output, Cost.empty)

// ---- derived folds ---------------------------------------------------------------

/**
 * Expected MACs of one sample when a loop exits after iteration k with
 * probability `exit[k]` (probabilities over iterations, summing to 1): the
 * cost outside the loop plus the expected cost of the iterations run.
 */
export const expectedMacs = (summary: Summary, loop: LoopCost, exit: readonly number[]): number => {
  const inLoop = loop.macsPerIteration.reduce((a, b) => a + b, 0)
  const outside = summary.cost.macs - inLoop
  let cumulative = 0
  let expected = 0
  for (let k = 0; k < loop.iterations; k++) {
    cumulative += loop.macsPerIteration[k]!
    expected += (exit[k] ?? 0) * cumulative
  }
  return outside + expected
}

/** MACs of one sample that exits after iteration `k` of `loop` (0-based). */
export const macsAtExit = (summary: Summary, loop: LoopCost, k: number): number =>
  expectedMacs(
    summary,
    loop,
    loop.macsPerIteration.map((_, i) => (i === k ? 1 : 0)),
  )

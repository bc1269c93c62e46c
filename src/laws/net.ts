/**
 * Networks for laws, as fast-check 4 arbitraries: the one network recipe of
 * `cmkg/laws` (re-exported by `arbitraries.ts`) and of cmkg's own laws.
 *
 * `wellShaped(input)` builds a network from a generated recipe while tracking
 * the shape, so every generated network type-checks on `input`; shrinking
 * works on the recipe, so failures shrink to short networks. Each recipe step
 * is one of the node kinds in `KINDS`; `include` forces a kind into every
 * network and `reached(net, input)` lists the kinds a network's gradients
 * go through, so a law can assert that it covered them all. `anyNet` ignores
 * shapes entirely: it is for "the checker never throws".
 *
 * @module
 */
import fc from "fast-check"
import * as Net from "../dsl/Net.ts"
import type * as Shape from "../dsl/Shape.ts"
import * as Check from "../interpreters/shape-check/index.ts"

interface Step {
  readonly kind: number
  readonly a: number
  readonly b: number
  readonly c: number
}

const step: fc.Arbitrary<Step> = fc.record({
  kind: fc.nat({ max: 99 }),
  a: fc.nat({ max: 99 }),
  b: fc.nat({ max: 99 }),
  c: fc.nat({ max: 99 }),
})

/**
 * What a generated layer can be: every node kind, and the variants whose
 * gradients take different code paths (strides, dilation, groups, explicit
 * padding; pools whose windows overlap the padding; a loop's shared or
 * per-iteration batch norms). `reached` finds them in a network.
 */
export const KINDS = [
  "conv",
  "conv-strided",
  "conv-dilated",
  "conv-grouped",
  "conv-padded",
  "batchNorm",
  "relu",
  "sigmoid",
  "identity",
  "maxPool",
  "maxPool-padded",
  "avgPool",
  "avgPool-same",
  "avgPool-explicit",
  "globalAvgPool",
  "flatten",
  "dense",
  "reshape",
  "pixelShuffle",
  "scope",
  "residual",
  "residual-shortcut",
  "add",
  "mul",
  "concat",
  "tap",
  "loop",
  "loop-shared",
] as const
export type Kind = (typeof KINDS)[number]

export interface NetOptions {
  /** Allow `sigmoid` (whose second derivative tfjs gets wrong without cmkg's gradients). */
  readonly sigmoid?: boolean
  /** Allow `Loop` nodes. */
  readonly loops?: boolean
  /** Max channels of generated convs. */
  readonly maxChannels?: number
  /** End with globalAvgPool + dense. */
  readonly head?: boolean
  /** Allow grouped convolutions. */
  readonly groups?: boolean
  /**
   * Every generated network contains a layer of this kind, after a layer with
   * parameters (so that its gradient reaches them): at a generated position
   * where it fits, else right after a leading convolution.
   */
  readonly include?: Kind
}

/** The kinds `wellShaped` can generate with these options. */
export const kinds = (o: NetOptions): Kind[] =>
  KINDS.filter(
    (k) =>
      (o.sigmoid === true || k !== "sigmoid") &&
      (o.loops === true || (k !== "loop" && k !== "loop-shared")) &&
      (o.groups === true || k !== "conv-grouped"),
  )

interface Names {
  readonly tap: () => string
  readonly scope: () => string
}

/** Builds one well-shaped layer of `kind` for input `x` (adapting it to `x` where it can), or undefined. */
const layer = (
  kind: Kind,
  s: Step,
  x: Shape.Shape,
  o: NetOptions,
  names: Names,
): Net.Net<string> | undefined => {
  const maxC = o.maxChannels ?? 4
  const image = x.length === 3
  const [h, w, c] = image ? (x as [number, number, number]) : [0, 0, x[0]!]
  const units = 1 + (s.b % maxC)
  const conv = (k: number, stride: number, dilation: number, padding: Net.Padding | number, groups = 1) => {
    const eff = (k - 1) * dilation + 1
    const fits = padding !== "valid" || (h >= eff && w >= eff)
    const filters = groups * (1 + (s.b % Math.max(1, Math.floor(maxC / groups))))
    return Net.conv2d(filters, k, {
      stride,
      dilation,
      groups,
      padding: fits ? padding : "same",
      bias: s.a % 2 === 0,
    })
  }
  const sameOrValid = s.c % 2 === 0 ? "same" : "valid"
  switch (kind) {
    case "conv":
      return image ? conv(1 + (s.a % 3), 1, 1, sameOrValid) : undefined
    case "conv-strided":
      return image ? conv(1 + (s.a % 3), 2, 1, sameOrValid) : undefined
    case "conv-dilated":
      // Stride and dilation together take the interpreter's strided-slice path.
      return image ? conv(2 + (s.a % 2), 1 + (s.b % 2), 2, sameOrValid) : undefined
    case "conv-grouped": {
      if (!image || !o.groups) return undefined
      const grouped = conv(1 + (s.a % 3), 1, 1, sameOrValid, 2)
      return c % 2 === 0 ? grouped : Net.seq(Net.conv2d(2 * c, 1), grouped)
    }
    case "conv-padded":
      return image
        ? conv(
            2 + (s.a % 2),
            1 + (s.b % 2),
            1,
            s.c % 2 === 0
              ? 1
              : [
                  [0, 1],
                  [1, 0],
                ],
          )
        : undefined
    case "batchNorm":
      return Net.batchNorm()
    case "relu":
      return Net.relu
    case "sigmoid":
      return o.sigmoid ? Net.sigmoid : undefined
    case "identity":
      return Net.identity
    case "maxPool":
    case "avgPool": {
      if (!image || h < 2 || w < 2) return undefined
      const pool = kind === "maxPool" ? Net.maxPool : Net.avgPool
      return pool(2, { stride: 1 + (s.b % 2) })
    }
    case "maxPool-padded":
    case "avgPool-same":
    case "avgPool-explicit": {
      if (!image) return undefined
      // Windows that overlap the padding: "same" with stride 1 (or a 3-window with stride 2) always pads.
      const k = 2 + (s.a % 2)
      const pool = kind === "maxPool-padded" ? Net.maxPool : Net.avgPool
      const explicit = kind === "avgPool-explicit" || (kind === "maxPool-padded" && s.c % 2 === 0)
      if (!explicit) return pool(k, { stride: k === 3 ? 1 + (s.b % 2) : 1, padding: "same" })
      return pool(k, {
        stride: 1 + (s.b % 2),
        padding:
          s.c % 4 < 2
            ? 1
            : [
                [1, 0],
                [0, 1],
              ],
      })
    }
    case "globalAvgPool":
      return image ? Net.globalAvgPool : undefined
    case "flatten":
      // Small enough for a dense layer after it.
      return image && h * w * c > 48 ? Net.seq(Net.conv2d(1, 1), Net.flatten) : Net.flatten
    case "dense": {
      const d = Net.dense(1 + (s.b % (2 * maxC)), { bias: s.a % 2 === 0 })
      return image ? Net.seq(Net.globalAvgPool, d) : d
    }
    case "reshape":
      if (!image) return Net.reshape([1, 1, c])
      return s.a % 2 === 0 ? Net.reshape([w, h, c]) : Net.reshape([h * w, 1, -1])
    case "pixelShuffle":
      if (!image) return undefined
      return c % 4 === 0 ? Net.pixelShuffle(2) : Net.seq(Net.conv2d(4, 1), Net.pixelShuffle(2))
    case "scope":
      return Net.scope(
        names.scope(),
        image ? Net.seq(Net.conv2d(units, 1 + (s.a % 3)), Net.batchNorm()) : Net.dense(units),
      )
    case "residual":
    case "residual-shortcut": {
      const body = image ? Net.seq(Net.conv2d(c, 3, { bias: false }), Net.batchNorm()) : Net.dense(c)
      const shortcut = image ? Net.conv2d(c, 1, { bias: false }) : Net.dense(c, { bias: false })
      return kind === "residual" ? Net.residual(body) : Net.residual(body, shortcut)
    }
    case "add":
      return Net.add(image ? Net.conv2d(c, 1) : Net.dense(c), Net.identity)
    case "mul": {
      const gate = o.sigmoid && s.a % 2 === 0 ? Net.sigmoid : Net.relu
      return Net.mul(Net.seq(image ? Net.conv2d(c, 1) : Net.dense(c), gate), Net.identity)
    }
    case "concat":
      return Net.concat(image ? Net.conv2d(units, 1) : Net.dense(units), Net.identity)
    case "tap":
      return Net.tap(names.tap())
    case "loop":
    case "loop-shared": {
      if (!image || !o.loops) return undefined
      return Net.loop({
        iterations: 1 + (s.a % 3),
        body: Net.seq(Net.conv2d(units, 3), Net.batchNorm(), Net.relu),
        feedback: Net.seq(Net.conv2d(c, 1), o.sigmoid ? Net.sigmoid : Net.relu),
        readout: Net.seq(Net.conv2d(units, 1), Net.tap(names.tap())),
        batchNorm: kind === "loop" ? "perIteration" : "shared",
      })
    }
  }
}

/** Layers from recipe steps, with the `include`d kind at step `at` (or first when it fits nowhere later). */
const build = (
  input: Shape.Shape,
  o: NetOptions,
  steps: readonly Step[],
  forced: { readonly kind: Kind; readonly step: Step; readonly at: number } | undefined,
): Net.Net<string>[] | undefined => {
  let taps = 0
  let scopes = 0
  const names: Names = { tap: () => `t${taps++}`, scope: () => `s${scopes++}` }
  const layers: Net.Net<string>[] = []
  let x = input
  const emit = (l: Net.Net<string> | undefined): boolean => {
    if (l === undefined) return false
    const checked = Check.check(l, x)
    if (!checked.ok) return false // a recipe step that does not fit is skipped, never emitted
    layers.push(l)
    x = checked.summary.output
    return true
  }
  // Parameters upstream of the included layer: a leading convolution.
  if (forced !== undefined) emit(Net.conv2d(1 + (forced.step.c % (o.maxChannels ?? 4)), 3))
  let pending = forced
  steps.forEach((s, i) => {
    if (pending !== undefined && i >= pending.at && emit(layer(pending.kind, pending.step, x, o, names)))
      pending = undefined
    emit(layer(KINDS[s.kind % KINDS.length]!, s, x, o, names))
  })
  if (pending !== undefined && !emit(layer(pending.kind, pending.step, x, o, names))) return undefined
  if (o.head === true) {
    if (x.length === 3) layers.push(Net.globalAvgPool)
    layers.push(Net.dense(3))
  }
  return layers
}

/** A list of layers that composes into a well-shaped network on `input`. */
export const wellShapedLayers = (
  input: Shape.Shape,
  o: NetOptions = {},
  maxLength = 6,
): fc.Arbitrary<Net.Net<string>[]> => {
  const steps = fc.array(step, { minLength: 1, maxLength })
  const include = o.include
  if (include === undefined) return steps.map((ss) => build(input, o, ss, undefined)!)
  return fc.tuple(steps, step, fc.nat({ max: maxLength })).map(([ss, s, at]) => {
    const forced = { kind: include, step: s, at }
    const layers = build(input, o, ss, forced) ?? build(input, o, ss, { ...forced, at: 0 })
    if (layers === undefined) throw new Error(`${include} does not fit after a convolution on ${input}`)
    return layers
  })
}

/** Rows or columns of padding a "same" window op adds on one axis (TensorFlow's rule). */
const samePad = (size: number, kernel: number, stride: number): number =>
  Math.max((Math.ceil(size / stride) - 1) * stride + kernel - size, 0)

/**
 * The kinds in `net` (on `input`) that have parameters upstream of them, so
 * that their gradients are part of every parameter's gradient: the coverage
 * a law over generated networks can assert.
 */
export const reached = (net: Net.AnyNet, input: Shape.Shape): Set<Kind> => {
  const found = new Set<Kind>()
  const hasParams = (n: Net.AnyNet, x: Shape.Shape): boolean => {
    const c = Check.check(n, x)
    return c.ok && c.summary.cost.params > 0
  }
  /** Walks `n` on `x`; `upstream`: a parameter precedes it. Returns the output shape. */
  const walk = (n: Net.AnyNet, x: Shape.Shape, upstream: boolean): Shape.Shape => {
    const out = (): Shape.Shape => {
      const c = Check.check(n, x)
      if (!c.ok)
        throw new Error(`reached: not well-shaped on ${x}: ${c.errors.map(Check.formatError).join("; ")}`)
      return c.summary.output
    }
    const add = (...ks: Kind[]) => {
      if (upstream) for (const k of ks) found.add(k)
    }
    switch (n._tag) {
      case "Conv2d":
        add("conv")
        if (n.stride[0] > 1 || n.stride[1] > 1) add("conv-strided")
        if (n.dilation[0] > 1 || n.dilation[1] > 1) add("conv-dilated")
        if (n.groups > 1) add("conv-grouped")
        if (typeof n.padding !== "string") add("conv-padded")
        return out()
      case "BatchNorm":
        add("batchNorm")
        return out()
      case "Relu":
        add("relu")
        return out()
      case "Sigmoid":
        add("sigmoid")
        return out()
      case "Identity":
        add("identity")
        return out()
      case "Pool": {
        const [h, w] = x as [number, number, number]
        const pads =
          n.padding === "valid"
            ? false
            : n.padding === "same"
              ? samePad(h, n.kernel[0], n.stride[0]) + samePad(w, n.kernel[1], n.stride[1]) > 0
              : n.padding.flat().some((p) => p > 0)
        if (n.op === "max") add(pads ? "maxPool-padded" : "maxPool")
        else add(!pads ? "avgPool" : n.padding === "same" ? "avgPool-same" : "avgPool-explicit")
        return out()
      }
      case "GlobalAvgPool":
        add("globalAvgPool")
        return out()
      case "Dense":
        add("dense")
        return out()
      case "Flatten":
        add("flatten")
        return out()
      case "Reshape":
        add("reshape")
        return out()
      case "PixelShuffle":
        add("pixelShuffle")
        return out()
      case "Tap":
        add("tap")
        return out()
      case "Seq": {
        let y = x
        let up = upstream
        for (const c of n.nets) {
          const next = walk(c, y, up)
          up = up || hasParams(c, y)
          y = next
        }
        return y
      }
      case "Scope":
        add("scope")
        walk(n.net, x, upstream)
        return out()
      case "Residual":
        add(n.shortcut === undefined ? "residual" : "residual-shortcut")
        walk(n.body, x, upstream)
        if (n.shortcut !== undefined) walk(n.shortcut, x, upstream)
        return out()
      case "Parallel":
        add(n.combine)
        for (const b of n.branches) walk(b, x, upstream)
        return out()
      case "Loop": {
        add(n.batchNorm === "perIteration" ? "loop" : "loop-shared")
        const h = walk(n.body, x, upstream)
        // From the second iteration on, the body's own parameters are upstream of everything in the loop.
        const up = upstream || hasParams(n.body, x)
        walk(n.feedback, h, up)
        walk(n.readout, h, up)
        return out()
      }
    }
  }
  walk(net, input, false)
  return found
}

/** A well-shaped network on `input`, as a sequence of scoped layers. */
export const wellShaped = (
  input: Shape.Shape,
  o: NetOptions = {},
  maxLength = 6,
): fc.Arbitrary<Net.Net<string>> => wellShapedLayers(input, o, maxLength).map((ls) => Net.seq(...ls))

/** Small image input shapes `[H, W, C]`. */
export const imageShape = (max = 8): fc.Arbitrary<Shape.Shape> =>
  fc.tuple(fc.integer({ min: 2, max }), fc.integer({ min: 2, max }), fc.integer({ min: 1, max: 4 }))

/** Any network, shapes ignored (including nonsense sizes): for totality laws. */
export const anyNet: fc.Arbitrary<Net.AnyNet> = fc.letrec<{ net: Net.AnyNet }>((tie) => ({
  net: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc
      .tuple(fc.integer({ min: -1, max: 6 }), fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 3 }))
      .map(([f, k, g]) =>
        Net.conv2d(f, k, { groups: g, stride: 1 + (k % 2), padding: k % 2 === 0 ? "valid" : "same" }),
      ),
    fc.constantFrom(Net.batchNorm(), Net.relu, Net.sigmoid, Net.identity, Net.globalAvgPool, Net.flatten),
    fc.integer({ min: -1, max: 5 }).map((u) => Net.dense(u)),
    fc.integer({ min: 0, max: 3 }).map((k) => Net.maxPool(k)),
    fc.integer({ min: 0, max: 3 }).map((r) => Net.pixelShuffle(r)),
    fc.array(fc.integer({ min: -2, max: 6 }), { maxLength: 3 }).map((s) => Net.reshape(s)),
    fc.string({ maxLength: 3 }).map((n) => Net.tap(n)),
    fc.array(tie("net"), { maxLength: 3 }).map((ns) => Net.seq(...ns)),
    fc.tuple(fc.string({ maxLength: 2 }), tie("net")).map(([n, c]) => Net.scope(n, c)),
    fc.tuple(tie("net"), fc.option(tie("net"), { nil: undefined })).map(([b, s]) => Net.residual(b, s)),
    fc.array(tie("net"), { maxLength: 3 }).map((ns) => Net.add(...ns)),
    fc.array(tie("net"), { maxLength: 3 }).map((ns) => Net.concat(...ns)),
    fc
      .tuple(fc.integer({ min: -1, max: 3 }), tie("net"), tie("net"), tie("net"))
      .map(([it, b, f, r]) => Net.loop({ iterations: it, body: b, feedback: f, readout: r })),
  ),
})).net

/** Any shape, including empty and non-positive dimensions. */
export const anyShape: fc.Arbitrary<Shape.Shape> = fc.array(fc.integer({ min: -1, max: 9 }), { maxLength: 4 })

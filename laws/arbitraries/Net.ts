/**
 * Generators of networks for the laws.
 *
 * `wellShaped(input)` builds a network from a generated recipe while tracking
 * the shape, so every generated network type-checks on `input`; shrinking
 * works on the recipe, so failures shrink to short networks. `anyNet` ignores
 * shapes entirely: it is for "the checker never throws".
 *
 * @module
 */
import fc from "fast-check"
import * as Net from "../../src/dsl/Net.ts"
import type * as Shape from "../../src/dsl/Shape.ts"
import * as Check from "../../src/interpreters/shape-check/index.ts"

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

export interface Options {
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
}

/** Builds one well-shaped layer for input `x`, or undefined when the recipe step does not apply. */
const layer = (s: Step, x: Shape.Shape, o: Options, tapIndex: () => number): Net.Net<string> | undefined => {
  const maxC = o.maxChannels ?? 4
  const image = x.length === 3
  const [h, w, c] = image ? (x as [number, number, number]) : [0, 0, x[0]!]
  switch (s.kind % 11) {
    case 0:
    case 1: {
      if (!image) return undefined
      const k = 1 + (s.a % 3)
      const stride = 1 + (s.b % 2)
      const dilation = k > 1 && s.c % 4 === 0 ? 2 : 1
      const padding = s.c % 3 === 0 ? "valid" : s.c % 3 === 1 ? "same" : 1
      const groups = o.groups && c % 2 === 0 && s.a % 5 === 0 ? 2 : 1
      const filters = groups * (1 + (s.b % Math.max(1, Math.floor(maxC / groups))))
      const eff = (k - 1) * dilation + 1
      if (padding === "valid" && (h < eff || w < eff)) return undefined
      if (padding === 1 && (h + 2 < eff || w + 2 < eff)) return undefined
      return Net.conv2d(filters, k, { stride, padding, dilation, groups, bias: s.a % 2 === 0 })
    }
    case 2:
      return Net.batchNorm()
    case 3:
      return Net.relu
    case 4:
      return o.sigmoid ? Net.sigmoid : Net.identity
    case 5:
      if (!image || h < 2 || w < 2) return undefined
      return s.a % 2 === 0
        ? Net.maxPool(2, { stride: 1 + (s.b % 2) })
        : Net.avgPool(2, { stride: 1 + (s.b % 2), padding: "same" })
    case 6:
      if (!image) return undefined
      return Net.residual(
        Net.seq(Net.conv2d(c, 3, { bias: false }), Net.batchNorm()),
        s.a % 2 === 0 ? undefined : Net.conv2d(c, 1, { bias: false }),
      )
    case 7:
      if (!image) return undefined
      return s.a % 3 === 0
        ? Net.add(Net.conv2d(c, 1), Net.identity)
        : s.a % 3 === 1
          ? Net.mul(Net.seq(Net.conv2d(c, 1), o.sigmoid ? Net.sigmoid : Net.relu), Net.identity)
          : Net.concat(Net.conv2d(1 + (s.b % maxC), 1), Net.identity)
    case 8:
      return Net.tap(`t${tapIndex()}`)
    case 9:
      if (!image || c % 4 !== 0) return image && s.a % 2 === 0 ? Net.conv2d(4, 1) : undefined
      return Net.pixelShuffle(2)
    case 10: {
      if (!image || !o.loops) return undefined
      const inner = 1 + (s.b % maxC)
      return Net.loop({
        iterations: 1 + (s.a % 3),
        body: Net.seq(Net.conv2d(inner, 3), Net.batchNorm(), Net.relu),
        feedback: Net.seq(Net.conv2d(c, 1), o.sigmoid ? Net.sigmoid : Net.relu),
        readout: Net.seq(Net.conv2d(inner, 1), Net.tap(`t${tapIndex()}`)),
      })
    }
  }
  return undefined
}

/** A list of layers that composes into a well-shaped network on `input`. */
export const wellShapedLayers = (
  input: Shape.Shape,
  o: Options = {},
  maxLength = 6,
): fc.Arbitrary<Net.Net<string>[]> =>
  fc.array(step, { minLength: 1, maxLength }).map((steps) => {
    let taps = 0
    const layers: Net.Net<string>[] = []
    let x = input
    for (const s of steps) {
      const l = layer(s, x, o, () => taps++)
      if (l === undefined) continue
      const checked = Check.check(l, x)
      if (!checked.ok) continue // a recipe step that does not fit is skipped, never emitted
      layers.push(l)
      x = checked.summary.output
    }
    if (o.head === true) {
      if (x.length === 3) layers.push(Net.globalAvgPool)
      layers.push(Net.dense(3))
    }
    return layers
  })

/** A well-shaped network on `input`, as a sequence of scoped layers. */
export const wellShaped = (
  input: Shape.Shape,
  o: Options = {},
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

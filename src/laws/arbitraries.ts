/**
 * fast-check 4 arbitraries for laws about cmkg values: networks with their
 * input shapes, losses over models, tensors of a shape, parameter trees.
 *
 * Networks are built from a generated recipe while tracking the shape, so
 * every generated network type-checks on its input; shrinking works on the
 * recipe, so a failing network shrinks to a short one (`wellShaped`). `anyNet`
 * ignores shapes (for "the checker never throws" laws). Losses are built the
 * same way from a recipe over the signals the models expose (outputs, taps,
 * slices), each term only when its shapes fit (`lossOver`).
 *
 * Tensors and parameters hold float32 numbers (so both interpreters see the
 * same values); parameter trees are drawn from a seed (shrinking keeps the
 * network and varies nothing else).
 *
 * The network recipe (`wellShaped`, `anyNet`, node kinds and `reached`) lives
 * in `net.ts`, shared with cmkg's own laws; it is re-exported here.
 *
 * @module
 */
import fc from "fast-check"
import * as Loss from "../dsl/Loss.ts"
import * as Net from "../dsl/Net.ts"
import * as Program from "../dsl/Program.ts"
import * as Shape from "../dsl/Shape.ts"
import type * as Ref from "../interpreters/reference/index.ts"
import * as Tensors from "../interpreters/reference/Tensor.ts"
import * as Check from "../interpreters/shape-check/index.ts"
import { imageShape, type NetOptions, wellShaped, wellShapedLayers } from "./net.ts"
import { drawParams, type LossValue, type NetValue, summaries } from "./values.ts"

export {
  anyNet,
  anyShape,
  imageShape,
  KINDS,
  type Kind,
  kinds,
  type NetOptions,
  reached,
  wellShaped,
  wellShapedLayers,
} from "./net.ts"

// ---- networks with their inputs ------------------------------------------------------

export interface NetValueOptions extends NetOptions {
  /** Largest height and width of the generated input images (default 7). */
  readonly maxSize?: number
  /** Most recipe steps (layers before the head) per network (default 5). */
  readonly maxLayers?: number
}

/**
 * A well-shaped network with its image input shape. By default everything the
 * tf interpreter supports is on: loops, grouped convolutions, sigmoid, and a
 * globalAvgPool + dense head; turn parts off with `options`.
 */
export const netValue = (options: NetValueOptions = {}): fc.Arbitrary<NetValue> => {
  const o: NetOptions = { loops: true, groups: true, sigmoid: true, head: true, ...options }
  return imageShape(options.maxSize ?? 7).chain((input) =>
    wellShaped(input, o, options.maxLayers ?? 5).map((net) => ({ net, input })),
  )
}

// ---- tensors and parameters ----------------------------------------------------------------

/**
 * A float64 tensor of `shape` holding float32 numbers in [min, max] (default ±1), shrinking
 * element-wise. Values are spread over the range (`fc.noBias`): fast-check's default bias
 * towards edge values (±1, 0, subnormals) makes most elements 0 or ±1, which hides the
 * terms a derivative law is about; pass `edgeValues: true` to have it back.
 */
export const tensor = (
  shape: readonly number[],
  range: { readonly min?: number; readonly max?: number; readonly edgeValues?: boolean } = {},
): fc.Arbitrary<Ref.Tensor> => {
  const n = Tensors.size(shape)
  const float = fc.float({
    min: Math.fround(range.min ?? -1),
    max: Math.fround(range.max ?? 1),
    noNaN: true,
    noDefaultInfinity: true,
  })
  const value = range.edgeValues === true ? float : fc.noBias(float)
  return fc.array(value, { minLength: n, maxLength: n }).map((xs) => Tensors.make(shape, xs))
}

/** A batch of `batch` inputs of per-sample shape `input`: a tensor `[batch, ...input]`. */
export const batchOf = (input: Shape.Shape, batch: number): fc.Arbitrary<Ref.Tensor> =>
  tensor([batch, ...input])

/**
 * Parameter trees (and batch-norm state) of `net` on `input`, keyed by the
 * shape checker's paths, float32 values drawn from a generated seed (see `drawParams`).
 */
export const parameters = (
  net: Net.AnyNet,
  input: Shape.Shape,
): fc.Arbitrary<{ readonly params: Ref.Params; readonly state: Ref.State }> =>
  fc.integer({ min: 0, max: 2 ** 31 - 1 }).map((seed) => drawParams(net, input, seed))

// ---- losses over models ------------------------------------------------------------------------

interface LossStep {
  readonly kind: number
  readonly a: number
  readonly b: number
  readonly c: number
  readonly d: number
}

const lossStep: fc.Arbitrary<LossStep> = fc.record({
  kind: fc.nat({ max: 99 }),
  a: fc.nat({ max: 99 }),
  b: fc.nat({ max: 99 }),
  c: fc.nat({ max: 99 }),
  d: fc.nat({ max: 99 }),
})

/** A signal a loss can read, with its per-sample shape. */
interface Readable {
  readonly signal: Loss.Signal
  readonly shape: Shape.Shape
}

const FIELDS: readonly Loss.Field[] = ["joints3d", "joints2d", "depth", "rgb"]

const pick = <T>(xs: readonly T[], i: number): T | undefined =>
  xs.length === 0 ? undefined : xs[i % xs.length]

interface LossBuild {
  readonly readable: readonly Readable[]
  readonly withParams: readonly string[]
  readonly fields: Partial<Record<Loss.Field, Shape.Shape>>
  adapters: number
}

/** A field of `shape` (an existing one of that shape, or a fresh one), or undefined when all four are taken. */
const fieldOf = (b: LossBuild, shape: Shape.Shape): Readable | undefined => {
  const f =
    FIELDS.find((f) => b.fields[f] !== undefined && Shape.equals(b.fields[f], shape)) ??
    FIELDS.find((f) => b.fields[f] === undefined)
  if (f === undefined) return undefined
  b.fields[f] = shape
  return { signal: Loss.field(f), shape }
}

/** `s` or, when `r % 3 === 0` and its last axis has room, a slice of its last axis. */
const sliced = (s: Readable, r: number): Readable => {
  const last = s.shape[s.shape.length - 1] ?? 1
  if (r % 3 !== 0 || last < 2) return s
  const start = (r >> 2) % last
  const size = 1 + ((r >> 4) % (last - start))
  return { signal: Loss.slice(s.signal, start, size), shape: [...s.shape.slice(0, -1), size] }
}

/** A target for `p`: another signal of the same shape (when `r` is even and one exists) or a field. */
const targetOf = (b: LossBuild, p: Readable, r: number): Readable | undefined => {
  const same = b.readable.filter((s) => s.signal !== p.signal && Shape.equals(s.shape, p.shape))
  return r % 2 === 0 && same.length > 0 ? pick(same, r >> 1) : fieldOf(b, p.shape)
}

const term = (s: LossStep, b: LossBuild, nesting = 0): Loss.Loss | undefined => {
  const signals = b.readable
  switch (s.kind % 8) {
    case 0:
    case 1: {
      const p = sliced(pick(signals, s.a)!, s.d)
      const t = targetOf(b, p, s.c)
      if (t === undefined) return undefined
      const reduce = s.b % 2 === 0 ? "sum" : "mean"
      return s.kind % 8 === 0
        ? Loss.squaredError(p.signal, t.signal, reduce)
        : Loss.absoluteError(p.signal, t.signal, reduce)
    }
    case 2: {
      const images = signals.filter((x) => x.shape.length === 3)
      const pairs = images.flatMap((x) =>
        images
          .filter((y) => y !== x && y.shape[0] === x.shape[0] && y.shape[1] === x.shape[1])
          .map((y) => [x.signal, y.signal] as const),
      )
      if (pairs.length === 0) return undefined
      const chosen = s.b % 2 === 0 ? [pick(pairs, s.a)!] : [pick(pairs, s.a)!, pick(pairs, s.c)!]
      return { _tag: "AttentionTransfer", pairs: chosen, variant: s.d % 2 === 0 ? "paper" : "code" }
    }
    case 3: {
      const st = pick(signals, s.a)!
      const fits = (t: Readable) =>
        t !== st &&
        t.shape.length === st.shape.length &&
        Shape.equals(t.shape.slice(0, -1), st.shape.slice(0, -1))
      const teachers = signals.filter(fits)
      const teacher = s.c % 3 === 0 || teachers.length === 0 ? fieldOf(b, st.shape) : pick(teachers, s.b)!
      if (teacher === undefined) return undefined
      const needsAdapter = !Shape.equals(teacher.shape, st.shape)
      const adapter = needsAdapter || s.c % 2 === 1 ? `adapter${b.adapters++}` : undefined
      return Loss.transfer(st.signal, teacher.signal, adapter)
    }
    case 4: {
      const p = sliced(pick(signals, s.a)!, s.d)
      const t = targetOf(b, p, s.c)
      const vector = pick(
        signals.filter((x) => x.shape.length === 1),
        s.b,
      )
      if (t === undefined || vector === undefined) return undefined
      const logVariance = Loss.slice(vector.signal, (s.b >> 1) % vector.shape[0]!, 1)
      return {
        _tag: "Uncertainty",
        prediction: p.signal,
        target: t.signal,
        logVariance,
        norm: s.c % 4 < 2 ? "l2" : "l1",
        reduce: s.d % 2 === 0 ? "mean" : "norm",
      }
    }
    case 5: {
      const model = pick(b.withParams, s.a)
      if (model === undefined) return undefined
      return { _tag: "Norm", model, sigma: 0.01 * (1 + (s.b % 10)), p: s.c % 2 === 0 ? 2 : 1 }
    }
    case 6: {
      const model = pick(b.withParams, s.a)
      if (model === undefined) return undefined
      return { _tag: "WeightedNorm", model, phi: `phi_${model}`, p: s.c % 2 === 0 ? 2 : 1 }
    }
    case 7: {
      if (nesting > 1) return undefined
      const inner = term({ kind: s.c % 7, a: s.d, b: s.a, c: s.b, d: s.c }, b, nesting + 1)
      const factors = [0.5, -1, 2, 10, 1e-2]
      return inner === undefined ? undefined : Loss.scale(factors[s.b % factors.length]!, inner)
    }
  }
  return undefined
}

/**
 * Losses over `models`: 1 to `maxTerms` (default 3) terms of every kind (squared
 * and absolute errors, attention transfer, supervision transfer with and without
 * adapters, uncertainty, norms, φ-weighted norms, scales and sums) over the signals
 * the models expose (outputs, taps, slices of their last axis) and the data fields,
 * each term only when its shapes fit. The value records the fields' shapes it chose.
 * Every model must type-check on its input.
 */
export const lossOver = (
  models: readonly Program.Model[],
  options: { readonly maxTerms?: number } = {},
): fc.Arbitrary<LossValue> => {
  const checked = summaries(models)
  const readable: Readable[] = models.flatMap((m) => {
    const s = checked[m.name]!
    return [
      { signal: { _tag: "Output", model: m.name } as Loss.Signal, shape: s.output ?? [] },
      ...Object.entries(s.taps).map(([tap, shape]) => ({
        signal: { _tag: "Tap", model: m.name, tap } as Loss.Signal,
        shape,
      })),
    ]
  })
  const withParams = models.filter((m) => checked[m.name]!.params.length > 0).map((m) => m.name)
  return fc.array(lossStep, { minLength: 1, maxLength: options.maxTerms ?? 3 }).map((steps) => {
    const b: LossBuild = { readable, withParams, fields: {}, adapters: 0 }
    const terms = steps.flatMap((s) => term(s, b) ?? [])
    if (terms.length === 0)
      terms.push(Loss.squaredError(readable[0]!.signal, fieldOf(b, readable[0]!.shape)!.signal))
    return { loss: terms.length === 1 ? terms[0]! : Loss.sum(...terms), models, fields: { ...b.fields } }
  })
}

/**
 * A student and a teacher model on one generated image input (each a
 * well-shaped network, a tap `feat` after its body, half of them with a
 * dense(3) head, after a globalAvgPool when the body ends on an image), and a
 * loss over them from {@link lossOver}.
 */
export const lossValue = (
  options: { readonly maxSize?: number; readonly maxLayers?: number; readonly maxTerms?: number } = {},
): fc.Arbitrary<LossValue> => {
  const o: NetOptions = { loops: true, groups: true, sigmoid: true }
  const net = (input: Shape.Shape) =>
    fc
      .tuple(wellShapedLayers(input, o, options.maxLayers ?? 3), fc.boolean())
      .map(([layers, head]) => {
        // The recipe's flatten, dense and reshape steps can leave a vector: it needs no pooling.
        const body = Check.check(Net.seq(...layers), input)
        const image = body.ok && body.summary.output.length === 3
        const top = head ? [...(image ? [Net.globalAvgPool] : []), Net.dense(3)] : []
        return Net.seq(...layers, Net.tap("feat"), ...top)
      })
  return imageShape(options.maxSize ?? 5)
    .chain((input) =>
      fc
        .tuple(net(input), net(input))
        .map(([s, t]) => [Program.model("student", s, input), Program.model("teacher", t, input)]),
    )
    .chain((models) => lossOver(models, options))
}

/**
 * The shape-check meaning of `Loss` values: every signal a loss reads exists
 * and the signals it compares have compatible shapes, checked against each
 * model's static {@link Check.Summary}, the data fields' per-sample shapes and
 * the declared meta-parameters. Never throws; ill-formed losses become
 * {@link Check.ShapeError}s with a path such as
 * `loss/Sum/term 1/Scale/AttentionTransfer/pair 2`.
 *
 * Also returns the parameter specs of the losses' adapters (Gupta's t: a 1×1
 * convolution with kernel `[1, 1, C_s, C_t]` on image signals, a dense map with
 * kernel `[D_s, D_t]` on vectors, both with a bias `[C_t]`), so that a runner
 * can initialise them, and the MACs the loss adds per sample (the adapters'; as
 * in `Cost`, element-wise work counts 0).
 *
 * @module
 */
import type * as Experiment from "../../dsl/Experiment.ts"
import type * as Loss from "../../dsl/Loss.ts"
import * as Shape from "../../dsl/Shape.ts"
import type * as Check from "./index.ts"

export interface LossContext {
  /** Each model's static summary (from `check(net, input)`), by model name. */
  readonly models: Readonly<Record<string, Check.Summary>>
  /** Per-sample shapes of the data fields the batches provide. */
  readonly fields: Readonly<Partial<Record<Loss.Field, Shape.Shape>>>
  /** Declared meta-parameters φ. */
  readonly metaParams: readonly Experiment.MetaParam[]
}

export interface LossReport {
  readonly errors: readonly Check.ShapeError[]
  /** Parameter specs of every adapter, by adapter name (paths `kernel` and `bias`). */
  readonly adapters: Readonly<Record<string, readonly Check.ParamSpec[]>>
  /** MACs per sample added by the loss (its adapters). */
  readonly macs: number
}

interface Acc {
  readonly errors: Check.ShapeError[]
  readonly adapters: Map<string, { specs: Check.ParamSpec[]; at: string }>
  macs: number
}

const fail = (acc: Acc, path: string, message: string): undefined => {
  acc.errors.push({ _tag: "ShapeError", path, message })
  return undefined
}

const describe = (s: Loss.Signal): string => {
  switch (s._tag) {
    case "Output":
      return `output of "${s.model}"`
    case "Tap":
      return `tap "${s.tap}" of "${s.model}"`
    case "Field":
      return `field "${s.field}"`
    case "Slice":
      return `${describe(s.signal)}[${s.start}:${s.start + s.size}]`
    case "Reproject":
      return `reproject(${describe(s.pose)}, ${describe(s.camera)})`
    default: {
      const _: never = s
      return _
    }
  }
}

/** The per-sample shape a signal has, or `undefined` (with an error, unless a model is itself ill-formed). */
const signalShape = (s: Loss.Signal, ctx: LossContext, acc: Acc, path: string): Shape.Shape | undefined => {
  switch (s._tag) {
    case "Output": {
      const m = ctx.models[s.model]
      if (m === undefined) return fail(acc, path, `unknown model "${s.model}"${known(ctx)}`)
      return m.output
    }
    case "Tap": {
      const m = ctx.models[s.model]
      if (m === undefined) return fail(acc, path, `unknown model "${s.model}"${known(ctx)}`)
      const t = m.taps[s.tap]
      if (t === undefined && m.output !== undefined)
        return fail(
          acc,
          path,
          `model "${s.model}" has no tap "${s.tap}" (taps: ${Object.keys(m.taps).join(", ") || "none"})`,
        )
      return t
    }
    case "Field": {
      const f = ctx.fields[s.field]
      if (f === undefined)
        return fail(
          acc,
          path,
          `the data has no field "${s.field}" (fields: ${Object.keys(ctx.fields).join(", ") || "none"})`,
        )
      return f
    }
    case "Slice": {
      const x = signalShape(s.signal, ctx, acc, path)
      if (x === undefined) return undefined
      const last = x[x.length - 1]
      if (
        last === undefined ||
        !Number.isInteger(s.start) ||
        !Number.isInteger(s.size) ||
        s.start < 0 ||
        s.size < 1 ||
        s.start + s.size > last
      )
        return fail(
          acc,
          path,
          `slice [${s.start}, ${s.start + s.size}) is outside the last axis of ${describe(s.signal)} (${Shape.format(x)})`,
        )
      return [...x.slice(0, -1), s.size]
    }
    case "Reproject": {
      const here = `${path}/reproject`
      const pose = signalShape(s.pose, ctx, acc, `${here}/pose`)
      const camera = signalShape(s.camera, ctx, acc, `${here}/camera`)
      let ok = pose !== undefined && camera !== undefined
      if (pose !== undefined && !(pose.length === 1 && pose[0]! > 0 && pose[0]! % 3 === 0)) {
        fail(
          acc,
          `${here}/pose`,
          `the re-projected pose must be 3D joints [3J] (e.g. [63]), but ${describe(s.pose)} has shape ${Shape.format(pose)}`,
        )
        ok = false
      }
      if (camera !== undefined && !Shape.equals(camera, [3])) {
        fail(
          acc,
          `${here}/camera`,
          `the camera must be [3] (scale, x and y translation), but ${describe(s.camera)} has shape ${Shape.format(camera)}`,
        )
        ok = false
      }
      if (
        !(Number.isInteger(s.imageSize) && s.imageSize > 0) ||
        !(s.baseScale > 0 && Number.isFinite(s.baseScale))
      ) {
        fail(
          acc,
          here,
          `imageSize must be a positive integer and baseScale positive, got ${s.imageSize} and ${s.baseScale}`,
        )
        ok = false
      }
      return ok ? [(2 * pose![0]!) / 3] : undefined
    }
    default: {
      const _: never = s
      return _
    }
  }
}

const known = (ctx: LossContext): string => ` (models: ${Object.keys(ctx.models).join(", ") || "none"})`

const sameShapes = (
  acc: Acc,
  path: string,
  what: string,
  a: Shape.Shape | undefined,
  b: Shape.Shape | undefined,
  an: string,
  bn: string,
) => {
  if (a !== undefined && b !== undefined && !Shape.equals(a, b))
    fail(acc, path, `${what}: ${an} has shape ${Shape.format(a)} but ${bn} has ${Shape.format(b)}`)
}

const adapterSpecs = (s: Shape.Shape, t: Shape.Shape): Check.ParamSpec[] => {
  const cs = s[s.length - 1]!
  const ct = t[t.length - 1]!
  const base = { fanIn: cs, fanOut: ct }
  return [
    { path: "kernel", shape: s.length === 3 ? [1, 1, cs, ct] : [cs, ct], role: "kernel", ...base },
    { path: "bias", shape: [ct], role: "bias", ...base },
  ]
}

const go = (l: Loss.Loss, ctx: LossContext, acc: Acc, path: string): void => {
  const here = `${path}/${l._tag}`
  switch (l._tag) {
    case "SquaredError":
    case "AbsoluteError": {
      const p = signalShape(l.prediction, ctx, acc, `${here}/prediction`)
      const t = signalShape(l.target, ctx, acc, `${here}/target`)
      sameShapes(acc, here, "prediction and target differ", p, t, describe(l.prediction), describe(l.target))
      return
    }
    case "AttentionTransfer":
      l.pairs.forEach(([s, t], i) => {
        const at = `${here}/pair ${i}`
        const a = signalShape(s, ctx, acc, `${at}/student`)
        const b = signalShape(t, ctx, acc, `${at}/teacher`)
        if (a === undefined || b === undefined) return
        if (a.length !== 3 || b.length !== 3)
          fail(
            acc,
            at,
            `attention transfer needs image-like activations H×W×C, got ${describe(s)} ${Shape.format(a)} and ${describe(t)} ${Shape.format(b)}`,
          )
        else if (a[0] !== b[0] || a[1] !== b[1])
          fail(
            acc,
            at,
            `attention maps need equal spatial size, but ${describe(s)} is ${a[0]}×${a[1]} (${Shape.format(a)}) and ${describe(t)} is ${b[0]}×${b[1]} (${Shape.format(b)})`,
          )
      })
      return
    case "Transfer": {
      const s = signalShape(l.student, ctx, acc, `${here}/student`)
      const t = signalShape(l.teacher, ctx, acc, `${here}/teacher`)
      if (s === undefined || t === undefined) return
      if (l.adapter === undefined) {
        sameShapes(
          acc,
          here,
          "without an adapter, student and teacher must have equal shapes",
          s,
          t,
          describe(l.student),
          describe(l.teacher),
        )
        return
      }
      if (!((s.length === 3 && t.length === 3) || (s.length === 1 && t.length === 1))) {
        fail(
          acc,
          here,
          `adapter "${l.adapter}" maps images H×W×C or vectors, got ${Shape.format(s)} → ${Shape.format(t)}`,
        )
        return
      }
      if (s.length === 3 && (s[0] !== t[0] || s[1] !== t[1])) {
        fail(
          acc,
          here,
          `adapter "${l.adapter}" is a 1×1 convolution: ${describe(l.student)} ${Shape.format(s)} and ${describe(l.teacher)} ${Shape.format(t)} need equal H×W`,
        )
        return
      }
      const specs = adapterSpecs(s, t)
      const previous = acc.adapters.get(l.adapter)
      if (previous === undefined) acc.adapters.set(l.adapter, { specs, at: here })
      else if (!previous.specs.every((p, i) => Shape.equals(p.shape, specs[i]!.shape)))
        fail(
          acc,
          here,
          `adapter "${l.adapter}" is used with kernel ${Shape.format(specs[0]!.shape)} here but ${Shape.format(previous.specs[0]!.shape)} at ${previous.at}`,
        )
      acc.macs += Shape.size(s.slice(0, -1)) * s[s.length - 1]! * t[t.length - 1]!
      return
    }
    case "Uncertainty": {
      const p = signalShape(l.prediction, ctx, acc, `${here}/prediction`)
      const t = signalShape(l.target, ctx, acc, `${here}/target`)
      sameShapes(acc, here, "prediction and target differ", p, t, describe(l.prediction), describe(l.target))
      const a = signalShape(l.logVariance, ctx, acc, `${here}/logVariance`)
      if (a !== undefined && Shape.size(a) !== 1)
        fail(
          acc,
          `${here}/logVariance`,
          `the log-variance must be one scalar per sample, but ${describe(l.logVariance)} has shape ${Shape.format(a)}`,
        )
      return
    }
    case "WeightedNorm": {
      const m = ctx.models[l.model]
      if (m === undefined) fail(acc, here, `unknown model "${l.model}"${known(ctx)}`)
      const phi = ctx.metaParams.find((p) => p.name === l.phi)
      if (phi === undefined) {
        fail(
          acc,
          here,
          `unknown meta-parameters "${l.phi}" (declared: ${ctx.metaParams.map((p) => p.name).join(", ") || "none"})`,
        )
        return
      }
      const like = ctx.models[phi.like]
      if (like === undefined) {
        fail(
          acc,
          here,
          `meta-parameters "${l.phi}" are declared like unknown model "${phi.like}"${known(ctx)}`,
        )
        return
      }
      if (m !== undefined && !sameParams(m, like))
        fail(
          acc,
          here,
          `meta-parameters "${l.phi}" have the shape of "${phi.like}"'s parameters, which differ from "${l.model}"'s`,
        )
      return
    }
    case "Norm":
      if (ctx.models[l.model] === undefined) fail(acc, here, `unknown model "${l.model}"${known(ctx)}`)
      return
    case "Sum":
      for (const [i, t] of l.terms.entries()) go(t, ctx, acc, `${here}/term ${i}`)
      return
    case "Scale":
      if (!Number.isFinite(l.factor)) fail(acc, here, `scale factor must be finite, got ${l.factor}`)
      go(l.loss, ctx, acc, here)
      return
    default: {
      const _: never = l
      throw new Error(`unhandled loss ${(_ as Loss.Loss)._tag}`)
    }
  }
}

/** Whether two models have parameters of the same paths and shapes (so φ shaped like one fits the other). */
export const sameParams = (a: Check.Summary, b: Check.Summary): boolean =>
  a.params.length === b.params.length &&
  a.params.every((p, i) => p.path === b.params[i]!.path && Shape.equals(p.shape, b.params[i]!.shape))

/** Checks `loss` against the models, fields and meta-parameters of `ctx`; `path` prefixes error paths. */
export const checkLoss = (loss: Loss.Loss, ctx: LossContext, path = "loss"): LossReport => {
  const acc: Acc = { errors: [], adapters: new Map(), macs: 0 }
  go(loss, ctx, acc, path)
  return {
    errors: acc.errors,
    adapters: Object.fromEntries([...acc.adapters].map(([k, v]) => [k, v.specs])),
    macs: acc.macs,
  }
}

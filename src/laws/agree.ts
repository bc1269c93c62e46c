/**
 * "The interpreters agree on this value": the shape checker, the tf
 * interpreter (float32) and the float64 reference interpreter give one
 * network, or one loss over networks, the same meaning.
 *
 * For a {@link NetValue} `{ net, input }`, with parameters, state and an input
 * batch drawn from `seed` (float32 numbers, so both interpreters start from
 * the same values):
 * - shape-check accepts it; tf's `init` makes exactly the parameters and state
 *   the checker declares (paths, shapes, counts);
 * - in each mode (`train`, `eval`), tf's runtime output and tap shapes equal the
 *   static ones, and tf's output, taps and new batch-norm state equal the
 *   reference's within {@link valueTolerance}(depth);
 * - tf's gradient of s(θ) = Σ y ⊙ P (a fixed random projection P of the
 *   output, so every output element matters) with respect to every parameter
 *   (and, with `wrtInput`, the input) equals the reference's float64 central
 *   differences within {@link gradientTolerance}(depth), tensor by tensor.
 *
 * For a {@link LossValue} `{ loss, models, fields }`: every model's runtime
 * shapes equal its static ones, the loss values agree, and the gradients with
 * respect to every model parameter, adapter and φ agree, tensor by tensor.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core"
import type * as Loss from "../dsl/Loss.ts"
import * as Ref from "../interpreters/reference/index.ts"
import * as RefLoss from "../interpreters/reference/loss.ts"
import * as Check from "../interpreters/shape-check/index.ts"
import * as TfApply from "../interpreters/tf/apply.ts"
import * as Tf from "../interpreters/tf/index.ts"
import * as Init from "../interpreters/tf/init.ts"
import * as TfLoss from "../interpreters/tf/loss.ts"
import { centralDifferences, type Float64Fn } from "./fd64.ts"
import {
  type Comparison,
  elementwise,
  type LawReport,
  norm2,
  normwise,
  orThrow,
  recheck,
  report,
  type Sides,
  shapes,
} from "./report.ts"
import { FD_STEP_FLOAT64, gradientTolerance, valueTolerance } from "./tolerances.ts"
import {
  depthOf,
  describe,
  drawLossWorld,
  drawParams,
  isLossValue,
  type LossValue,
  type LossWorld,
  type NetValue,
  uniformTensor,
  type Value,
} from "./values.ts"

// ---- the tf backend -----------------------------------------------------------------------

let backend: Tf.Selected | undefined

/**
 * Chooses the tf backend (default `cpu`: deterministic and fastest on the small
 * tensors of laws) and registers every gradient. Await it once (e.g. in a
 * `before` hook) before any check that runs the tf interpreter.
 */
export const ready = async (preference: Tf.BackendPreference = "cpu"): Promise<Tf.Selected> => {
  backend = await Tf.ready(preference)
  return backend
}

/** Throws a one-line error when {@link ready} was not awaited. */
export const requireReady = (check: string): void => {
  if (backend === undefined)
    throw new Error(
      `${check} runs the tf interpreter: await ready() from cmkg/laws once before (e.g. in a before hook)`,
    )
}

/**
 * Runs `f` in a tf scope: every tensor created inside (parameter copies, directions, the
 * user's function's intermediates) is disposed when it returns, so a check leaves the
 * engine as it found it. `f` returns plain numbers, never tensors.
 */
export const scoped = <T>(f: () => T): T => {
  tf.engine().startScope()
  try {
    return f()
  } finally {
    tf.engine().endScope()
  }
}

/**
 * tf's `apply` keeps (`tf.keep`) the new batch-norm state it returns, so that it outlives a
 * training step's tidy; a check must dispose it. `apply` here is `inner` recording every
 * such tensor, `release` disposes them.
 */
const trackingState = (inner: typeof TfApply.apply) => {
  const kept: tf.Tensor[] = []
  const apply: typeof TfApply.apply = (net, params, state, x, mode) => {
    const r = inner(net, params, state, x, mode)
    const given = new Set(Object.values(state))
    for (const t of Object.values(r.state)) if (!given.has(t)) kept.push(t)
    return r
  }
  return {
    apply,
    release: () => {
      tf.dispose(kept)
      kept.length = 0
    },
  }
}

export const toTf = (t: Ref.Tensor): tf.Tensor =>
  tf.tensor(Float32Array.from(t.data), [...t.shape], "float32")
export const toReference = (t: tf.Tensor): Ref.Tensor =>
  Ref.Tensors.make(t.shape, Float64Array.from(t.dataSync()))
export const treeToTf = (tree: Readonly<Record<string, Ref.Tensor>>): Tf.Tree =>
  Object.fromEntries(Object.entries(tree).map(([k, v]) => [k, toTf(v)]))

/**
 * The gradient of `f` with respect to every entry of `tree`, zeros for entries `f` does not
 * read (a loss over one of two models), as float32 arrays.
 */
export const tfGradient = (f: (tree: Tf.Tree) => tf.Scalar, tree: Tf.Tree): Record<string, Float32Array> => {
  const keys = Object.keys(tree)
  if (keys.length === 0) return {}
  const xs = keys.map((k) => tree[k]!)
  const out: Record<string, Float32Array> = {}
  tf.tidy(() => {
    const { value, grads } = tf
      .engine()
      .gradients(() => f(Object.fromEntries(keys.map((k, i) => [k, xs[i]!]))), xs, undefined, true)
    value.dispose()
    keys.forEach((k, i) => {
      out[k] = (grads[i] ?? tf.zerosLike(xs[i]!)).dataSync() as Float32Array
    })
  })
  return out
}

// ---- options ---------------------------------------------------------------------------------

export interface AgreeOptions {
  /** Batch size of the drawn inputs (default 2: batch norm needs 2 to have a variance). */
  readonly batch?: number
  /** Seed of the drawn parameters, inputs, fields and projection (default 0). */
  readonly seed?: number
  /** Modes compared (default both); gradients are compared in the first. */
  readonly modes?: readonly Ref.Mode[]
  /** Compare gradients (default true; they cost two reference passes per scalar parameter). */
  readonly gradients?: boolean
  /** Also compare the gradient with respect to the input batch (networks only; default false). */
  readonly wrtInput?: boolean
  /** Override the tolerances, which default to {@link valueTolerance} and {@link gradientTolerance} of the value's depth. */
  readonly tolerance?: { readonly value?: number; readonly gradient?: number }
  /** The tf interpreter's functions under test (default cmkg's): to check a change to one against the others. */
  readonly tf?: { readonly apply?: typeof TfApply.apply; readonly evaluate?: typeof TfLoss.evaluate }
  /** The reference interpreter's functions (default cmkg's). */
  readonly reference?: { readonly apply?: typeof Ref.apply; readonly evaluate?: typeof RefLoss.evaluate }
}

const tfVsRef: Sides = { actual: "tf", expected: "reference" }
const runtimeVsStatic: Sides = { actual: "runtime", expected: "static" }

const failed = (what: string, detail: string): Comparison => ({
  what,
  ok: false,
  error: Infinity,
  tolerance: 0,
  detail,
})

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e))

/**
 * Per-tensor gradient comparisons, relative to each tensor's norm plus the whole gradient's
 * norm, pushed onto `out`; a failing tensor is decided again with differences at h/10
 * ({@link recheck}). Returns how many tensors were skipped at a kink.
 */
const compareGradients = (
  out: Comparison[],
  prefix: string,
  actual: Readonly<Record<string, ArrayLike<number>>>,
  expected: Readonly<Record<string, Ref.Tensor>>,
  tolerance: number,
  atSmallerStep: (key: string) => Ref.Tensor,
  /** The function's value at the point: the finite differences' round-off scales with it. */
  value: number,
): number => {
  const all = Object.values(expected).flatMap((t) => Array.from(t.data))
  // Errors are relative to the whole gradient's norm; a gradient that is exactly zero has a float64
  // estimate made of round-off alone (ε₆₄·|f|/h per element), which is then the floor of that norm.
  // It changes nothing where the gradient is larger than round-off (≈ 2e-10·|f| per element).
  const roundOff = (Math.sqrt(all.length) * Number.EPSILON * (1 + Math.abs(value))) / FD_STEP_FLOAT64
  const whole = norm2(all) + roundOff
  let skipped = 0
  for (const k of Object.keys(expected)) {
    const a = actual[k]
    if (a === undefined) {
      out.push(failed(`${prefix}${k}`, "tf gave no gradient for this entry"))
      continue
    }
    const c = normwise(`${prefix}${k}`, a, expected[k]!.data, tolerance, whole, tfVsRef)
    const verdict = c.ok
      ? c
      : recheck(c, expected[k]!.data, atSmallerStep(k).data, a, tolerance, whole, tfVsRef, "h/10")
    if (verdict === "kink") skipped += 1
    else out.push(verdict)
  }
  return skipped
}

/** What a check on one value found: its comparisons, and the tensors skipped at kinks. */
interface Found {
  readonly comparisons: Comparison[]
  readonly skipped: number
}

// ---- networks ---------------------------------------------------------------------------------

const agreeOnNet = (value: NetValue, o: AgreeOptions): Found => {
  const { net, input } = value
  const checked = Check.check(net, input)
  if (!checked.ok)
    return {
      comparisons: [failed("shape-check", checked.errors.map(Check.formatError).join("; "))],
      skipped: 0,
    }
  const summary = checked.summary
  const batch = o.batch ?? 2
  const seed = o.seed ?? 0
  const depth = depthOf(value)
  const valueTol = o.tolerance?.value ?? valueTolerance(depth)
  const gradTol = o.tolerance?.gradient ?? gradientTolerance(depth)
  const tfApply = o.tf?.apply ?? TfApply.apply
  const refApply = o.reference?.apply ?? Ref.apply
  const out: Comparison[] = []

  // tf's init makes what the checker declares.
  const made = Init.init(net, input, seed)
  const specs = [...summary.params, ...summary.state]
  const madeTrees = { ...made.params, ...made.state }
  for (const s of specs)
    out.push(
      shapes(`tf init ${s.path}`, madeTrees[s.path]?.shape, s.shape, {
        actual: "tf init",
        expected: "static",
      }),
    )
  for (const k of Object.keys(madeTrees))
    if (!specs.some((s) => s.path === k))
      out.push(failed(`tf init ${k}`, "tf init made an entry the shape checker does not declare"))
  Init.dispose(made.params, made.state)

  const { params, state } = drawParams(net, input, seed)
  const x = uniformTensor([batch, ...input], Ref.mulberry32(seed + 1))
  const outShape = [batch, ...(summary.output ?? [])]
  const projection = uniformTensor(outShape, Ref.mulberry32(seed + 2))
  const modes = o.modes ?? ["train", "eval"]

  for (const mode of modes) {
    let ref: Ref.Applied
    try {
      ref = refApply(net, params, state, x, mode)
    } catch (e) {
      out.push(failed(`${mode}: reference`, message(e)))
      continue
    }
    tf.tidy(() => {
      let t: TfApply.Applied
      try {
        t = tfApply(net, treeToTf(params), treeToTf(state), toTf(x), mode)
      } catch (e) {
        out.push(failed(`${mode}: tf`, message(e)))
        return
      }
      out.push(shapes(`${mode} output shape`, t.y.shape, outShape, runtimeVsStatic))
      const tapNames = new Set([...Object.keys(summary.taps), ...Object.keys(t.taps)])
      for (const name of tapNames) {
        const stat = summary.taps[name]
        out.push(
          shapes(`${mode} tap ${name} shape`, t.taps[name]?.shape, stat && [batch, ...stat], runtimeVsStatic),
        )
      }
      out.push(elementwise(`${mode} output`, t.y.dataSync(), ref.y.data, valueTol, tfVsRef))
      for (const [name, r] of Object.entries(ref.taps)) {
        const a = t.taps[name]
        out.push(
          a === undefined
            ? failed(`${mode} tap ${name}`, "tf has no such tap")
            : elementwise(`${mode} tap ${name}`, a.dataSync(), r.data, valueTol, tfVsRef),
        )
      }
      for (const [k, r] of Object.entries(ref.state)) {
        const a = t.state[k]
        out.push(
          a === undefined
            ? failed(`${mode} state ${k}`, "tf has no such state entry")
            : elementwise(`${mode} state ${k}`, a.dataSync(), r.data, valueTol, tfVsRef),
        )
      }
    })
  }

  if (o.gradients === false || modes.length === 0) return { comparisons: out, skipped: 0 }
  const mode = modes[0]!
  const INPUT = "<input>"
  const wrt: Record<string, Ref.Tensor> = { ...params, ...(o.wrtInput === true ? { [INPUT]: x } : {}) }
  let tfGrads: Record<string, Float32Array> = {}
  tf.tidy(() => {
    const tfState = treeToTf(state)
    const p = toTf(projection)
    try {
      tfGrads = tfGradient((ts) => {
        const { [INPUT]: tx, ...ps } = ts
        return tf.sum(tf.mul(tfApply(net, ps, tfState, tx ?? toTf(x), mode).y, p)) as tf.Scalar
      }, treeToTf(wrt))
    } catch (e) {
      out.push(failed(`${mode} gradient: tf`, message(e)))
    }
  })
  if (Object.keys(tfGrads).length === 0 && Object.keys(wrt).length > 0)
    return { comparisons: out, skipped: 0 }
  const s: Float64Fn = (ps) => {
    const { [INPUT]: rx, ...rest } = ps
    const y = refApply(net, rest, state, rx ?? x, mode).y.data
    let acc = 0
    for (let i = 0; i < y.length; i++) acc += y[i]! * projection.data[i]!
    return acc
  }
  const fd = centralDifferences(s, wrt, FD_STEP_FLOAT64)
  const skipped = compareGradients(
    out,
    `${mode} gradient `,
    tfGrads,
    fd,
    gradTol,
    (k) => centralDifferences(s, wrt, FD_STEP_FLOAT64 / 10, [k])[k]!,
    s(wrt, undefined),
  )
  return { comparisons: out, skipped }
}

// ---- losses -----------------------------------------------------------------------------------

/** A flat view of what a loss's gradient is taken with respect to: `model:path`, `adapter:path`, `φ name:path`. */
interface Entry {
  readonly group: "params" | "meta"
  readonly owner: string
  readonly path: string
}

const flatten = (w: LossWorld): { flat: Record<string, Ref.Tensor>; entries: Record<string, Entry> } => {
  const flat: Record<string, Ref.Tensor> = {}
  const entries: Record<string, Entry> = {}
  for (const [group, trees] of [
    ["params", w.params],
    ["meta", w.meta],
  ] as const)
    for (const [owner, tree] of Object.entries(trees))
      for (const [path, t] of Object.entries(tree)) {
        const key = `${group === "meta" ? "φ " : ""}${owner}:${path}`
        flat[key] = t
        entries[key] = { group, owner, path }
      }
  return { flat, entries }
}

const unflatten = <T>(flat: Readonly<Record<string, T>>, entries: Readonly<Record<string, Entry>>) => {
  const params: Record<string, Record<string, T>> = {}
  const meta: Record<string, Record<string, T>> = {}
  for (const [key, v] of Object.entries(flat)) {
    const e = entries[key]!
    const into = e.group === "params" ? params : meta
    into[e.owner] = { ...into[e.owner], [e.path]: v }
  }
  return { params, meta }
}

const agreeOnLoss = (value: LossValue, o: AgreeOptions): Found => {
  const batch = o.batch ?? 2
  const seed = o.seed ?? 0
  let world: LossWorld
  try {
    world = drawLossWorld(value, batch, seed)
  } catch (e) {
    return { comparisons: [failed("shape-check", message(e))], skipped: 0 }
  }
  const depth = depthOf(value)
  const valueTol = o.tolerance?.value ?? valueTolerance(depth)
  const gradTol = o.tolerance?.gradient ?? gradientTolerance(depth)
  const tfApply = o.tf?.apply ?? TfApply.apply
  const tfEvaluate = o.tf?.evaluate ?? TfLoss.evaluate
  const refApply = o.reference?.apply ?? Ref.apply
  const refEvaluate = o.reference?.evaluate ?? RefLoss.evaluate
  const modes = o.modes ?? ["train", "eval"]
  const statics = Object.fromEntries(value.models.map((m) => [m.name, Check.check(m.net, m.input)]))
  const out: Comparison[] = []
  let skipped = 0
  const { flat, entries } = flatten(world)

  const tfLoss = (ts: Tf.Tree, mode: Ref.Mode, recordShapes: boolean): tf.Scalar => {
    const { params, meta } = unflatten(ts, entries)
    const outputs: Record<string, { y: tf.Tensor; taps: Record<string, tf.Tensor> }> = {}
    for (const m of value.models) {
      const r = tfApply(
        m.net,
        params[m.name] ?? {},
        treeToTf(world.state[m.name]!),
        toTf(world.inputs[m.name]!),
        mode,
      )
      outputs[m.name] = { y: r.y, taps: { ...r.taps } }
      const summary = statics[m.name]!
      if (recordShapes && summary.ok) {
        out.push(
          shapes(
            `${m.name} ${mode} output shape`,
            r.y.shape,
            [batch, ...(summary.summary.output ?? [])],
            runtimeVsStatic,
          ),
        )
        for (const [name, shape] of Object.entries(summary.summary.taps))
          out.push(
            shapes(
              `${m.name} ${mode} tap ${name} shape`,
              r.taps[name]?.shape,
              [batch, ...shape],
              runtimeVsStatic,
            ),
          )
      }
    }
    const fields = Object.fromEntries(Object.entries(world.fields).map(([f, t]) => [f, toTf(t)]))
    return tfEvaluate(value.loss, {
      outputs,
      batch: fields as Partial<Record<Loss.Field, tf.Tensor>>,
      params,
      meta,
    })
  }

  /** The reference loss with model outputs cached at the base point: a perturbed entry recomputes only its model. */
  const refLoss = (mode: Ref.Mode): Float64Fn => {
    let base: Record<string, { y: Ref.Tensor; taps: Record<string, Ref.Tensor> }> = {}
    const run = (name: string, params: Ref.Params) => {
      const m = value.models.find((x) => x.name === name)!
      const r = refApply(m.net, params, world.state[name]!, world.inputs[name]!, mode)
      return { y: r.y, taps: r.taps }
    }
    return (ps, perturbed) => {
      const { params, meta } = unflatten(ps, entries)
      if (perturbed === undefined)
        base = Object.fromEntries(value.models.map((m) => [m.name, run(m.name, params[m.name] ?? {})]))
      const owner = perturbed === undefined ? undefined : entries[perturbed]!
      const outputs =
        owner !== undefined && owner.group === "params" && base[owner.owner] !== undefined
          ? { ...base, [owner.owner]: run(owner.owner, params[owner.owner] ?? {}) }
          : base
      return refEvaluate(value.loss, { outputs, batch: world.fields, params, meta })
    }
  }

  for (const [i, mode] of modes.entries()) {
    let expected: number
    try {
      expected = refLoss(mode)(flat, undefined)
    } catch (e) {
      out.push(failed(`${mode}: reference`, message(e)))
      continue
    }
    tf.tidy(() => {
      try {
        const v = tfLoss(treeToTf(flat), mode, true).dataSync()[0]!
        out.push(elementwise(`${mode} loss value`, [v], [expected], valueTol, tfVsRef))
      } catch (e) {
        out.push(failed(`${mode}: tf`, message(e)))
      }
    })
    if (i > 0 || o.gradients === false) continue
    let tfGrads: Record<string, Float32Array> = {}
    tf.tidy(() => {
      try {
        tfGrads = tfGradient((ts) => tfLoss(ts, mode, false), treeToTf(flat))
      } catch (e) {
        out.push(failed(`${mode} gradient: tf`, message(e)))
      }
    })
    if (Object.keys(tfGrads).length === 0 && Object.keys(flat).length > 0) continue
    const f = refLoss(mode)
    const fd = centralDifferences(f, flat, FD_STEP_FLOAT64)
    skipped += compareGradients(
      out,
      `${mode} gradient `,
      tfGrads,
      fd,
      gradTol,
      (k) => centralDifferences(f, flat, FD_STEP_FLOAT64 / 10, [k])[k]!,
      f(flat, undefined),
    )
  }
  return { comparisons: out, skipped }
}

// ---- the check ------------------------------------------------------------------------------

/**
 * Whether shape-check, the tf interpreter and the float64 reference agree on
 * `value` (see the module doc for what is compared). Never throws for a
 * disagreement: an interpreter that throws, a shape that differs or a number
 * out of tolerance is a failed {@link Comparison} naming the tensor or path.
 * Needs {@link ready} once.
 */
export const interpretersAgree = (value: Value, options: AgreeOptions = {}): LawReport => {
  requireReady("interpretersAgree")
  const tracked = trackingState(options.tf?.apply ?? TfApply.apply)
  const o: AgreeOptions = { ...options, tf: { ...options.tf, apply: tracked.apply } }
  const found = scoped(() => {
    try {
      return isLossValue(value) ? agreeOnLoss(value, o) : agreeOnNet(value, o)
    } finally {
      tracked.release()
    }
  })
  return report(
    `the interpreters agree on ${describe(value)} (seed ${options.seed ?? 0})`,
    found.comparisons,
    found.skipped,
  )
}

/** {@link interpretersAgree}, throwing a `LawViolation` that lists every disagreement when they do not agree. */
export const assertInterpretersAgree = (value: Value, options: AgreeOptions = {}): LawReport =>
  orThrow(interpretersAgree(value, options))

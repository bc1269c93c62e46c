/**
 * "Gradients and Hessian-vector products match finite differences", for any
 * scalar function of a parameter tree.
 *
 * A {@link ScalarFunction} gives the function in up to two precisions and,
 * optionally, the derivative under test:
 * - the derivative under test is `gradient` / `hvp` when given (a hand-derived
 *   or closed-form one), else tf's autodiff of `tf` (reverse-over-reverse for HVPs);
 * - the finite differences are taken in float64 of `float64` when given (element by
 *   element: exact to ~1e-10, so the tolerance is a float32 budget), else in float32
 *   of `tf` along random directions, with kink detection (a direction whose difference
 *   quotients at ε and ε/2 disagree crossed a relu / max-pool / |·| kink and is skipped; the
 *   others are Richardson-extrapolated from ε and ε/2). Float32 differences suit smooth
 *   functions of a few ops; for networks give the float64 version (the reference interpreter).
 * A float64 comparison that fails is decided again at a smaller step (`recheck`): a kink
 * makes the two differences disagree and the tensor is skipped; a wrong derivative fails.
 * A check fails when more tensors or directions were skipped than compared.
 *
 * Tolerances default to the named constants of `tolerances.ts` for the pair of
 * precisions being compared; pass `depth` (layers the function runs through)
 * or `tolerance` to change them.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core"
import type * as Ref from "../interpreters/reference/index.ts"
import * as Tensors from "../interpreters/reference/Tensor.ts"
import type * as Tf from "../interpreters/tf/index.ts"
import { mulberry32 } from "../random.ts"
import { requireReady, scoped, tfGradient, toReference, treeToTf } from "./agree.ts"
import { centralDifferences, type Float64Fn, hvpByDifferences } from "./fd64.ts"
import {
  type Comparison,
  type LawReport,
  norm2,
  normwise,
  orThrow,
  recheck,
  report,
  type Sides,
  scalars,
} from "./report.ts"
import {
  DEFAULT_DEPTH,
  FD_STEP_FLOAT32,
  FD_STEP_FLOAT64,
  FLOAT32_FD_ROUNDOFF,
  FLOAT32_FD_TOLERANCE,
  FLOAT32_HVP_FLOOR,
  FLOAT64_GRADIENT_TOLERANCE,
  FLOAT64_HVP_TOLERANCE,
  gradientTolerance,
  HVP_INNER_STEP_FLOAT64,
  HVP_STEP_FLOAT32,
  HVP_STEP_FLOAT64,
  hvpTolerance,
} from "./tolerances.ts"

/** A scalar function of a parameter tree, in one or two precisions, with optional derivatives under test. */
export interface ScalarFunction {
  /** The function on the tf backend (float32). Its autodiff is the derivative under test unless `gradient`/`hvp` is given. */
  readonly tf?: (params: Tf.Tree) => tf.Scalar
  /** The same function in float64: when given, the finite differences are taken of it. */
  readonly float64?: (params: Ref.Params) => number
  /** The gradient under test, when it is not tf's autodiff of `tf`. */
  readonly gradient?: (params: Ref.Params) => Ref.Params
  /** The Hessian-vector product under test, when it is not tf's autodiff of `tf`. */
  readonly hvp?: (params: Ref.Params, v: Ref.Params) => Ref.Params
}

export interface FiniteDifferenceOptions {
  /** Seed of the random directions (default 0). */
  readonly seed?: number
  /** Random directions per tensor (float32 gradient checks) or in all (HVP checks); default 2 and 1. */
  readonly directions?: number
  /** Layers the function runs through, for the float32 budgets (default {@link DEFAULT_DEPTH}). */
  readonly depth?: number
  /** Override the tolerance of every comparison. */
  readonly tolerance?: number
  /** Override the finite-difference step. */
  readonly step?: number
}

const direction = (params: Ref.Params, rand: () => number, only?: string): Record<string, Ref.Tensor> =>
  Object.fromEntries(
    Object.entries(params).map(([k, t]) => [
      k,
      Tensors.generate(t.shape, () => (only === undefined || only === k ? Math.fround(2 * rand() - 1) : 0)),
    ]),
  )

/**
 * Richardson extrapolation of central differences at ε and ε/2: (4·D(ε/2) − D(ε))/3 cancels their
 * ε² truncation term, which on whole networks in float32 (where ε cannot be small) is ~1e-2.
 */
const richardson = (coarse: number, fine: number): number => (4 * fine - coarse) / 3

const plain =
  (f: (p: Ref.Params) => number): Float64Fn =>
  (p) =>
    f(p)

const tfValue = (f: (p: Tf.Tree) => tf.Scalar, at: Ref.Params): number =>
  tf.tidy(() => f(treeToTf(at)).dataSync()[0]!)

const shift = (at: Ref.Params, v: Ref.Params, s: number): Record<string, Ref.Tensor> =>
  Object.fromEntries(
    Object.entries(at).map(([k, t]) => [
      k,
      Tensors.make(
        t.shape,
        Float64Array.from(t.data, (x, i) => x + s * v[k]!.data[i]!),
      ),
    ]),
  )

const gradientUnderTest = (
  fn: ScalarFunction,
  check: string,
): ((p: Ref.Params) => Record<string, ArrayLike<number>>) => {
  if (fn.gradient !== undefined)
    return (p) => Object.fromEntries(Object.entries(fn.gradient!(p)).map(([k, t]) => [k, t.data]))
  if (fn.tf === undefined)
    throw new Error(`${check}: give the function as \`tf\` (its autodiff is checked) or give \`gradient\``)
  requireReady(check)
  const f = fn.tf
  return (p) => tfGradient(f, treeToTf(p))
}

const sides = (fn: ScalarFunction, what: "gradient" | "hvp", fd: "float64" | "float32"): Sides => ({
  actual: fn[what] !== undefined ? what : "tf autodiff",
  expected: `${fd} finite differences`,
})

/**
 * Whether the gradient of `fn` at `at` matches central finite differences.
 * - with `fn.float64`: every element, ∂f/∂p ≈ (f(p + h) − f(p − h))/2h in float64 (h = {@link FD_STEP_FLOAT64}),
 *   per tensor ‖g_k − fd_k‖ ≤ tol·(‖fd_k‖ + ‖fd‖) with tol = {@link gradientTolerance}(depth) for tf's
 *   float32 autodiff, {@link FLOAT64_GRADIENT_TOLERANCE} for a given `gradient`; a tensor that fails is
 *   decided again at h/10 (a kink within h spoils one difference, not two);
 * - otherwise (`fn.tf` only): per tensor and direction v (entries in ±1, on that tensor only),
 *   ⟨g, v⟩ ≈ (f(p + εv) − f(p − εv))/2ε in float32 (ε = {@link FD_STEP_FLOAT32}; Richardson-extrapolated
 *   with the quotient at ε/2, which also detects kinks), within
 *   {@link FLOAT32_FD_TOLERANCE} relative plus a round-off floor {@link FLOAT32_FD_ROUNDOFF}·(1 + |f|)/(ε/2).
 */
export const gradientsMatchFiniteDifferences = (
  fn: ScalarFunction,
  at: Ref.Params,
  options: FiniteDifferenceOptions = {},
): LawReport => scoped(() => gradientCheck(fn, at, options))

const gradientCheck = (fn: ScalarFunction, at: Ref.Params, options: FiniteDifferenceOptions): LawReport => {
  const check = "gradientsMatchFiniteDifferences"
  const g = gradientUnderTest(fn, check)(at)
  const comparisons: Comparison[] = []
  let skipped = 0
  if (fn.float64 !== undefined) {
    const f = plain(fn.float64)
    const h = options.step ?? FD_STEP_FLOAT64
    const tol =
      options.tolerance ??
      (fn.gradient !== undefined
        ? FLOAT64_GRADIENT_TOLERANCE
        : gradientTolerance(options.depth ?? DEFAULT_DEPTH))
    const fd = centralDifferences(f, at, h)
    const whole = norm2(Object.values(fd).flatMap((t) => Array.from(t.data)))
    const s = sides(fn, "gradient", "float64")
    for (const k of Object.keys(at)) {
      const c = normwise(`gradient ${k}`, g[k] ?? [], fd[k]!.data, tol, whole, s)
      const verdict = c.ok
        ? c
        : recheck(
            c,
            fd[k]!.data,
            centralDifferences(f, at, h / 10, [k])[k]!.data,
            g[k] ?? [],
            tol,
            whole,
            s,
            "h/10",
          )
      if (verdict === "kink") skipped += 1
      else comparisons.push(verdict)
    }
    return report(
      `gradients match float64 finite differences (${Object.keys(at).length} tensors)`,
      comparisons,
      skipped,
    )
  }
  if (fn.tf === undefined)
    throw new Error(`${check}: give the function as \`float64\` or \`tf\` to take finite differences of`)
  requireReady(check)
  const f = fn.tf
  const eps = options.step ?? FD_STEP_FLOAT32
  const tol = options.tolerance ?? FLOAT32_FD_TOLERANCE
  const rand = mulberry32(options.seed ?? 0)
  const f0 = tfValue(f, at)
  const floor = (FLOAT32_FD_ROUNDOFF * (1 + Math.abs(f0))) / (eps / 2)
  const s = sides(fn, "gradient", "float32")
  for (const k of Object.keys(at))
    for (let d = 0; d < (options.directions ?? 2); d++) {
      const v = direction(at, rand, k)
      const quotient = (e: number) => (tfValue(f, shift(at, v, e)) - tfValue(f, shift(at, v, -e))) / (2 * e)
      const [coarse, fine] = [quotient(eps), quotient(eps / 2)]
      // Quotients at ε and ε/2 that disagree: a kink inside p ± εv; this direction says nothing.
      if (!scalars("", coarse, fine, tol, floor, s).ok) {
        skipped += 1
        continue
      }
      const fd = richardson(coarse, fine)
      let analytic = 0
      const gk = g[k] ?? []
      for (let i = 0; i < gk.length; i++) analytic += gk[i]! * v[k]!.data[i]!
      comparisons.push(scalars(`⟨gradient ${k}, v${d}⟩`, analytic, fd, tol, floor, s))
    }
  return report(
    `gradients match float32 finite differences (${Object.keys(at).length} tensors)`,
    comparisons,
    skipped,
  )
}

/**
 * Whether the Hessian-vector product of `fn` at `at` along random directions v
 * matches differences of gradients, (∇f(p + εv) − ∇f(p − εv))/2ε, per tensor:
 * - with `fn.float64`: the gradients are themselves float64 central differences
 *   (ε = {@link HVP_STEP_FLOAT64}, inner h = {@link HVP_INNER_STEP_FLOAT64}; 4 evaluations per scalar),
 *   ‖Hv_k − fd_k‖ ≤ tol·(‖fd_k‖ + ‖fd‖), tol = {@link hvpTolerance}(depth) for tf's autodiff,
 *   {@link FLOAT64_HVP_TOLERANCE} for a given `hvp`; a failing tensor is decided again at ε/4;
 * - otherwise: the gradients are tf's autodiff of `fn.tf` in float32 (ε = {@link HVP_STEP_FLOAT32}),
 *   within {@link FLOAT32_FD_TOLERANCE} plus a floor {@link FLOAT32_HVP_FLOOR}·‖∇f_k‖/ε; a direction
 *   whose differences at ε and ε/2 disagree crossed a kink and is skipped, the others are
 *   Richardson-extrapolated from ε and ε/2.
 */
export const hvpMatchesFiniteDifferences = (
  fn: ScalarFunction,
  at: Ref.Params,
  options: FiniteDifferenceOptions = {},
): LawReport => scoped(() => hvpCheck(fn, at, options))

const hvpCheck = (fn: ScalarFunction, at: Ref.Params, options: FiniteDifferenceOptions): LawReport => {
  const check = "hvpMatchesFiniteDifferences"
  const hvpUnderTest = (p: Ref.Params, v: Ref.Params): Record<string, ArrayLike<number>> => {
    if (fn.hvp !== undefined)
      return Object.fromEntries(Object.entries(fn.hvp(p, v)).map(([k, t]) => [k, t.data]))
    if (fn.tf === undefined)
      throw new Error(`${check}: give the function as \`tf\` (its autodiff is checked) or give \`hvp\``)
    requireReady(check)
    const f = fn.tf
    const tv = treeToTf(v)
    // Reverse over reverse: ∇_p ⟨∇f(p), v⟩.
    return tfGradient((ps) => {
      const keys = Object.keys(ps)
      const { grads } = tf.engine().gradients(
        () => f(ps),
        keys.map((k) => ps[k]!),
        undefined,
        true,
      )
      return tf.addN(
        keys.map((k, i) => tf.sum(tf.mul(grads[i] ?? tf.zerosLike(ps[k]!), tv[k]!))),
      ) as tf.Scalar
    }, treeToTf(p))
  }
  const rand = mulberry32(options.seed ?? 0)
  const comparisons: Comparison[] = []
  let skipped = 0
  for (let d = 0; d < (options.directions ?? 1); d++) {
    const v = direction(at, rand)
    const hv = hvpUnderTest(at, v)
    if (fn.float64 !== undefined) {
      const f = plain(fn.float64)
      const eps = options.step ?? HVP_STEP_FLOAT64
      const tol =
        options.tolerance ??
        (fn.hvp !== undefined ? FLOAT64_HVP_TOLERANCE : hvpTolerance(options.depth ?? DEFAULT_DEPTH))
      const s = sides(fn, "hvp", "float64")
      const fd = hvpByDifferences(f, at, v, eps, HVP_INNER_STEP_FLOAT64)
      const whole = norm2(Object.values(fd).flatMap((t) => Array.from(t.data)))
      let smaller: Record<string, Ref.Tensor> | undefined
      for (const k of Object.keys(at)) {
        const c = normwise(`Hv${d} ${k}`, hv[k] ?? [], fd[k]!.data, tol, whole, s)
        if (c.ok) {
          comparisons.push(c)
          continue
        }
        smaller ??= hvpByDifferences(f, at, v, eps / 4, HVP_INNER_STEP_FLOAT64)
        const verdict = recheck(c, fd[k]!.data, smaller[k]!.data, hv[k] ?? [], tol, whole, s, "ε/4")
        if (verdict === "kink") skipped += 1
        else comparisons.push(verdict)
      }
      continue
    }
    if (fn.tf === undefined)
      throw new Error(`${check}: give the function as \`float64\` or \`tf\` to take finite differences of`)
    requireReady(check)
    const f = fn.tf
    const eps = options.step ?? HVP_STEP_FLOAT32
    const tol = options.tolerance ?? FLOAT32_FD_TOLERANCE
    const grad = (p: Ref.Params) => tfGradient(f, treeToTf(p))
    const g0 = grad(at)
    const differences = (e: number) => {
      const [up, down] = [grad(shift(at, v, e)), grad(shift(at, v, -e))]
      return Object.fromEntries(
        Object.keys(at).map((k) => [k, Float64Array.from(up[k]!, (a, i) => (a - down[k]![i]!) / (2 * e))]),
      )
    }
    const [coarse, fine] = [differences(eps), differences(eps / 2)]
    const s = sides(fn, "hvp", "float32")
    for (const k of Object.keys(at)) {
      const floor = (FLOAT32_HVP_FLOOR * norm2(g0[k]!)) / eps
      // Differences at ε and ε/2 that disagree: a kink inside p ± εv for this tensor.
      if (!normwise("", fine[k]!, coarse[k]!, tol, floor / tol, s).ok) {
        skipped += 1
        continue
      }
      const fd = Float64Array.from(coarse[k]!, (c, i) => richardson(c, fine[k]![i]!))
      comparisons.push(normwise(`Hv${d} ${k}`, hv[k] ?? [], fd, tol, floor / tol, s))
    }
  }
  return report(
    `Hessian-vector products match ${fn.float64 !== undefined ? "float64" : "float32"} finite differences (${Object.keys(at).length} tensors)`,
    comparisons,
    skipped,
  )
}

/** {@link gradientsMatchFiniteDifferences}, throwing a `LawViolation` that lists every mismatch. */
export const assertGradientsMatchFiniteDifferences = (
  fn: ScalarFunction,
  at: Ref.Params,
  options: FiniteDifferenceOptions = {},
): LawReport => orThrow(gradientsMatchFiniteDifferences(fn, at, options))

/** {@link hvpMatchesFiniteDifferences}, throwing a `LawViolation` that lists every mismatch. */
export const assertHvpMatchesFiniteDifferences = (
  fn: ScalarFunction,
  at: Ref.Params,
  options: FiniteDifferenceOptions = {},
): LawReport => orThrow(hvpMatchesFiniteDifferences(fn, at, options))

/** A tf tree as float64 tensors (for passing tf values as the point `at`). */
export const treeToReference = (tree: Tf.Tree): Record<string, Ref.Tensor> =>
  Object.fromEntries(Object.entries(tree).map(([k, t]) => [k, toReference(t)]))

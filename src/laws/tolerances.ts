/**
 * The laws kit's tolerances: named, with the arithmetic that gives each value.
 *
 * Two precisions meet in every law. The tf interpreter computes in float32
 * (unit round-off u = 2⁻²⁴, machine epsilon ε₃₂ = 2⁻²³ ≈ 1.19e-7); the
 * reference interpreter and the float64 finite differences in float64
 * (ε₆₄ = 2⁻⁵² ≈ 2.2e-16), so the float64 side is exact to the precision that
 * matters and every tolerance against it is a float32 rounding budget. The
 * budget grows with the number of layers a value passes through (each layer
 * rounds again and passes on the error it received), so tolerances on
 * networks are "per layer" constants times the network's {@link depth}.
 *
 * Measured with `interpretersAgree` on 600 generated networks (`netValue()`:
 * ≤ 5 recipe steps, loops of up to 3 iterations, ≤ 4 channels, batch 2; two
 * seeds) and 270 generated losses (`lossValue()`): the largest error was 0.11
 * of its budget (the kernel gradient of a 1×1 convolution feeding batch norm
 * directly, which batch norm almost cancels: float32 cancellation), the next
 * 0.02, losses at most 6e-3; typical margins are 1e-3. Float64 HVP differences against tf's
 * second-order autodiff on 12 networks: at most 8e-3 of the budget. A bug of
 * relative size 1e-3 (a batch norm ε of 1e-3 instead of 1e-5, an output scaled
 * by 1.001) is 10× over the budget of a 5-layer network
 * (`test/laws-kit/kit.test.ts`).
 *
 * @module
 */
import type * as Net from "../dsl/Net.ts"

/** float32 machine epsilon 2⁻²³: the spacing of float32 numbers at 1. */
export const FLOAT32_EPSILON = 2 ** -23
/** float64 machine epsilon 2⁻⁵². */
export const FLOAT64_EPSILON = 2 ** -52

/**
 * One layer's float32 rounding budget, relative to values of order 1: 64·ε₃₂ ≈ 7.6e-6.
 * A dot product of n float32 terms is off by ≤ n·u in the worst case and ~√n·u
 * typically; the kit's layers sum n ≤ 3·3·16 = 144 terms (√n ≈ 12), and batch
 * norm over a batch of 2 divides by a standard deviation that can be small
 * against its ε, amplifying by a few: 12 × 4 rounded up to 64.
 */
export const FLOAT32_PER_LAYER = 64 * FLOAT32_EPSILON

/**
 * Values (outputs, taps, batch-norm state, loss values) of a network of
 * `depth` layers: |tf − reference| ≤ valueTolerance(depth)·(1 + |reference|), element-wise.
 */
export const valueTolerance = (depth: number): number => Math.max(1, depth) * FLOAT32_PER_LAYER

/**
 * Gradients of a network of `depth` layers: per tensor k,
 * ‖tf_k − ref_k‖₂ ≤ gradientTolerance(depth)·(‖ref_k‖₂ + ‖ref‖₂), with ‖ref‖₂ the
 * norm of the whole gradient (so a tensor whose gradient is nearly 0, e.g. a
 * bias before batch norm, is judged against the scale of the rest). Twice the
 * value budget: the backward pass runs every layer again, transposed.
 */
export const gradientTolerance = (depth: number): number => 2 * valueTolerance(depth)

/**
 * Hessian-vector products of a network of `depth` layers, per tensor as for
 * gradients. Three times the value budget (forward, backward, and the
 * backward of the backward), plus the float64 finite differences' own error
 * ({@link HVP_STEP_FLOAT64}).
 */
export const hvpTolerance = (depth: number): number => 3 * valueTolerance(depth) + FD64_HVP_NOISE

/**
 * The default depth of a function the kit knows nothing about (a user's
 * `tf` function): ten layers, so the defaults of {@link gradientTolerance}(10) ≈ 1.5e-4
 * and {@link hvpTolerance}(10) apply. Pass `depth` for deeper functions.
 */
export const DEFAULT_DEPTH = 10

/**
 * Step of float64 central differences of first derivatives: h = 1e-6.
 * Round-off ε₆₄·|f|/h ≈ 2e-10·|f|, truncation h²·|f‴|/6 ≈ 2e-13·|f‴|: both far below
 * any float32 budget. Small, so that a relu or max-pool kink is crossed by
 * a perturbation with probability ~h per activation.
 */
export const FD_STEP_FLOAT64 = 1e-6

/**
 * Float64 gradient against float64 finite differences (a hand-derived
 * gradient in float64): ‖Δ_k‖ ≤ 1e-6·(‖ref_k‖ + ‖ref‖), about 5000× the
 * finite differences' round-off at {@link FD_STEP_FLOAT64}.
 */
export const FLOAT64_GRADIENT_TOLERANCE = 1e-6

/**
 * Outer step of float64 Hessian-vector products by differences of gradients,
 * (∇f(x + εv) − ∇f(x − εv)) / 2ε, with the inner gradients themselves central
 * differences at {@link HVP_INNER_STEP_FLOAT64}: ε = 1e-5. Small because v moves
 * every parameter at once: at ε = 1e-3 some relu or max-pool input of a looped
 * batch-norm network crosses 0 in most directions (measured), at 1e-5 rarely.
 */
export const HVP_STEP_FLOAT64 = 1e-5
/** Inner step of the float64 HVP: h = 1e-5, so its round-off is ε₆₄·|f|/h ≈ 2e-11·|f|. */
export const HVP_INNER_STEP_FLOAT64 = 1e-5
/**
 * The float64 HVP's own relative error: the inner round-off 2e-11·|f| divided by
 * 2ε (≈ 1e-6·|f|), for |f| up to ~10× ‖Hv‖; truncation ε²·|f⁗| is negligible: 1e-5.
 */
export const FD64_HVP_NOISE = 1e-5

/** A float64 HVP under test (a hand-derived one) against the float64 differences: 10× {@link FD64_HVP_NOISE}. */
export const FLOAT64_HVP_TOLERANCE = 1e-4

/**
 * Step of float32 central differences (on the tf backend, when no float64
 * version of the function is given): ε = 3e-3 along directions with entries
 * in ±1. f carries a relative round-off of a few u per op; the difference
 * quotient turns it into {@link FLOAT32_FD_ROUNDOFF}·(1 + |f|)/ε absolute;
 * truncation ε²·|f‴|/6 ≈ 1.5e-6·|f‴| is below that.
 */
export const FD_STEP_FLOAT32 = 3e-3
/** f's float32 round-off per evaluation, relative: 8u = 5e-7 (a handful of ops' rounding). */
export const FLOAT32_FD_ROUNDOFF = 5e-7
/**
 * Relative tolerance of float32 finite differences: 2e-2. Two orders above
 * their noise on O(1) inputs (round-off ~1e-4 relative after accumulation,
 * truncation ~1e-5), two below the O(1) relative error of a missing term.
 */
export const FLOAT32_FD_TOLERANCE = 2e-2

/**
 * Float32 central differences of gradients (HVPs on the tf backend):
 * ε = 1e-2, tolerance {@link FLOAT32_FD_TOLERANCE} relative plus a floor of
 * 1e-5·‖∇f‖/ε (float32 rounding of the gradients, ~1e-6 relative after
 * accumulation, divided by 2ε): as `laws/tf/second-order.test.ts` derives it.
 */
export const HVP_STEP_FLOAT32 = 1e-2
/** The float32 HVP floor's factor: 1e-5·‖∇f‖/ε. */
export const FLOAT32_HVP_FLOOR = 1e-5

/**
 * A network's depth for the tolerances: layers on its longest path, loops
 * unrolled (iterations × (body + feedback) + readout), a parallel or residual
 * combination counting one layer; taps, identities and scopes count none.
 */
export const depth = (net: Net.AnyNet): number => {
  const n = net as Net.Node
  switch (n._tag) {
    case "Seq":
      return n.nets.reduce((a, c) => a + depth(c), 0)
    case "Scope":
      return depth(n.net)
    case "Parallel":
      return 1 + Math.max(0, ...n.branches.map(depth))
    case "Residual":
      return 1 + Math.max(depth(n.body), n.shortcut === undefined ? 0 : depth(n.shortcut))
    case "Loop":
      return Math.max(1, n.iterations) * (depth(n.body) + depth(n.feedback)) + depth(n.readout)
    case "Tap":
    case "Identity":
      return 0
    default:
      return 1
  }
}

/**
 * cmkg's laws kit (`cmkg/laws`): what a user needs to write property-based
 * laws about cmkg values with fast-check, the way `laws/` does.
 *
 * - arbitraries: networks with their input shapes (`netValue`, `wellShaped`,
 *   `anyNet`; the node kinds they draw, `KINDS`, and those a network's gradients
 *   go through, `reached`), losses over models (`lossValue`, `lossOver`), tensors and
 *   batches (`tensor`, `batchOf`), parameter trees (`parameters`);
 * - `interpretersAgree(value)`: shape-check, the tf interpreter and the float64
 *   reference give a network or a loss the same shapes, values and gradients;
 * - `gradientsMatchFiniteDifferences(fn, at)` and `hvpMatchesFiniteDifferences(fn, at)`:
 *   derivatives against central differences, in float64 when a float64 version of
 *   the function is given, else in float32 on the tf backend;
 * - tolerances as named constants with their derivation (`tolerances.ts`).
 *
 * Every check returns a {@link LawReport} (which tensor or path disagreed, by
 * how much, against which tolerance); each has an `assert…` form that throws a
 * readable `LawViolation`, which is what a fast-check property wants. The tf
 * checks need `await ready()` once. See docs/laws-kit.md for an example.
 *
 * @module
 */

/** The interpreters, for writing the `float64` and `tf` sides of a function to check. */
export * as Reference from "../interpreters/reference/index.ts"
export * as ReferenceLoss from "../interpreters/reference/loss.ts"
export * as TfInterpreter from "../interpreters/tf/index.ts"
export * as TfLoss from "../interpreters/tf/loss.ts"
export {
  type AgreeOptions,
  assertInterpretersAgree,
  interpretersAgree,
  ready,
  tfGradient,
  toReference,
  toTf,
  treeToTf,
} from "./agree.ts"
export {
  anyNet,
  anyShape,
  batchOf,
  imageShape,
  KINDS,
  type Kind,
  kinds,
  lossOver,
  lossValue,
  type NetOptions,
  type NetValueOptions,
  netValue,
  parameters,
  reached,
  tensor,
  wellShaped,
  wellShapedLayers,
} from "./arbitraries.ts"
export { centralDifferences, type Float64Fn, hvpByDifferences } from "./fd64.ts"
export {
  assertGradientsMatchFiniteDifferences,
  assertHvpMatchesFiniteDifferences,
  type FiniteDifferenceOptions,
  gradientsMatchFiniteDifferences,
  hvpMatchesFiniteDifferences,
  type ScalarFunction,
  treeToReference,
} from "./finite-differences.ts"
export { type Comparison, format, type LawReport, LawViolation, orThrow } from "./report.ts"
export * as Tolerances from "./tolerances.ts"
export {
  drawLossWorld,
  drawParams,
  type LossValue,
  type LossWorld,
  type NetValue,
  referenceEnv,
  type Value,
} from "./values.ts"

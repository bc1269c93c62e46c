/**
 * DIR-Net's static costs, read off the shape-check interpreter's loop
 * summary: MACs and parameters per loop, the cost of exiting after each
 * loop, and the expected cost under an exit distribution. The gate's reward
 * (Eq. 11) and every GFLOPs figure of the DIR-Net programs come from here.
 *
 * @module
 */
import { Data } from "effect"
import type * as Net from "../../dsl/Net.ts"
import type * as Shape from "../../dsl/Shape.ts"
import * as Check from "./index.ts"

export interface LoopCosts {
  readonly iterations: number
  /** Parameters of the whole network (all iterations' batch norms). */
  readonly params: number
  /** `paramsUpTo[k]`: parameters of the same network with `k + 1` iterations (AMG counted from k = 1). */
  readonly paramsUpTo: readonly number[]
  /** MACs of iteration k alone (k = 0 includes no feedback). */
  readonly macsPerIteration: readonly number[]
  /** `macsAtExit[k]`: MACs of one sample that exits after iteration k (FE included). */
  readonly macsAtExit: readonly number[]
  /** `gflopsAtExit[k] = 2·macsAtExit[k]/1e9`. */
  readonly gflopsAtExit: readonly number[]
  /** Per-iteration batch-norm parameters (what each extra iteration adds, for k ≥ 2); 0 for a one-iteration loop. */
  readonly batchNormParamsPerIteration: number
}

/** A shape error of a DIR-Net: its options do not fit the input. */
export class NotWellShaped extends Data.TaggedError("NotWellShaped")<{ readonly message: string }> {}

/** The loop costs of a network with exactly one loop, applied to one sample of shape `input`. */
export const loopCosts = (net: Net.AnyNet, input: Shape.Shape): LoopCosts => {
  const checked = Check.check(net, input)
  if (!checked.ok) throw new NotWellShaped({ message: checked.errors.map(Check.formatError).join("\n") })
  const s = checked.summary
  const loop = s.loops[0]
  if (loop === undefined || s.loops.length !== 1)
    throw new NotWellShaped({ message: `expected one loop, found ${s.loops.length}` })
  const macsAtExit = loop.macsPerIteration.map((_, k) => Check.macsAtExit(s, loop, k))
  const outside = s.cost.params - loop.paramsPerIteration.reduce((a, b) => a + b, 0)
  let acc = outside
  const paramsUpTo = loop.paramsPerIteration.map((p) => (acc += p))
  const bn = s.params
    .filter((p) => /@1\//.test(p.path))
    .reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0)
  return {
    iterations: loop.iterations,
    params: s.cost.params,
    paramsUpTo,
    macsPerIteration: loop.macsPerIteration,
    macsAtExit,
    gflopsAtExit: macsAtExit.map(gflops),
    batchNormParamsPerIteration: bn,
  }
}

/** GFLOPs of a MAC count (FLOPs = 2·MACs). */
export const gflops = (macs: number): number => (2 * macs) / 1e9

/** GFLOPs as text: three decimals, or three significant digits below 0.1 (tiny networks cost ~10⁻³). */
export const gflopsText = (g: number): string => (g >= 0.1 ? g.toFixed(3) : g.toPrecision(3))

/** Expected MACs per sample when a sample exits after iteration k with probability `exit[k]`. */
export const expectedMacs = (costs: Pick<LoopCosts, "macsAtExit">, exit: readonly number[]): number =>
  costs.macsAtExit.reduce((a, m, k) => a + m * (exit[k] ?? 0), 0)

/** The empirical exit distribution of per-sample exit iterations. */
export const exitDistribution = (exits: ArrayLike<number>, iterations: number): number[] => {
  const counts = new Array<number>(iterations).fill(0)
  for (let i = 0; i < exits.length; i++) counts[exits[i]!]! += 1
  return counts.map((c) => c / Math.max(1, exits.length))
}

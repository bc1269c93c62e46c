/**
 * The cost of a network as a monoid: parameters, multiply-accumulates and
 * batch-norm buffers add up over a composition.
 *
 * Convention (as fvcore and torchvision count): MACs are those of
 * convolutions (`H_out·W_out·C_out·k_h·k_w·C_in/groups`, bias not counted)
 * and dense layers (`in·out`); batch norm, activations, pooling, element-wise
 * add/multiply, reshapes and pixel shuffle count 0. FLOPs = 2 × MACs.
 *
 * @module
 */

export interface Cost {
  readonly params: number
  readonly macs: number
  /** Non-trainable state elements (batch-norm running mean and variance). */
  readonly buffers: number
}

export const empty: Cost = { params: 0, macs: 0, buffers: 0 }

export const make = (c: Partial<Cost>): Cost => ({ ...empty, ...c })

export const combine = (a: Cost, b: Cost): Cost => ({
  params: a.params + b.params,
  macs: a.macs + b.macs,
  buffers: a.buffers + b.buffers,
})

export const sum = (costs: Iterable<Cost>): Cost => {
  let acc = empty
  for (const c of costs) acc = combine(acc, c)
  return acc
}

export const flops = (c: Cost): number => 2 * c.macs

/**
 * Float64 central differences over parameter trees: gradients element by
 * element, and Hessian-vector products as differences of those gradients.
 * No tfjs here.
 *
 * @module
 */
import type * as Ref from "../interpreters/reference/index.ts"
import * as Tensors from "../interpreters/reference/Tensor.ts"

/**
 * A scalar function of a tree. `perturbed` names the one entry that differs
 * from the last call made with `undefined` (the base point), so a function can
 * cache what it computed at the base point and recompute only what depends on
 * that entry (e.g. only the model the entry belongs to).
 */
export type Float64Fn = (params: Ref.Params, perturbed: string | undefined) => number

const copy = (params: Ref.Params): Record<string, Ref.Tensor> =>
  Object.fromEntries(
    Object.entries(params).map(([k, t]) => [k, { shape: [...t.shape], data: Float64Array.from(t.data) }]),
  )

/**
 * ∂f/∂p ≈ (f(p + h) − f(p − h)) / ((p + h) − (p − h)) for every element of the
 * entries `keys` (default all); the denominator is the step actually taken.
 * `f` is first called once at `params` with `perturbed` undefined. `params` is never mutated.
 */
export const centralDifferences = (
  f: Float64Fn,
  params: Ref.Params,
  h: number,
  keys: readonly string[] = Object.keys(params),
): Record<string, Ref.Tensor> => {
  const work = copy(params)
  f(work, undefined)
  const grads: Record<string, Ref.Tensor> = {}
  for (const key of keys) {
    const t = work[key]!
    const g = Tensors.fill(t.shape)
    for (let i = 0; i < t.data.length; i++) {
      const v = t.data[i]!
      const up = v + h
      const down = v - h
      t.data[i] = up
      const fUp = f(work, key)
      t.data[i] = down
      const fDown = f(work, key)
      t.data[i] = v
      g.data[i] = (fUp - fDown) / (up - down)
    }
    grads[key] = g
  }
  return grads
}

/** p + s·v over the entries of p (entries absent from v are unchanged). */
export const shifted = (params: Ref.Params, v: Ref.Params, s: number): Record<string, Ref.Tensor> =>
  Object.fromEntries(
    Object.entries(params).map(([k, t]) => {
      const d = v[k]
      return [
        k,
        d === undefined
          ? t
          : Tensors.make(
              t.shape,
              Float64Array.from(t.data, (x, i) => x + s * d.data[i]!),
            ),
      ]
    }),
  )

/**
 * H·v ≈ (∇f(p + εv) − ∇f(p − εv)) / 2ε, with each ∇f itself {@link centralDifferences} at step `h`.
 * Costs 4 evaluations of f per scalar of the tree.
 */
export const hvpByDifferences = (
  f: Float64Fn,
  params: Ref.Params,
  v: Ref.Params,
  eps: number,
  h: number,
): Record<string, Ref.Tensor> => {
  const up = centralDifferences(f, shifted(params, v, eps), h)
  const down = centralDifferences(f, shifted(params, v, -eps), h)
  return Object.fromEntries(
    Object.keys(params).map((k) => [
      k,
      Tensors.make(
        params[k]!.shape,
        Float64Array.from(up[k]!.data, (a, i) => (a - down[k]!.data[i]!) / (2 * eps)),
      ),
    ]),
  )
}

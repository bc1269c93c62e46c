/**
 * Parameter selection as data: which of a model's parameter paths a step
 * trains, or which subset an optimizer partition labels (Equinox's filters,
 * optax's `multi_transform` labels).
 *
 * A {@link Filter} is a plain value (no closures), so a program holding one
 * can be written to `program.json` and read back. Paths are the shape
 * checker's parameter paths (`fe/conv1/kernel`, `loop/body/bn0@2/gamma`);
 * a {@link prefix} matches whole segments only (`"fe"` matches `fe/…` but
 * not `feature/…`).
 *
 * ```ts
 * // DIR-Net after stage 0: everything but the feature extractor.
 * Step.minimize({ loss, wrt: Params.only(net, Params.not(Params.prefix("fe"))), optimizer })
 * ```
 *
 * @module
 */
import type * as Program from "./Program.ts"

export type Filter =
  /** Every path. */
  | { readonly _tag: "All" }
  /** Paths equal to `prefix` or starting with `prefix/` (`prefix` may itself end with `/`). */
  | { readonly _tag: "Prefix"; readonly prefix: string }
  /** Paths with a segment `name@k` for some k (a `Loop`'s per-iteration copies), optionally only those with k = `iteration`. */
  | { readonly _tag: "Iteration"; readonly iteration: number | undefined }
  | { readonly _tag: "Not"; readonly filter: Filter }
  /** Paths any of `filters` matches (none: no path). */
  | { readonly _tag: "Or"; readonly filters: readonly Filter[] }
  /** Paths every one of `filters` matches (none: every path). */
  | { readonly _tag: "And"; readonly filters: readonly Filter[] }

export const all: Filter = { _tag: "All" }
export const prefix = (prefix: string): Filter => ({ _tag: "Prefix", prefix })
export const iteration = (k?: number): Filter => ({ _tag: "Iteration", iteration: k })
export const not = (filter: Filter): Filter => ({ _tag: "Not", filter })
export const or = (...filters: Filter[]): Filter => ({ _tag: "Or", filters })
export const and = (...filters: Filter[]): Filter => ({ _tag: "And", filters })
export const none: Filter = or()

/** Whether `filter` selects the parameter path `path`. */
export const matches = (filter: Filter, path: string): boolean => {
  switch (filter._tag) {
    case "All":
      return true
    case "Prefix": {
      const p = filter.prefix.endsWith("/") ? filter.prefix.slice(0, -1) : filter.prefix
      return path === p || path.startsWith(`${p}/`)
    }
    case "Iteration":
      return path.split("/").some((segment) => {
        const m = /@(\d+)$/.exec(segment)
        return m !== null && (filter.iteration === undefined || Number(m[1]) === filter.iteration)
      })
    case "Not":
      return !matches(filter.filter, path)
    case "Or":
      return filter.filters.some((f) => matches(f, path))
    case "And":
      return filter.filters.every((f) => matches(f, path))
    default: {
      const _: never = filter
      return _
    }
  }
}

/** The paths `filter` selects, in their order. */
export const select = (filter: Filter, paths: readonly string[]): string[] =>
  paths.filter((p) => matches(filter, p))

/** A human description, for reports and errors. */
export const describe = (filter: Filter): string => {
  switch (filter._tag) {
    case "All":
      return "all"
    case "Prefix":
      return `${filter.prefix.replace(/\/$/, "")}/…`
    case "Iteration":
      return filter.iteration === undefined ? "…@k…" : `…@${filter.iteration}…`
    case "Not":
      return `not (${describe(filter.filter)})`
    case "Or":
      return filter.filters.length === 0 ? "none" : filter.filters.map(describe).join(" or ")
    case "And":
      return filter.filters.length === 0 ? "all" : filter.filters.map(describe).join(" and ")
    default: {
      const _: never = filter
      return _
    }
  }
}

/** A model's parameters restricted to the paths `filter` selects: what a step's `wrt` may name besides whole models. */
export interface Selection {
  readonly _tag: "Selection"
  readonly model: string
  readonly filter: Filter
}

/** The parameters of `model` that `filter` selects. */
export const only = (model: Program.Model | string, filter: Filter): Selection => ({
  _tag: "Selection",
  model: typeof model === "string" ? model : model.name,
  filter,
})

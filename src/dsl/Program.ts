/**
 * Programs: the values users write in a module and hand to `cmkg`.
 *
 * A program names its models (a network with its input shape) and, for an
 * experiment, the procedure that trains them. A program module's default
 * export is a {@link Program}, or a {@link Family} that builds one per scale.
 *
 * @module
 */
import type * as Net from "./Net.ts"
import type * as Shape from "./Shape.ts"

// ---- models -------------------------------------------------------------------

/** A named network applied to inputs of one per-sample shape. */
export interface Model<T extends string = string> {
  readonly _tag: "Model"
  readonly name: string
  readonly input: Shape.Shape
  readonly net: Net.Net<T>
}

export interface Program<E = unknown> {
  readonly _tag: "Program"
  readonly name: string
  readonly description: string
  readonly models: readonly Model[]
  /** The training procedure of an experiment program; absent for a program that only declares networks. */
  readonly experiment: E | undefined
}

/** How large a run is: `tiny` for tests and demos, `small` for one machine, `paper` for the papers' settings. */
export type Scale = "tiny" | "small" | "paper"
export const scales: readonly Scale[] = ["tiny", "small", "paper"]

export interface Options {
  readonly scale: Scale
  /** Real dataset directories by dataset name, e.g. `{ rhd: "/data/RHD_published_v2" }`. */
  readonly data: Readonly<Record<string, string>>
}

/** A program parameterised by run options (a constructor, evaluated once before any interpreter runs). */
export interface Family<E = unknown> {
  readonly _tag: "Family"
  readonly name: string
  readonly description: string
  readonly build: (options: Options) => Program<E>
}

// ---- constructors ---------------------------------------------------------------

export const model = <T extends string>(name: string, net: Net.Net<T>, input: Shape.Shape): Model<T> =>
  Object.freeze({ _tag: "Model", name, input: [...input], net })

export const program = <E = never>(fields: {
  readonly name: string
  readonly description: string
  readonly models: readonly Model[]
  readonly experiment?: E
}): Program<E> =>
  Object.freeze({
    _tag: "Program",
    name: fields.name,
    description: fields.description,
    models: fields.models,
    experiment: fields.experiment,
  })

export const family = <E>(fields: Omit<Family<E>, "_tag">): Family<E> =>
  Object.freeze({ _tag: "Family", ...fields })

// ---- guards ---------------------------------------------------------------------

export const isProgram = (u: unknown): u is Program =>
  typeof u === "object" && u !== null && (u as { _tag?: unknown })._tag === "Program"
export const isFamily = (u: unknown): u is Family =>
  typeof u === "object" && u !== null && (u as { _tag?: unknown })._tag === "Family"

// ---- combinators ----------------------------------------------------------------

/** The program a module's export denotes under `options`. */
export const resolve = <E>(value: Program<E> | Family<E>, options: Options): Program<E> =>
  value._tag === "Program" ? value : value.build(options)

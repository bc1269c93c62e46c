/**
 * Loading a user's program module: resolve the path, type-check it, import it
 * (tsx compiles TypeScript on the fly), and decode its program value.
 *
 * @module
 */
import { existsSync } from "node:fs"
import { relative, resolve } from "node:path"
import { pathToFileURL } from "node:url"
import { Effect, Schema } from "effect"
import * as Program from "../dsl/Program.ts"
import { fromBundle, packageRoot } from "../package-root.ts"
import * as Read from "../run-dir/read.ts"
import { BadInvocation, ProgramRejected } from "./errors.ts"
import * as Typecheck from "./typecheck.ts"

/** A program argument resolved: the file to import, and the name to show (the source file for a built-in). */
export interface Located {
  readonly module: string
  readonly shown: string
  readonly builtIn: boolean
}

const builtIn = (name: string): Located | undefined => {
  const source = resolve(packageRoot, "src", "programs", name)
  if (!existsSync(source)) return undefined
  const shown = relative(process.cwd(), source) || source
  // From the bundle, the compiled built-in shares the CLI's module instances and needs no tsx.
  const compiled = resolve(packageRoot, "dist", "programs", name.replace(/\.ts$/, ".js"))
  return { module: fromBundle && existsSync(compiled) ? compiled : source, shown, builtIn: true }
}

/**
 * The file a program argument names: the path itself when it exists; else a
 * path under `programs/` resolves to the built-in `src/programs/`.
 */
export const locate = (arg: string): Located | undefined => {
  const direct = resolve(arg)
  if (existsSync(direct)) {
    const inside = relative(resolve(packageRoot, "src", "programs"), direct)
    if (!inside.startsWith("..") && !inside.includes("/")) return builtIn(inside)
    return { module: direct, shown: relative(process.cwd(), direct) || direct, builtIn: false }
  }
  const m = /^(?:\.\/)?programs\/(.+)$/.exec(arg)
  return m === null ? undefined : builtIn(m[1]!)
}

const firstLine = (e: unknown): string => (e instanceof Error ? e.message : String(e)).split("\n")[0]!.trim()

const TYPESCRIPT = /\.[cm]?tsx?$/

// tsx's hooks, both of them: a `.ts` file in a folder without `"type": "module"`
// above it is CommonJS to Node, and only the CommonJS hook compiles it (the ESM
// hook alone fails with "Cannot require() ES Module … in a cycle").
const registerTsx = async (): Promise<void> => {
  const key = Symbol.for("cmkg.tsx-registered")
  const flags = globalThis as { [key]?: boolean }
  if (flags[key] === true) return
  const [esm, cjs] = await Promise.all([import("tsx/esm/api"), import("tsx/cjs/api")])
  esm.register()
  cjs.register()
  flags[key] = true
}

/** The default export of a module, seen through CommonJS interop (`module.exports.default`). */
const defaultExport = (mod: Record<string, unknown>): unknown => {
  const value = mod.default
  if (Program.isProgram(value) || Program.isFamily(value)) return value
  if (typeof value === "object" && value !== null && "default" in value)
    return (value as { default: unknown }).default
  return value
}

/** Imports the module at `arg` and returns its default export as a program or family. */
export const load = (
  arg: string,
  options: { readonly typecheck?: boolean | undefined } = {},
): Effect.Effect<
  { readonly file: string; readonly value: Program.Program | Program.Family },
  BadInvocation | ProgramRejected
> =>
  Effect.gen(function* () {
    const located = locate(arg)
    if (located === undefined)
      return yield* new BadInvocation({ message: `${arg}: no such file (nor a built-in program)` })
    const shown = located.shown
    // Built-in programs are type-checked with the project (`npm test`); a user's module here,
    // side by side with importing it (tsc is a separate process).
    const typeErrors =
      options.typecheck === false || located.builtIn || !TYPESCRIPT.test(located.module)
        ? undefined
        : Typecheck.start(located.module)
    if (TYPESCRIPT.test(located.module)) yield* Effect.promise(registerTsx)
    const mod = yield* Effect.tryPromise({
      try: () => import(pathToFileURL(located.module).href) as Promise<Record<string, unknown>>,
      catch: (e) => new BadInvocation({ message: `${shown}: cannot load the module: ${firstLine(e)}` }),
    })
    if (typeErrors !== undefined) {
      const errors = yield* Effect.promise(() => typeErrors)
      if (errors.length > 0)
        return yield* new ProgramRejected({
          message: `${shown}: ${errors.length} type error(s), nothing was run (--no-typecheck skips this check):\n${errors.map((e) => `  ${e}`).join("\n")}`,
        })
    }
    const value = defaultExport(mod)
    if (!Program.isProgram(value) && !Program.isFamily(value))
      return yield* new BadInvocation({
        message: `${shown}: the module has no program as its default export (export default Program.program({...}))`,
      })
    return { file: shown, value }
  })

// ---- the program value's outer structure ------------------------------------------------
// The type checker guarantees it for a well-typed module; these decode what a module built
// without it (plain JS, `--no-typecheck`, a cast) hands over, before any interpreter walks it.

const Tagged = Schema.Struct({ _tag: Schema.String })
const ModelShape = Schema.Struct({
  _tag: Schema.Literal("Model"),
  name: Schema.String,
  input: Schema.Array(Schema.Number.check(Schema.isInt(), Schema.isGreaterThan(0))),
  net: Tagged,
})
const ProgramShape = Schema.Struct({
  _tag: Schema.Literal("Program"),
  name: Schema.String.check(Schema.isNonEmpty()),
  description: Schema.String,
  models: Schema.Array(ModelShape),
  experiment: Schema.Union([Schema.Undefined, Tagged]),
})

/** The program a loaded module denotes under `options`, its outer structure decoded. */
export const resolveProgram = (
  loaded: { readonly file: string; readonly value: Program.Program | Program.Family },
  options: Program.Options,
): Effect.Effect<Program.Program, BadInvocation> =>
  Effect.gen(function* () {
    const built = yield* Effect.try({
      try: () => Program.resolve(loaded.value, options),
      catch: (e) =>
        new BadInvocation({
          message: `${loaded.file}: building the program failed: ${e instanceof Error ? e.message : String(e)}`,
        }),
    })
    // The run directory's one-line decoder: `models: expected array, got 3`.
    yield* Effect.try({
      try: () => Read.decode(loaded.file, ProgramShape, built),
      catch: (e) =>
        new BadInvocation({
          message:
            e instanceof Read.RunFileError
              ? `${loaded.file}: not a valid program value: ${e.at === "" ? "" : `${e.at}: `}${e.problem}`
              : `${loaded.file}: not a valid program value: ${String(e)}`,
        }),
    })
    return built
  })

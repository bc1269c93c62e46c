/**
 * Loading a user's program module: resolve the path, import it (tsx compiles
 * TypeScript on the fly), and find its program value.
 *
 * @module
 */
import { existsSync } from "node:fs"
import { dirname, relative, resolve } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { Effect } from "effect"
import * as Program from "../dsl/Program.ts"
import { BadInvocation } from "./errors.ts"

const builtInPrograms = resolve(dirname(fileURLToPath(import.meta.url)), "../programs")

/**
 * The file a program argument names: the path itself when it exists; else a
 * path under `programs/` resolves to the built-in `src/programs/`.
 */
export const resolvePath = (arg: string): string | undefined => {
  const direct = resolve(arg)
  if (existsSync(direct)) return direct
  const m = /^(?:\.\/)?programs\/(.+)$/.exec(arg)
  if (m !== null) {
    const builtIn = resolve(builtInPrograms, m[1]!)
    if (existsSync(builtIn)) return builtIn
  }
  return undefined
}

const firstLine = (e: unknown): string => (e instanceof Error ? e.message : String(e)).split("\n")[0]!.trim()

/** Imports the module at `arg` and returns its default export as a program or family. */
export const load = (
  arg: string,
): Effect.Effect<
  { readonly file: string; readonly value: Program.Program | Program.Family },
  BadInvocation
> =>
  Effect.gen(function* () {
    const file = resolvePath(arg)
    if (file === undefined)
      return yield* new BadInvocation({ message: `${arg}: no such file (nor a built-in program)` })
    const shown = relative(process.cwd(), file) || file
    const mod = yield* Effect.tryPromise({
      try: () => import(pathToFileURL(file).href) as Promise<Record<string, unknown>>,
      catch: (e) => new BadInvocation({ message: `${shown}: cannot load the module: ${firstLine(e)}` }),
    })
    const value = mod.default
    if (!Program.isProgram(value) && !Program.isFamily(value))
      return yield* new BadInvocation({
        message: `${shown}: the module has no program as its default export (export default Program.program({...}))`,
      })
    return { file: shown, value }
  })

/**
 * Type-checking a user's program module before it runs, so the DSL's
 * compile-time guarantees (a loss naming an undeclared tap, a wrong feed)
 * protect every user, not only those who run `tsc` themselves.
 *
 * cmkg's own `typescript` (tsc 7, a native binary) checks the module and what
 * it imports, with the options the DSL's types are written for. It runs as a
 * separate process, started before the module is imported, so the two overlap.
 *
 * @module
 */
import { execFile } from "node:child_process"
import { existsSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join, relative, resolve } from "node:path"

/** The options cmkg's own sources are checked with (tsconfig.json), minus the project-only ones. */
const OPTIONS = [
  "--noEmit",
  "--ignoreConfig",
  "--pretty",
  "false",
  "--strict",
  "--exactOptionalPropertyTypes",
  "--target",
  "es2022",
  "--module",
  "nodenext",
  "--moduleResolution",
  "nodenext",
  "--allowImportingTsExtensions",
  "--skipLibCheck",
]

const tscPath = (): string | undefined => {
  try {
    const manifest = createRequire(import.meta.url).resolve("typescript/package.json")
    const bin = join(dirname(manifest), "bin", "tsc")
    return existsSync(bin) ? bin : undefined
  } catch {
    return undefined
  }
}

/** Node's own types, when the program's project has them (tsc looks for them from there). */
const nodeTypes = (file: string): readonly string[] => {
  try {
    createRequire(file).resolve("@types/node/package.json")
    return ["--types", "node"]
  } catch {
    return ["--types", ""]
  }
}

/** `a.ts(3,5): error TS2322: …` (relative to tsc's `cwd`) → `a.ts:3:5 - error TS2322: …` relative to ours. */
const asTscPrints = (line: string, cwd: string): string => {
  const m = /^(.+?)\((\d+),(\d+)\): (.*)$/.exec(line)
  return m === null ? line : `${relative(process.cwd(), resolve(cwd, m[1]!))}:${m[2]}:${m[3]} - ${m[4]}`
}

/**
 * Starts tsc on `file`; resolves to its diagnostics, one line each as
 * `file:line:col - error TSnnnn: message` (empty when the module type-checks).
 * Without a TypeScript install it resolves to a single line saying so.
 */
export const start = (file: string): Promise<readonly string[]> => {
  const tsc = tscPath()
  if (tsc === undefined)
    return Promise.resolve([
      "typescript is not installed next to cmkg (npm install typescript), or pass --no-typecheck",
    ])
  return new Promise((done) => {
    execFile(
      process.execPath,
      [tsc, ...OPTIONS, ...nodeTypes(file), file],
      { cwd: dirname(file), maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const lines = `${stdout}`
          .split("\n")
          .map((l) => l.trimEnd())
          .filter((l) => l !== "")
        // Continuation lines of a diagnostic start with spaces; keep them with their line.
        const diagnostics: string[] = []
        for (const l of lines)
          if (/^\s/.test(l) && diagnostics.length > 0) diagnostics[diagnostics.length - 1] += ` ${l.trim()}`
          else diagnostics.push(asTscPrints(l, dirname(file)))
        if (error !== null && diagnostics.length === 0)
          diagnostics.push(`tsc failed: ${`${stderr}`.trim().split("\n")[0] ?? error.message}`)
        done(diagnostics)
      },
    )
  })
}

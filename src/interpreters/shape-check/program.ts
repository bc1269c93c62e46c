/**
 * The shape-check interpreter lifted to whole programs: every model checked,
 * every error collected with the model's name prefixed to its path.
 *
 * @module
 */
import type * as Program from "../../dsl/Program.ts"
import * as Check from "./index.ts"

export interface ModelReport {
  readonly name: string
  readonly summary: Check.Summary
}

export interface ProgramReport {
  readonly name: string
  readonly models: readonly ModelReport[]
  readonly errors: readonly Check.ShapeError[]
}

const prefix = (name: string, e: Check.ShapeError): Check.ShapeError => ({
  ...e,
  path: e.path === "<root>" ? name : `${name}/${e.path}`,
})

/** Checks every model of a program. */
export const checkModels = (program: Program.Program): ProgramReport => {
  const models: ModelReport[] = []
  const errors: Check.ShapeError[] = []
  const seen = new Set<string>()
  for (const m of program.models) {
    if (seen.has(m.name))
      errors.push({ _tag: "ShapeError", path: m.name, message: "two models have this name" })
    seen.add(m.name)
    const checked = Check.check(m.net, m.input)
    models.push({ name: m.name, summary: checked.summary })
    if (!checked.ok) errors.push(...checked.errors.map((e) => prefix(m.name, e)))
  }
  return { name: program.name, models, errors }
}

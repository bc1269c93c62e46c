/**
 * Reading back the JSON files of a run directory through their schemas
 * (`schema.ts`). A file that is not valid JSON or does not match its schema
 * fails with a {@link RunFileError} whose message is one line naming the
 * file, the line (JSON Lines), the path inside the value, what was expected
 * and what is there: `results.json: rows[3].epe: expected number, got null`.
 *
 * @module
 */
import { readFileSync } from "node:fs"
import { Data, Result, Schema, SchemaAST, SchemaIssue } from "effect"

/** A file of a run directory that cmkg cannot read back: not JSON, or not what `cmkg run` writes. */
export class RunFileError extends Data.TaggedError("RunFileError")<{
  readonly file: string
  /** Where in the file: `line 7: loss`, `rows[3].epe`, or "" for the whole file. */
  readonly at: string
  readonly problem: string
  /** `file: at: problem`, one line. */
  readonly message: string
}> {}

/** The error for `file` with `problem` at `at` (a JavaScript path, or "" for the whole file). */
export const fileError = (file: string, at: string, problem: string) =>
  new RunFileError({
    file,
    at,
    problem,
    message: at === "" ? `${file}: ${problem}` : `${file}: ${at}: ${problem}`,
  })

/** `rows[3].epe`, `pck["20"]`: the path as a JavaScript accessor, without the root. */
const formatPath = (path: readonly PropertyKey[]): string =>
  path
    .map((k, i) =>
      typeof k === "number"
        ? `[${k}]`
        : typeof k === "string" && /^[A-Za-z_$][\w$]*$/.test(k)
          ? `${i === 0 ? "" : "."}${k}`
          : `[${JSON.stringify(String(k))}]`,
    )
    .join("")

/** A value as it reads in a one-line message: JSON, cut short. */
const show = (value: unknown): string => {
  const text = value === undefined ? "undefined" : JSON.stringify(value)
  return text.length > 60 ? `${text.slice(0, 57)}...` : text
}

const child = (value: unknown, key: PropertyKey): unknown =>
  typeof value === "object" && value !== null ? (value as Record<PropertyKey, unknown>)[key] : undefined

/**
 * How many of an object schema's tags (required literal properties, such as
 * `kind: "DirNetExperiment"`) `input` carries: in a union, the member whose
 * tags the input carries is the one its failure is reported for.
 */
const tagsMatched = (issue: SchemaIssue.Issue, input: unknown): number => {
  if (!("ast" in issue) || !SchemaAST.isObjects(issue.ast)) return 0
  return issue.ast.propertySignatures.filter(
    (ps) =>
      SchemaAST.isLiteral(ps.type) &&
      !SchemaAST.isOptional(ps.type) &&
      child(input, ps.name) === ps.type.literal,
  ).length
}

const standard = SchemaIssue.makeFormatterStandardSchemaV1()

/** The first failure in an issue tree: its path from the root, and what is wrong there, in one line. */
const firstFailure = (
  issue: SchemaIssue.Issue,
  path: readonly PropertyKey[],
  input: unknown,
): { path: readonly PropertyKey[]; problem: string } => {
  switch (issue._tag) {
    case "Pointer":
      return firstFailure(issue.issue, [...path, ...issue.path], issue.path.reduce<unknown>(child, input))
    case "Encoding":
      return firstFailure(issue.issue, path, input)
    case "Composite":
      return firstFailure(issue.issues[0], path, input)
    case "AnyOf": {
      if (issue.issues.length === 0) break
      let best = issue.issues[0]!
      for (const i of issue.issues) if (tagsMatched(i, input) > tagsMatched(best, input)) best = i
      return firstFailure(best, path, input)
    }
    case "MissingKey":
      return { path, problem: "missing" }
    default:
      break
  }
  // A leaf or a failed check: Effect's message for it ("Expected number"), with the value found.
  const message = standard(issue).issues[0]?.message ?? "invalid"
  const expected = /^Expected /.test(message)
  return {
    path,
    problem: expected ? `expected ${message.slice("Expected ".length)}, got ${show(input)}` : message,
  }
}

/** Where a value sits in its file: its line (JSON Lines, from 1) and its path from the file's root. */
export interface Place {
  readonly line?: number
  readonly path?: readonly PropertyKey[]
}

/**
 * `value`, found in `file` at `place`, decoded with `schema`; throws a
 * {@link RunFileError} naming the file, the line and the path of the first
 * mismatch.
 */
export const decode = <S extends Schema.ConstraintDecoder<unknown>>(
  file: string,
  schema: S,
  value: unknown,
  place: Place = {},
): S["Type"] => {
  const result = Schema.decodeUnknownResult(schema)(value)
  if (Result.isSuccess(result)) return result.success
  const failure = firstFailure(result.failure.issue, place.path ?? [], value)
  const at = [place.line === undefined ? "" : `line ${place.line}`, formatPath(failure.path)]
  throw fileError(file, at.filter((s) => s !== "").join(": "), failure.problem)
}

/** JSON.parse's reason on one line (V8 quotes the text around the error, newlines included), cut short. */
const notJson = (e: unknown) => {
  const reason = (e instanceof Error ? e.message : String(e)).replace(/\s+/g, " ").trim()
  return `not valid JSON (${reason.length > 120 ? `${reason.slice(0, 117)}...` : reason})`
}

const parse = (file: string, text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch (e) {
    throw fileError(file, "", notJson(e))
  }
}

const readText = (file: string): string => {
  try {
    return readFileSync(file, "utf8")
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") throw fileError(file, "", "missing")
    throw fileError(file, "", `cannot be read (${e instanceof Error ? e.message : String(e)})`)
  }
}

/** The JSON file `file` decoded with `schema`; throws a {@link RunFileError} when it is not JSON or does not match. */
export const readJson = <S extends Schema.ConstraintDecoder<unknown>>(file: string, schema: S): S["Type"] =>
  decode(file, schema, parse(file, readText(file)))

/**
 * The JSON Lines file `file`, each line decoded with `schema`; a bad line
 * throws a {@link RunFileError} naming its number (from 1). Blank lines are
 * skipped, and so is an unparsable last line without its newline: a run
 * killed while appending leaves one.
 */
export const readJsonLines = <S extends Schema.ConstraintDecoder<unknown>>(
  file: string,
  schema: S,
): S["Type"][] => {
  const lines = readText(file).split("\n")
  const out: S["Type"][] = []
  lines.forEach((line, i) => {
    if (line.trim() === "") return
    let value: unknown
    try {
      value = JSON.parse(line)
    } catch (e) {
      if (i === lines.length - 1) return
      throw fileError(file, `line ${i + 1}`, notJson(e))
    }
    out.push(decode(file, schema, value, { line: i + 1 }))
  })
  return out
}

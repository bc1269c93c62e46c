/**
 * Reading back a JSON file cmkg wrote (a checkpoint's `model.json`, a run's
 * `program.json`) against an Effect `Schema`, so that a damaged or foreign
 * file fails with one line naming the file, the path inside it, what was
 * expected and what is there: `…/model.json: userDefinedMetadata.cmkg.serial:
 * expected an integer, got "7"`.
 *
 * @module
 */
import { existsSync, readFileSync } from "node:fs"
import { Result, Schema, SchemaIssue } from "effect"

/** A file cmkg reads back is missing, not JSON, or not what cmkg wrote there; the message is one line naming it. */
export class BadFile extends Error {
  override readonly name = "BadFile"
}

/** `a.b[0]["opt/x"]`: a path inside a JSON value as one would write it in JavaScript. */
export const formatPath = (path: ReadonlyArray<PropertyKey>): string =>
  path
    .map((k, i) =>
      typeof k === "number"
        ? `[${k}]`
        : /^[A-Za-z_$][\w$]*$/.test(String(k))
          ? `${i === 0 ? "" : "."}${String(k)}`
          : `[${JSON.stringify(String(k))}]`,
    )
    .join("")

/** A short one-line rendering of a JSON value for an error message. */
const show = (v: unknown): string => {
  const s = JSON.stringify(v) ?? String(v)
  return s.length > 60 ? `${s.slice(0, 57)}…` : s
}

const formatter = SchemaIssue.makeFormatterStandardSchemaV1()

/** The first problem of a failed decode as `PATH: expected …, got …` (`missing` for an absent key). */
export const describeIssue = (issue: SchemaIssue.Issue, input: unknown): string => {
  const issues = formatter(issue).issues
  const first = issues[0]
  if (first === undefined) return "not what cmkg writes here"
  const path = (first.path ?? []).map((p) => (typeof p === "object" && p !== null ? p.key : p))
  let at: unknown = input
  for (const k of path)
    at = typeof at === "object" && at !== null ? (at as Record<PropertyKey, unknown>)[k] : undefined
  const message = first.message === "Missing key" ? "missing" : first.message.replace(/^Expected/, "expected")
  const got = first.message === "Missing key" || message.includes(", got") ? "" : `, got ${show(at)}`
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more problem(s))` : ""
  return `${path.length === 0 ? "" : `${formatPath(path)}: `}${message}${got}${more}`
}

/** `value`, read from `file`, decoded with `schema`; throws {@link BadFile} naming the file and the path. */
export const decode = <S extends Schema.ConstraintDecoder<unknown>>(
  schema: S,
  file: string,
  value: unknown,
): S["Type"] => {
  const r = Schema.decodeUnknownResult(schema)(value)
  if (Result.isFailure(r)) throw new BadFile(`${file}: ${describeIssue(r.failure.issue, value)}`)
  return r.success
}

/** The JSON value in `file`; throws {@link BadFile} (one line) when it is missing or not JSON. */
export const readJson = (file: string): unknown => {
  if (!existsSync(file)) throw new BadFile(`${file}: missing`)
  const text = readFileSync(file, "utf8")
  try {
    return JSON.parse(text)
  } catch (e) {
    // V8 quotes the start of the text, newlines included: keep the message on one line.
    const why = (e instanceof Error ? e.message : String(e)).replace(/\s*\n\s*/g, "\\n")
    throw new BadFile(`${file}: not valid JSON (${why})`)
  }
}

/** The JSON file `file` decoded with `schema`. */
export const read = <S extends Schema.ConstraintDecoder<unknown>>(schema: S, file: string): S["Type"] =>
  decode(schema, file, readJson(file))

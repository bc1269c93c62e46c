/**
 * The CLI's typed failures and the exit code each maps to: the CLI's own, and
 * the tagged errors of the settings, the backend and the runner that reach it
 * (each is one line the CLI prints as it is, after `cmkg: `).
 *
 * @module
 */
import { Data } from "effect"
import { runErrorTags } from "../interpreters/tf/run-error-tags.ts"

/** The user's invocation cannot be carried out (missing file, not a program module, bad flag value): exit 2. */
export class BadInvocation extends Data.TaggedError("BadInvocation")<{ readonly message: string }> {}

/** The program is ill-formed (shape errors, unknown taps, missing data): exit 1, nothing was trained. */
export class ProgramRejected extends Data.TaggedError("ProgramRejected")<{ readonly message: string }> {}

/** A run failed while training (e.g. a NaN loss): exit 1. */
export class RunFailed extends Data.TaggedError("RunFailed")<{ readonly message: string }> {}

/** Tags of failures that mean the invocation or its environment is wrong, not the program or the run: exit 2. */
const invocation: ReadonlySet<string> = new Set(["BadInvocation", "BadSetting", "BackendUnavailable"])

/**
 * Every tagged failure the CLI reports as its one-line message: its own, a bad
 * environment variable (`settings.ts`), no backend (`tf/backend.ts`), and the
 * runner's (`tf/experiment.ts`'s `RunError`).
 */
const reported: ReadonlySet<string> = new Set([
  ...invocation,
  "ProgramRejected",
  "RunFailed",
  ...runErrorTags,
])

/** A failure the CLI prints as it is: a tag it knows and a one-line message. */
export interface CliError {
  readonly _tag: string
  readonly message: string
}

export const isCliError = (u: unknown): u is CliError =>
  typeof u === "object" &&
  u !== null &&
  reported.has((u as { _tag?: unknown })._tag as string) &&
  typeof (u as { message?: unknown }).message === "string"

export const exitCode = (e: CliError): number => (invocation.has(e._tag) ? 2 : 1)

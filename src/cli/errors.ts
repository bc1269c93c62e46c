/**
 * The CLI's typed failures and the exit code each maps to.
 *
 * @module
 */
import { Data } from "effect"

/** The user's invocation cannot be carried out (missing file, not a program module, bad flag value): exit 2. */
export class BadInvocation extends Data.TaggedError("BadInvocation")<{ readonly message: string }> {}

/** The program is ill-formed (shape errors, unknown taps, missing data): exit 1, nothing was trained. */
export class ProgramRejected extends Data.TaggedError("ProgramRejected")<{ readonly message: string }> {}

/** A run failed while training (e.g. a NaN loss): exit 1. */
export class RunFailed extends Data.TaggedError("RunFailed")<{ readonly message: string }> {}

export type CliError = BadInvocation | ProgramRejected | RunFailed

export const exitCode = (e: CliError): number => (e._tag === "BadInvocation" ? 2 : 1)

/**
 * The tags of the runner's errors (`experiment.ts`'s `RunError`), in a module
 * of their own so that the CLI can tell them apart without loading the
 * runner and tfjs (`cmkg check` and `--version` load no tfjs).
 * `experiment.ts` checks at compile time that this list is exactly RunError's tags.
 *
 * @module
 */
export const RUN_ERROR_TAGS = [
  "NonFiniteLoss",
  "CannotResume",
  "WriteFailed",
  "StepError",
  "LossError",
  "ParameterError",
  "IllFormed",
  "TrainingFailed",
] as const

export const runErrorTags: ReadonlySet<string> = new Set(RUN_ERROR_TAGS)

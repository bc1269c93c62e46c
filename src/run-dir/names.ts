/**
 * Names of entries in a run directory derived from what a program calls
 * things (a stage, a variant): one rule, used by the runners that write
 * `models/<name>/` and by the report that finds them again.
 *
 * @module
 */

/** `eval student (KD)` → `eval-student-KD`: runs of characters a file name should not hold become one `-`. */
export const slug = (s: string): string => s.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^-|-$/g, "")

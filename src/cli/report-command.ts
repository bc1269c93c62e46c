/**
 * `cmkg report <run-dir>` as a CLI command over `report/`'s renderer.
 *
 * @module
 */
import { Console, Effect } from "effect"
import * as Report from "../report/index.ts"
import { RunFileError } from "../run-dir/read.ts"
import { BadInvocation, RunFailed } from "./errors.ts"

/**
 * The CLI command: prints the files written, one per line (the page first).
 * A missing or non-run directory is a bad invocation (exit 2); a file of
 * the run directory that does not decode fails with its one-line message
 * (file, path inside it, value), as does any other failure (rendering):
 * exit 1.
 */
export const command = (runDir: string): Effect.Effect<{ files: string[] }, BadInvocation | RunFailed> =>
  Effect.gen(function* () {
    const written = yield* Effect.tryPromise({
      try: () => Report.report(runDir),
      catch: (e) =>
        e instanceof Report.NotARunDirectory
          ? new BadInvocation({ message: e.message })
          : e instanceof RunFileError
            ? new RunFailed({
                message: `${e.message} (restore the file as cmkg run wrote it, or run the experiment again)`,
              })
            : new RunFailed({
                message: `cmkg report ${runDir}: ${e instanceof Error ? e.message : String(e)}`,
              }),
    })
    for (const f of written.files) yield* Console.log(f)
    return written
  })

/**
 * `cmkg report <run-dir>` as a CLI command over `report/`'s renderer.
 *
 * @module
 */
import { Console, Effect } from "effect"
import * as Report from "../report/index.ts"
import { BadInvocation, RunFailed } from "./errors.ts"

/**
 * The CLI command: prints the files written, one per line (the page first).
 * A missing or non-run directory is a bad invocation (exit 2); any other
 * failure (unreadable checkpoint, rendering) fails the command (exit 1).
 */
export const command = (runDir: string): Effect.Effect<{ files: string[] }, BadInvocation | RunFailed> =>
  Effect.gen(function* () {
    const written = yield* Effect.tryPromise({
      try: () => Report.report(runDir),
      catch: (e) =>
        e instanceof Report.NotARunDirectory
          ? new BadInvocation({ message: e.message })
          : new RunFailed({
              message: `cmkg report ${runDir}: ${e instanceof Error ? e.message : String(e)}`,
            }),
    })
    for (const f of written.files) yield* Console.log(f)
    return written
  })

/**
 * cmkg's environment variables, read through Effect `Config` in this one
 * place:
 *
 * - `CMKG_BACKEND`: the tfjs backend `--backend auto` means (one of
 *   `backend-names.ts`'s names), e.g. to time the tests on the plain cpu backend;
 * - `CMKG_DNNL`: `0` turns the oneDNN kernels off (`1`, or unset: on when the addon loads);
 * - `CMKG_CACHE_DIR`: the directory of generated data (default `.cache/cmkg`
 *   under the working directory).
 *
 * An empty variable counts as unset. A bad value fails with {@link BadSetting},
 * one line naming the variable, its value and what it accepts. The CLI reads
 * {@link settings} once before anything runs; the library's lower layers
 * (the backend, the data cache) read their one variable through the same
 * Configs, synchronously ({@link read}).
 *
 * @module
 */
import { existsSync, statSync } from "node:fs"
import { join } from "node:path"
import { Cause, Config, ConfigProvider, Data, Effect, Exit, Option } from "effect"
import { BACKENDS, type BackendPreference } from "./backend-names.ts"

/** An environment variable of cmkg's holds a value it cannot use. */
export class BadSetting extends Data.TaggedError("BadSetting")<{
  readonly variable: string
  readonly value: string
  /** `CMKG_DNNL=2: expected 0 (oneDNN off) or 1 (on)`: one line. */
  readonly message: string
}> {}

/** The variable's value, when set and not empty. */
const raw = (variable: string): Effect.Effect<string | undefined, BadSetting> =>
  Config.String(variable).pipe(
    Config.option,
    Effect.map((v) => Option.getOrUndefined(v)),
    // The environment provider reads strings only: its one failure would be a source error; say so in one line.
    Effect.mapError((e) => new BadSetting({ variable, value: "", message: `${variable}: ${e.message}` })),
  )

const bad = (variable: string, value: string, expected: string) =>
  new BadSetting({ variable, value, message: `${variable}=${value}: ${expected}` })

/** `CMKG_BACKEND`: the backend `--backend auto` means; undefined: the automatic order. */
export const backend: Effect.Effect<BackendPreference | undefined, BadSetting> = Effect.flatMap(
  raw("CMKG_BACKEND"),
  (v) =>
    v === undefined
      ? Effect.succeed(undefined)
      : (BACKENDS as readonly string[]).includes(v)
        ? Effect.succeed(v as BackendPreference)
        : Effect.fail(bad("CMKG_BACKEND", v, `expected one of ${BACKENDS.join(", ")}`)),
)

/** `CMKG_DNNL`: whether the oneDNN kernels may be used (they are unless it is `0`). */
export const dnnl: Effect.Effect<boolean, BadSetting> = Effect.flatMap(raw("CMKG_DNNL"), (v) =>
  v === undefined || v === "1"
    ? Effect.succeed(true)
    : v === "0"
      ? Effect.succeed(false)
      : Effect.fail(bad("CMKG_DNNL", v, "expected 0 (oneDNN kernels off) or 1 (on)")),
)

/** `CMKG_CACHE_DIR`, or `.cache/cmkg` under the working directory: where generated data is kept (not created here). */
export const cacheDir: Effect.Effect<string, BadSetting> = Effect.flatMap(raw("CMKG_CACHE_DIR"), (v) =>
  v === undefined
    ? Effect.sync(() => join(process.cwd(), ".cache", "cmkg"))
    : existsSync(v) && !statSync(v).isDirectory()
      ? Effect.fail(
          bad(
            "CMKG_CACHE_DIR",
            v,
            "not a directory; name a directory for cmkg's data cache (created if missing)",
          ),
        )
      : Effect.succeed(v),
)

export interface Settings {
  readonly backend: BackendPreference | undefined
  readonly dnnl: boolean
  readonly cacheDir: string
}

/** Every variable, checked at once (the CLI, before anything runs). */
export const settings: Effect.Effect<Settings, BadSetting> = Effect.all({ backend, dnnl, cacheDir })

/** One setting, read now; a bad value throws its {@link BadSetting} (for the library's synchronous layers). */
export const read = <A>(setting: Effect.Effect<A, BadSetting>): A => {
  // The environment as it is now: Effect's default provider keeps the one it saw first (tests set variables later).
  const exit = Effect.runSyncExit(
    Effect.provideService(setting, ConfigProvider.ConfigProvider, ConfigProvider.fromEnv()),
  )
  if (Exit.isSuccess(exit)) return exit.value
  throw Cause.squash(exit.cause)
}

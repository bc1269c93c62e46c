/**
 * The tfjs backend as a service of the tf interpreter's Effect programs: the
 * runner requires {@link Backend}, and {@link layer} provides it, choosing and
 * activating the backend when the program starts and releasing its native
 * sessions (onnxruntime's) when the program's scope closes. The choice is the
 * caller's preference, or `CMKG_BACKEND` for `auto` (read through
 * `settings.ts`'s Config).
 *
 * tfjs itself keeps one active backend per process: the layer is how a
 * program says which one it runs on, and the runner reads its name from the
 * service, never from module state.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core"
import { Context, Data, Effect, Layer } from "effect"
import { type BackendPreference, clearSessions, type Selected, selectBackend } from "../../backend/index.ts"
import * as Settings from "../../settings.ts"
import { registerHigherOrderGradients } from "./gradients.ts"

/** The active tfjs backend: its name (recorded in results.json) and why it was chosen. */
export class Backend extends Context.Service<Backend, Selected>()("cmkg/Backend") {}

/** No backend initialised (the message lists why each candidate was skipped), or the one asked for failed. */
export class BackendUnavailable extends Data.TaggedError("BackendUnavailable")<{
  readonly preference: BackendPreference
  readonly message: string
}> {}

/** `CMKG_BACKEND` for `auto`; the preference itself otherwise. */
export const preference = (
  asked: BackendPreference,
): Effect.Effect<BackendPreference, Settings.BadSetting> =>
  asked === "auto" ? Effect.map(Settings.backend, (env) => env ?? "auto") : Effect.succeed(asked)

/** Chooses and activates the backend and registers every gradient (tfjs-core's, then cmkg's higher-order fixes). */
export const activate = async (
  which: BackendPreference,
  options: { readonly threads?: number } = {},
): Promise<Selected> => {
  // tfjs's own warnings (e.g. "install tfjs-node") are noise here: cmkg prints the backend it chose.
  tf.env().set("PROD", true)
  const selected = await selectBackend(which, options)
  // After the stock gradients, so that ours replace the broken ones.
  registerHigherOrderGradients()
  return selected
}

/** The backend for `asked` (with `CMKG_BACKEND` for `auto`), released with the scope that built the layer. */
export const layer = (
  asked: BackendPreference,
  options: { readonly threads?: number } = {},
): Layer.Layer<Backend, BackendUnavailable | Settings.BadSetting> =>
  Layer.effect(
    Backend,
    Effect.gen(function* () {
      const which = yield* preference(asked)
      return yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: () => activate(which, options),
          catch: (e) =>
            new BackendUnavailable({
              preference: which,
              message: `--backend ${which}: ${e instanceof Error ? e.message : String(e)}`,
            }),
        }),
        // onnxruntime's sessions hold native memory and threads: none outlives the program that used them.
        () => Effect.sync(clearSessions),
      )
    }),
  )

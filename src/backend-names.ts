/**
 * The backend names `--backend` and `CMKG_BACKEND` accept. Its own module, beside
 * `settings.ts` (which checks `CMKG_BACKEND` against it) and below `backend/`,
 * free of tfjs, so the command line can list them without loading tfjs.
 *
 * @module
 */

/** Every `--backend` / `CMKG_BACKEND` value, "auto" first. */
export const BACKENDS = ["auto", "tensorflow-gpu", "tensorflow", "cmkg-cpu", "wasm", "cpu"] as const

export type BackendPreference = (typeof BACKENDS)[number]

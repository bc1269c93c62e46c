/**
 * The tf interpreter: the training meaning of cmkg programs, on TensorFlow.js.
 *
 * `ready()` must be awaited once before anything else: it chooses the backend
 * (tfjs-node-gpu, tfjs-node, cmkg-cpu, wasm, cpu — see `backend/`), registers
 * tfjs-core's gradients (absent from its Node build) and cmkg's higher-order
 * gradient fixes, so that `apply` can be differentiated to any order.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core"
import type { BackendPreference, Selected } from "../../backend/index.ts"
import * as Settings from "../../settings.ts"
import { activate } from "./backend.ts"

export type { BackendPreference, Selected } from "../../backend/index.ts"
export { BACKENDS } from "../../backend-names.ts"
export { type Applied, apply, type Mode } from "./apply.ts"
export { valueAndGrad } from "./autodiff.ts"
export { Backend, BackendUnavailable, layer as backendLayer } from "./backend.ts"
export { count, dispose, IllFormed, type Initialised, init, prng as prngFor, type Tree } from "./init.ts"

// The library's own entry (tests, the laws kit, the bench); Effect programs take the backend from `backendLayer`.
let selected: Selected | undefined

/** Chooses and initialises the backend (idempotent for the same preference) and registers every gradient. */
export const ready = async (
  preference: BackendPreference = "auto",
  options: { readonly threads?: number } = {},
): Promise<Selected> => {
  // CMKG_BACKEND overrides the automatic choice (e.g. to time the test suite on the plain cpu backend).
  if (preference === "auto") preference = Settings.read(Settings.backend) ?? "auto"
  if (selected !== undefined && (preference === "auto" || selected.name === preference)) return selected
  selected = await activate(preference, options)
  return selected
}

/** Live tensors on the engine: constant across the steps of a leak-free loop. */
export const liveTensors = (): number => tf.memory().numTensors

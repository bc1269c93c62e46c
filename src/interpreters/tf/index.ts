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
import { type BackendPreference, type Selected, selectBackend } from "../../backend/index.ts"
import { BACKENDS } from "../../backend/names.ts"
import { registerHigherOrderGradients } from "./gradients.ts"

export type { BackendPreference, Selected } from "../../backend/index.ts"
export { BACKENDS } from "../../backend/names.ts"
export { type Applied, apply, type Mode } from "./apply.ts"
export { valueAndGrad } from "./autodiff.ts"
export { count, dispose, IllFormed, type Initialised, init, prng as prngFor, type Tree } from "./init.ts"

let selected: Selected | undefined

/** Chooses and initialises the backend (idempotent for the same preference) and registers every gradient. */
export const ready = async (
  preference: BackendPreference = "auto",
  options: { readonly threads?: number } = {},
): Promise<Selected> => {
  // CMKG_BACKEND overrides the automatic choice (e.g. to time the test suite on the plain cpu backend).
  const env = process.env.CMKG_BACKEND ?? ""
  if (preference === "auto" && env !== "") {
    if (!(BACKENDS as readonly string[]).includes(env))
      throw new Error(`CMKG_BACKEND=${env}: expected one of ${BACKENDS.join(", ")}`)
    preference = env as BackendPreference
  }
  if (selected !== undefined && (preference === "auto" || selected.name === preference)) return selected
  // tfjs's own warnings (e.g. "install tfjs-node") are noise here: cmkg prints the backend it chose.
  tf.env().set("PROD", true)
  selected = await selectBackend(preference, options)
  // After the stock gradients, so that ours replace the broken ones.
  registerHigherOrderGradients()
  return selected
}

/** Live tensors on the engine: constant across the steps of a leak-free loop. */
export const liveTensors = (): number => tf.memory().numTensors

/**
 * How many cases a law runs, from which seed, on which backend: one place for
 * every law file.
 *
 * Each law states its default seed and run count (fixed, so that CI is
 * reproducible). The environment widens or replays a run:
 * - `FC_SEED=S` replaces every law's seed (`FC_SEED=random` draws one);
 * - `FC_RUNS=N` runs N cases per law, `FC_RUNS=xK` K times each law's default;
 * - `FC_PATH=P` (with the `FC_SEED` of a failure) replays fast-check's counterexample path.
 *
 * Every property prints where it is, its seed and its run count, so any run,
 * passing or failing, can be repeated:
 * `FC_SEED=S FC_RUNS=N node scripts/test.mjs laws/tf/agreement`.
 *
 * `CMKG_BACKEND` selects the backend of the laws as it does the CLI's
 * (`readyForLaws`); without it the laws run on tfjs's plain `cpu` backend.
 *
 * @module
 */
import { relative } from "node:path"
import * as tf from "@tensorflow/tfjs-core"
import type fc from "fast-check"
import { type BackendPreference, selectBackend } from "../../src/backend/index.ts"
import * as Tf from "../../src/interpreters/tf/index.ts"

export interface Defaults {
  readonly seed: number
  readonly numRuns: number
}

/** `FC_RUNS` applied to a law's default run count. */
export const numRuns = (defaultRuns: number, env: string | undefined = process.env.FC_RUNS): number => {
  if (env === undefined || env === "") return defaultRuns
  const times = env.startsWith("x")
  const n = Number(times ? env.slice(1) : env)
  if (!Number.isInteger(n) || n < 1)
    throw new Error(
      `FC_RUNS=${env}: expected a positive integer N (runs per law) or xK (K times each law's default)`,
    )
  return times ? defaultRuns * n : n
}

/** `FC_SEED` applied to a law's default seed. */
export const seed = (defaultSeed: number, env: string | undefined = process.env.FC_SEED): number => {
  if (env === undefined || env === "") return defaultSeed
  if (env === "random") return (Date.now() ^ (Math.random() * 2 ** 31)) | 0
  const n = Number(env)
  if (!Number.isInteger(n)) throw new Error(`FC_SEED=${env}: expected an integer or "random"`)
  return n
}

/** The law file and line that asked for the parameters (the stack's first frame outside this module). */
const caller = (): string => {
  const frames = (new Error().stack ?? "").split("\n").slice(1)
  const here = frames[0] ?? ""
  const frame = frames.find((f) => !f.includes("/arbitraries/Runs.ts") && f !== here) ?? ""
  const m = /(?:file:\/\/)?(\/[^\s:()]+\.ts):(\d+)/.exec(frame)
  return m === null ? "a law" : `${relative(process.cwd(), m[1]!)}:${m[2]}`
}

/**
 * fast-check parameters for one property: the law's defaults with `FC_SEED` /
 * `FC_RUNS` / `FC_PATH` applied. Prints the seed and run count.
 */
export const runs = <T = unknown>(
  defaults: Defaults,
  extra: Omit<fc.Parameters<T>, "seed" | "numRuns" | "path"> = {},
  /** What the run count counts when it is not cases of one property (e.g. "per kind"). */
  note?: string,
): fc.Parameters<T> & Defaults => {
  const s = seed(defaults.seed)
  const n = numRuns(defaults.numRuns)
  const path = process.env.FC_PATH
  const per = note === undefined ? "" : ` ${note}`
  console.log(`# ${caller()}: seed ${s}, ${n} runs${per} (FC_SEED=${s} FC_RUNS=${n} to repeat)`)
  return { ...extra, seed: s, numRuns: n, ...(path === undefined || path === "" ? {} : { path }) }
}

/** The backend every law runs on: `CMKG_BACKEND` when set (and it must initialise), tfjs's `cpu` otherwise. */
export const readyForLaws = async (): Promise<Tf.Selected> => {
  const selected = await select()
  const chosen = (process.env.CMKG_BACKEND ?? "") !== ""
  console.log(`# laws on the ${selected.name} backend${chosen ? "" : " (CMKG_BACKEND=NAME picks another)"}`)
  return selected
}

const select = async (): Promise<Tf.Selected> => {
  const wanted = process.env.CMKG_BACKEND ?? ""
  const selected = await Tf.ready(wanted === "" ? "cpu" : "auto")
  if (wanted !== "" && wanted !== "auto" && !sameBackend(wanted, selected.name))
    throw new Error(
      `CMKG_BACKEND=${wanted}: that backend did not initialise here (${selected.note}); unset it or name one that does`,
    )
  return selected
}

/** `--backend` names the package (`tensorflow-gpu`), tfjs the engine (`tensorflow`). */
const sameBackend = (preference: string, name: string): boolean =>
  preference === name || (preference === "tensorflow-gpu" && name === "tensorflow")

/**
 * The backends a law that compares backends runs on: `CMKG_BACKEND` alone when
 * set, else each of cpu, wasm and cmkg-cpu that initialises on this machine.
 * Leaves the first active.
 */
export const lawBackends = async (): Promise<string[]> => {
  const wanted = process.env.CMKG_BACKEND ?? ""
  const present: string[] = []
  if (wanted !== "" && wanted !== "auto") present.push((await select()).name)
  else {
    for (const b of ["cpu", "wasm", "cmkg-cpu"] as const satisfies readonly BackendPreference[])
      if ((await selectBackend(b)).name === b) present.push(b)
    await Tf.ready("cpu")
    await tf.setBackend("cpu")
  }
  console.log(
    `# laws on the ${present.join(", ")} backends${wanted === "" ? " (CMKG_BACKEND=NAME picks one)" : ""}`,
  )
  return present
}

/** What the CLI tests read back from a run directory. */
import { spawn } from "node:child_process"
import { createHash } from "node:crypto"
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"

/** The results rows of a one-seed run directory, or of seed `seed` of a run whose seeds are in `seed-N/`. */
export const results = (out: string, seed?: number) =>
  JSON.parse(readFileSync(join(out, seed === undefined ? "" : `seed-${seed}`, "results.json"), "utf8")).rows

/** A run directory's summary.json over its seeds. */
export const summary = (out: string) => JSON.parse(readFileSync(join(out, "summary.json"), "utf8"))

/** Every logged step without its wall time. */
export const steps = (out: string) =>
  readFileSync(join(out, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => {
      const { time: _, ...rest } = JSON.parse(l)
      return rest
    })

/** Every file under `dir` with its bytes' hash: what "nothing changed" compares. */
export const snapshot = (dir: string): Record<string, string> =>
  Object.fromEntries(
    (readdirSync(dir, { recursive: true }) as string[]).flatMap((f) => {
      try {
        return [
          [
            f,
            createHash("sha256")
              .update(readFileSync(join(dir, f)))
              .digest("hex"),
          ],
        ]
      } catch {
        return [] // a directory
      }
    }),
  )

/** `cmkg ARGS` started in the background, its stdout collected (the "Continue with" line) and stderr piped. */
export const start = (args: readonly string[], env: NodeJS.ProcessEnv = process.env) => {
  const child = spawn(process.execPath, ["bin/cmkg.js", ...args], { stdio: ["ignore", "pipe", "pipe"], env })
  const output = { stdout: "", stderr: "" }
  child.stdout.on("data", (d) => {
    output.stdout += d
  })
  child.stderr.on("data", (d) => {
    output.stderr += d
  })
  /** The exit code once the process has exited and its output is read to the end. */
  const closed = new Promise<number | null>((r) => child.on("close", (code) => r(code)))
  return { child, output, closed }
}

/** The lines of `metrics.jsonl` written so far (none before it exists). */
export const stepCount = (out: string): number => {
  const file = join(out, "metrics.jsonl")
  return existsSync(file)
    ? readFileSync(file, "utf8")
        .split("\n")
        .filter((l) => l.endsWith("}")).length
    : 0
}

/** Waits until `metrics.jsonl` has at least `n` lines (polled every 10 ms: steps take tens of ms). */
export const waitForSteps = async (out: string, n: number): Promise<void> => {
  while (stepCount(out) < n) await new Promise((r) => setTimeout(r, 10))
}

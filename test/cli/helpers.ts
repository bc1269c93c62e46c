/** What the CLI tests read back from a run directory. */
import { createHash } from "node:crypto"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"

/** The results rows of a one-seed run directory. */
export const results = (out: string) => JSON.parse(readFileSync(join(out, "results.json"), "utf8")).rows

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

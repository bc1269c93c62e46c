/**
 * Runs one reader on one file in a fresh process and prints, as JSON, the
 * outcome and how far the process's peak RSS rose during the call:
 *   node --import tsx test/data/peak-memory.ts <rhd-png|stb-png|freihand-jpeg|stb-labels> <path>
 * Used by the memory-bound tests (a child process, so earlier allocations of
 * the test process cannot hide a peak) and to measure the readers by hand.
 */
import * as Freihand from "../../src/data/readers/freihand.ts"
import * as Img from "../../src/data/readers/image.ts"
import * as Rhd from "../../src/data/readers/rhd.ts"
import * as Stb from "../../src/data/readers/stb.ts"

const READERS: Record<string, (path: string) => unknown> = {
  "rhd-png": (p) => Img.png(p, Rhd.IMAGE),
  "stb-png": (p) => Img.png(p, Stb.IMAGE),
  "freihand-jpeg": (p) => Img.jpeg(p, Freihand.IMAGE),
  "stb-labels": (p) => Stb.labels(p),
}

const [kind, path] = process.argv.slice(2)
const reader = READERS[kind ?? ""]
if (reader === undefined || path === undefined) {
  console.error(`usage: peak-memory.ts <${Object.keys(READERS).join("|")}> <path>`)
  process.exit(2)
}
const mb = (kb: number) => Math.round(kb / 1024)
const before = process.resourceUsage().maxRSS
let error: string | undefined
try {
  reader(path)
} catch (e) {
  error = e instanceof Error ? e.message : String(e)
}
const after = process.resourceUsage().maxRSS
console.log(
  JSON.stringify({ error, peakBeforeMB: mb(before), peakAfterMB: mb(after), growthMB: mb(after - before) }),
)

// `cmkg report` on a three-seed run whose table declares a reference row (the paired-rows fixture
// with row X inserted): summary.json's paired differences, the paired-difference plot (SVG marks
// drawn where the summary's numbers say, PNG), and the page in headless Chromium.
import * as assert from "node:assert/strict"
import { spawn } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { after, before, describe, it } from "node:test"
import * as Png from "fast-png"
import { PNG_SCALE } from "../../src/report/render.ts"
import type * as RunFiles from "../../src/run-dir/schema.ts"
import { chromium, ensureChromium, nonWhiteFraction, parsesAsSvg, svgSize, texts } from "./helpers.ts"

const root = mkdtempSync(join(tmpdir(), "cmkg-report-paired-"))
const runDir = join(root, "run")
const ROWS = ["X", "B", "A again"]
after(() => rmSync(root, { recursive: true, force: true }))

/** `node bin/cmkg.js …`, asynchronously so that node:test keeps its timers. */
const cmkg = (args: string[], env: Record<string, string> = {}) =>
  new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, ["bin/cmkg.js", ...args], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "ignore", "pipe"],
    })
    let stderr = ""
    child.stderr.on("data", (d) => {
      stderr += String(d)
    })
    child.on("exit", (code) =>
      code === 0 ? resolve() : reject(new Error(`cmkg ${args[0]} exited ${code}: ${stderr}`)),
    )
  })

let summary: RunFiles.Summary
before(async () => {
  await cmkg(["run", "test/fixtures/programs/paired-rows.ts", "--seeds", "3", "--out", runDir], {
    CMKG_TEST_INSERT_ROW: "1",
  })
  await cmkg(["report", runDir])
  summary = JSON.parse(readFileSync(join(runDir, "summary.json"), "utf8"))
})

const pairedOf = (row: string) => summary.cells.find((c) => c.row === row)!.paired!

/** The numbers in a Vega mark's aria-label, e.g. `…(mm): −0.085; label: X (won 3/3); high: 0.048; …`. */
const marks = (svg: string, kind: "rule mark" | "point") =>
  [...svg.matchAll(/<(?:line|path) aria-label="([^"]*)"[^>]*aria-roledescription="([^"]*)"[^>]*>/g)]
    .filter((m) => m[2] === kind)
    .map((m) => {
      const label = m[1]!.replace(/&quot;/g, '"')
      const num = (s: string) => Number(s.replace("−", "-"))
      const tag = m[0]
      return {
        row: /label: (.*?) \(won \d+\/\d+\)/.exec(label)![1]!,
        wins: /\(won (\d+)\/3\)/.exec(label)![1]!,
        x: num(/\(mm\): ([^;]+);/.exec(label)![1]!),
        high:
          /high: ([^;]+);/.exec(label)?.[1] === undefined
            ? undefined
            : num(/high: ([^;]+);/.exec(label)![1]!),
        px: Number(/translate\(([^,]+),/.exec(tag)![1]),
        width: Number(/x2="([^"]+)"/.exec(tag)?.[1] ?? "0"),
      }
    })

describe("report of a multi-seed run with a reference row", () => {
  it("pairs every other row with the reference over the three seeds", () => {
    for (const row of ROWS) {
      const p = pairedOf(row)
      assert.equal(p.reference, "A")
      assert.equal(p.n, 3)
      assert.ok(p.epe.low! <= p.epe.mean && p.epe.mean <= p.epe.high!, row)
    }
    // A's training under another name: the same initialisation and batch order, so exactly A in every seed.
    assert.deepEqual(pairedOf("A again").epe, { mean: 0, low: 0, high: 0, wins: 0 })
    assert.ok(pairedOf("B").epe.high! - pairedOf("B").epe.low! > 0)
  })

  it("draws each row's mean and 95 % interval where summary.json puts them", () => {
    const svg = readFileSync(join(runDir, "report", "paired-t.svg"), "utf8")
    assert.ok(parsesAsSvg(svg))
    const t = texts(svg)
    assert.ok(t.includes('EPE − EPE of "A" (mm)'), t.join(" | "))
    assert.ok(t.includes("95 % interval"))
    const bars = marks(svg, "rule mark").filter((m) => m.high !== undefined)
    const dots = marks(svg, "point")
    assert.deepEqual(
      bars.map((b) => b.row),
      ROWS,
    )
    assert.deepEqual(
      dots.map((d) => d.row),
      ROWS,
    )
    const scale = { px: 0, perMm: 0 }
    for (const row of ROWS) {
      const p = pairedOf(row)
      const bar = bars.find((b) => b.row === row)!
      const dot = dots.find((d) => d.row === row)!
      assert.equal(bar.wins, String(p.epe.wins))
      assert.ok(Math.abs(bar.x - p.epe.low!) < 1e-9 && Math.abs(bar.high! - p.epe.high!) < 1e-9, row)
      assert.ok(Math.abs(dot.x - p.epe.mean) < 1e-9, row)
      // On the drawn x axis, the dot sits between the bar's ends in proportion to the numbers.
      if (p.epe.high! > p.epe.low!) {
        scale.perMm = bar.width / (p.epe.high! - p.epe.low!)
        scale.px = bar.px - p.epe.low! * scale.perMm
        assert.ok(Math.abs(dot.px - (scale.px + p.epe.mean * scale.perMm)) < 0.01, `${row}: ${dot.px}`)
      }
    }
    // The zero-width interval of "A again" is drawn at 0 on the same axis.
    assert.ok(scale.perMm > 0)
    assert.ok(Math.abs(bars.find((b) => b.row === "A again")!.px - scale.px) < 0.01)
  })

  it("writes the plot as a PNG at twice the SVG's size, not blank", () => {
    const { width, height } = svgSize(readFileSync(join(runDir, "report", "paired-t.svg"), "utf8"))
    const png = Png.decode(readFileSync(join(runDir, "report", "paired-t.png")))
    assert.equal(png.width, Math.ceil(width * PNG_SCALE))
    assert.equal(png.height, Math.ceil(height * PNG_SCALE))
    assert.ok(nonWhiteFraction(png) > 0.02, `${nonWhiteFraction(png)} non-white`)
  })

  it("shows the plot and the paired table in headless Chromium", () => {
    ensureChromium()
    const url = `file://${join(runDir, "report", "index.html")}`
    const dom = chromium(["--dump-dom", url])
    assert.equal(dom.status, 0, dom.stderr)
    const html = dom.stdout
    assert.match(html, /<section id="paired"><h2>Paired differences against each table's reference row<\/h2>/)
    assert.match(html, /<figure id="fig-paired-t"[^>]*><svg /)
    assert.match(html, /<table class="paired">/)
    assert.match(html, /<th scope="row">A again<\/th><td>0\.00 \[0\.00, 0\.00\] · won 0\/3<\/td>/)
    // The figure comes before the PCK curves: the first thing after the tables.
    assert.ok(html.indexOf('id="fig-paired-t"') < html.indexOf('id="fig-pck-t-test"'))
    const shot = join(root, "screenshot.png")
    const r = chromium([`--screenshot=${shot}`, "--window-size=1200,1400", url])
    assert.ok(existsSync(shot), `no screenshot: ${r.stderr}`)
    const png = Png.decode(readFileSync(shot))
    assert.ok(nonWhiteFraction(png) > 0.03, `the page looks blank: ${nonWhiteFraction(png)} non-white`)
  })
})

// `report` on a real run directory (the tiny fixture, 1 epoch): files, SVG
// series, PNG sizes, the page in headless Chromium; and, built from that run
// without training again, a two-seed directory and one with a learned φ.
import * as assert from "node:assert/strict"
import { spawn, spawnSync } from "node:child_process"
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { after, before, describe, it } from "node:test"
import * as Png from "fast-png"
import * as Report from "../../src/report/index.ts"
import { PNG_SCALE } from "../../src/report/render.ts"
import { CHROMIUM, chromium, nonWhiteFraction, parsesAsSvg, svgSize, texts } from "./helpers.ts"

const root = mkdtempSync(join(tmpdir(), "cmkg-report-"))
const runDir = join(root, "run")
let files: string[] = []

/** `cmkg run` of the tiny fixture, asynchronously so that node:test keeps its timers. */
const trainTiny = (out: string) =>
  new Promise<void>((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["bin/cmkg.js", "run", "test/fixtures/programs/tiny-experiment.ts", "--out", out],
      {
        env: { ...process.env, CMKG_TEST_EPOCHS: "1" },
        stdio: ["ignore", "ignore", "pipe"],
      },
    )
    let stderr = ""
    child.stderr.on("data", (d) => {
      stderr += String(d)
    })
    child.on("exit", (code) =>
      code === 0 ? resolve() : reject(new Error(`cmkg run exited ${code}: ${stderr}`)),
    )
  })

before(async () => {
  await trainTiny(runDir)
  files = (await Report.report(runDir)).files
})
after(() => rmSync(root, { recursive: true, force: true }))

describe("report of a one-seed run", () => {
  it("writes index.html first, then an SVG and a PNG per plot", () => {
    const dir = join(runDir, "report")
    assert.equal(files[0], join(dir, "index.html"))
    for (const name of ["pck-t-test", "training-loss", "params-teacher", "params-student"])
      for (const ext of ["svg", "png"])
        assert.ok(files.includes(join(dir, `${name}.${ext}`)), `${name}.${ext} in ${files.join(", ")}`)
    for (const f of files) assert.ok(existsSync(f), f)
  })

  it("draws every method of the table in the PCK plot's legend", () => {
    const svg = readFileSync(join(runDir, "report", "pck-t-test.svg"), "utf8")
    assert.ok(parsesAsSvg(svg))
    const t = texts(svg)
    const rows = (
      JSON.parse(readFileSync(join(runDir, "results.json"), "utf8")) as { rows: { row: string }[] }
    ).rows.map((r) => r.row)
    assert.deepEqual(rows, ["teacher", "student"])
    for (const row of rows)
      assert.ok(
        t.some((x) => x.startsWith(`${row} (AUC 20–50 = `)),
        `${row} in the legend: ${t.join(" | ")}`,
      )
    assert.ok(t.includes("error threshold (mm)"))
    assert.ok(t.includes("3D PCK (fraction of joints)"))
  })

  it("draws one training curve per stage and loss key, on a log scale when the losses span decades", () => {
    const svg = readFileSync(join(runDir, "report", "training-loss.svg"), "utf8")
    assert.ok(parsesAsSvg(svg))
    const t = texts(svg)
    for (const s of ["teacher · minimize", "student · minimize"])
      assert.ok(t.includes(s), `${s} in ${t.join(" | ")}`)
    // The distilled student's summed loss is ~30× the teacher's.
    assert.ok(t.includes("loss (log scale)"))
    // One line per series (two here; four with two seeds, below).
    assert.equal((svg.match(/<path [^>]*stroke-width="1\.8"/g) ?? []).length, 2)
  })

  it("writes PNGs that decode at twice the SVG's size and are not blank", () => {
    for (const name of ["pck-t-test", "training-loss", "params-student"]) {
      const { width, height } = svgSize(readFileSync(join(runDir, "report", `${name}.svg`), "utf8"))
      const png = Png.decode(readFileSync(join(runDir, "report", `${name}.png`)))
      assert.equal(png.width, Math.ceil(width * PNG_SCALE), name)
      assert.equal(png.height, Math.ceil(height * PNG_SCALE), name)
      assert.ok(nonWhiteFraction(png) > 0.02, `${name}: ${nonWhiteFraction(png)} non-white`)
    }
  })

  it("writes one self-contained page: tables, inline SVGs, no external URLs", () => {
    const html = readFileSync(join(runDir, "report", "index.html"), "utf8")
    assert.match(html, /<table>/)
    assert.equal((html.match(/<svg /g) ?? []).length, 4)
    assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//)
    assert.doesNotMatch(html, /<(script|link|img)\b/)
    assert.doesNotMatch(html, /@import|url\(["']?http/)
  })

  it("opens in headless Chromium with the tables and plots, and renders a non-blank page", () => {
    const setup = spawnSync("sh", ["scripts/ensure-chromium.sh"], { encoding: "utf8" })
    if (!existsSync(CHROMIUM))
      assert.fail(
        `${CHROMIUM} is missing and scripts/ensure-chromium.sh could not install it (exit ${setup.status}: ${setup.stderr.trim()}); install Debian's chromium package to run this test`,
      )
    const url = `file://${join(runDir, "report", "index.html")}`

    const dom = chromium(["--dump-dom", url])
    assert.equal(dom.status, 0, dom.stderr)
    const html = dom.stdout
    assert.match(html, /<table>/)
    for (const row of ["teacher", "student"]) assert.match(html, new RegExp(`<th scope="row">${row}</th>`))
    assert.match(html, /101\.\d\d|\d+\.\d\d/)
    for (const id of ["fig-pck-t-test", "fig-training-loss", "fig-params-teacher", "fig-params-student"])
      assert.match(html, new RegExp(`<figure id="${id}"[^>]*><svg `), id)
    assert.match(html, /teacher \(AUC 20–50 = /)

    const shot = join(root, "screenshot.png")
    const r = chromium([`--screenshot=${shot}`, "--window-size=1200,2000", url])
    assert.ok(existsSync(shot), `no screenshot: ${r.stderr}`)
    const png = Png.decode(readFileSync(shot))
    assert.equal(png.width, 1200)
    assert.equal(png.height, 2000)
    assert.ok(
      nonWhiteFraction(png) > 0.03,
      `the page looks blank: ${nonWhiteFraction(png)} of its pixels are not white`,
    )
  })
})

describe("report of other run shapes, built from the same run", () => {
  it("averages over seed-N/ directories and shows mean ± std", async () => {
    const multi = join(root, "multi")
    mkdirSync(multi)
    for (const s of [1, 2]) {
      cpSync(runDir, join(multi, `seed-${s}`), {
        recursive: true,
        filter: (src) => !src.includes(`${runDir}/report`),
      })
      rmSync(join(multi, `seed-${s}`, "program.json"))
    }
    cpSync(join(runDir, "program.json"), join(multi, "program.json"))
    // No summary.json: an interrupted multi-seed run; the report computes it.
    const { files } = await Report.report(multi)
    const html = readFileSync(files[0]!, "utf8")
    assert.match(html, /101\.\d\d ± 0\.00/)
    assert.match(html, /mean over 2 seeds/)
    const pck = texts(readFileSync(join(multi, "report", "pck-t-test.svg"), "utf8"))
    for (const row of ["teacher", "student"]) assert.ok(pck.some((x) => x.startsWith(`${row} (AUC`)))
    // One line per seed and stage in the training plot.
    const training = readFileSync(join(multi, "report", "training-loss.svg"), "utf8")
    assert.equal((training.match(/<path [^>]*stroke-width="1\.8"/g) ?? []).length, 4)
  })

  it("draws the histogram of the learned φ found in the last checkpoint", async () => {
    const withPhi = join(root, "phi")
    cpSync(runDir, withPhi, { recursive: true, filter: (src) => !src.includes(`${runDir}/report`) })
    // Append a `meta/phi-x` group to the last checkpoint, as the tf interpreter writes one for each metaParam.
    const ckpt = join(
      withPhi,
      "checkpoints",
      readFileSync(join(withPhi, "checkpoints", "LATEST"), "utf8").trim(),
    )
    const json = JSON.parse(readFileSync(join(ckpt, "model.json"), "utf8")) as {
      weightsManifest: { weights: unknown[] }[]
    }
    const phi = Float32Array.from({ length: 300 }, (_, i) => (i < 200 ? 0 : 0.5 + i / 1000))
    json.weightsManifest[0]!.weights.push({
      name: "meta/phi-x::conv1/kernel",
      shape: [300],
      dtype: "float32",
    })
    writeFileSync(join(ckpt, "model.json"), JSON.stringify(json))
    writeFileSync(
      join(ckpt, "weights.bin"),
      Buffer.concat([readFileSync(join(ckpt, "weights.bin")), Buffer.from(phi.buffer)]),
    )
    const { files } = await Report.report(withPhi)
    assert.ok(files.includes(join(withPhi, "report", "phi-histogram.svg")))
    const t = texts(readFileSync(join(withPhi, "report", "phi-histogram.svg"), "utf8"))
    assert.ok(t.includes("φ phi-x"), t.join(" | "))
    assert.ok(t.includes("φ value"))
    assert.doesNotMatch(readFileSync(files[0]!, "utf8"), /learns no meta-parameters/)
  })
})

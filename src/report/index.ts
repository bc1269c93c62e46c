/**
 * `cmkg report <run-dir>`: the results tables, 3D PCK curves, DIR-Net's
 * accuracy against computation, training curves and histograms of φ and
 * parameters of a run directory, each plot as SVG and PNG, and one
 * self-contained `report/index.html`.
 *
 * @module
 */
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import * as Html from "./html.ts"
import * as Plots from "./plots.ts"
import * as Render from "./render.ts"
import * as RunDir from "./run-dir.ts"

export { NotARunDirectory } from "./run-dir.ts"

/**
 * Writes `<runDir>/report/`: `index.html` first in `files`, then every plot's
 * `.svg` and `.png`. Rejects with {@link RunDir.NotARunDirectory} when
 * `runDir` is missing or is not a `cmkg run` directory.
 */
export const report = async (runDir: string): Promise<{ files: string[] }> => {
  const run = RunDir.read(runDir)
  const out = join(runDir, "report")
  mkdirSync(out, { recursive: true })
  const plots = [
    ...Plots.paired(run),
    ...Plots.pck(run),
    ...Plots.tradeoff(run),
    ...Plots.training(run),
    ...Plots.histograms(run),
  ]
  const files: string[] = []
  const figures: Html.Figure[] = []
  for (const plot of plots) {
    const r = await Render.render(plot.spec)
    const svgPath = join(out, `${plot.name}.svg`)
    const pngPath = join(out, `${plot.name}.png`)
    writeFileSync(svgPath, r.svg)
    writeFileSync(pngPath, r.png)
    files.push(svgPath, pngPath)
    figures.push({ plot, svg: r.svg })
  }
  const index = join(out, "index.html")
  writeFileSync(index, Html.page(run, figures))
  return { files: [index, ...files] }
}

/**
 * The report page: one self-contained HTML file (tables, inline SVG plots,
 * inline CSS; no scripts and no external URLs) that opens from disk.
 *
 * @module
 */

import { gflopsText } from "../interpreters/shape-check/dirnet.ts"
import type * as Plots from "./plots.ts"
import type * as RunDir from "./run-dir.ts"
import * as Summary from "./summary.ts"

export const escapeHtml = (s: string): string =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

/**
 * Vega numbers its clip paths from 1 in every SVG; inline in one page, the
 * second plot's `url(#clip1)` would point at the first plot's clip.
 */
export const prefixIds = (svg: string, prefix: string): string =>
  svg
    .replace(/\bid="([^"]+)"/g, (_, id: string) => `id="${prefix}-${id}"`)
    .replace(/url\(#([^)]+)\)/g, (_, id: string) => `url(#${prefix}-${id})`)
    .replace(/href="#([^"]+)"/g, (_, id: string) => `href="#${prefix}-${id}"`)

const pmWith = (v: { mean: number; std: number }, n: number, f: (x: number) => string) =>
  n > 1 ? `${f(v.mean)} ± ${f(v.std)}` : f(v.mean)
const pm = (v: { mean: number; std: number }, digits: number, n: number) =>
  pmWith(v, n, (x) => x.toFixed(digits))

/** One `<table>` per paper table, as in `summary.md`; the best value of each column is bold. */
const tables = (s: Summary.Summary): string => {
  const out: string[] = []
  for (const table of [...new Set(s.cells.map((c) => c.table))]) {
    const cells = s.cells.filter((c) => c.table === table)
    const columns = [...new Set(cells.map((c) => c.column))]
    const rows = [...new Set(cells.map((c) => c.row))]
    const best = new Map(
      columns.map((col) => {
        const these = cells.filter((c) => c.column === col)
        return [
          col,
          {
            epe: Math.min(...these.map((c) => c.epe.mean)),
            auc: Math.max(...these.map((c) => c.auc20to50.mean)),
          },
        ]
      }),
    )
    const bold = (text: string, isBest: boolean) => (isBest ? `<strong>${text}</strong>` : text)
    // DIR-Net's rows carry their cost: average GFLOPs per sample and parameters.
    const costs = cells.every((c) => c.gflops !== undefined && c.params !== undefined)
    const costCells = (c: Summary.Cell) =>
      costs
        ? `<td>${pmWith(c.gflops!, c.n, gflopsText)}</td><td>${pmWith(c.params!, c.n, (x) => Math.round(x).toLocaleString("en-US"))}</td>`
        : ""
    out.push(
      `<section class="table" data-table="${escapeHtml(table)}"><h3>${escapeHtml(table)}</h3><table>`,
      `<thead><tr><th rowspan="2">method</th>${columns.map((c) => `<th colspan="${costs ? 5 : 3}">${escapeHtml(c)}</th>`).join("")}</tr>`,
      `<tr>${columns.map(() => `<th>EPE (mm) ↓</th><th>AUC 20–50 ↑</th><th>AUC 0–50 ↑</th>${costs ? "<th>avg GFLOPs ↓</th><th>#params</th>" : ""}`).join("")}</tr></thead><tbody>`,
    )
    for (const row of rows)
      out.push(
        `<tr><th scope="row">${escapeHtml(row)}</th>${columns
          .map((col) => {
            const c = cells.find((x) => x.row === row && x.column === col)
            if (c === undefined) return "<td></td>".repeat(costs ? 5 : 3)
            const b = best.get(col)!
            return `<td>${bold(pm(c.epe, 2, c.n), c.epe.mean === b.epe)}</td><td>${bold(pm(c.auc20to50, 3, c.n), c.auc20to50.mean === b.auc)}</td><td>${pm(c.auc0to50, 3, c.n)}</td>${costCells(c)}`
          })
          .join("")}</tr>`,
      )
    out.push("</tbody></table>", pairedTable(cells, columns), "</section>")
  }
  return out.join("\n")
}

/** A table's rows against its reference row (as in `summary.md`), when the run pairs them. */
const pairedTable = (cells: readonly Summary.Cell[], columns: readonly string[]): string => {
  const withPaired = cells.filter((c) => c.paired !== undefined)
  if (withPaired.length === 0) return ""
  const reference = withPaired[0]!.paired!.reference
  const body = unique(withPaired.map((c) => c.row)).map(
    (row) =>
      `<tr><th scope="row">${escapeHtml(row)}</th>${columns
        .map((col) => {
          const p = withPaired.find((x) => x.row === row && x.column === col)?.paired
          return p === undefined
            ? "<td></td><td></td>"
            : `<td>${escapeHtml(Summary.pairedText(p.epe, p.n, 2))}</td><td>${escapeHtml(Summary.pairedText(p.auc20to50, p.n, 3))}</td>`
        })
        .join("")}</tr>`,
  )
  return [
    `<p class="meta">Against “${escapeHtml(reference)}”, seed by seed: mean difference over seeds [95 % Student's t interval] · seeds won.</p>`,
    `<table class="paired"><thead><tr><th rowspan="2">method</th>${columns.map((c) => `<th colspan="2">${escapeHtml(c)}</th>`).join("")}</tr>`,
    `<tr>${columns.map(() => "<th>Δ EPE (mm)</th><th>Δ AUC 20–50</th>").join("")}</tr></thead><tbody>`,
    ...body,
    "</tbody></table>",
  ].join("\n")
}

const unique = <A>(xs: readonly A[]): A[] => [...new Set(xs)]

const CSS = `
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; margin: 2rem auto; max-width: 1100px; padding: 0 1rem; color: #222; background: #fff; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: .3rem; }
.meta { color: #555; } .note { color: #666; font-style: italic; }
table { border-collapse: collapse; margin: .5rem 0 1.5rem; font-size: .92rem; }
th, td { border: 1px solid #ccc; padding: .3rem .6rem; text-align: right; } th[scope=row] { text-align: left; font-weight: normal; }
thead th { background: #f4f4f4; text-align: center; } tbody tr:nth-child(even) { background: #fafafa; }
figure { margin: 1rem 0 2rem; } figure svg { max-width: 100%; height: auto; } figcaption { color: #444; font-size: .9rem; max-width: 900px; }
`

export interface Figure {
  readonly plot: Plots.Plot
  readonly svg: string
}

const section = (id: string, title: string, figures: readonly Figure[], empty: string, note = "") =>
  `<section id="${id}"><h2>${escapeHtml(title)}</h2>\n${note === "" || figures.length === 0 ? "" : `<p class="note">${escapeHtml(note)}</p>`}${
    figures.length === 0
      ? `<p class="note">${escapeHtml(empty)}</p>`
      : figures
          .map(
            (f, i) =>
              `<figure id="fig-${escapeHtml(f.plot.name)}" data-series="${escapeHtml(JSON.stringify(f.plot.series))}">${prefixIds(f.svg, `${id}${i}`)}<figcaption>${escapeHtml(f.plot.caption)} <span class="files">(${escapeHtml(f.plot.name)}.svg, ${escapeHtml(f.plot.name)}.png)</span></figcaption></figure>`,
          )
          .join("\n")
  }</section>`

export const page = (run: RunDir.Run, figures: readonly Figure[]): string => {
  const results = run.seeds.flatMap((s) => (s.results === undefined ? [] : [s.results]))
  const seconds = results.reduce((a, r) => a + r.seconds, 0)
  const opt = run.options
  const facts = [
    typeof opt.scale === "string" ? `scale ${opt.scale}` : undefined,
    `${run.seeds.length} seed${run.seeds.length > 1 ? "s" : ""}`,
    results[0] !== undefined ? `backend ${results[0].backend}` : undefined,
    results.length > 0 ? `${Math.round(seconds)} s of training and evaluation` : undefined,
    `run directory ${run.dir}`,
  ].filter((x): x is string => x !== undefined)
  const of = (s: Plots.Plot["section"]) => figures.filter((f) => f.plot.section === s)
  const incomplete = run.seeds.filter((s) => s.results === undefined).map((s) => s.seed)
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>cmkg report: ${escapeHtml(run.program.name)}</title><style>${CSS}</style></head>
<body>
<header><h1>${escapeHtml(run.program.name)}</h1>
${run.program.description === "" ? "" : `<p>${escapeHtml(run.program.description)}</p>`}
<p class="meta">${facts.map(escapeHtml).join(" · ")}</p>
${incomplete.length > 0 ? `<p class="note">No results yet for seed(s) ${incomplete.join(", ")}: the run did not finish.</p>` : ""}
</header>
<section id="results"><h2>Results</h2>
${run.summary === undefined || run.summary.cells.length === 0 ? `<p class="note">No evaluation results in this run directory.</p>` : `${run.summary.cells.some((c) => c.n > 1) ? `<p class="meta">mean ± standard deviation over seeds ${run.summary.seeds.join(", ")}</p>` : ""}${tables(run.summary)}`}
</section>
${of("paired").length === 0 ? "" : section("paired", "Paired differences against each table's reference row", of("paired"), "")}
${section("pck", "3D PCK curves", of("pck"), "No evaluation results, so no PCK curves.")}
${of("tradeoff").length === 0 ? "" : section("tradeoff", "Accuracy against computation (cf. DIR-Net Fig. 7)", of("tradeoff"), "")}
${section("training", "Training curves", of("training"), "metrics.jsonl holds no losses.")}
${section(
  "histograms",
  "Learned φ and parameters (cf. CMKG Fig. 5)",
  of("histograms"),
  "This run has no meta-parameters φ, evaluated models or checkpoint to draw.",
  figures.some((f) => f.plot.name === "phi-histogram")
    ? ""
    : "This run learns no meta-parameters φ; only the parameters are drawn.",
)}
<footer class="meta"><p>Written by cmkg report.</p></footer>
</body></html>
`
}

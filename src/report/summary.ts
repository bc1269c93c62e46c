/**
 * Results over seeds: mean ± standard deviation of every table cell.
 *
 * @module
 */
import { gflopsText } from "../interpreters/shape-check/dirnet.ts"
import type * as RunFiles from "../run-dir/schema.ts"

/** One table cell over seeds (`summary.json`'s schema). */
export type Cell = RunFiles.SummaryCell

/** `summary.json`. */
export type Summary = RunFiles.Summary

/** Sample mean and standard deviation (n − 1; 0 for a single value). */
export const meanStd = (xs: readonly number[]): { mean: number; std: number } => {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length
  const std = xs.length < 2 ? 0 : Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1))
  return { mean, std }
}

/** A row that may carry cost columns. */
type CostedRow = RunFiles.Row & { readonly gflops?: number; readonly params?: number }

/** `{ key: mean ± std }` of a cost column when every row has it, else nothing. */
const costColumn = (rows: readonly CostedRow[], key: "gflops" | "params") => {
  const xs = rows.map((r) => r[key])
  return xs.length > 0 && xs.every((x) => typeof x === "number") ? { [key]: meanStd(xs as number[]) } : {}
}

export const aggregate = (results: readonly RunFiles.Results[]): Summary => {
  const keys = [
    ...new Map(
      results.flatMap((r) => r.rows.map((x) => [`${x.table}\u0000${x.row}\u0000${x.column}`, x])),
    ).values(),
  ]
  return {
    program: results[0]?.program ?? "",
    seeds: results.map((r) => r.seed),
    backend: results[0]?.backend ?? "",
    cells: keys.map((k) => {
      const rows = results.flatMap((r) =>
        r.rows.filter((x) => x.table === k.table && x.row === k.row && x.column === k.column),
      )
      return {
        table: k.table,
        row: k.row,
        column: k.column,
        n: rows.length,
        epe: meanStd(rows.map((x) => x.epe)),
        auc20to50: meanStd(rows.map((x) => x.auc20to50)),
        auc0to50: meanStd(rows.map((x) => x.auc0to50)),
        ...costColumn(rows, "gflops"),
        ...costColumn(rows, "params"),
      }
    }),
  }
}

const pm = (v: { mean: number; std: number }, digits: number, n: number) =>
  n > 1 ? `${v.mean.toFixed(digits)} ± ${v.std.toFixed(digits)}` : v.mean.toFixed(digits)

const pmWith = (v: { mean: number; std: number }, n: number, f: (x: number) => string) =>
  n > 1 ? `${f(v.mean)} ± ${f(v.std)}` : f(v.mean)
const count = (x: number) => Math.round(x).toLocaleString("en-US")

export const markdown = (s: Summary): string => {
  const out = [`# ${s.program}: ${s.seeds.length} seed(s) (${s.seeds.join(", ")}), backend ${s.backend}`, ""]
  for (const table of [...new Set(s.cells.map((c) => c.table))]) {
    const cells = s.cells.filter((c) => c.table === table)
    const columns = [...new Set(cells.map((c) => c.column))]
    const costs = cells.every((c) => c.gflops !== undefined && c.params !== undefined)
    const heads = costs ? ["EPE (mm)", "AUC 20–50", "avg GFLOPs", "#params"] : ["EPE (mm)", "AUC 20–50"]
    out.push(
      `## ${table}`,
      "",
      `| method | ${columns.flatMap((c) => heads.map((h) => `${c} ${h}`)).join(" | ")} |`,
    )
    out.push(`|---|${columns.flatMap(() => heads.map(() => "---")).join("|")}|`)
    for (const row of [...new Set(cells.map((c) => c.row))])
      out.push(
        `| ${row} | ${columns
          .map((col) => {
            const c = cells.find((x) => x.row === row && x.column === col)
            if (c === undefined) return heads.map(() => "").join(" | ")
            const base = [pm(c.epe, 2, c.n), pm(c.auc20to50, 3, c.n)]
            return [
              ...base,
              ...(costs ? [pmWith(c.gflops!, c.n, gflopsText), pmWith(c.params!, c.n, count)] : []),
            ].join(" | ")
          })
          .join(" | ")} |`,
      )
    out.push("")
  }
  return out.join("\n")
}

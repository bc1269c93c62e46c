/**
 * Results over seeds: mean ± standard deviation of every table cell, and
 * each row's paired difference from its table's reference row (`paired.ts`).
 *
 * @module
 */
import { gflopsText } from "../interpreters/shape-check/dirnet.ts"
import type * as RunFiles from "../run-dir/schema.ts"
import * as Paired from "./paired.ts"

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

/** Each table's reference row, as the seeds' results declare it (the first seed that names one). */
export const references = (results: readonly RunFiles.Results[]): Readonly<Record<string, string>> => {
  const out: Record<string, string> = {}
  for (const r of results) for (const [table, row] of Object.entries(r.references ?? {})) out[table] ??= row
  return out
}

const gflopsOf = (r: CostedRow): number | undefined => r.gflops

const pairedMetric = (ds: readonly number[], better: "lower" | "higher"): RunFiles.PairedMetric => {
  const d = Paired.difference(ds)
  return {
    mean: d.mean,
    ...(d.low === undefined ? {} : { low: d.low, high: d.high! }),
    wins: Paired.wins(ds, better),
  }
}

/**
 * A cell against its table's reference row in the same column: row − reference
 * seed by seed, over the seeds that have both; nothing for the reference row
 * itself, a table without a reference, or a column the reference lacks.
 */
const paired = (
  results: readonly RunFiles.Results[],
  refs: Readonly<Record<string, string>>,
  k: { readonly table: string; readonly row: string; readonly column: string },
): { paired: RunFiles.Paired } | Record<string, never> => {
  const reference = refs[k.table]
  if (reference === undefined || reference === k.row) return {}
  const pairs = results.flatMap((r) => {
    const mine = r.rows.find((x) => x.table === k.table && x.row === k.row && x.column === k.column)
    const ref = r.rows.find((x) => x.table === k.table && x.row === reference && x.column === k.column)
    return mine === undefined || ref === undefined ? [] : [{ mine, ref }]
  })
  if (pairs.length === 0) return {}
  return {
    paired: {
      reference,
      n: pairs.length,
      epe: pairedMetric(
        pairs.map((p) => p.mine.epe - p.ref.epe),
        "lower",
      ),
      auc20to50: pairedMetric(
        pairs.map((p) => p.mine.auc20to50 - p.ref.auc20to50),
        "higher",
      ),
      ...(pairs.every((p) => gflopsOf(p.mine) !== undefined && gflopsOf(p.ref) !== undefined)
        ? {
            gflops: pairedMetric(
              pairs.map((p) => gflopsOf(p.mine)! - gflopsOf(p.ref)!),
              "lower",
            ),
          }
        : {}),
    },
  }
}

export const aggregate = (results: readonly RunFiles.Results[]): Summary => {
  const refs = references(results)
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
        ...paired(results, refs, k),
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
    out.push("", ...pairedMarkdown(table, cells, columns))
  }
  return out.join("\n")
}

const signed = (x: number, digits: number) => `${x > 0 ? "+" : ""}${x.toFixed(digits)}`

/** `+1.23 [0.40, 2.06] · won 1/5`: a paired difference as the summary and the report print it. */
export const pairedText = (m: RunFiles.PairedMetric, n: number, digits: number): string =>
  `${signed(m.mean, digits)} ${
    m.low === undefined || m.high === undefined
      ? `(${n} seed)`
      : `[${signed(m.low, digits)}, ${signed(m.high, digits)}]`
  } · won ${m.wins}/${n}`

/** A GFLOPs difference to three significant digits of its largest end (the costs are 10⁻³–10¹ GFLOPs). */
const pairedGflopsText = (m: RunFiles.PairedMetric, n: number): string => {
  const size = Math.max(Math.abs(m.mean), Math.abs(m.low ?? 0), Math.abs(m.high ?? 0))
  return pairedText(m, n, size === 0 ? 0 : Math.max(0, 2 - Math.floor(Math.log10(size))))
}

/** A table's rows against its reference row, when they have paired differences. */
const pairedMarkdown = (table: string, cells: readonly Cell[], columns: readonly string[]): string[] => {
  const withPaired = cells.filter((c) => c.paired !== undefined)
  if (withPaired.length === 0) return []
  const reference = withPaired[0]!.paired!.reference
  const costs = withPaired.every((c) => c.paired!.gflops !== undefined)
  const heads = (c: string) => [`${c} Δ EPE (mm)`, `${c} Δ AUC 20–50`, ...(costs ? [`${c} Δ GFLOPs`] : [])]
  const out = [
    `### ${table}: against "${reference}"`,
    "",
    "Row − reference seed by seed (same initialisation and batch order): mean over seeds [95 % Student's t interval] · seeds won.",
    "",
    `| method | ${columns.flatMap(heads).join(" | ")} |`,
    `|---|${columns.flatMap((c) => heads(c).map(() => "---")).join("|")}|`,
  ]
  for (const row of [...new Set(withPaired.map((c) => c.row))])
    out.push(
      `| ${row} | ${columns
        .map((col) => {
          const p = withPaired.find((x) => x.row === row && x.column === col)?.paired
          if (p === undefined)
            return heads(col)
              .map(() => "")
              .join(" | ")
          return [
            pairedText(p.epe, p.n, 2),
            pairedText(p.auc20to50, p.n, 3),
            ...(costs ? [pairedGflopsText(p.gflops!, p.n)] : []),
          ].join(" | ")
        })
        .join(" | ")} |`,
    )
  out.push("")
  return out
}

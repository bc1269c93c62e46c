/**
 * The report's plots as Vega-Lite specifications, built from a run: 3D PCK
 * curves per results table and column, training losses, and histograms of
 * the learned φ and of the evaluated models' parameters (CMKG paper, Fig. 5).
 *
 * @module
 */
import type { TopLevelSpec } from "vega-lite"
import * as Names from "../run-dir/names.ts"
import * as Read from "../run-dir/read.ts"
import * as RunFiles from "../run-dir/schema.ts"
import type * as RunDir from "./run-dir.ts"
import * as Weights from "./weights.ts"

/** One figure: `name` is the file stem (`<name>.svg`, `<name>.png`). */
export interface Plot {
  readonly name: string
  readonly section: "paired" | "pck" | "tradeoff" | "training" | "histograms"
  readonly title: string
  readonly caption: string
  readonly spec: TopLevelSpec
  /** The series drawn, in legend order (tests check them against the SVG). */
  readonly series: readonly string[]
}

const SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"

const config = {
  background: "white",
  font: "DejaVu Sans, Liberation Sans, Arial, sans-serif",
  title: { fontSize: 16, anchor: "start" as const, offset: 12 },
  axis: { titleFontSize: 13, labelFontSize: 11, gridColor: "#e6e6e6" },
  legend: { titleFontSize: 12, labelFontSize: 11, labelLimit: 520, symbolStrokeWidth: 3 },
  view: { stroke: "#bbb" },
}

/** Tableau 10 is easier to tell apart; past ten series only category20 keeps them distinct. */
const scheme = (n: number) => (n <= 10 ? "tableau10" : "category20")

/** A plot's file name: the run directory's rule, lower-cased, never empty. */
export const slug = (s: string): string => Names.slug(s.normalize("NFKD")).toLowerCase() || "x"

const unique = <A>(xs: readonly A[]): A[] => [...new Set(xs)]

// ---- 3D PCK -----------------------------------------------------------------------------------

/** Pointwise mean of the rows' PCK curves (the seeds of one table cell share thresholds). */
const meanCurve = (rows: readonly RunFiles.Row[]): [number, number][] => {
  const sums = new Map<number, { sum: number; n: number }>()
  for (const r of rows)
    for (const [t, v] of r.pckCurve) {
      const s = sums.get(t) ?? { sum: 0, n: 0 }
      sums.set(t, { sum: s.sum + v, n: s.n + 1 })
    }
  return [...sums.entries()].sort((a, b) => a[0] - b[0]).map(([t, s]) => [t, s.sum / s.n])
}

/** One plot per (table, column): every method's 3D PCK curve, mean over seeds, AUC 20–50 in the legend. */
export const pck = (run: RunDir.Run): Plot[] => {
  const rows = run.seeds.flatMap((s) => s.results?.rows ?? [])
  const nSeeds = unique(run.seeds.filter((s) => s.results !== undefined).map((s) => s.seed)).length
  const plots: Plot[] = []
  for (const table of unique(rows.map((r) => r.table)))
    for (const column of unique(rows.filter((r) => r.table === table).map((r) => r.column))) {
      const cell = rows.filter((r) => r.table === table && r.column === column)
      const methods = unique(cell.map((r) => r.row))
      const labels = methods.map((m) => {
        const these = cell.filter((r) => r.row === m)
        const auc = these.reduce((a, r) => a + r.auc20to50, 0) / these.length
        return `${m} (AUC 20–50 = ${auc.toFixed(3)})`
      })
      const values = methods.flatMap((m, i) =>
        meanCurve(cell.filter((r) => r.row === m)).map(([threshold, fraction]) => ({
          method: labels[i],
          threshold,
          fraction,
        })),
      )
      const title = `3D PCK: ${table}, ${column}`
      plots.push({
        name: `pck-${slug(table)}-${slug(column)}`,
        section: "pck",
        title,
        caption: `Fraction of joints whose 3D error is below the threshold, for every method of ${table} evaluated on ${column}${
          nSeeds > 1 ? ` (mean over ${nSeeds} seeds)` : ""
        }. The shaded band is the 20–50 mm range of the AUC in the tables.`,
        series: methods,
        spec: {
          $schema: SCHEMA,
          config,
          title: {
            text: title,
            subtitle: `${run.program.name}${nSeeds > 1 ? `, mean over ${nSeeds} seeds` : ""}`,
          },
          width: 520,
          height: 340,
          layer: [
            {
              data: { values: [{ from: 20, to: 50 }] },
              mark: { type: "rect", color: "#f0f0f0" },
              encoding: { x: { field: "from", type: "quantitative" }, x2: { field: "to" } },
            },
            {
              data: { values },
              mark: { type: "line", strokeWidth: 2.5, point: { size: 18 } },
              encoding: {
                x: {
                  field: "threshold",
                  type: "quantitative",
                  title: "error threshold (mm)",
                  scale: { domain: [0, 50], nice: false },
                },
                y: {
                  field: "fraction",
                  type: "quantitative",
                  title: "3D PCK (fraction of joints)",
                  scale: { zero: true },
                },
                color: {
                  field: "method",
                  type: "nominal",
                  title: "method",
                  scale: { domain: labels, scheme: scheme(labels.length) },
                  legend: { orient: "right", symbolType: "stroke" },
                },
              },
            },
          ],
        },
      })
    }
  return plots
}

// ---- paired differences against the reference row ------------------------------------------------

/** Whether a row's interval settles the comparison with the reference: below 0 (better), above (worse), or neither. */
const verdict = (p: RunFiles.PairedMetric): "lower EPE" | "higher EPE" | "not resolved" =>
  p.high !== undefined && p.high < 0
    ? "lower EPE"
    : p.low !== undefined && p.low > 0
      ? "higher EPE"
      : "not resolved"
const VERDICTS = ["lower EPE", "not resolved", "higher EPE"] as const

/**
 * One plot per table with a reference row: each other row's EPE minus the
 * reference's, seed by seed, as its mean over seeds (dot) and 95 % Student's
 * t interval (bar), one panel per column; a dashed line at 0.
 */
export const paired = (run: RunDir.Run): Plot[] => {
  const cells = run.summary?.cells.filter((c) => c.paired !== undefined) ?? []
  return unique(cells.map((c) => c.table)).map((table) => {
    const these = cells.filter((c) => c.table === table)
    const reference = these[0]!.paired!.reference
    const columns = unique(these.map((c) => c.column))
    const rows = unique(these.map((c) => c.row))
    const values = these.map((c) => {
      const p = c.paired!
      return {
        row: c.row,
        // The wins differ by column, so each panel has its own row labels.
        label: `${c.row} (won ${p.epe.wins}/${p.n})`,
        column: c.column,
        order: rows.indexOf(c.row),
        mean: p.epe.mean,
        ...(p.epe.low === undefined ? {} : { low: p.epe.low, high: p.epe.high }),
        verdict: verdict(p.epe),
      }
    })
    const ns = unique(these.map((c) => c.paired!.n))
    const seeds =
      ns.length === 1
        ? `${ns[0]} seed${ns[0] === 1 ? "" : "s"}`
        : `${Math.min(...ns)}–${Math.max(...ns)} seeds`
    const y = {
      field: "label",
      type: "nominal" as const,
      title: null,
      sort: { field: "order", order: "ascending" as const },
      axis: { labelLimit: 640 },
    }
    const x = {
      field: "mean",
      type: "quantitative" as const,
      title: `EPE − EPE of "${reference}" (mm)`,
      scale: { zero: true },
      axis: { labelOverlap: true, tickCount: 6 },
    }
    const layer = [
      { mark: { type: "rule" as const, color: "#777", strokeDash: [4, 3] }, encoding: { x: { datum: 0 } } },
      {
        transform: [{ filter: "isValid(datum.low)" }],
        mark: { type: "rule" as const, strokeWidth: 2.5 },
        encoding: {
          y,
          x: { ...x, field: "low" },
          x2: { field: "high" },
          color: { field: "verdict", type: "nominal" as const },
        },
      },
      {
        mark: { type: "point" as const, filled: true, size: 70 },
        encoding: {
          y,
          x,
          color: {
            field: "verdict",
            type: "nominal" as const,
            title: "95 % interval",
            scale: { domain: [...VERDICTS], range: ["#2a9d4b", "#8c8c8c", "#d1432f"] },
          },
        },
      },
    ]
    const title = `Paired differences: ${table}`
    const height = Math.max(40, 26 * rows.length)
    return {
      name: `paired-${slug(table)}`,
      section: "paired" as const,
      title,
      caption: `Each row of ${table} minus the reference row "${reference}", seed by seed (within a seed the rows share their initialisation and batch order): the dot is the mean difference in EPE over ${seeds}, the bar its 95 % Student's t interval${
        ns.includes(1) ? " (none with one seed)" : ""
      }, one panel per column. Left of the dashed line the row's EPE is lower than the reference's: green when the whole interval lies left of it, red when it lies right of it, grey when it contains 0. "won k/n": the seeds in which the row's EPE is lower.`,
      series: rows,
      spec: {
        $schema: SCHEMA,
        config,
        title: {
          text: title,
          subtitle: `${run.program.name}: row − "${reference}", mean over ${seeds}, 95 % t interval`,
        },
        data: { values },
        ...(columns.length > 1
          ? {
              facet: { row: { field: "column", type: "nominal" as const, title: null, sort: columns } },
              resolve: { scale: { y: "independent" as const } },
              spec: { width: 460, height, layer },
            }
          : { width: 460, height, layer }),
      } as TopLevelSpec,
    }
  })
}

// ---- accuracy against computation (DIR-Net, Fig. 7) -------------------------------------------

/** The Figure 7 sweep of a seed's results, when it is a DIR-Net run's. */
const sweepOf = (r: RunFiles.Results | undefined): RunFiles.DirnetResults["sweep"] =>
  r?.kind === "DirNetExperiment" ? r.sweep : undefined

const SWEEP_SERIES = ["τ_var", "τ_gate"] as const
const FIXED = "fixed depth"
const ORACLE = "oracle"

/**
 * The swept network's rows that every sample exits at one loop ("fixed depth", in loop order) or at
 * its best loop ("oracle"), as Figure 7's extra series: mean over the seeds that have each row.
 */
const depthPoints = (run: RunDir.Run, model: string) => {
  const rows = run.seeds.flatMap((s) =>
    s.results?.kind === "DirNetExperiment" ? s.results.rows.filter((r) => r.model === model) : [],
  )
  const point = (series: string, label: string, order: number, here: readonly RunFiles.DirnetRow[]) => ({
    series,
    order,
    gflops: here.reduce((a, x) => a + x.gflops, 0) / here.length,
    auc: here.reduce((a, x) => a + x.auc20to50, 0) / here.length,
    label,
  })
  const loopOf = (r: RunFiles.DirnetRow) => (r.evaluate._tag === "Loop" ? r.evaluate.loop : -1)
  const loops = [...new Set(rows.map(loopOf).filter((k) => k >= 0))].sort((a, b) => a - b)
  const oracle = rows.filter((r) => r.evaluate._tag === "Oracle")
  return [
    ...loops.map((k, i) =>
      point(
        FIXED,
        `loop ${k + 1}`,
        i,
        rows.filter((r) => loopOf(r) === k),
      ),
    ),
    ...(oracle.length > 0 ? [point(ORACLE, ORACLE, 0, oracle)] : []),
  ]
}

/**
 * DIR-Net's Figure 7: 3D AUC against average GFLOPs, one line for the
 * variance thresholds τ_var and one for the gate's temperatures τ_gate
 * (points in sweep order, mean over seeds), each point labelled with its τ;
 * and, when the run evaluates them, the network cut at each fixed depth and
 * the oracle exit (each sample at its best loop).
 */
export const tradeoff = (run: RunDir.Run): Plot[] => {
  const sweeps = run.seeds.flatMap((s) => {
    const sw = sweepOf(s.results)
    return sw === undefined ? [] : [sw]
  })
  if (sweeps.length === 0) return []
  const swept = SWEEP_SERIES.flatMap((series) => {
    const lists = sweeps.map((sw) => sw.points.filter((p) => p.series === series))
    return lists[0]!.map((p, i) => {
      const here = lists.map((l) => l[i]).filter((x): x is RunFiles.SweepPoint => x !== undefined)
      const mean = (f: (x: RunFiles.SweepPoint) => number) => here.reduce((a, x) => a + f(x), 0) / here.length
      return {
        series,
        order: i,
        gflops: mean((x) => x.gflops),
        auc: mean((x) => x.auc20to50),
        label: p.quantile === undefined ? `${p.tau}` : `q ${p.quantile}`,
      }
    })
  })
  const values = [...swept, ...depthPoints(run, sweeps[0]!.model)]
  const drawn = [...SWEEP_SERIES, FIXED, ORACLE].filter((s) => values.some((v) => v.series === s))
  // Points of one series that (nearly) coincide — a saturated gate — get one label listing their τ.
  const span = (f: (v: (typeof values)[number]) => number) =>
    Math.max(...values.map(f)) - Math.min(...values.map(f)) || 1
  const [dx, dy] = [span((v) => v.gflops) / 50, span((v) => v.auc) / 50]
  const labels = new Map<string, { series: string; gflops: number; auc: number; labels: string[] }>()
  for (const v of values) {
    const key = `${v.series}\u0000${Math.round(v.gflops / dx)}\u0000${Math.round(v.auc / dy)}`
    const at = labels.get(key) ?? { series: v.series, gflops: v.gflops, auc: v.auc, labels: [] }
    at.labels.push(v.label)
    labels.set(key, at)
  }
  const labelValues = [...labels.values()].map((l) => ({ ...l, label: l.labels.join(", ") }))
  const model = sweeps[0]!.model
  const nSeeds = sweeps.length
  const title = "3D AUC against average GFLOPs"
  // Tiny networks cost ~10⁻³ GFLOPs: their axis reads better in MFLOPs.
  const mega = Math.max(...values.map((v) => v.gflops)) < 0.1
  const x = {
    field: "gflops",
    type: "quantitative" as const,
    title: `average ${mega ? "MFLOPs" : "GFLOPs"} per sample (shape checker)`,
    scale: { zero: false },
    axis: {
      ...(mega ? { labelExpr: "format(datum.value * 1000, '~g')" } : { format: "~g" }),
      labelOverlap: true,
      tickCount: 6,
    },
  }
  const y = {
    field: "auc",
    type: "quantitative" as const,
    title: "3D AUC (20–50 mm)",
    scale: { zero: false },
  }
  const color = {
    field: "series",
    type: "nominal" as const,
    title: "exit rule",
    scale: { domain: [...drawn], scheme: scheme(drawn.length) },
    legend: { orient: "right" as const, symbolType: "stroke" },
  }
  return [
    {
      name: "dirnet-tradeoff",
      section: "tradeoff",
      title,
      caption: `Accuracy against computation of ${model} when each sample exits at the first loop whose predicted variance is below τ_var (labels "q …": the quantile of the training set's predicted variances that τ_var is) or where the REINFORCE gate samples EXIT at temperature τ_gate (labels: τ_gate), all from one trained network and gate (cf. DIR-Net paper, Fig. 7)${
        drawn.includes(FIXED) ? `; "${FIXED}": every sample exits after the same loop (labels: the loop)` : ""
      }${
        drawn.includes(ORACLE)
          ? `; "${ORACLE}": each sample exits at the loop whose 3D error is least (it reads the labels: no exit rule has a lower EPE)`
          : ""
      }${nSeeds > 1 ? `; mean over ${nSeeds} seeds` : ""}. GFLOPs are the shape checker's cost of each sample's exit, averaged over the test set.`,
      series: [...drawn],
      spec: {
        $schema: SCHEMA,
        config,
        title: { text: title, subtitle: `${run.program.name}: ${model}, ${drawn.join(", ")}` },
        width: 520,
        height: 340,
        layer: [
          {
            data: { values },
            mark: { type: "line", strokeWidth: 2.5, point: { size: 40 } },
            encoding: { x, y, color, order: { field: "order", type: "quantitative" } },
          },
          // τ_var's labels above its points, τ_gate's below, so that where the two meet both stay legible.
          ...drawn.map((series) => ({
            data: { values: labelValues.filter((l) => l.series === series) },
            mark: {
              type: "text" as const,
              dx: 6,
              dy: series === "τ_var" || series === ORACLE ? -9 : 12,
              align: "left" as const,
              fontSize: 10,
              color: "#555",
            },
            encoding: { x, y, text: { field: "label", type: "nominal" as const } },
          })),
        ],
      },
    },
  ]
}

// ---- training curves ----------------------------------------------------------------------------

const POSITION = new Set(["stage", "epoch", "step", "time"])
const MAX_POINTS = 600

/** Bucket means, so that a paper-scale run (10⁵ steps) still draws a light SVG. */
const downsample = (pts: readonly { x: number; y: number }[]): { x: number; y: number }[] => {
  if (pts.length <= MAX_POINTS) return [...pts]
  const size = Math.ceil(pts.length / MAX_POINTS)
  const out: { x: number; y: number }[] = []
  for (let i = 0; i < pts.length; i += size) {
    const b = pts.slice(i, i + size)
    out.push({ x: b.reduce((a, p) => a + p.x, 0) / b.length, y: b.reduce((a, p) => a + p.y, 0) / b.length })
  }
  return out
}

/** Loss against the run's step count, one line per stage and loss key (and seed); log scale when the losses span decades. */
export const training = (run: RunDir.Run): Plot[] => {
  const series: string[] = []
  const values: { series: string; key: string; seed: number; step: number; loss: number }[] = []
  for (const s of run.seeds) {
    const points = new Map<string, { key: string; pts: { x: number; y: number }[] }>()
    s.metrics.forEach((line, i) => {
      for (const [k, v] of Object.entries(line)) {
        if (POSITION.has(k) || typeof v !== "number" || !Number.isFinite(v)) continue
        const name = `${line.stage} · ${k}`
        if (!points.has(name)) points.set(name, { key: k.slice(k.lastIndexOf("/") + 1), pts: [] })
        points.get(name)!.pts.push({ x: i + 1, y: v })
      }
    })
    for (const name of points.keys()) if (!series.includes(name)) series.push(name)
    // Plain `minimize` lines first, so that the dashed meta losses are drawn over them.
    const ordered = [...points].sort(
      ([, a], [, b]) => Number(a.key !== "minimize") - Number(b.key !== "minimize"),
    )
    for (const [name, { key, pts }] of ordered)
      for (const p of downsample(pts)) values.push({ series: name, key, seed: s.seed, step: p.x, loss: p.y })
  }
  if (values.length === 0) return []
  const ys = values.map((v) => v.loss)
  const lo = Math.min(...ys)
  const hi = Math.max(...ys)
  const log = lo > 0 && hi / lo >= 20
  const seeds = unique(values.map((v) => v.seed))
  const keys = unique(values.map((v) => v.key)).sort(
    (a, b) => Number(b === "minimize") - Number(a === "minimize"),
  )
  const title = "Training losses"
  return [
    {
      name: "training-loss",
      section: "training",
      title,
      caption: `Every training step's loss, per stage and loss key (the step's path in the stage), against the run's step count${
        seeds.length > 1 ? `; one line per seed (${seeds.length} seeds)` : ""
      }${log ? "; the y axis is logarithmic because the losses span decades" : ""}.`,
      series,
      spec: {
        $schema: SCHEMA,
        config,
        title: { text: title, subtitle: `${run.program.name}: stage · loss key` },
        width: 680,
        height: 340,
        data: { values },
        mark: { type: "line", strokeWidth: 1.8, ...(seeds.length > 1 ? { opacity: 0.75 } : {}) },
        encoding: {
          x: {
            field: "step",
            type: "quantitative",
            title: "training step (over the whole run)",
            axis: { format: "~s", tickMinStep: 1 },
          },
          y: {
            field: "loss",
            type: "quantitative",
            title: log ? "loss (log scale)" : "loss",
            scale: log ? { type: "log" } : { zero: false },
          },
          color: {
            field: "series",
            type: "nominal",
            title: "stage · loss",
            scale: { domain: series, scheme: scheme(series.length) },
            legend: { orient: "right", columns: series.length > 18 ? 2 : 1 },
          },
          // A meta step's two losses are often nearly equal: dashes keep the line drawn first visible.
          ...(keys.length > 1
            ? {
                strokeDash: {
                  field: "key",
                  type: "nominal" as const,
                  title: "step kind",
                  scale: { domain: keys },
                },
              }
            : {}),
          detail: { field: "seed", type: "nominal" },
        },
      },
    },
  ]
}

// ---- histograms (Fig. 5) ----------------------------------------------------------------------

const BINS = 60

/** Quantiles from a strided sample: enough to choose a histogram's range for 10⁷ values. */
const quantiles = (arrays: readonly Float32Array[], qs: readonly number[]): number[] => {
  const total = arrays.reduce((a, x) => a + x.length, 0)
  const stride = Math.max(1, Math.floor(total / 200_000))
  const sample: number[] = []
  let i = 0
  for (const a of arrays)
    for (const v of a) {
      if (i++ % stride === 0 && Number.isFinite(v)) sample.push(v)
    }
  sample.sort((a, b) => a - b)
  return qs.map(
    (q) => sample[Math.min(sample.length - 1, Math.max(0, Math.round(q * (sample.length - 1))))] ?? 0,
  )
}

interface Histogram {
  readonly values: { series: string; value: number; fraction: number }[]
  readonly lo: number
  readonly hi: number
  readonly outside: number
  readonly total: number
}

/** Shared bins over the 0.1–99.9th percentiles, so a few outliers do not squeeze the bulk into one bar. */
const histogram = (series: readonly { label: string; arrays: readonly Float32Array[] }[]): Histogram => {
  const all = series.flatMap((s) => s.arrays)
  let [lo, hi] = quantiles(all, [0.001, 0.999]) as [number, number]
  if (!(hi > lo)) {
    // All values equal (e.g. φ still at its initial value): a narrow window around it.
    const pad = Math.max(Math.abs(lo) * 0.05, 1e-3)
    lo -= pad
    hi += pad
  }
  const width = (hi - lo) / BINS
  const values: Histogram["values"] = []
  let outside = 0
  let total = 0
  for (const s of series) {
    const counts = new Float64Array(BINS)
    let n = 0
    for (const a of s.arrays)
      for (const v of a) {
        if (!Number.isFinite(v)) continue
        n++
        const b = Math.floor((v - lo) / width)
        if (b >= 0 && b < BINS) counts[b]!++
        else if (v === hi) counts[BINS - 1]!++
        else outside++
      }
    total += n
    for (let b = 0; b < BINS; b++)
      values.push({ series: s.label, value: lo + (b + 0.5) * width, fraction: n === 0 ? 0 : counts[b]! / n })
  }
  return { values, lo, hi, outside, total }
}

const histogramSpec = (
  title: string,
  subtitle: string,
  xTitle: string,
  h: Histogram,
  labels: readonly string[],
): TopLevelSpec => {
  const color = {
    field: "series",
    type: "nominal" as const,
    title: "",
    scale: { domain: [...labels], scheme: scheme(labels.length) },
    legend: { orient: "right" as const, symbolType: "stroke", symbolOpacity: 1 },
  }
  const small = Math.max(Math.abs(h.lo), Math.abs(h.hi)) < 1e-2
  const x = {
    field: "value",
    type: "quantitative" as const,
    title: xTitle,
    scale: { domain: [h.lo, h.hi], nice: false },
    axis: { format: small ? ".1e" : "~g", labelOverlap: true, tickCount: 8 },
  }
  const y = { field: "fraction", type: "quantitative" as const, title: "fraction of values per bin" }
  return {
    $schema: SCHEMA,
    config,
    title: { text: title, subtitle },
    width: 520,
    height: 300,
    data: { values: h.values },
    layer: [
      {
        mark: { type: "area", interpolate: "step", opacity: labels.length > 3 ? 0.08 : 0.22 },
        encoding: { x, y: { ...y, stack: null }, color },
      },
      { mark: { type: "line", interpolate: "step", strokeWidth: 1.8 }, encoding: { x, y, color } },
    ],
  }
}

const fmt = (v: number) =>
  (Math.abs(v) >= 1e-2 && Math.abs(v) < 1e4) || v === 0 ? v.toPrecision(3) : v.toExponential(2)

const rangeNote = (h: Histogram) =>
  `Bins span ${fmt(h.lo)} to ${fmt(h.hi)} (the 0.1–99.9th percentiles)${
    h.outside > 0 ? `; ${h.outside} of ${h.total} values fall outside and are not drawn` : ""
  }.`

/** Conv and dense kernels: biases and batch-norm scales would add spikes at 0 and 1 that hide the weights' shape. */
const weightsOf = (tree: Readonly<Record<string, Float32Array>>): Float32Array[] => {
  const kernels = Object.entries(tree).filter(([k]) => /(^|\/)kernel$/.test(k))
  return (kernels.length > 0 ? kernels : Object.entries(tree)).map(([, v]) => v)
}

/** A cheap fingerprint: evaluations of the same weights on several tables store identical copies. */
const fingerprint = (arrays: readonly Float32Array[]): string => {
  let h = 0
  let n = 0
  for (const a of arrays)
    for (let i = 0; i < a.length; i += 1 + (a.length >> 12)) {
      h = (h * 31 + Math.round(a[i]! * 1e6)) | 0
      n++
    }
  return `${arrays.reduce((a, x) => a + x.length, 0)}:${n}:${h}`
}

/** The learned φ of the last checkpoint (pooled over seeds), and each evaluated model's weights, as in Fig. 5 of the CMKG paper. */
export const histograms = (run: RunDir.Run): Plot[] => {
  const plots: Plot[] = []
  const seedsNote = (n: number) => (n > 1 ? ` (pooled over ${n} seeds)` : "")

  // φ: the `meta/<name>` groups.
  const phi = new Map<string, Float32Array[]>()
  let phiSeeds = 0
  let fallbackParams: Map<string, Float32Array[]> | undefined
  for (const s of run.seeds) {
    if (s.checkpoint === undefined) continue
    const ck = Weights.read(
      s.checkpoint,
      (g) => g.startsWith("meta/") || (s.models.length === 0 && g.startsWith("params/")),
    )
    let any = false
    for (const [g, tree] of Object.entries(ck.groups)) {
      if (g.startsWith("meta/")) {
        const name = g.slice("meta/".length)
        phi.set(name, [...(phi.get(name) ?? []), ...Object.values(tree)])
        any = true
      } else {
        fallbackParams ??= new Map()
        const model = g.slice("params/".length)
        fallbackParams.set(model, [...(fallbackParams.get(model) ?? []), ...weightsOf(tree)])
      }
    }
    if (any) phiSeeds++
  }
  if (phi.size > 0) {
    const like = new Map(run.program.metaParams.map((m) => [m.name, m.like]))
    const names = [...phi.keys()]
    const labels = names.map((n) => (like.has(n) ? `φ ${n} (weights of ${like.get(n)})` : `φ ${n}`))
    const h = histogram(names.map((n, i) => ({ label: labels[i]!, arrays: phi.get(n)! })))
    const title = "Learned φ"
    plots.push({
      name: "phi-histogram",
      section: "histograms",
      title,
      caption: `Histogram of the meta-learned regulariser weights φ at the last checkpoint${seedsNote(phiSeeds)}, one line per φ (cf. CMKG paper, Fig. 5). ${rangeNote(h)}`,
      series: names,
      spec: histogramSpec(
        title,
        `${run.program.name}: meta-parameters at the last checkpoint${seedsNote(phiSeeds)}`,
        "φ value",
        h,
        labels,
      ),
    })
  }

  // Parameters: the evaluated models (`models/<slug>`), grouped by network, one line per evaluation.
  const byModel = new Map<string, { label: string; arrays: Float32Array[] }[]>()
  for (const s of run.seeds) {
    const seen = new Set<string>()
    for (const m of s.models) {
      const ck = Weights.read(m.dir, (g) => g.startsWith("params/"))
      const meta = Read.decode(ck.file, RunFiles.ModelMeta, ck.meta ?? {}, {
        path: ["userDefinedMetadata", "cmkg"],
      })
      for (const [g, tree] of Object.entries(ck.groups)) {
        const model = meta.model ?? g.slice("params/".length)
        const arrays = weightsOf(tree)
        // A model evaluated on several tables is stored once per evaluation: draw it once.
        const print = `${model}\u0000${fingerprint(arrays)}`
        if (seen.has(print)) continue
        seen.add(print)
        // Rows pool over seeds; a row name reused with other weights (another table) gets the table's name.
        const base = meta.row ?? m.slug
        const label = seen.has(`${model}\u0000label\u0000${base}`)
          ? `${base} · ${meta.table ?? m.slug}`
          : base
        seen.add(`${model}\u0000label\u0000${label}`)
        const entries = byModel.get(model) ?? []
        byModel.set(model, entries)
        const entry = entries.find((e) => e.label === label)
        if (entry !== undefined) entry.arrays.push(...arrays)
        else entries.push({ label, arrays: [...arrays] })
      }
    }
  }
  const nSeeds = run.seeds.length
  for (const [model, entries] of byModel) {
    const labels = entries.map((e) => e.label)
    const h = histogram(entries)
    const title = `Parameters of ${model}`
    plots.push({
      name: `params-${slug(model)}`,
      section: "histograms",
      title,
      caption: `Histogram of ${model}'s convolution and dense kernels as evaluated, one line per results row${seedsNote(nSeeds)} (cf. CMKG paper, Fig. 5, trained with and without the learned regulariser). ${rangeNote(h)}`,
      series: labels,
      spec: histogramSpec(
        title,
        `${run.program.name}: weights of each evaluated ${model}${seedsNote(nSeeds)}`,
        "weight value",
        h,
        labels,
      ),
    })
  }
  if (byModel.size === 0 && fallbackParams !== undefined && fallbackParams.size > 0) {
    const models = [...fallbackParams.keys()]
    const h = histogram(models.map((m) => ({ label: m, arrays: fallbackParams!.get(m)! })))
    const title = "Parameters at the last checkpoint"
    plots.push({
      name: "params-last-checkpoint",
      section: "histograms",
      title,
      caption: `Histogram of every network's convolution and dense kernels at the last checkpoint${seedsNote(nSeeds)}. ${rangeNote(h)}`,
      series: models,
      spec: histogramSpec(
        title,
        `${run.program.name}: weights at the last checkpoint`,
        "weight value",
        h,
        models,
      ),
    })
  }
  return plots
}

/**
 * `cmkg check`: the shape-check interpreter's report, as a torchinfo-like
 * table or as JSON, and an experiment's stage graph.
 *
 * @module
 */
import * as Shape from "../dsl/Shape.ts"
import type * as StageGraph from "../dsl/StageGraph.ts"
import type * as Check from "../interpreters/shape-check/index.ts"
import type * as ProgramCheck from "../interpreters/shape-check/program.ts"
import type * as GraphCheck from "../interpreters/shape-check/stage-graph.ts"

const count = (n: number): string => n.toLocaleString("en-US")
const giga = (n: number): string =>
  n >= 1e9 ? `${(n / 1e9).toFixed(2)} G` : n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : count(n)

const pad = (s: string, w: number, right = false) => (right ? s.padStart(w) : s.padEnd(w))

/** A per-layer table (parameter-owning and shape-changing layers) and totals for one model. */
export const table = (name: string, s: Check.Summary): string => {
  const rows = s.layers
    .filter((l) => l.tag !== "Relu" && l.tag !== "Identity" && l.tag !== "Tap" && l.tag !== "Sigmoid")
    .map((l) => [l.path || "<root>", l.tag, Shape.format(l.output), count(l.cost.params), count(l.cost.macs)])
  const head = ["Layer (path)", "Kind", "Output", "Params", "MACs"]
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (r: readonly string[]) => r.map((c, i) => pad(c, widths[i]!, i >= 3)).join("  ")
  const rule = "─".repeat(widths.reduce((a, b) => a + b + 2, -2))
  const loops = s.loops.map(
    (l) =>
      `Loop ${l.path || "<root>"}: ${l.iterations} iterations; MACs per iteration ${l.macsPerIteration.map(count).join(", ")}; ` +
      `params per iteration ${l.paramsPerIteration.map(count).join(", ")}`,
  )
  return [
    `${name}: input ${Shape.format(s.input)} → output ${Shape.format(s.output)}`,
    rule,
    line(head),
    rule,
    ...rows.map(line),
    rule,
    `Total params: ${count(s.cost.params)}`,
    `Total MACs: ${count(s.cost.macs)} (${giga(s.cost.macs)}MACs; FLOPs = 2 × MACs = ${giga(2 * s.cost.macs)}FLOPs)`,
    `Batch-norm buffers: ${count(s.cost.buffers)}`,
    `Taps: ${Object.entries(s.taps)
      .map(([t, sh]) => `${t} ${Shape.format(sh)}`)
      .join(", ")}`,
    ...loops,
  ].join("\n")
}

/** The machine-readable report of `cmkg check --json`. */
export const json = (report: ProgramCheck.ProgramReport, extra: Record<string, unknown> = {}) => ({
  program: report.name,
  ok: report.errors.length === 0,
  networks: report.models.map((m) => ({
    name: m.name,
    input: m.summary.input,
    output: m.summary.output ?? null,
    params: m.summary.cost.params,
    macs: m.summary.cost.macs,
    flops: 2 * m.summary.cost.macs,
    buffers: m.summary.cost.buffers,
    taps: m.summary.taps,
    loops: m.summary.loops,
    layers: m.summary.layers.map((l) => ({
      path: l.path,
      kind: l.tag,
      output: l.output ?? null,
      params: l.cost.params,
      macs: l.cost.macs,
    })),
  })),
  errors: report.errors.map((e) => ({ path: e.path, message: e.message })),
  ...extra,
})

// ---- the stage graph ------------------------------------------------------------------------

/** Stages are numbered from 1 for people, as the checker's error paths and the runner's progress number them. */
const numbered = (i: number) => i + 1
const resourceName = (r: StageGraph.Resource) => r.name
const hazard: Record<StageGraph.Dependency, string> = {
  "read-after-write": "reads",
  "write-after-read": "WAR",
  "write-after-write": "WAW",
}
const large = (n: number): string => (n >= 1e12 ? `${(n / 1e12).toFixed(2)} T` : giga(n))
const share = (path: StageGraph.CriticalPath) => (path.total === 0 ? 1 : path.cost / path.total)

/** The stage graph as text: one line per stage (MACs, what it reads from whom, whom it waits for), then the critical paths. */
export const graph = (g: GraphCheck.GraphReport): string => {
  const macs = (m: number | undefined) => (m === undefined ? "?" : `${large(m)}MACs`)
  const rows = g.stages.map((s) => {
    const reads = s.reads.map(
      (r) => `${resourceName(r.resource)} ← ${r.from === null ? "initial" : numbered(r.from)}`,
    )
    const waits = s.needs.shared.map((i) => {
      const why = s.because
        .filter((x) => x.from === i && x.kind !== "read-after-write")
        .map((x) => `${hazard[x.kind]} ${resourceName(x.resource)}`)
      return why.length === 0 ? `${numbered(i)}` : `${numbered(i)} (${[...new Set(why)].join(", ")})`
    })
    return [String(numbered(s.index)), s.name, macs(s.macs), reads.join(", ") || "—", waits.join(", ") || "—"]
  })
  const head = ["#", "stage", "MACs", "reads (← the stage that wrote it)", "waits for"]
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (r: readonly string[]) =>
    `  ${r.map((c, i) => pad(c, widths[i]!, i === 0 || i === 2)).join("  ")}`.trimEnd()
  const path = (label: string, p: StageGraph.CriticalPath) =>
    `  critical path ${label}: ${p.stages.map(numbered).join(" → ")}: ${large(p.cost)}MACs, ` +
    `${(100 * share(p)).toFixed(1)} % of the total: parallel workers run one seed at most ` +
    `${(1 / share(p)).toFixed(2)}× faster`
  return [
    "Stage graph (one seed; seeds share nothing, so a sweep is one copy per seed;",
    "  MACs: a train stage's as above, an evaluate stage's = test samples × its model's forward MACs):",
    line(head),
    ...rows.map(line),
    "  waits for: in one shared world, as `cmkg run` keeps it; WAR = overwrites what that stage read, WAW = overwrites what it wrote",
    ...(g.stages.some((s) => s.macs === undefined)
      ? ["  ? = the data set's size is not known statically (counted as 0)"]
      : []),
    `  total ${large(g.macsTotal)}MACs per seed`,
    path("in one shared world", g.criticalPath.shared),
    path(
      "if each stage keeps its writes as its own version (read after write only)",
      g.criticalPath.perStage,
    ),
  ].join("\n")
}

/** The stage graph in `cmkg check --json` (stages numbered from 1). */
export const graphJson = (g: GraphCheck.GraphReport) => {
  const path = (p: StageGraph.CriticalPath) => ({
    stages: p.stages.map(numbered),
    macs: p.cost,
    share: share(p),
  })
  return {
    stages: g.stages.map((s) => ({
      number: numbered(s.index),
      name: s.name,
      kind: s.kind,
      macs: s.macs ?? null,
      reads: s.reads.map((r) => ({ ...r.resource, from: r.from === null ? null : numbered(r.from) })),
      writes: s.writes,
      needs: { shared: s.needs.shared.map(numbered), perStage: s.needs.perStage.map(numbered) },
      dependencies: s.because.map((x) => ({ from: numbered(x.from), kind: x.kind, ...x.resource })),
    })),
    macsTotal: g.macsTotal,
    criticalPath: { shared: path(g.criticalPath.shared), perStage: path(g.criticalPath.perStage) },
  }
}

/**
 * `cmkg check`: the shape-check interpreter's report, as a torchinfo-like
 * table or as JSON.
 *
 * @module
 */
import * as Shape from "../dsl/Shape.ts"
import type * as Check from "../interpreters/shape-check/index.ts"
import type * as ProgramCheck from "../interpreters/shape-check/program.ts"

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

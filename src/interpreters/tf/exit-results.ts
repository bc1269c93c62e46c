/**
 * The results of a run that evaluates exits (DIR-Net's `results.json`): rows readable wherever the
 * staged runner's are, with DIR-Net's cost columns; the Figure 7 sweep; the
 * shape checker's per-loop costs; and their Markdown (`results.md`).
 *
 * @module
 */
import type * as Dirnet from "../../dsl/dirnet.ts"
import type * as Experiment from "../../dsl/Experiment.ts"
import type * as Program from "../../dsl/Program.ts"
import type * as RunFiles from "../../run-dir/schema.ts"
import * as Costs from "../shape-check/dirnet.ts"
import * as Check from "../shape-check/index.ts"
import type { Row as ExitRow } from "./exits.ts"

/** A results row (readable wherever the staged runner's rows are) with DIR-Net's cost columns (`results.json`'s schema). */
export type Row = RunFiles.DirnetRow

/** One point of Figure 7. */
export type SweepPoint = RunFiles.SweepPoint

/** The shape checker's costs of a variant, as the results record them. */
export type LoopCosts = RunFiles.LoopCosts

/** A DIR-Net experiment's `results.json`. */
export type Results = RunFiles.DirnetResults

// ---- Markdown -------------------------------------------------------------------------------

const fixed = (n: number, d: number) => (Number.isFinite(n) ? n.toFixed(d) : String(n))
const count = (n: number) => n.toLocaleString("en-US")

/** Results as Markdown: each table's rows with their costs, the Figure 7 sweep, and the per-loop costs. */
export const markdown = (r: Results): string => {
  const parts = [`# ${r.program}\n\nseed ${r.seed}, backend ${r.backend}, ${r.seconds.toFixed(0)} s\n`]
  for (const table of [...new Set(r.rows.map((x) => x.table))]) {
    parts.push(
      `## ${table}\n`,
      "| method | model | 3D AUC 20–50 | EPE (mm) | avg GFLOPs | #params | mean exit loop |",
      "|---|---|---|---|---|---|---|",
    )
    for (const x of r.rows.filter((y) => y.table === table))
      parts.push(
        `| ${x.row} | ${x.model} | ${fixed(x.auc20to50, 3)} | ${fixed(x.epe, 2)} | ${Costs.gflopsText(x.gflops)} | ${count(x.params)} | ${fixed(x.meanExit + 1, 2)} |`,
      )
    parts.push("")
  }
  if (r.sweep !== undefined) {
    parts.push(
      `## Figure 7: 3D AUC against average GFLOPs (${r.sweep.model}, evaluation only)\n`,
      "| series | τ | quantile | 3D AUC 20–50 | avg GFLOPs | mean exit loop |",
      "|---|---|---|---|---|---|",
    )
    for (const p of r.sweep.points)
      parts.push(
        `| ${p.series} | ${p.tau.toPrecision(3)} | ${p.quantile ?? ""} | ${fixed(p.auc20to50, 3)} | ${Costs.gflopsText(p.gflops)} | ${fixed(p.meanExit + 1, 2)} |`,
      )
    parts.push("")
  }
  parts.push(
    "## Per-loop costs (shape checker)\n",
    "| model | GFLOPs after loop 1, 2, … | #params | No Iter. #params |",
    "|---|---|---|---|",
  )
  for (const l of r.loops)
    parts.push(
      `| ${l.model} | ${l.gflopsAtExit.map(Costs.gflopsText).join(", ")} | ${count(l.params)} | ${count(l.noIterParams)} |`,
    )
  if (r.gateParams > 0) parts.push("", `The gate 𝒢 adds ${count(r.gateParams)} parameters.`)
  const notes = closingNotes(r)
  if (notes.length > 0) parts.push("", "## Closing note\n", ...notes)
  return `${parts.join("\n")}\n`
}

const signed = (x: number) => `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(3)}`

/** The results' closing notes: Table 3's questions, then whether exiting per input can pay. */
export const closingNotes = (r: Results): string[] => [...table3Notes(r), ...oracleNotes(r)]

/**
 * Whether exiting per input can pay at all, for every variant with fixed-depth and oracle rows: how
 * far the oracle (each sample at its best loop) is above the best fixed depth, and how many samples
 * are best served by a later loop than the first.
 */
const oracleNotes = (r: Results): string[] =>
  [...new Set(r.rows.map((x) => x.model))].flatMap((model) => {
    const mine = r.rows.filter((x) => x.model === model)
    const oracle = mine.find((x) => x.evaluate._tag === "Oracle")
    const depths = mine.filter((x) => x.evaluate._tag === "Loop")
    if (oracle === undefined || depths.length === 0) return []
    const best = depths.reduce((a, x) => (x.auc20to50 > a.auc20to50 ? x : a))
    const loopOf = (x: Row) => (x.evaluate._tag === "Loop" ? x.evaluate.loop + 1 : 0)
    return [
      `${model}: every sample at its best loop (the oracle) reaches 3D AUC ${fixed3(oracle.auc20to50)} at ${Costs.gflopsText(oracle.gflops)} GFLOPs, ` +
        `against ${fixed3(best.auc20to50)} for the best fixed depth (loop ${loopOf(best)}, ${Costs.gflopsText(best.gflops)} GFLOPs); ` +
        `${fixed(100 * (1 - (oracle.exits[0] ?? 0)), 0)}% of samples are best served by a later loop than the first. ` +
        `Fixed depths: ${depths.map((x) => `loop ${loopOf(x)} ${fixed3(x.auc20to50)}`).join(", ")}.`,
    ]
  })

const fixed3 = (n: number) => fixed(n, 3)

/**
 * Table 3's questions, for every variant evaluated without iterations, with
 * all its loops and with the gate: do the iterations improve 3D AUC, and
 * does the gate cut average GFLOPs at a small AUC cost (as in the paper)?
 */
const table3Notes = (r: Results): string[] =>
  [...new Set(r.rows.map((x) => x.model))].flatMap((model) => {
    const of = (tag: Dirnet.Evaluate["_tag"]) =>
      r.rows.find((x) => x.model === model && x.evaluate._tag === tag)
    const [none, all, gate] = [of("NoIter"), of("Last"), of("Gate")]
    if (none === undefined || all === undefined || gate === undefined) return []
    const loops = all.exits.length
    const iter = all.auc20to50 - none.auc20to50
    const cost = gate.auc20to50 - all.auc20to50
    return [
      `${model}: ${loops} loops change 3D AUC by ${signed(iter)} against no iteration (${fixed(none.auc20to50, 3)} → ${fixed(all.auc20to50, 3)}) at ${fixed(all.gflops / none.gflops, 2)}× its GFLOPs; ` +
        `the gate exits after ${fixed(gate.meanExit + 1, 2)} loops on average, at ${fixed((100 * gate.gflops) / all.gflops, 0)}% of the full loop's GFLOPs, changing 3D AUC by ${signed(cost)}. ` +
        `As in the paper? Iterations improve AUC: ${iter > 0 ? "yes" : "no"}; the gate cuts average GFLOPs: ${gate.gflops < all.gflops ? "yes" : "no"}, ` +
        `${cost >= 0 ? "with no AUC cost" : `at an AUC cost of ${Math.abs(cost).toFixed(3)}`}.`,
    ]
  })

// ---- from the runner's rows ---------------------------------------------------------------------

/**
 * The results of an experiment that evaluates exits (`EvaluateExits`
 * stages): DIR-Net's `results.json` — its rows, the sweep points (of the
 * first swept variant), the shape checker's per-loop costs of every
 * evaluated variant, the gate's parameters. `undefined` when no row is an
 * exit evaluation's (the experiment's results are the staged kind's).
 */
export const fromRows = (
  program: Program.Program<Experiment.Experiment>,
  base: RunFiles.ResultsHeader,
  rows: readonly unknown[],
): Results | undefined => {
  const e = program.experiment!
  const stages = e.stages.flatMap((s) => (s._tag === "EvaluateExits" ? [s] : []))
  if (stages.length === 0) return undefined
  const byName = new Map(stages.map((s) => [s.name, s]))
  const exitRows = (rows as ExitRow[]).filter((r) => byName.has(r.stage))
  const models = new Map(program.models.map((m) => [m.name, m]))
  const variants = [...new Set(stages.flatMap((s) => (s.into._tag === "Row" ? [s.into.variant] : [])))]
  const loops = variants.flatMap((variant) => {
    const full = stages.find(
      (s) => s.into._tag === "Row" && s.into.variant === variant && s.into.label._tag !== "NoIter",
    )
    const model = full === undefined ? undefined : models.get(full.model)
    if (model === undefined) return []
    const costs = Costs.loopCosts(model.net, model.input)
    const noIter = stages.find(
      (s) => s.into._tag === "Row" && s.into.variant === variant && s.into.label._tag === "NoIter",
    )
    const noIterModel = noIter === undefined ? undefined : models.get(noIter.model)
    return [
      {
        model: variant,
        gflopsAtExit: costs.gflopsAtExit,
        params: costs.params,
        noIterParams:
          noIterModel === undefined
            ? costs.paramsUpTo[0]!
            : Costs.loopCosts(noIterModel.net, noIterModel.input).params,
      },
    ]
  })
  const gates = [
    ...new Set(stages.flatMap((s) => (s.policy._tag === "Gate" ? [s.policy.gate] : []))),
  ].flatMap((g) => {
    const m = models.get(g)
    return m === undefined ? [] : [Check.check(m.net, m.input).summary.cost.params]
  })
  const points = exitRows.filter((r) => r.point !== undefined)
  const swept = points[0]?.model
  return {
    kind: "DirNetExperiment",
    ...base,
    ...(Object.keys(e.references).length > 0 ? { references: e.references } : {}),
    rows: exitRows.filter((r) => r.point === undefined).map(({ point: _, ...row }) => row),
    sweep:
      swept === undefined
        ? undefined
        : { model: swept, points: points.filter((r) => r.model === swept).map((r) => r.point!) },
    loops,
    gateParams: gates[0] ?? 0,
  }
}

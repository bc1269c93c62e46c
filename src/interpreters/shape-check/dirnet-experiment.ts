/**
 * The shape-check interpreter on a DIR-Net experiment (`Dirnet.Experiment`):
 * every variant's network, its "No Iter." network and the gate checked, the
 * data against the input, the rows and the sweep against the variants —
 * all before anything trains — and the training compute of every phase of
 * Algorithm 1, and each variant's per-loop costs (what `cmkg check` prints
 * and every GFLOPs figure of the run reads).
 *
 * Training-step cost (as `experiment.ts`): 3× forward MACs per sample for
 * what is trained; FE, frozen after stage 0, costs its forward pass only.
 *
 * @module
 */
import * as Data from "../../dsl/Data.ts"
import * as Dirnet from "../../dsl/dirnet.ts"
import type * as Program from "../../dsl/Program.ts"
import * as Shape from "../../dsl/Shape.ts"
import * as Costs from "./dirnet.ts"
import type { ExperimentReport, StageCost } from "./experiment-report.ts"
import * as Check from "./index.ts"
import * as ProgramCheck from "./program.ts"

export interface VariantCosts {
  readonly model: string
  readonly costs: Costs.LoopCosts
  /** Parameters of its "No Iter." network ({@link Dirnet.plain}). */
  readonly noIterParams: number
}

export interface Report extends ExperimentReport {
  /** Per-loop costs of every well-shaped variant. */
  readonly loops: readonly VariantCosts[]
  /** Parameters of the gate 𝒢 (0 when no row or sweep uses it). */
  readonly gateParams: number
}

const positiveInteger = (n: number) => Number.isInteger(n) && n > 0

export const check = (p: Program.Program<Dirnet.Experiment>): Report => {
  const base = ProgramCheck.checkModels(p)
  const errors: Check.ShapeError[] = [...base.errors]
  const fail = (path: string, message: string) => errors.push({ _tag: "ShapeError", path, message })
  const e = p.experiment!
  const at = "experiment"
  const S = e.imageSize
  if (!positiveInteger(S) || S % 32 !== 0)
    fail(`${at}/imageSize`, `${S} is not a positive multiple of 32 (RF's output is 1/32 of the input side)`)

  // Data: RGB of the input size, and at least one batch to train on.
  for (const [name, spec] of [
    ["train", e.train],
    ["test", e.test],
  ] as const) {
    const rgb = Data.shapes(spec).rgb
    if (rgb === undefined)
      fail(`${at}/${name}`, `DIR-Net reads "rgb", which the data (${Data.describe(spec)}) does not provide`)
    else if (!Shape.equals(rgb, [S, S, 3]))
      fail(`${at}/${name}`, `the data's "rgb" is ${Shape.format(rgb)}, the networks expect ${S}×${S}×3`)
  }
  if (!positiveInteger(e.batchSize)) fail(`${at}/batchSize`, `${e.batchSize} is not a positive integer`)
  const trainSize = e.train._tag === "Synthetic" ? e.train.count : undefined
  if (trainSize !== undefined && positiveInteger(e.batchSize) && trainSize < e.batchSize)
    fail(`${at}/train`, `${trainSize} samples are fewer than one batch of ${e.batchSize}`)
  if (!(e.lr > 0 && Number.isFinite(e.lr))) fail(`${at}/lr`, `${e.lr} is not a positive learning rate`)
  if (!positiveInteger(e.epochs.first) || !(Number.isInteger(e.epochs.later) && e.epochs.later >= 0))
    fail(
      `${at}/epochs`,
      `stage 0 needs a positive integer and later stages a non-negative integer of epochs, got ${e.epochs.first} and ${e.epochs.later}`,
    )

  // Variants: each a well-shaped DIR-Net, declared as the program model of its name.
  const loops: VariantCosts[] = []
  const names = new Set<string>()
  for (const v of e.variants) {
    const path = `${at}/variants/${v.name}`
    if (names.has(v.name)) fail(path, "two variants have this name")
    names.add(v.name)
    if (!positiveInteger(v.options.iterations))
      fail(path, `iterations must be a positive integer (l_max + 1), got ${v.options.iterations}`)
    if (v.options.inChannels !== 3)
      fail(path, `reads RGB, so inChannels must be 3, got ${v.options.inChannels}`)
    const input = Dirnet.inputShape(S, v.options)
    const declared = p.models.find((m) => m.name === v.name)
    if (
      declared === undefined ||
      !Shape.equals(declared.input, input) ||
      JSON.stringify(declared.net) !== JSON.stringify(Dirnet.dirnet(v.options))
    )
      fail(
        path,
        `the program must declare model "${v.name}" as Dirnet.dirnet(its options) on ${Shape.format(input)} (build the models with Dirnet.models(experiment))`,
      )
    // An input side that is not a multiple of 32 was reported above; its shape errors would only repeat it.
    if (!positiveInteger(S) || S % 32 !== 0) continue
    try {
      const costs = Costs.loopCosts(Dirnet.dirnet(v.options), input)
      const plain = Check.check(Dirnet.plain(v.options), input)
      loops.push({ model: v.name, costs, noIterParams: plain.summary.cost.params })
    } catch (err) {
      fail(path, err instanceof Error ? err.message : String(err))
    }
  }

  // Rows and the sweep name trained variants; thresholds and temperatures are meaningful.
  let usesGate = false
  e.rows.forEach((r, i) => {
    const path = `${at}/rows/${i + 1} "${r.table} · ${r.row}"`
    if (!names.has(r.model)) fail(path, `evaluates unknown variant "${r.model}"`)
    const ev = r.evaluate
    if (ev._tag === "Variance" && Number.isNaN(ev.tau)) fail(path, "τ_var is NaN")
    if (ev._tag === "Gate") {
      usesGate = true
      if (!(ev.temperature > 0 && Number.isFinite(ev.temperature)))
        fail(path, `τ_gate must be positive and finite, got ${ev.temperature}`)
    }
  })
  if (e.sweep !== undefined) {
    const path = `${at}/sweep`
    if (!names.has(e.sweep.model)) fail(path, `sweeps unknown variant "${e.sweep.model}"`)
    for (const q of e.sweep.tauVarQuantiles)
      if (!(q >= 0 && q <= 1)) fail(path, `τ_var quantile ${q} is outside [0, 1]`)
    for (const t of e.sweep.tauGate)
      if (!(t > 0 && Number.isFinite(t))) fail(path, `τ_gate ${t} must be positive and finite`)
    if (e.sweep.tauGate.length > 0) usesGate = true
  }
  let gateParams = 0
  if (usesGate) {
    const g = e.gate
    if (!(Number.isInteger(g.steps) && g.steps >= 0))
      fail(`${at}/gate`, `steps must be a non-negative integer, got ${g.steps}`)
    if (!(g.lr > 0) || !(g.temperature > 0))
      fail(`${at}/gate`, `learning rate and temperature must be positive, got ${g.lr} and ${g.temperature}`)
    for (const hidden of new Set(e.variants.map((v) => v.options.hidden))) {
      const checked = Check.check(Dirnet.gate({ inFeatures: hidden, hidden: g.hidden }), [hidden])
      if (!checked.ok) errors.push(...checked.errors.map((x) => ({ ...x, path: `${at}/gate/${x.path}` })))
      else gateParams = checked.summary.cost.params
    }
  }

  // Compute of every training phase (FE frozen after stage 0).
  const costsOf = new Map(loops.map((l) => [l.model, l.costs]))
  const stepsPerEpoch =
    trainSize === undefined || !positiveInteger(e.batchSize) ? 0 : Math.floor(trainSize / e.batchSize)
  const stages: StageCost[] = Dirnet.schedule(e).map((phase) => {
    const c = costsOf.get(phase.variants[0]!)
    const fe = c === undefined ? 0 : c.macsAtExit[0]! - c.macsPerIteration[0]!
    const forward = c?.macsAtExit[phase.stage] ?? 0
    const perSample = phase.stage === 0 ? 3 * forward : 3 * forward - 2 * fe
    const steps = phase.epochs * stepsPerEpoch
    return {
      stage: phase.name,
      steps,
      samplesPerStep: e.batchSize,
      macsPerStep: e.batchSize * perSample,
      macs: steps * e.batchSize * perSample,
    }
  })
  return {
    models: base.models,
    errors: [...new Map(errors.map((x) => [`${x.path}: ${x.message}`, x])).values()],
    stages,
    trainStages: stages.length,
    macsTotal: stages.reduce((a, s) => a + s.macs, 0),
    adapters: {},
    loops,
    gateParams,
  }
}

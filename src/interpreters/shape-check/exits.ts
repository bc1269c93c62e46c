/**
 * The shape-check meaning of dynamic exits (`Exits`): an `EvaluateExits`
 * stage's network has one loop with DIR-Net's taps per iteration, its data
 * the labels the pose losses read, its policy a meaningful threshold or a
 * gate that reads the network's gate features; a `Reinforce` step's gate
 * and frozen network fit each other. Never throws: problems are
 * {@link Check.ShapeError}s with the stage's or step's path.
 *
 * @module
 */
import type * as Exits from "../../dsl/Exits.ts"
import type * as Loss from "../../dsl/Loss.ts"
import type * as Program from "../../dsl/Program.ts"
import * as Shape from "../../dsl/Shape.ts"
import * as Costs from "./dirnet.ts"
import type * as Check from "./index.ts"

export interface ExitsContext {
  readonly models: Readonly<Record<string, Check.Summary>>
  readonly programModels: Readonly<Record<string, Program.Model>>
  /** Per-sample shapes of the stage's data fields. */
  readonly fields: Readonly<Partial<Record<Loss.Field, Shape.Shape>>>
}

type Fail = (path: string, message: string) => void

/** The taps every iteration k of a looped network must declare, with their per-sample shapes (`undefined`: any vector). */
const TAPS: readonly (readonly [string, Shape.Shape | undefined])[] = [
  ["pose", [63]],
  ["camera", [3]],
  ["logvar", [2]],
  ["gateFeatures", undefined],
]

/** The loop costs of a looped model, checking its taps; `undefined` (with errors) when it is not one. */
export const loopedModel = (
  name: string,
  ctx: ExitsContext,
  at: string,
  fail: Fail,
): Costs.LoopCosts | undefined => {
  const summary = ctx.models[name]
  const model = ctx.programModels[name]
  if (summary === undefined || model === undefined) {
    fail(at, `unknown model "${name}" (models: ${Object.keys(ctx.models).join(", ") || "none"})`)
    return undefined
  }
  if (summary.loops.length !== 1) {
    fail(at, `"${name}" must have exactly one loop to exit from, it has ${summary.loops.length}`)
    return undefined
  }
  let costs: Costs.LoopCosts
  try {
    costs = Costs.loopCosts(model.net, model.input)
  } catch {
    return undefined // its own shape errors are reported with the model
  }
  for (let k = 0; k < costs.iterations; k++)
    for (const [tap, shape] of TAPS) {
      const have = summary.taps[`${tap}@${k}`]
      if (have === undefined)
        fail(at, `"${name}" has no tap "${tap}@${k}" (exits read DIR-Net's taps per loop)`)
      else if (shape === undefined ? have.length !== 1 : !Shape.equals(have, shape))
        fail(
          at,
          `tap "${tap}@${k}" of "${name}" is ${Shape.format(have)}, exits need ${shape === undefined ? "a vector" : Shape.format(shape)}`,
        )
    }
  return costs
}

/** The gate reads the network's `gateFeatures@k` and gives two logits `[EXIT, CONTINUE]`. */
const gateFits = (gate: string, network: string, ctx: ExitsContext, at: string, fail: Fail): void => {
  const g = ctx.models[gate]
  if (g === undefined) {
    fail(at, `unknown gate model "${gate}" (models: ${Object.keys(ctx.models).join(", ") || "none"})`)
    return
  }
  const features = ctx.models[network]?.taps["gateFeatures@0"]
  if (features !== undefined && !Shape.equals(g.input, features))
    fail(
      at,
      `gate "${gate}" reads ${Shape.format(g.input)}, but the gate features of "${network}" are ${Shape.format(features)}`,
    )
  if (g.output !== undefined && !Shape.equals(g.output, [2]))
    fail(at, `gate "${gate}" gives ${Shape.format(g.output)}, a gate gives two logits [EXIT, CONTINUE]`)
}

const labels = (ctx: ExitsContext, at: string, fail: Fail): void => {
  for (const [field, shape] of [
    ["joints3d", [63]],
    ["joints2d", [42]],
  ] as const) {
    const have = ctx.fields[field]
    if (have === undefined) fail(at, `exits read the data's "${field}", which it does not provide`)
    else if (!Shape.equals(have, shape))
      fail(at, `the data's "${field}" is ${Shape.format(have)}, exits need ${Shape.format(shape)}`)
  }
}

/** Checks an `EvaluateExits` stage at path `at`; returns the evaluated network's loop costs when it is well-formed. */
export const checkEvaluate = (
  stage: Exits.Evaluate,
  ctx: ExitsContext,
  at: string,
  fail: Fail,
): Costs.LoopCosts | undefined => {
  const costs = loopedModel(stage.model, ctx, at, fail)
  labels(ctx, at, fail)
  const p = stage.policy
  switch (p._tag) {
    case "Last":
    case "Oracle":
      break
    case "Loop":
      if (costs !== undefined && !(Number.isInteger(p.loop) && p.loop >= 0 && p.loop < costs.iterations))
        fail(
          `${at}/policy`,
          `exit after loop ${p.loop + 1}: "${stage.model}" has loops 1–${costs.iterations}`,
        )
      break
    case "Variance":
      if (Number.isNaN(p.tau)) fail(`${at}/policy`, "τ_var is NaN")
      break
    case "VarianceQuantile":
      if (!(p.quantile >= 0 && p.quantile <= 1))
        fail(`${at}/policy`, `τ_var quantile ${p.quantile} is outside [0, 1]`)
      break
    case "Gate":
      if (!(p.temperature > 0 && Number.isFinite(p.temperature)))
        fail(`${at}/policy`, `τ_gate must be positive and finite, got ${p.temperature}`)
      gateFits(p.gate, stage.model, ctx, `${at}/policy`, fail)
      break
    default: {
      const _: never = p
      fail(`${at}/policy`, `unknown exit policy ${(_ as Exits.Policy)._tag}`)
    }
  }
  return costs
}

/** Checks a `Reinforce` step at path `at`: the MACs per sample of one of its steps (the network once, the gate's updates). */
export const checkReinforce = (s: Exits.Reinforce, ctx: ExitsContext, at: string, fail: Fail): number => {
  const costs = loopedModel(s.network, ctx, `${at}/network`, fail)
  gateFits(s.gate, s.network, ctx, `${at}/gate`, fail)
  labels(ctx, at, fail)
  for (const [name, v] of [
    ["lambda", s.lambda],
    ["flopsWeight", s.flopsWeight],
  ] as const)
    if (!Number.isFinite(v)) fail(`${at}/${name}`, `must be finite, got ${v}`)
  if (!(s.temperature > 0 && Number.isFinite(s.temperature)))
    fail(`${at}/temperature`, `must be positive and finite, got ${s.temperature}`)
  if (!(Number.isInteger(s.updates) && s.updates >= 1))
    fail(`${at}/updates`, `needs a positive integer number of updates per batch, got ${s.updates}`)
  const gate = ctx.models[s.gate]?.cost.macs ?? 0
  const iterations = costs?.iterations ?? 1
  return (ctx.models[s.network]?.cost.macs ?? 0) + 3 * Math.max(0, s.updates) * (iterations - 1) * gate
}

/**
 * The shape-check meaning of `Step` values: every loss a step evaluates is
 * well-formed for the models it names (see `loss.ts`), every name a step
 * updates exists (models, adapters, meta-parameters), and meta-steps are
 * well-posed: φ is declared, shaped like an existing model's parameters, read
 * by the inner loss; the inner steps and rate are valid; the closed-form mode
 * is only used where it is exact (l = 1, φ read through weighted norms of the
 * inner step's models).
 *
 * Error paths follow the step interpreter's paths, e.g.
 * `step/0/metaMinimize/outer/Sum/term 1/Scale/AttentionTransfer/pair 0` (a
 * caller such as the experiment checker prefixes `stage "meta-train"/`).
 *
 * @module
 */
import * as Loss from "../../dsl/Loss.ts"
import * as Optimizer from "../../dsl/Optimizer.ts"
import * as Params from "../../dsl/Params.ts"
import type * as Program from "../../dsl/Program.ts"
import * as Shape from "../../dsl/Shape.ts"
import * as Step from "../../dsl/Step.ts"
import * as ExitsCheck from "./exits.ts"
import type * as Check from "./index.ts"
import * as LossCheck from "./loss.ts"

export interface StepContext extends LossCheck.LossContext {
  /** Adapters known from elsewhere (e.g. trained by another stage's loss); those of the step's own losses are always known. */
  readonly adapters?: readonly string[]
  /** The program's models, by name (a `Reinforce` step reads its network's loop costs). */
  readonly programModels?: Readonly<Record<string, Program.Model>>
}

export interface StepReport extends LossCheck.LossReport {
  /**
   * The number of parameters the step updates (what its `wrt` and `select` keep of models and adapters,
   * less a partition's frozen ones; a meta-step: its meta-parameters), summed over its leaf steps.
   */
  readonly trainedParams: number
}

/** The φ-reading terms of a loss, if they are all weighted norms: `undefined` otherwise. */
const weightedNorms = (l: Loss.Loss, phi: string): { model: string }[] | undefined => {
  switch (l._tag) {
    case "WeightedNorm":
      return l.phi === phi ? [{ model: l.model }] : []
    case "Sum": {
      const parts = l.terms.map((t) => weightedNorms(t, phi))
      return parts.some((p) => p === undefined) ? undefined : parts.flatMap((p) => p ?? [])
    }
    case "Scale":
      return weightedNorms(l.loss, phi)
    case "SquaredError":
    case "AbsoluteError":
    case "AttentionTransfer":
    case "Transfer":
    case "Uncertainty":
    case "Norm":
      return []
    default: {
      const _: never = l
      return _
    }
  }
}

/** Checks `step` against `ctx`; `path` prefixes error paths. */
export const checkStep = (step: Step.Step, ctx: StepContext, path = "step"): StepReport => {
  const errors: Check.ShapeError[] = []
  const adapters: Record<string, readonly Check.ParamSpec[]> = {}
  let macs = 0
  let trainedParams = 0
  const fail = (at: string, message: string) => errors.push({ _tag: "ShapeError", path: at, message })
  const loss = (l: Loss.Loss, at: string) => {
    const r = LossCheck.checkLoss(l, ctx, at)
    errors.push(...r.errors)
    Object.assign(adapters, r.adapters)
    macs += r.macs
  }
  const knownAdapters = new Set([...(ctx.adapters ?? []), ...leafLosses(step).flatMap(Loss.adapters)])
  const models = Object.keys(ctx.models)
  const go = (s: Step.Step, prefix: string): void => {
    switch (s._tag) {
      case "Minimize": {
        const at = `${prefix}minimize`
        loss(s.loss, `${at}/loss`)
        if (s.wrt.length === 0) fail(`${at}/wrt`, "trains nothing: wrt is empty")
        for (const name of s.wrt)
          if (ctx.models[name] === undefined && !knownAdapters.has(name))
            fail(
              `${at}/wrt`,
              `"${name}" is neither a model (${models.join(", ") || "none"}) nor an adapter of the step's losses`,
            )
        for (const name of Object.keys(s.select ?? {}))
          if (!s.wrt.includes(name))
            fail(`${at}/select/${name}`, `selects parameters of "${name}", which wrt does not name`)
        optimizer(s.optimizer, `${at}/optimizer`)
        // What the step trains: per group, the selected paths that no partition label freezes.
        let selected = 0
        for (const name of s.wrt) {
          const specs = ctx.models[name]?.params ?? adapters[name]
          if (specs === undefined) continue
          const kept = Step.trainedPaths(
            s,
            name,
            specs.map((p) => p.path),
          )
          if (s.select?.[name] !== undefined && kept.length === 0)
            fail(
              `${at}/select/${name}`,
              `the filter ${Params.describe(s.select[name]!)} selects none of the ${specs.length} parameters of "${name}"`,
            )
          selected += kept.length
          const updated = new Set(
            s.optimizer._tag === "Partition"
              ? kept.filter((p) => {
                  const o = s.optimizer as Optimizer.Partition
                  return o.optimizers[Optimizer.labelOf(o, p)]?._tag !== "Frozen"
                })
              : kept,
          )
          trainedParams += specs.reduce((a, p) => a + (updated.has(p.path) ? Shape.size(p.shape) : 0), 0)
        }
        if (selected > 0 && trainedParams === 0 && s.optimizer._tag === "Partition")
          fail(`${at}/optimizer`, "the partition freezes every parameter the step selects: it trains nothing")
        return
      }
      case "MetaMinimize": {
        const at = `${prefix}metaMinimize`
        loss(s.outer, `${at}/outer`)
        loss(s.inner.loss, `${at}/inner/loss`)
        optimizer(s.optimizer, `${at}/optimizer`)
        const phi = ctx.metaParams.find((p) => p.name === s.wrt)
        if (phi !== undefined)
          trainedParams += (ctx.models[phi.like]?.params ?? []).reduce((a, p) => a + Shape.size(p.shape), 0)
        if (phi === undefined)
          fail(
            `${at}/wrt`,
            `unknown meta-parameters "${s.wrt}" (declared: ${ctx.metaParams.map((p) => p.name).join(", ") || "none"})`,
          )
        else if (ctx.models[phi.like] === undefined)
          fail(
            `${at}/wrt`,
            `meta-parameters "${s.wrt}" are shaped like unknown model "${phi.like}" (models: ${models.join(", ") || "none"})`,
          )
        for (const name of s.inner.wrt)
          if (ctx.models[name] === undefined)
            fail(`${at}/inner/wrt`, `"${name}" is not a model (${models.join(", ") || "none"})`)
        if (s.inner.wrt.length === 0) fail(`${at}/inner/wrt`, "the inner steps train nothing: wrt is empty")
        if (!(Number.isInteger(s.inner.steps) && s.inner.steps >= 1))
          fail(`${at}/inner/steps`, `needs a positive integer number of inner steps, got ${s.inner.steps}`)
        if (!Number.isFinite(s.inner.rate))
          fail(`${at}/inner/rate`, `the inner rate must be finite, got ${s.inner.rate}`)
        if (!Loss.metaParams(s.inner.loss).includes(s.wrt) && !Loss.metaParams(s.outer).includes(s.wrt))
          fail(
            `${at}/inner/loss`,
            `neither the inner nor the outer loss reads "${s.wrt}": its meta-gradient would be zero`,
          )
        if (s.mode === "closed-form") {
          const terms = weightedNorms(s.inner.loss, s.wrt)
          if (s.inner.steps !== 1)
            fail(`${at}/mode`, `closed-form needs exactly 1 inner step, got ${s.inner.steps}`)
          if (terms === undefined || terms.length === 0)
            fail(
              `${at}/mode`,
              `closed-form needs the inner loss to read "${s.wrt}" only through weighted norms`,
            )
          else
            for (const t of terms)
              if (!s.inner.wrt.includes(t.model))
                fail(
                  `${at}/mode`,
                  `closed-form: the weighted norm of "${t.model}" is not over the inner step's models (${s.inner.wrt.join(", ")})`,
                )
        }
        return
      }
      case "Reinforce": {
        const at = `${prefix}reinforce`
        macs += ExitsCheck.checkReinforce(s, { ...ctx, programModels: ctx.programModels ?? {} }, at, fail)
        optimizer(s.optimizer, `${at}/optimizer`)
        trainedParams += (ctx.models[s.gate]?.params ?? []).reduce((a, p) => a + Shape.size(p.shape), 0)
        return
      }
      case "Together":
        if (s.steps.length === 0) fail(`${prefix}together`, "together of no steps")
        for (const [i, c] of s.steps.entries()) go(c, `${prefix}${i}/`)
        return
      default: {
        const _: never = s
        throw new Error(`unhandled step ${(_ as Step.Step)._tag}`)
      }
    }
  }
  /** A partition names an optimizer for every label its rules (and `otherwise`) give. */
  const optimizer = (o: Optimizer.Optimizer, at: string): void => {
    if (o._tag !== "Partition") return
    const known = Object.keys(o.optimizers)
    const check = (label: string, where: string) => {
      if (o.optimizers[label] === undefined)
        fail(`${at}/${where}`, `label "${label}" has no optimizer (labels: ${known.join(", ") || "none"})`)
    }
    for (const [i, r] of o.rules.entries()) check(r.label, `rules/${i}`)
    check(o.otherwise, "otherwise")
  }
  go(step, `${path}/`)
  return { errors, adapters, macs, trainedParams }
}

const leafLosses = (s: Step.Step): Loss.Loss[] => Step.losses(s)

/**
 * The cmkg column of the bench: each workload is a stage of a built-in
 * program, and one bench step is `StepRun.run(stage.step, world, batch, ctx)`,
 * the call `cmkg run` makes for every batch (src/interpreters/tf/experiment.ts),
 * on a world built as the runner builds it (`Init.init` per model with the
 * run's seed, φ filled with its `metaParam` initial value).
 *
 * - `tiny-64-train`, `resnet18-128-train`: cmkd-rhd's "rgb baseline (L_REG fine-tuning)" stage
 *   (L_REG, Adam 2.5e-4, batch norm in training mode) at scale `paper`, its
 *   model's network replaced by the workload's (zoo's smallResNet for tiny-64);
 * - `cmkd-resnet18-128`: cmkd-rhd's main-row fine-tuning stage (L_REG + L_ACT +
 *   1e3·L_ATT against the frozen depth teacher, Adam 2.5e-4) at scale `paper`;
 * - `cmkg-meta-resnet18-128`: cmkg-stb's meta-train stage for R in its ℓ2 form
 *   (Eq. 10) at scale `paper`: `Step.together(Step.metaMinimize(exact, l = 1,
 *   SGD β = 1e-3 on φ), Step.minimize(G, plain SGD α))` (Algorithm 1's line 8).
 *
 * The programs' models are declared at the paper's 256×256; the bench feeds
 * the workload's image size (their parameters do not depend on it). Inputs are
 * random normal images, targets random normal `joints3d`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core"
import type * as Experiment from "../src/dsl/Experiment.ts"
import * as Loss from "../src/dsl/Loss.ts"
import * as Program from "../src/dsl/Program.ts"
import * as Step from "../src/dsl/Step.ts"
import * as Zoo from "../src/dsl/zoo.ts"
import { init } from "../src/interpreters/tf/index.ts"
import * as StepRun from "../src/interpreters/tf/step.ts"
import cmkdRhd from "../src/programs/cmkd-rhd.ts"
import cmkgStb from "../src/programs/cmkg-stb.ts"

/** A workload's DSL side: one step as `cmkg run` runs it, and its world. */
export interface DslWorkload {
  /** One `StepRun.run` on the bench's batch; returns the step's losses. */
  readonly step: () => Readonly<Record<string, number>>
  /** The current world (owned by the workload; valid until the next step). */
  readonly world: () => StepRun.World
  readonly dispose: () => void
}

/** A program's train stage, with what running its step needs. */
export interface Stage {
  readonly program: Program.Program<Experiment.Experiment>
  readonly stage: Experiment.Train
}

/** The train stage named `name` of a built-in program at `scale` (fails naming the stages there are). */
export const stageOf = (
  family: Program.Family<Experiment.Experiment>,
  scale: Program.Scale,
  name: string,
): Stage => {
  const program = Program.resolve(family, { scale, data: {} })
  const e = program.experiment ?? fail(`program ${program.name} has no experiment`)
  const trains = e.stages.filter((s): s is Experiment.Train => s._tag === "Train")
  const stage =
    trains.find((s) => s.name === name) ??
    fail(`${program.name}: no train stage "${name}" (stages: ${trains.map((s) => s.name).join(", ")})`)
  return { program, stage }
}

const fail = (message: string): never => {
  throw new Error(message)
}

/** The stage whose step a workload times. */
export const STAGES = {
  train: { family: cmkdRhd, name: "rgb baseline (L_REG fine-tuning)" },
  cmkd: {
    family: cmkdRhd,
    name: "fine-tune: KD student (L_ACT + L_ATT, sum, paper L_ATT, λ = 1e3) — main row",
  },
  meta: { family: cmkgStb, name: "meta-train φ (R (ℓ2 form, Eq. 10))" },
} as const

export interface Options {
  readonly stage: Stage
  readonly imageSize: number
  readonly batch: number
  /** The run's seed (`cmkg run --first-seed`): parameters are `Init.init(net, input, seed)`. */
  readonly seed?: number
  /** Replaces the networks of these models (the workload's network where it is not the program's). */
  readonly nets?: Readonly<Record<string, Program.Model["net"]>>
  /** The batch to step on (default: random normal inputs and targets of the stage's fields). */
  readonly data?: StepRun.Batch
}

/** The models the step's losses read or update (as the runner's `modelsOf`), redeclared at the bench's image size. */
const modelsAt = (o: Options): Record<string, Program.Model> => {
  const used = new Set(Step.losses(o.stage.stage.step).flatMap(Loss.models))
  const out: Record<string, Program.Model> = {}
  for (const m of o.stage.program.models) {
    if (!used.has(m.name)) continue
    const channels = m.input[m.input.length - 1] ?? fail(`model ${m.name} has a rank-0 input`)
    out[m.name] = Program.model(m.name, o.nets?.[m.name] ?? m.net, [o.imageSize, o.imageSize, channels])
  }
  return out
}

/** The DSL side of a workload: the stage's step on a fresh world and a fixed batch. */
export const dslWorkload = (o: Options): DslWorkload => {
  const e = o.stage.program.experiment!
  const models = modelsAt(o)
  const seed = o.seed ?? 1
  const ctx: StepRun.Context = { models, feeds: e.feeds }
  let world: StepRun.World = { params: {}, state: {}, meta: {}, opt: {} }
  for (const m of Object.values(models)) {
    const { params, state } = init(m.net, m.input, seed)
    world = {
      ...world,
      params: { ...world.params, [m.name]: params },
      state: { ...world.state, [m.name]: state },
    }
  }
  for (const m of e.metaParams) {
    const like = world.params[m.like]
    if (like === undefined) continue
    world = {
      ...world,
      meta: {
        ...world.meta,
        [m.name]: Object.fromEntries(Object.entries(like).map(([k, v]) => [k, tf.fill(v.shape, m.init)])),
      },
    }
  }
  const batch: StepRun.Batch = o.data ?? randomBatch(models, e.feeds, o.batch)
  const owned = o.data === undefined
  // Adapters the losses use (none in these stages), as the runner prepares them.
  const fields = Object.fromEntries(Object.entries(batch).map(([f, t]) => [f, t!.shape.slice(1)]))
  world = StepRun.prepare(o.stage.stage.step, world, ctx, seed, fields)
  return {
    step: () => {
      const r = StepRun.run(o.stage.stage.step, world, batch, ctx)
      world = r.world
      return r.losses
    },
    world: () => world,
    dispose: () => {
      disposeWorld(world)
      if (owned) for (const t of Object.values(batch)) t?.dispose()
    },
  }
}

/** Random normal inputs for every fed model and random normal [B, 63] targets. */
const randomBatch = (
  models: Readonly<Record<string, Program.Model>>,
  feeds: Readonly<Record<string, Loss.Field>>,
  b: number,
): StepRun.Batch => {
  const out: Partial<Record<Loss.Field, tf.Tensor>> = {
    joints3d: tf.randomNormal([b, 63], 0, 1, "float32", 7),
  }
  for (const m of Object.values(models)) {
    const field = feeds[m.name] ?? fail(`model ${m.name} has no feed`)
    out[field] ??= tf.randomNormal([b, ...m.input], 0, 1, "float32", 11)
  }
  return out
}

const disposeWorld = (w: StepRun.World): void => {
  const trees = [...Object.values(w.params), ...Object.values(w.state), ...Object.values(w.meta)]
  for (const t of trees) for (const v of Object.values(t)) v.dispose()
  for (const s of Object.values(w.opt))
    for (const slot of s.slots)
      for (const tree of Object.values(slot)) for (const v of Object.values(tree)) v.dispose()
}

/** The four workloads of workloads.md, DSL side (`scale` chooses the programs' networks: `paper` is ResNet-18). */
export const WORKLOADS = {
  "tiny-64-train": {
    batch: 64,
    imageSize: 64,
    dsl: (o: { batch?: number; imageSize?: number; seed?: number } = {}) =>
      dslWorkload({
        stage: stageOf(STAGES.train.family, "paper", STAGES.train.name),
        imageSize: o.imageSize ?? 64,
        batch: o.batch ?? 64,
        ...(o.seed === undefined ? {} : { seed: o.seed }),
        nets: { "rgb-baseline": Zoo.smallResNet({ outputs: 63 }) },
      }),
  },
  "resnet18-128-train": {
    batch: 32,
    imageSize: 128,
    dsl: (o: { batch?: number; imageSize?: number; seed?: number } = {}) =>
      dslWorkload({
        stage: stageOf(STAGES.train.family, "paper", STAGES.train.name),
        imageSize: o.imageSize ?? 128,
        batch: o.batch ?? 32,
        ...(o.seed === undefined ? {} : { seed: o.seed }),
      }),
  },
  "cmkd-resnet18-128": {
    batch: 32,
    imageSize: 128,
    dsl: (o: { batch?: number; imageSize?: number; seed?: number } = {}) =>
      dslWorkload({
        stage: stageOf(STAGES.cmkd.family, "paper", STAGES.cmkd.name),
        imageSize: o.imageSize ?? 128,
        batch: o.batch ?? 32,
        ...(o.seed === undefined ? {} : { seed: o.seed }),
      }),
  },
  "cmkg-meta-resnet18-128": {
    batch: 16,
    imageSize: 128,
    dsl: (o: { batch?: number; imageSize?: number; seed?: number; scale?: Program.Scale } = {}) =>
      metaWorkload({
        scale: o.scale ?? "paper",
        imageSize: o.imageSize ?? 128,
        batch: o.batch ?? 16,
        ...(o.seed === undefined ? {} : { seed: o.seed }),
      }),
  },
} as const

export type WorkloadName = keyof typeof WORKLOADS
export const WORKLOAD_NAMES = Object.keys(WORKLOADS) as WorkloadName[]

/**
 * CMKG's Algorithm 1 step as cmkg-stb runs it (its ℓ2 meta-train stage), at
 * `scale`'s networks (`tiny`: the small backbone, for tests and the leak check).
 */
export const metaWorkload = (o: {
  readonly scale: Program.Scale
  readonly imageSize: number
  readonly batch: number
  readonly seed?: number
  readonly data?: StepRun.Batch
}): DslWorkload =>
  dslWorkload({
    stage: stageOf(STAGES.meta.family, o.scale, STAGES.meta.name),
    imageSize: o.imageSize,
    batch: o.batch,
    ...(o.seed === undefined ? {} : { seed: o.seed }),
    ...(o.data === undefined ? {} : { data: o.data }),
  })

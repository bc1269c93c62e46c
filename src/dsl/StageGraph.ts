/**
 * The stage graph of a staged experiment: which stage needs which, derived
 * from the program value alone, so that independent stages (the rows of a
 * table, the seeds) can run in parallel and a stage can start as soon as what
 * it reads is done.
 *
 * **What a stage touches.** The runner (`interpreters/tf/experiment.ts`)
 * keeps one world per seed: parameter trees by name (models and adapters
 * share that namespace; a model's batch-norm running statistics travel with
 * its parameters) and meta-parameters φ by name. A {@link Resource} is one
 * entry of it. A stage's {@link Access}:
 * - `Train` applies its `init` entries in order, then runs its step.
 *   `Scratch` (re)initialises the model: a write. `Copy from` reads `from`
 *   and writes the model. `Keep` continues from the model's current
 *   parameters: a read of whatever the model's last writer left.
 *   The step reads every model its losses read (`Loss.models`: outputs, taps,
 *   norms), every adapter they own (`Loss.adapters`), every φ they use
 *   (`Loss.metaParams`), a meta-step's inner models, and whatever it updates
 *   (an update starts from the current value: a model trained without an
 *   `init` entry continues as under `Keep`); it writes what it updates (`Minimize` its `wrt`, models
 *   and adapters; `MetaMinimize` its φ) and, under batch-norm policy
 *   `"train"`, the running statistics of the models a `Minimize` trains and
 *   its loss applies. A read of something the stage's own `init` already
 *   overwrote is internal to the stage, not a read of an earlier stage.
 * - `Evaluate` reads its model and writes nothing (its row and saved model
 *   are files of its own, not world state); `EvaluateExits` also reads the
 *   gate its policy samples exits from. A `Reinforce` step reads the frozen
 *   network whose exits its gate learns, and updates the gate.
 * Nothing else carries over between stages: optimizer state starts afresh in
 * every stage, batch order is keyed by (seed, data) and fresh parameters,
 * adapters and φ are functions of (program, seed), so a read with no earlier
 * writer reads that initial value and needs no stage.
 *
 * **Dependencies.** For stages i < j in program order and a resource r:
 * - read after write: j reads r and i is r's last writer before j — j reads
 *   i's result (the only true data dependency);
 * - write after read: j writes r and i read the value j overwrites — i must
 *   read before j overwrites;
 * - write after write: j writes r and i is r's last writer before j (without
 *   j reading it) — the later write must win.
 * The two hazards matter only when stages share one mutable world (as
 * `cmkg run` does, {@link Storage} `"shared"`); an engine that keeps each
 * stage's writes as its own version (per-stage checkpoints) and hands every
 * stage the versions its {@link Input}s name needs the read-after-write edges
 * alone (`"per-stage"`). The difference is large where rows reuse one model
 * name: cmkg-stb trains every target row as "target-student" from scratch,
 * so in one world each row waits for the previous row's evaluations, while
 * with per-stage versions the rows are independent. Either way every stage sees the same inputs as in the
 * sequential run (`laws/stage-graph`): with all three kinds, every
 * topological order of the graph gives each read the same last writer as the
 * program order, and two stages are ordered exactly when a chain of
 * conflicting stages connects them (no needless edge).
 *
 * **Seeds** share nothing: a sweep is seeds × stages nodes, each seed a copy
 * of the graph ({@link sweep}).
 *
 * **Cost.** {@link criticalPath} takes a cost per stage (MACs, from the shape
 * checker's `stage-graph.ts`) and finds the costliest chain; its share of the
 * total bounds what parallel workers can gain on one seed (total ÷ path).
 *
 * @module
 */
import type * as Experiment from "./Experiment.ts"
import * as Loss from "./Loss.ts"
import * as Step from "./Step.ts"

// ---- what a stage touches ---------------------------------------------------------------

/** Where a resource lives in the world: parameter trees (models, adapters) or meta-parameters φ. */
export type Space = "params" | "meta"

/** One entry of the world: a model's or adapter's parameters (with batch-norm state), or a φ. */
export interface Resource {
  readonly space: Space
  readonly name: string
}

/** A resource's identity, e.g. `params/teacher`, `meta/phi-l2`. */
export const key = (r: Resource): string => `${r.space}/${r.name}`

const params = (name: string): Resource => ({ space: "params", name })
const meta = (name: string): Resource => ({ space: "meta", name })

/** What one stage reads of earlier stages' results and what it leaves changed. */
export interface Access {
  /** Resources read as the earlier stages left them (not those the stage itself overwrote first). */
  readonly reads: readonly Resource[]
  readonly writes: readonly Resource[]
}

/** A step's parameter groups updated, each in its space (`Step.updates` without spaces). */
const updated = (s: Step.Step): Resource[] => {
  switch (s._tag) {
    case "Minimize":
      return s.wrt.map(params)
    case "MetaMinimize":
      return [meta(s.wrt)]
    case "Reinforce":
      return [params(s.gate)]
    case "Together":
      return s.steps.flatMap(updated)
    default: {
      const unhandled: never = s
      throw new Error(`unknown step ${(unhandled as { _tag: string })._tag}`)
    }
  }
}

/** Models whose outputs or taps a loss applies (norms read parameters, not batch-norm statistics). */
const applied = (l: Loss.Loss): string[] => {
  const of = (s: Loss.Signal): string[] =>
    s._tag === "Output" || s._tag === "Tap" ? [s.model] : s._tag === "Slice" ? of(s.signal) : []
  return Loss.signals(l).flatMap(of)
}

/**
 * Models whose batch-norm running statistics a step rewrites: those a
 * `Minimize` with policy `"train"` trains and its loss applies (meta-steps
 * never run batch norm in training mode; frozen models run in eval mode).
 */
export const batchNormWrites = (s: Step.Step): string[] => {
  switch (s._tag) {
    case "Minimize":
      return s.batchNorm === "train" ? s.wrt.filter((m) => applied(s.loss).includes(m)) : []
    case "MetaMinimize":
    case "Reinforce": // the network it gates runs frozen, in eval mode
      return []
    case "Together":
      return s.steps.flatMap(batchNormWrites)
    default: {
      const unhandled: never = s
      throw new Error(`unknown step ${(unhandled as { _tag: string })._tag}`)
    }
  }
}

/** The parameter groups a step reads: its losses' models, adapters and φ, and everything it updates. */
const stepReads = (s: Step.Step): Resource[] => {
  const losses = Step.losses(s)
  return [
    ...losses.flatMap(Loss.models).map(params),
    ...losses.flatMap(Loss.adapters).map(params),
    ...losses.flatMap(Loss.metaParams).map(meta),
    ...innerModels(s).map(params),
    ...gatedNetworks(s).map(params),
    ...updated(s),
  ]
}

/** The frozen looped networks whose exits a REINFORCE step's gate learns (read: its rewards come from them). */
const gatedNetworks = (s: Step.Step): string[] =>
  s._tag === "Reinforce" ? [s.network] : s._tag === "Together" ? s.steps.flatMap(gatedNetworks) : []

/** The models a meta-step's inner steps differentiate through (read: θ̈ starts from them). */
const innerModels = (s: Step.Step): string[] =>
  s._tag === "MetaMinimize" ? [...s.inner.wrt] : s._tag === "Together" ? s.steps.flatMap(innerModels) : []

const dedup = (rs: readonly Resource[]): Resource[] => [...new Map(rs.map((r) => [key(r), r])).values()]

/** What `stage` reads of earlier stages and what it writes (see the module comment). */
export const access = (stage: Experiment.Stage): Access => {
  if (stage._tag === "Evaluate") return { reads: [params(stage.model)], writes: [] }
  if (stage._tag === "EvaluateExits")
    return {
      reads: [params(stage.model), ...(stage.policy._tag === "Gate" ? [params(stage.policy.gate)] : [])],
      writes: [],
    }
  const reads: Resource[] = []
  const writes: Resource[] = []
  // Reads of what the stage itself already overwrote see its own value, not an earlier stage's.
  const overwritten = new Set<string>()
  const read = (r: Resource) => {
    if (!overwritten.has(key(r))) reads.push(r)
  }
  const write = (r: Resource) => {
    writes.push(r)
    overwritten.add(key(r))
  }
  // In the order the runner applies them (Object.entries).
  for (const [name, init] of Object.entries(stage.init)) {
    switch (init._tag) {
      case "Keep":
        read(params(name))
        break
      case "Scratch":
        write(params(name))
        break
      case "Copy":
        read(params(init.from))
        write(params(name))
        break
      default: {
        const unhandled: never = init
        throw new Error(`unknown init ${(unhandled as { _tag: string })._tag}`)
      }
    }
  }
  for (const r of stepReads(stage.step)) read(r)
  for (const r of [...updated(stage.step), ...batchNormWrites(stage.step).map(params)]) write(r)
  return { reads: dedup(reads), writes: dedup(writes) }
}

// ---- the graph --------------------------------------------------------------------------

export type Dependency = "read-after-write" | "write-after-read" | "write-after-write"

/** Stage `to` must wait for stage `from` (indices in program order, from < to) because of `resource`. */
export interface Edge {
  readonly from: number
  readonly to: number
  readonly kind: Dependency
  readonly resource: Resource
}

/** One read of a stage and the stage whose result it reads (`undefined`: the initial value). */
export interface Input {
  readonly resource: Resource
  readonly writer: number | undefined
}

export interface Graph {
  /** The experiment's stages, in program order; nodes are their indices. */
  readonly stages: readonly Experiment.Stage[]
  readonly access: readonly Access[]
  /** Per stage, the last writer (in program order) of each resource it reads. */
  readonly inputs: readonly (readonly Input[])[]
  /** Every dependency, each with its kind and resource (a pair may have several). */
  readonly edges: readonly Edge[]
}

/** How stages keep their results, which decides the edges a schedule must respect. */
export type Storage =
  /** One mutable world per seed, as `cmkg run` keeps it: all three kinds of dependency. */
  | "shared"
  /** Each stage's writes kept as their own version and handed to its readers: read-after-write only. */
  | "per-stage"

/** The stage graph of an experiment (one seed). */
export const graph = (e: Experiment.Experiment): Graph => {
  const accesses = e.stages.map(access)
  const lastWriter = new Map<string, number>()
  // The stages that read each resource's current value (since its last write).
  const readers = new Map<string, number[]>()
  const edges: Edge[] = []
  const inputs = accesses.map((a, j) => {
    const mine = a.reads.map((resource) => {
      const writer = lastWriter.get(key(resource))
      if (writer !== undefined) edges.push({ from: writer, to: j, kind: "read-after-write", resource })
      return { resource, writer }
    })
    const readKeys = new Set(a.reads.map(key))
    for (const resource of a.writes) {
      const k = key(resource)
      const writer = lastWriter.get(k)
      // When j also reads r, its read-after-write edge already orders the two writes.
      if (writer !== undefined && !readKeys.has(k))
        edges.push({ from: writer, to: j, kind: "write-after-write", resource })
      for (const reader of readers.get(k) ?? [])
        edges.push({ from: reader, to: j, kind: "write-after-read", resource })
    }
    for (const r of a.reads) readers.set(key(r), [...(readers.get(key(r)) ?? []), j])
    for (const r of a.writes) {
      lastWriter.set(key(r), j)
      readers.set(key(r), [])
    }
    return mine
  })
  return { stages: e.stages, access: accesses, inputs, edges }
}

/** The edges a schedule under `storage` must respect. */
export const edgesFor = (g: Graph, storage: Storage): readonly Edge[] =>
  storage === "shared" ? g.edges : g.edges.filter((x) => x.kind === "read-after-write")

/** Per stage, the stages it waits for directly (ascending, each once). */
export const needs = (g: Graph, storage: Storage): readonly (readonly number[])[] => {
  const out = g.stages.map(() => new Set<number>())
  for (const x of edgesFor(g, storage)) out[x.to]!.add(x.from)
  return out.map((s) => [...s].sort((a, b) => a - b))
}

// ---- cost --------------------------------------------------------------------------------

export interface CriticalPath {
  /** The costliest chain of stages, in order. */
  readonly stages: readonly number[]
  readonly cost: number
  /** The cost of every stage: what one worker runs. */
  readonly total: number
}

/**
 * The costliest chain of dependent stages under `storage`, with `cost[i]` the
 * cost of stage i: no schedule on any number of workers finishes one seed
 * sooner, so total ÷ path cost is the best speed-up parallel workers can give.
 */
export const criticalPath = (g: Graph, cost: readonly number[], storage: Storage): CriticalPath => {
  const preds = needs(g, storage)
  // Edges point forward in program order, so one pass in that order is a topological sweep.
  const best: number[] = []
  const via: (number | undefined)[] = []
  g.stages.forEach((_, j) => {
    let from: number | undefined
    for (const i of preds[j]!) if (from === undefined || best[i]! > best[from]!) from = i
    best.push((cost[j] ?? 0) + (from === undefined ? 0 : best[from]!))
    via.push(from)
  })
  let end: number | undefined
  best.forEach((c, j) => {
    if (end === undefined || c > best[end]!) end = j
  })
  const stages: number[] = []
  for (let j = end; j !== undefined; j = via[j]) stages.unshift(j)
  return {
    stages,
    cost: end === undefined ? 0 : best[end]!,
    total: g.stages.reduce((a, _, j) => a + (cost[j] ?? 0), 0),
  }
}

// ---- seeds -------------------------------------------------------------------------------

/** One stage of one seed in a sweep. */
export interface SweepNode {
  /** `seed/stage index`, unique within the sweep. */
  readonly id: string
  readonly seed: number
  readonly stage: number
  /** Ids of the nodes it waits for: the same stages of the same seed. */
  readonly needs: readonly string[]
}

const nodeId = (seed: number, stage: number) => `${seed}/${stage}`

/** A sweep over `seeds`: each seed a copy of the graph, no edge between seeds. */
export const sweep = (g: Graph, seeds: readonly number[], storage: Storage): SweepNode[] => {
  const preds = needs(g, storage)
  return seeds.flatMap((seed) =>
    g.stages.map((_, stage) => ({
      id: nodeId(seed, stage),
      seed,
      stage,
      needs: preds[stage]!.map((i) => nodeId(seed, i)),
    })),
  )
}

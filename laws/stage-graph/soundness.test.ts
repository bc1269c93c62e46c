/**
 * Laws of the stage graph (`dsl/StageGraph.ts`) on generated experiments
 * (stages over a few models, an adapter and two φ, with every init form,
 * every step form and batch-norm policy, losses reading models, taps, norms,
 * adapters and φ):
 * - sound in one shared world: in every topological order of the graph, every
 *   stage reads the same values as in the program order (and the world ends
 *   the same);
 * - sound with per-stage versions: in every topological order of the
 *   read-after-write edges, a stage handed the versions its inputs name reads
 *   the same values as in the program order;
 * - not needlessly sequential: two stages are ordered exactly when a chain of
 *   conflicting stages (one writes what the other reads or writes) connects
 *   them in program order, so stages that share nothing run side by side.
 * "Reads the same values" is judged by a symbolic run of the experiment
 * written from the tf runner (`interpreters/tf/experiment.ts`, `step.ts`),
 * not from the graph: every value is a token naming the stage that computed
 * it and the tokens it was computed from, so a stage that read anything
 * else — another stage's result, or an initial value instead of a result —
 * reads different tokens.
 */
import assert from "node:assert/strict"
import { test } from "node:test"
import fc from "fast-check"
import * as Data from "../../src/dsl/Data.ts"
import * as Experiment from "../../src/dsl/Experiment.ts"
import * as Loss from "../../src/dsl/Loss.ts"
import * as Optimizer from "../../src/dsl/Optimizer.ts"
import * as StageGraph from "../../src/dsl/StageGraph.ts"
import type * as Step from "../../src/dsl/Step.ts"
import { runs } from "../arbitraries/Runs.ts"

// ---- generated experiments ----------------------------------------------------------------

const MODELS = ["a", "b", "c", "d"] as const
const ADAPTER = "t"
const PHIS = ["p", "q"] as const
const data = Data.synthetic({ domain: "rhd", count: 16, imageSize: 8 })
const sgd = Optimizer.sgd({ lr: 0.1 })

const model = fc.constantFrom(...MODELS)
const signal: fc.Arbitrary<Loss.Signal> = fc.oneof(
  model.map((m) => ({ _tag: "Output", model: m }) as const),
  model.map((m) => ({ _tag: "Tap", model: m, tap: "x" }) as const),
  model.map((m) => Loss.slice({ _tag: "Output", model: m }, 0, 1)),
  fc.constant(Loss.field("joints3d")),
)
const term: fc.Arbitrary<Loss.Loss> = fc.oneof(
  fc.tuple(signal, signal).map(([p, t]) => Loss.squaredError(p, t)),
  fc
    .tuple(signal, signal, fc.boolean())
    .map(([s, t, adapted]) => Loss.transfer(s, t, adapted ? ADAPTER : undefined)),
  fc
    .tuple(model, fc.constantFrom(...PHIS))
    .map(([m, phi]) => ({ _tag: "WeightedNorm", model: m, phi, p: 2 }) as const),
  model.map((m) => ({ _tag: "Norm", model: m, sigma: 1e-3, p: 1 }) as const),
)
const loss: fc.Arbitrary<Loss.Loss> = fc
  .array(term, { minLength: 1, maxLength: 3 })
  .map((ts) => (ts.length === 1 ? ts[0]! : Loss.scale(0.5, Loss.sum(...ts))))
const policy = fc.constantFrom<Step.BatchNormPolicy>("train", "batch-stats", "running")
const names = (min: number) =>
  fc.uniqueArray(fc.constantFrom<string>(...MODELS, ADAPTER), { minLength: min, maxLength: 3 })
const minimize: fc.Arbitrary<Step.Step> = fc
  .tuple(loss, names(1), policy)
  .map(([l, wrt, batchNorm]) => ({ _tag: "Minimize", loss: l, wrt, optimizer: sgd, batchNorm }))
const metaMinimize: fc.Arbitrary<Step.Step> = fc
  .tuple(loss, loss, fc.uniqueArray(model, { minLength: 1, maxLength: 2 }), fc.constantFrom(...PHIS), policy)
  .map(([outer, inner, wrt, phi, batchNorm]) => ({
    _tag: "MetaMinimize",
    outer,
    inner: { _tag: "Inner", loss: inner, wrt, rate: 0.1, steps: 1, batchNorm },
    wrt: phi,
    optimizer: sgd,
    mode: "exact",
    batchNorm,
  }))
const step: fc.Arbitrary<Step.Step> = fc.oneof(
  minimize,
  metaMinimize,
  fc
    .array(fc.oneof(minimize, metaMinimize), { minLength: 1, maxLength: 2 })
    .map((steps): Step.Step => ({ _tag: "Together", steps })),
)
const init: fc.Arbitrary<Experiment.Init> = fc.oneof(
  fc.constant(Experiment.keep),
  fc.constant(Experiment.scratch),
  model.map((from) => ({ _tag: "Copy", from }) as const),
)
const stage: fc.Arbitrary<Experiment.Stage> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc
      .tuple(step, fc.uniqueArray(fc.tuple(model, init), { maxLength: 3, selector: ([m]) => m }))
      .map(([s, inits]) =>
        Experiment.train({
          name: "t",
          data,
          epochs: 1,
          batchSize: 4,
          step: s,
          init: Object.fromEntries(inits),
        }),
      ),
  },
  {
    weight: 1,
    arbitrary: model.map(
      (m) =>
        ({
          _tag: "Evaluate",
          name: "e",
          model: m,
          data,
          table: "T",
          row: m,
          column: "c",
        }) as const,
    ),
  },
)
/** An experiment and a priority per stage (a random tie-break for topological orders). */
const experimentWithPriorities = fc
  .array(stage, { minLength: 1, maxLength: 9 })
  .chain((stages) =>
    fc.tuple(
      fc.constant(
        Experiment.experiment({ feeds: {}, stages: stages.map((s, i) => ({ ...s, name: `${s.name}${i}` })) }),
      ),
      fc.array(fc.nat(), { minLength: stages.length, maxLength: stages.length }),
    ),
  )

// ---- the symbolic run ---------------------------------------------------------------------

/** Interned tokens: a value is the id of the text that says how it was computed. */
class Tokens {
  private readonly ids = new Map<string, number>()
  of(text: string): number {
    const known = this.ids.get(text)
    if (known !== undefined) return known
    const id = this.ids.size
    this.ids.set(text, id)
    return id
  }
}

type World = Map<string, number>

/** What one stage read (every token it looked at, in order) and what it wrote. */
interface Observation {
  readonly read: string
  readonly wrote: ReadonlyMap<string, number>
}

const modelsOf = (l: Loss.Loss): string[] => {
  const of = (s: Loss.Signal): string[] =>
    s._tag === "Output" || s._tag === "Tap" ? [s.model] : s._tag === "Slice" ? of(s.signal) : []
  switch (l._tag) {
    case "SquaredError":
    case "AbsoluteError":
      return [...of(l.prediction), ...of(l.target)]
    case "Transfer":
      return [...of(l.student), ...of(l.teacher), ...(l.adapter === undefined ? [] : [l.adapter])]
    case "AttentionTransfer":
      return l.pairs.flatMap(([s, t]) => [...of(s), ...of(t)])
    case "Uncertainty":
      return [...of(l.prediction), ...of(l.target), ...of(l.logVariance)]
    case "WeightedNorm":
    case "Norm":
      return [l.model]
    case "Sum":
      return l.terms.flatMap(modelsOf)
    case "Scale":
      return modelsOf(l.loss)
  }
}
const phisOf = (l: Loss.Loss): string[] =>
  l._tag === "WeightedNorm"
    ? [l.phi]
    : l._tag === "Sum"
      ? l.terms.flatMap(phisOf)
      : l._tag === "Scale"
        ? phisOf(l.loss)
        : []

/**
 * One stage on `world` (left unchanged), as the tf runner runs it: init entries
 * in order (Keep continues, or starts fresh; Scratch starts fresh; Copy copies),
 * then every leaf step computed from the same starting world (Together) and
 * their updates applied; an evaluation reads its model.
 */
const runStage = (stage: Experiment.Stage, j: number, world: World, tokens: Tokens): Observation => {
  const local = new Map(world)
  const looked: string[] = []
  const get = (k: string): number => {
    const v = local.get(k) ?? tokens.of(`initial ${k}`)
    looked.push(`${k}=${v}`)
    return v
  }
  const wrote = new Map<string, number>()
  const set = (k: string, v: number) => {
    local.set(k, v)
    wrote.set(k, v)
  }
  if (stage._tag === "Evaluate" || stage._tag === "EvaluateExits") {
    get(`params/${stage.model}`)
    if (stage._tag === "EvaluateExits" && stage.policy._tag === "Gate") get(`params/${stage.policy.gate}`)
    return { read: looked.join(" "), wrote }
  }
  for (const [name, i] of Object.entries(stage.init)) {
    const k = `params/${name}`
    if (i._tag === "Keep") set(k, get(k))
    else if (i._tag === "Scratch") set(k, tokens.of(`fresh ${k} in stage ${j}`))
    else set(k, tokens.of(`copy of ${get(`params/${i.from}`)} in stage ${j}`))
  }
  const leaves = (s: Step.Step): Step.Step[] => (s._tag === "Together" ? s.steps.flatMap(leaves) : [s])
  const updates: [string, number][] = []
  for (const leaf of leaves(stage.step)) {
    if (leaf._tag === "Minimize") {
      const inputs = [...modelsOf(leaf.loss), ...leaf.wrt].map((m) => get(`params/${m}`))
      const phis = phisOf(leaf.loss).map((p) => get(`meta/${p}`))
      const value = (k: string) => tokens.of(`stage ${j} updates ${k} from ${inputs} ${phis}`)
      for (const m of leaf.wrt) updates.push([`params/${m}`, value(`params/${m}`)])
    } else if (leaf._tag === "MetaMinimize") {
      const losses = [leaf.outer, leaf.inner.loss]
      const inputs = [...losses.flatMap(modelsOf), ...leaf.inner.wrt].map((m) => get(`params/${m}`))
      const phis = [...losses.flatMap(phisOf), leaf.wrt].map((p) => get(`meta/${p}`))
      updates.push([`meta/${leaf.wrt}`, tokens.of(`stage ${j} updates φ ${leaf.wrt} from ${inputs} ${phis}`)])
    }
  }
  // Updates of one name by several leaves add up (Together): the result depends on all of them.
  for (const k of new Set(updates.map(([x]) => x)))
    set(
      k,
      tokens.of(
        updates
          .filter(([x]) => x === k)
          .map(([, v]) => v)
          .join("+"),
      ),
    )
  return { read: looked.join(" "), wrote }
}

/** Runs the stages in `order` on one shared world: what each stage observed, and the final world. */
const runShared = (e: Experiment.Experiment, order: readonly number[], tokens: Tokens) => {
  const world: World = new Map()
  const seen: Observation[] = []
  for (const j of order) {
    const o = runStage(e.stages[j]!, j, world, tokens)
    for (const [k, v] of o.wrote) world.set(k, v)
    seen[j] = o
  }
  return { seen, world }
}

/** Runs the stages in `order`, each on the versions the graph says it reads (per-stage storage). */
const runVersioned = (
  e: Experiment.Experiment,
  g: StageGraph.Graph,
  order: readonly number[],
  tokens: Tokens,
) => {
  const seen: Observation[] = []
  for (const j of order) {
    const world: World = new Map()
    for (const { resource, writer } of g.inputs[j]!) {
      const k = StageGraph.key(resource)
      if (writer === undefined) continue
      const o = seen[writer]
      assert.ok(o !== undefined, `stage ${j} ran before the stage ${writer} it reads`)
      const v = o.wrote.get(k)
      assert.ok(v !== undefined, `stage ${writer} never wrote ${k}, which stage ${j} reads from it`)
      world.set(k, v)
    }
    seen[j] = runStage(e.stages[j]!, j, world, tokens)
  }
  return seen
}

/** A topological order of `needs`, ties broken by `priority` (so every order can come out). */
const topological = (needs: readonly (readonly number[])[], priority: readonly number[]): number[] => {
  const done = new Set<number>()
  const order: number[] = []
  while (order.length < needs.length) {
    const ready = needs.map((_, j) => j).filter((j) => !done.has(j) && needs[j]!.every((i) => done.has(i)))
    assert.ok(ready.length > 0, "the graph has a cycle")
    const next = ready.reduce((x, y) => (priority[y]! < priority[x]! ? y : x))
    done.add(next)
    order.push(next)
  }
  return order
}

const inProgramOrder = (e: Experiment.Experiment) => e.stages.map((_, j) => j)

// ---- laws ---------------------------------------------------------------------------------

test("law: in one shared world every topological order of the graph reads what the program order reads", () => {
  fc.assert(
    fc.property(experimentWithPriorities, ([e, priority]) => {
      const g = StageGraph.graph(e)
      const tokens = new Tokens()
      const expected = runShared(e, inProgramOrder(e), tokens)
      const order = topological(StageGraph.needs(g, "shared"), priority)
      const got = runShared(e, order, tokens)
      assert.deepEqual(got.seen, expected.seen, `order ${order}`)
      assert.deepEqual(got.world, expected.world, `order ${order}`)
    }),
    runs({ seed: 20_261_202, numRuns: 400 }),
  )
})

test("law: with per-stage versions every topological order of the read-after-write edges reads what the program order reads", () => {
  fc.assert(
    fc.property(experimentWithPriorities, ([e, priority]) => {
      const g = StageGraph.graph(e)
      const tokens = new Tokens()
      const expected = runShared(e, inProgramOrder(e), tokens)
      const order = topological(StageGraph.needs(g, "per-stage"), priority)
      assert.deepEqual(runVersioned(e, g, order, tokens), expected.seen, `order ${order}`)
    }),
    runs({ seed: 20_261_203, numRuns: 400 }),
  )
})

/** Pairs (i, j), i < j, that a chain of stages connects in `related`, by reachability over program order. */
const closure = (n: number, related: (i: number, j: number) => boolean): Set<string> => {
  const reach = new Set<string>()
  for (let j = 0; j < n; j++)
    for (let i = j - 1; i >= 0; i--)
      if (
        related(i, j) ||
        [...Array(j - i - 1).keys()].some((d) => reach.has(`${i},${i + 1 + d}`) && related(i + 1 + d, j))
      )
        reach.add(`${i},${j}`)
  return reach
}

test("law: two stages are ordered exactly when a chain of conflicting stages connects them (no needless edge)", () => {
  fc.assert(
    fc.property(experimentWithPriorities, ([e]) => {
      const g = StageGraph.graph(e)
      const n = e.stages.length
      const has = (rs: readonly StageGraph.Resource[], k: string) => rs.some((r) => StageGraph.key(r) === k)
      const conflict = (i: number, j: number) => {
        const [x, y] = [g.access[i]!, g.access[j]!]
        return (
          x.writes.some((r) => has(y.reads, StageGraph.key(r)) || has(y.writes, StageGraph.key(r))) ||
          x.reads.some((r) => has(y.writes, StageGraph.key(r)))
        )
      }
      const needs = StageGraph.needs(g, "shared")
      const edge = (i: number, j: number) => needs[j]!.includes(i)
      assert.deepEqual(closure(n, edge), closure(n, conflict))
      // With per-stage versions, exactly the chains of reads of an earlier stage's result.
      const perStage = StageGraph.needs(g, "per-stage")
      const reads = (i: number, j: number) => g.inputs[j]!.some((x) => x.writer === i)
      assert.deepEqual(
        closure(n, (i, j) => perStage[j]!.includes(i)),
        closure(n, reads),
      )
    }),
    runs({ seed: 20_261_204, numRuns: 400 }),
  )
})

test("stages that share nothing share no edge: an experiment of disjoint rows is an antichain of rows", () => {
  const rows = MODELS.flatMap((m, i) => [
    Experiment.train({
      name: `train ${m}`,
      data,
      epochs: 1,
      batchSize: 4,
      step: {
        _tag: "Minimize",
        loss: Loss.squaredError({ _tag: "Output", model: m }, Loss.field("joints3d")),
        wrt: [m],
        optimizer: sgd,
        batchNorm: "train",
      },
      init: { [m]: Experiment.scratch },
    }),
    {
      _tag: "Evaluate",
      name: `evaluate ${m}`,
      model: m,
      data,
      table: "T",
      row: `${i}`,
      column: "c",
    } as const,
  ])
  const g = StageGraph.graph(Experiment.experiment({ feeds: {}, stages: rows }))
  assert.deepEqual(StageGraph.needs(g, "shared"), [[], [0], [], [2], [], [4], [], [6]])
  const path = StageGraph.criticalPath(g, [3, 1, 3, 1, 3, 1, 3, 1], "shared")
  assert.deepEqual(path, { stages: [0, 1], cost: 4, total: 16 })
})

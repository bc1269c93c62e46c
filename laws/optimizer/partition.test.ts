/**
 * `Optimizer.partition` (optax's `multi_transform`) on generated parameter
 * trees, labellings, gradients and sub-optimizers, over several steps:
 * - a partitioned optimizer's updates equal, bit for bit, those of each
 *   label's optimizer run alone on its subset of the parameters (with its
 *   own state), including a subset-wide clip by global norm;
 * - the tf interpreter agrees with the float64 reference (`reference/optimizer.ts`)
 *   on the partitioned optimizer's parameters after every step, within
 *   1e-5·(1 + |θ|) (float32 round-off of a few steps of Adam's ratio, ≤ 0.5 × ≤ 1);
 * - a frozen subset gets no update: through the step interpreter
 *   (`Step.minimize` with a partition, several steps of Adam on the rest),
 *   its parameters stay bit-identical while the others move.
 */
import assert from "node:assert/strict"
import { before, test } from "node:test"
import * as tf from "@tensorflow/tfjs-core"
import fc from "fast-check"
import * as Loss from "../../src/dsl/Loss.ts"
import * as Optimizer from "../../src/dsl/Optimizer.ts"
import * as Params from "../../src/dsl/Params.ts"
import * as Step from "../../src/dsl/Step.ts"
import * as Ref from "../../src/interpreters/reference/index.ts"
import * as RefOptim from "../../src/interpreters/reference/optimizer.ts"
import * as Optim from "../../src/interpreters/tf/optimizer.ts"
import * as Steps from "../../src/interpreters/tf/step.ts"
import { readyForLaws, runs } from "../arbitraries/Runs.ts"
import { disposeWorld, setup } from "../step/fixture.ts"

before(async () => {
  await readyForLaws()
})

const f32 = (lo: number, hi: number) => fc.float({ min: Math.fround(lo), max: Math.fround(hi), noNaN: true })

const chainOf = (kind: string, lr: number): Optimizer.Chain =>
  kind === "adam"
    ? Optimizer.adam({ lr })
    : kind === "momentum"
      ? Optimizer.sgd({ lr, momentum: 0.9 })
      : kind === "clipped"
        ? Optimizer.sgd({ lr, clip: 0.5 })
        : Optimizer.sgd({ lr })

/** Parameter paths under two or three top-level parts (`a/…`, `b/…`, `c/…`), each of 1–3 coordinates. */
const problem = fc
  .record({
    paths: fc.uniqueArray(
      fc.tuple(fc.constantFrom("a", "b", "c"), fc.constantFrom("x", "y/kernel", "z@1/gamma")),
      { minLength: 1, maxLength: 6, selector: ([p, q]) => `${p}/${q}` },
    ),
    size: fc.integer({ min: 1, max: 3 }),
    kinds: fc.tuple(...[0, 1].map(() => fc.constantFrom("sgd", "momentum", "adam", "clipped"))),
    lrs: fc.tuple(f32(1e-3, 0.5), f32(1e-3, 0.5)),
    steps: fc.integer({ min: 1, max: 4 }),
  })
  .chain((o) =>
    fc.record({
      o: fc.constant(o),
      theta: fc.array(fc.array(f32(-2, 2), { minLength: o.size, maxLength: o.size }), {
        minLength: o.paths.length,
        maxLength: o.paths.length,
      }),
      grads: fc.array(
        fc.array(fc.array(f32(-3, 3), { minLength: o.size, maxLength: o.size }), {
          minLength: o.paths.length,
          maxLength: o.paths.length,
        }),
        { minLength: o.steps, maxLength: o.steps },
      ),
    }),
  )

test("a partitioned optimizer equals each label's optimizer run alone on its subset", () => {
  fc.assert(
    fc.property(problem, ({ o, theta, grads }) => {
      const paths = o.paths.map(([p, q]) => `${p}/${q}`)
      // "fast" owns a/…, "slow" owns b/…; c/… falls to "otherwise" = "frozen".
      const fast = chainOf(o.kinds[0], o.lrs[0])
      const slow = chainOf(o.kinds[1], o.lrs[1])
      const partition = Optimizer.partition({
        optimizers: { fast, slow, frozen: Optimizer.frozen },
        rules: [Optimizer.rule("fast", Params.prefix("a")), Optimizer.rule("slow", Params.prefix("b/"))],
        otherwise: "frozen",
      })
      const subsets = {
        fast: paths.filter((p) => p.startsWith("a/")),
        slow: paths.filter((p) => p.startsWith("b/")),
      }
      tf.tidy(() => {
        const tree = (rows: number[][], keys: readonly string[]) =>
          Object.fromEntries(keys.map((k) => [k, tf.tensor1d(rows[paths.indexOf(k)]!)]))
        let params = tree(theta, paths)
        let state = Optim.init(partition, params)
        const alone = {
          fast: {
            o: fast,
            params: tree(theta, subsets.fast),
            state: Optim.init(fast, tree(theta, subsets.fast)),
          },
          slow: {
            o: slow,
            params: tree(theta, subsets.slow),
            state: Optim.init(slow, tree(theta, subsets.slow)),
          },
        }
        for (const g of grads) {
          const u = Optim.update(partition, tree(g, paths), state, params)
          assert.deepEqual(Object.keys(u.updates).sort(), [...subsets.fast, ...subsets.slow].sort())
          params = Optim.applyUpdates(params, u.updates) as typeof params
          state = u.state
          for (const sub of Object.values(alone)) {
            const keys = Object.keys(sub.params)
            if (keys.length === 0) continue
            const v = Optim.update(sub.o, tree(g, keys), sub.state, sub.params)
            sub.params = Optim.applyUpdates(sub.params, v.updates) as typeof sub.params
            sub.state = v.state
          }
        }
        for (const sub of Object.values(alone))
          for (const [k, t] of Object.entries(sub.params))
            assert.deepEqual(Array.from(params[k]!.dataSync()), Array.from(t.dataSync()), k)
        for (const k of paths.filter((p) => p.startsWith("c/")))
          assert.deepEqual(
            Array.from(params[k]!.dataSync()),
            Array.from(Float32Array.from(theta[paths.indexOf(k)]!)),
            k,
          )
      })
    }),
    runs({ seed: 4242, numRuns: 60 }),
  )
})

test("tf's partitioned optimizer agrees with the float64 reference, step by step", () => {
  fc.assert(
    fc.property(problem, ({ o, theta, grads }) => {
      const paths = o.paths.map(([p, q]) => `${p}/${q}`)
      const partition = Optimizer.partition({
        optimizers: {
          fast: chainOf(o.kinds[0], o.lrs[0]),
          slow: chainOf(o.kinds[1], o.lrs[1]),
          frozen: Optimizer.frozen,
        },
        rules: [Optimizer.rule("fast", Params.prefix("a")), Optimizer.rule("frozen", Params.prefix("c"))],
        otherwise: "slow",
      })
      const ref = (rows: number[][]): Ref.Params =>
        Object.fromEntries(
          paths.map((k, i) => [k, Ref.Tensors.make([o.size], Float64Array.from(rows[i]!, Math.fround))]),
        )
      tf.tidy(() => {
        let params = Object.fromEntries(paths.map((k, i) => [k, tf.tensor1d(theta[i]!)]))
        let state = Optim.init(partition, params)
        let refParams = ref(theta)
        let refState = RefOptim.init(partition, refParams)
        for (const [s, g] of grads.entries()) {
          const u = Optim.update(
            partition,
            Object.fromEntries(paths.map((k, i) => [k, tf.tensor1d(g[i]!)])),
            state,
            params,
          )
          params = Optim.applyUpdates(params, u.updates) as typeof params
          state = u.state
          const r = RefOptim.update(partition, ref(g), refState, refParams)
          refParams = RefOptim.applyUpdates(refParams, r.updates)
          refState = r.state
          assert.deepEqual(Object.keys(u.updates).sort(), Object.keys(r.updates).sort())
          for (const k of paths) {
            const got = params[k]!.dataSync()
            for (const [j, want] of refParams[k]!.data.entries())
              assert.ok(
                Math.abs(got[j]! - want) <= 1e-5 * (1 + Math.abs(want)),
                `step ${s + 1}, ${k}[${j}]: tf ${got[j]} vs reference ${want}`,
              )
          }
        }
      })
    }),
    runs({ seed: 4244, numRuns: 60 }),
  )
})

test("a frozen subset stays bit-identical across steps of the step interpreter (Adam on the rest)", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 1000 }),
      fc.integer({ min: 2, max: 5 }),
      fc.constantFrom("0", "1", "5", "9"),
      (seed, steps, frozenLayer) => {
        const o = setup({ size: 4, c1: 2, c2: 2, out: 2, pool: "max" }, seed, 2)
        const step = Step.minimize({
          loss: Loss.regression(o.student),
          wrt: o.student,
          optimizer: Optimizer.partition({
            optimizers: { frozen: Optimizer.frozen, rest: Optimizer.adam({ lr: 0.05 }) },
            rules: [Optimizer.rule("frozen", Params.prefix(frozenLayer))],
            otherwise: "rest",
          }),
        })
        const snapshot = (w: Steps.World) =>
          Object.fromEntries(Object.entries(w.params.student!).map(([k, t]) => [k, Array.from(t.dataSync())]))
        const before = snapshot(o.world)
        let world = o.world
        for (let i = 0; i < steps; i++) world = Steps.run(step, world, o.batch, o.ctx).world
        const after = snapshot(world)
        for (const k of Object.keys(before)) {
          if (Params.matches(Params.prefix(frozenLayer), k))
            assert.deepEqual(after[k], before[k], `${k} moved`)
          else assert.notDeepEqual(after[k], before[k], `${k} did not move`)
        }
        disposeWorld(world)
        tf.dispose(Object.values(o.batch))
      },
    ),
    runs({ seed: 4243, numRuns: 12 }),
  )
})

/**
 * Laws of the meta-gradient of `MetaMinimize` (CMKG Algorithm 1's M-step) on
 * small conv nets (conv + batch norm + relu + pool + conv + relu + global pool
 * + dense), generated architectures, seeds and batch sizes:
 * - exact mode matches central finite differences of φ ↦ G(θ̈(φ)) for l = 1
 *   and l = 2 inner steps, along random directions v:
 *   ⟨∇_φ, v⟩ ≈ (G(θ̈(φ + εv)) − G(θ̈(φ − εv))) / 2ε, on every backend present
 *   (cpu, wasm and cmkg-cpu, the one that trains; `CMKG_BACKEND` picks one), with
 *   strided and dilated first convolutions;
 * - the closed form (and first-order mode) equals the exact mode for l = 1;
 *   first-order differs from exact for l = 2 (it drops the Hessian terms);
 * - with inner rate α = 0 the meta-gradient is zero (θ̈ = θ does not depend on φ);
 * - with meta rate β = 0, φ is unchanged by a meta-step.
 *
 * Tolerances. Finite differences run in float32 (tfjs): ε = 3e-3 along
 * directions v uniform in ±1 (φ ~ 5e-2). G (~1-30) carries relative round-off
 * ~1e-7 per op, a few 1e-7·|G| in total, i.e. ≲ 5e-7·(1 + |G|)/ε absolute in
 * the quotient; truncation ε²·|G'''| is below that. We require
 * |fd − ⟨∇, v⟩| ≤ 2e-2·max(|fd|, |⟨∇, v⟩|) + 5e-7·(1 + |G|)/(ε/2).
 * G is only piecewise smooth (relu, max pool): a direction whose quotients at
 * ε and ε/2 disagree by more than that tolerance crosses a kink and is skipped
 * (as in laws/tf/second-order); at most 1 in 5 directions may be skipped.
 * Closed form vs exact: the same float32 quantities in a different order:
 * ‖Δ‖ ≤ 1e-4·(1 + ‖exact‖). α = 0 and β = 0: exactly zero / unchanged.
 */
import assert from "node:assert/strict"
import { before, test } from "node:test"
import * as tf from "@tensorflow/tfjs-core"
import fc from "fast-check"
import * as Optimizer from "../../src/dsl/Optimizer.ts"
import * as Step from "../../src/dsl/Step.ts"
import * as Steps from "../../src/interpreters/tf/step.ts"
import { lawBackends, readyForLaws, runs } from "../arbitraries/Runs.ts"
import { type Arch, disposeWorld, flatValues, setup } from "./fixture.ts"

let backends: string[] = []
before(async () => {
  await readyForLaws()
  backends = await lawBackends()
})

const arch: fc.Arbitrary<Arch> = fc.record({
  size: fc.integer({ min: 4, max: 6 }),
  c1: fc.integer({ min: 1, max: 3 }),
  c2: fc.integer({ min: 1, max: 3 }),
  out: fc.integer({ min: 2, max: 4 }),
  pool: fc.constantFrom<"max" | "avg">("max", "avg"),
  stride: fc.constantFrom<1 | 2>(1, 2),
  dilation: fc.constantFrom<1 | 2>(1, 2),
})
const seed = fc.integer({ min: 1, max: 10_000 })

type Mode = Step.MetaMode
const metaStep = (o: ReturnType<typeof setup>, steps: number, rate: number, mode: Mode, beta = 0.1) =>
  Step.metaMinimize({
    outer: o.G,
    inner: Step.inner({ loss: o.F, wrt: o.student, rate, steps }),
    wrt: "phi",
    optimizer: Optimizer.sgd({ lr: beta }),
    mode,
  }) as Extract<Step.Step, { _tag: "MetaMinimize" }>

const norm = (xs: number[]) => Math.sqrt(xs.reduce((a, v) => a + v * v, 0))

const EPS = 3e-3

test("the exact meta-gradient matches central finite differences of G(θ̈(φ)), l = 1 and l = 2, on every backend, strided and dilated", async () => {
  for (const backend of backends) {
    await tf.setBackend(backend)
    finiteDifferenceLaw(backend)
  }
  await tf.setBackend(backends[0]!)
})

const finiteDifferenceLaw = (backend: string) => {
  let checked = 0
  let kinks = 0
  const shapes = new Set<string>()
  fc.assert(
    fc.property(arch, seed, fc.integer({ min: 2, max: 3 }), fc.constantFrom(1, 2), (a, sd, B, l) => {
      const o = setup(a, sd, B)
      shapes.add(`stride ${a.stride} dilation ${a.dilation}`)
      const step = metaStep(o, l, 0.3, "exact")
      tf.tidy(() => {
        const { grads } = Steps.metaGradient(step, o.world, o.batch, o.ctx)
        const phi = o.world.meta.phi!
        for (let d = 0; d < 2; d++) {
          const v: Record<string, tf.Tensor> = Object.fromEntries(
            Object.entries(phi).map(([k, t]) => [
              k,
              tf.tensor(
                Array.from({ length: t.size }, () => 2 * o.rand() - 1),
                t.shape,
              ),
            ]),
          )
          const G = (eps: number) =>
            tf.tidy(() => {
              const moved = Object.fromEntries(
                Object.entries(phi).map(([k, t]) => [k, tf.add(t, tf.mul(v[k]!, eps))]),
              )
              return Steps.metaGradient(
                step,
                { ...o.world, meta: { phi: moved } },
                o.batch,
                o.ctx,
              ).value.arraySync()
            })
          const g0 = G(0)
          const fdAt = (eps: number) => (G(eps) - G(-eps)) / (2 * eps)
          const [fd, fdHalf] = [fdAt(EPS), fdAt(EPS / 2)]
          const tol = (x: number, y: number) =>
            2e-2 * Math.max(Math.abs(x), Math.abs(y)) + (5e-7 * (1 + Math.abs(g0))) / (EPS / 2)
          // A relu / max-pool kink inside φ ± εv shows as disagreeing quotients: skip that direction.
          if (Math.abs(fd - fdHalf) > tol(fd, fdHalf)) {
            kinks += 1
            continue
          }
          const analytic = Object.keys(phi).reduce(
            (acc, k) => acc + (tf.sum(tf.mul(grads[k]!, v[k]!)).arraySync() as number),
            0,
          )
          checked += 1
          assert.ok(
            Math.abs(fd - analytic) <= tol(fd, analytic),
            `${backend}, l = ${l}, stride ${a.stride}, dilation ${a.dilation}, direction ${d}: finite differences ${fd} vs meta-gradient ${analytic}`,
          )
        }
      })
      disposeWorld(o.world)
      tf.dispose(Object.values(o.batch))
    }),
    runs({ seed: 6006, numRuns: 24 }),
  )
  assert.ok(
    checked >= 4 * kinks && checked >= 16,
    `${backend}: ${checked} directions checked, ${kinks} skipped at kinks`,
  )
  // Every combination of stride and dilation was drawn (both > 1 is the dense-then-subsample path).
  assert.equal(shapes.size, 4, `${backend}: drew only ${[...shapes].join("; ")}`)
}

test("for l = 1 the closed form and the first-order mode equal the exact meta-gradient; for l = 2 first-order differs", () => {
  fc.assert(
    fc.property(arch, seed, fc.integer({ min: 2, max: 3 }), (a, sd, B) => {
      const o = setup(a, sd, B)
      tf.tidy(() => {
        const exact = flatValues(
          Steps.metaGradient(metaStep(o, 1, 0.3, "exact"), o.world, o.batch, o.ctx).grads,
        )
        for (const mode of ["closed-form", "first-order"] as const) {
          const other = flatValues(
            Steps.metaGradient(metaStep(o, 1, 0.3, mode), o.world, o.batch, o.ctx).grads,
          )
          const diff = norm(exact.map((e, i) => e - other[i]!))
          assert.ok(diff <= 1e-4 * (1 + norm(exact)), `${mode}: ‖Δ‖ = ${diff}, ‖exact‖ = ${norm(exact)}`)
        }
      })
      disposeWorld(o.world)
      tf.dispose(Object.values(o.batch))
    }),
    runs({ seed: 6007, numRuns: 20 }),
  )
  const o = setup({ size: 5, c1: 2, c2: 2, out: 3, pool: "avg" }, 3, 3)
  tf.tidy(() => {
    const exact = flatValues(Steps.metaGradient(metaStep(o, 2, 0.3, "exact"), o.world, o.batch, o.ctx).grads)
    const first = flatValues(
      Steps.metaGradient(metaStep(o, 2, 0.3, "first-order"), o.world, o.batch, o.ctx).grads,
    )
    assert.ok(norm(exact.map((e, i) => e - first[i]!)) > 1e-3 * norm(exact))
    assert.throws(
      () => Steps.metaGradient(metaStep(o, 2, 0.3, "closed-form"), o.world, o.batch, o.ctx),
      /exactly 1 inner step/,
    )
  })
  disposeWorld(o.world)
  tf.dispose(Object.values(o.batch))
})

test("with inner rate α = 0 the meta-gradient is zero; with meta rate β = 0 φ is unchanged", () => {
  fc.assert(
    fc.property(arch, seed, fc.constantFrom<Mode>("exact", "first-order", "closed-form"), (a, sd, mode) => {
      const o = setup(a, sd, 2)
      tf.tidy(() => {
        const g = flatValues(Steps.metaGradient(metaStep(o, 1, 0, mode), o.world, o.batch, o.ctx).grads)
        assert.ok(
          g.every((x) => x === 0),
          `max |g| = ${Math.max(...g.map(Math.abs))}`,
        )
      })
      const before = flatValues(o.world.meta.phi!)
      const { world } = Steps.run(metaStep(o, 1, 0.3, mode, 0), o.world, o.batch, o.ctx)
      assert.deepEqual(flatValues(world.meta.phi!), before)
      disposeWorld(world)
      tf.dispose(Object.values(o.batch))
    }),
    runs({ seed: 6008, numRuns: 20 }),
  )
})

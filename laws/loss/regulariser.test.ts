/**
 * Laws of CMKG's regulariser R(θ; φ) = Σ φ_i θ_i² (Eq. 10) and its ℓ1 form
 * Σ φ_i |θ_i|, under the tf interpreter, on generated parameter trees:
 * - R(θ; 0) = 0;
 * - R is linear in φ: R(θ; aφ₁ + bφ₂) = a·R(θ; φ₁) + b·R(θ; φ₂);
 * - R ≥ 0 when φ ≥ 0;
 * - the default regulariser σ·Σ|θ|^p equals R with φ = σ everywhere.
 *
 * Tolerances (float32 sums of ≤ 100 terms of size ≤ 10): linearity and the
 * default-regulariser identity to 1e-5·(1 + Σ|terms|) (relative to the sum
 * of absolute values, the scale of float32 round-off); R(θ; 0) = 0 exactly.
 */
import assert from "node:assert/strict"
import { before, test } from "node:test"
import * as tf from "@tensorflow/tfjs-core"
import fc from "fast-check"
import * as Loss from "../../src/dsl/Loss.ts"
import type * as Ref from "../../src/interpreters/reference/index.ts"
import * as TfLoss from "../../src/interpreters/tf/loss.ts"
import { readyForLaws, runs } from "../arbitraries/Runs.ts"
import { type Flat, flatToTf, rng, seed, tensor, tfEnv, uniform } from "./env.ts"

const defaults = { seed: 1010, numRuns: 80 }

before(async () => {
  await readyForLaws()
})

const weighted = (p: 1 | 2, phi = "phi"): Loss.Loss => ({ _tag: "WeightedNorm", model: "m", phi, p })
const norm = (sigma: number, p: 1 | 2): Loss.Loss => ({ _tag: "Norm", model: "m", sigma, p })

/** A parameter tree of 1-3 entries of generated shapes, its φ's of the same shapes. */
const tree = fc.record({
  shapes: fc.array(fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 }), {
    minLength: 1,
    maxLength: 3,
  }),
  seed,
  p: fc.constantFrom<1 | 2>(1, 2),
})

const theta = (shapes: number[][], rand: () => number): Flat =>
  Object.fromEntries(shapes.map((s, i) => [`param|m|layer${i}/kernel`, tensor(s, rand, 0, 2)]))
const phiLike = (shapes: number[][], f: (shape: number[]) => Ref.Tensor, name = "phi"): Flat =>
  Object.fromEntries(shapes.map((s, i) => [`meta|${name}|layer${i}/kernel`, f(s)]))

const value = (loss: Loss.Loss, flat: Flat): number =>
  tf.tidy(() => TfLoss.evaluate(loss, tfEnv(flatToTf(flat))).arraySync())

/** Σ|φ θ^p| over the tree: the scale of the round-off. */
const magnitude = (flat: Flat, p: 1 | 2): number => {
  let s = 0
  for (const [k, t] of Object.entries(flat))
    if (k.startsWith("param|"))
      t.data.forEach((v, i) => {
        const w = flat[k.replace("param|m|", "meta|phi|")]
        s += Math.abs((w === undefined ? 1 : w.data[i]!) * Math.abs(v) ** p)
      })
  return s
}

test("R(θ; 0) = 0", () => {
  fc.assert(
    fc.property(tree, ({ shapes, seed: sd, p }) => {
      const rand = rng(sd)
      const flat = { ...theta(shapes, rand), ...phiLike(shapes, (s) => uniform(s, rand, 0, 0)) }
      assert.equal(value(weighted(p), flat), 0)
    }),
    runs(defaults),
  )
})

test("R is linear in φ", () => {
  fc.assert(
    fc.property(
      tree,
      fc.double({ min: -3, max: 3, noNaN: true }),
      fc.double({ min: -3, max: 3, noNaN: true }),
      ({ shapes, seed: sd, p }, a, b) => {
        const rand = rng(sd)
        const th = theta(shapes, rand)
        const phi1 = phiLike(shapes, (s) => tensor(s, rand), "phi1")
        const phi2 = phiLike(shapes, (s) => tensor(s, rand), "phi2")
        const combined: Flat = Object.fromEntries(
          Object.entries(phi1).map(([k, t]) => {
            const u = phi2[k.replace("phi1", "phi2")]!
            return [
              k.replace("phi1", "phi"),
              { shape: t.shape, data: t.data.map((v, i) => Math.fround(a * v + b * u.data[i]!)) },
            ]
          }),
        )
        const flat = { ...th, ...phi1, ...phi2, ...combined }
        const lhs = value(weighted(p, "phi"), flat)
        const rhs = a * value(weighted(p, "phi1"), flat) + b * value(weighted(p, "phi2"), flat)
        const scale = (Math.abs(a) + Math.abs(b) + 1) * magnitude({ ...th }, p)
        assert.ok(Math.abs(lhs - rhs) <= 1e-5 * (1 + scale), `${lhs} vs ${rhs}`)
      },
    ),
    runs(defaults),
  )
})

test("R ≥ 0 when φ ≥ 0", () => {
  fc.assert(
    fc.property(tree, ({ shapes, seed: sd, p }) => {
      const rand = rng(sd)
      const flat = { ...theta(shapes, rand), ...phiLike(shapes, (s) => uniform(s, rand, 0, 2)) }
      assert.ok(value(weighted(p), flat) >= 0)
    }),
    runs(defaults),
  )
})

test("the default regulariser σ·Σ|θ|^p equals R with φ = σ everywhere", () => {
  fc.assert(
    fc.property(
      tree,
      fc.double({ min: 0, max: 10, noNaN: true }).map(Math.fround),
      ({ shapes, seed: sd, p }, sigma) => {
        const rand = rng(sd)
        const flat = { ...theta(shapes, rand), ...phiLike(shapes, (s) => uniform(s, rand, sigma, sigma)) }
        const r = value(weighted(p), flat)
        const d = value(norm(sigma, p), flat)
        assert.ok(Math.abs(r - d) <= 1e-5 * (1 + magnitude(flat, p)), `R ${r} vs default ${d}`)
      },
    ),
    runs(defaults),
  )
})

test("the DSL's regulariser constructors name the model and φ", () => {
  const m = { _tag: "Model", name: "student", input: [4, 4, 1], net: { _tag: "Identity" } } as const
  assert.deepEqual(Loss.weightedNorm(m, "phi"), { _tag: "WeightedNorm", model: "student", phi: "phi", p: 2 })
  assert.deepEqual(Loss.norm(m, 0.5, 1), { _tag: "Norm", model: "student", sigma: 0.5, p: 1 })
})

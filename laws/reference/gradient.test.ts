/** Laws of the reference interpreter's finite-difference `gradient`. */
import assert from "node:assert/strict"
import { test } from "node:test"
import fc from "fast-check"
import * as Net from "../../src/dsl/Net.ts"
import { apply, gradient, type Params } from "../../src/interpreters/reference/index.ts"
import { make } from "../../src/interpreters/reference/Tensor.ts"
import { runs } from "../arbitraries/Runs.ts"

const value = fc.double({ min: -10, max: 10, noNaN: true, noDefaultInfinity: true })

/** A quadratic f(p) = ½ pᵀAp + bᵀp + c over the parameters `u` (m values) and `v` (n values), flattened in that order. */
const quadratic = fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 })).chain(([m, n]) =>
  fc.record({
    m: fc.constant(m),
    n: fc.constant(n),
    a: fc.array(value, { minLength: (m + n) ** 2, maxLength: (m + n) ** 2 }),
    b: fc.array(value, { minLength: m + n, maxLength: m + n }),
    c: value,
    p: fc.array(value, { minLength: m + n, maxLength: m + n }),
  }),
)

test("law: the finite-difference gradient of a quadratic is its analytic gradient ½(A + Aᵀ)p + b", () => {
  fc.assert(
    fc.property(quadratic, ({ m, n, a, b, c, p }) => {
      const d = m + n
      const flat = (ps: Params) => [...ps.u!.data, ...ps.v!.data]
      const f = (ps: Params) => {
        const q = flat(ps)
        let s = c
        for (let i = 0; i < d; i++) {
          s += b[i]! * q[i]!
          for (let j = 0; j < d; j++) s += 0.5 * a[i * d + j]! * q[i]! * q[j]!
        }
        return s
      }
      const params: Params = { u: make([m], p.slice(0, m)), v: make([n], p.slice(m)) }
      const before = flat(params)
      const g = gradient(f, params)
      assert.deepEqual(flat(params), before, "params are not mutated")
      assert.deepEqual(g.u!.shape, [m])
      assert.deepEqual(g.v!.shape, [n])
      const numeric = flat(g)
      for (let i = 0; i < d; i++) {
        let analytic = b[i]!
        for (let j = 0; j < d; j++) analytic += 0.5 * (a[i * d + j]! + a[j * d + i]!) * p[j]!
        // Central differences are exact on quadratics up to rounding: ~ε·|f|/h.
        const scale = Math.max(1, Math.abs(f(params)))
        assert.ok(Math.abs(numeric[i]! - analytic) <= 1e-8 * scale, `∂f/∂p${i}: ${numeric[i]} vs ${analytic}`)
      }
    }),
    runs({ seed: 20240601, numRuns: 200 }),
  )
})

test("law: through a dense layer, ∂Σy/∂bias = batch size and ∂Σy/∂kernel[d, u] = Σ_b x[b, d]", () => {
  const net = Net.scope("fc", Net.dense(2))
  fc.assert(
    fc.property(
      fc.array(value, { minLength: 6, maxLength: 6 }),
      fc.array(value, { minLength: 8, maxLength: 8 }),
      (xs, ws) => {
        const x = make([2, 3], xs)
        const params: Params = {
          "fc/kernel": make([3, 2], ws.slice(0, 6)),
          "fc/bias": make([2], ws.slice(6)),
        }
        const loss = (ps: Params) => apply(net, ps, {}, x, "eval").y.data.reduce((s, v) => s + v, 0)
        const g = gradient(loss, params)
        const tol = 1e-8 * Math.max(1, Math.abs(loss(params)))
        for (let u = 0; u < 2; u++) assert.ok(Math.abs(g["fc/bias"]!.data[u]! - 2) <= tol)
        for (let d = 0; d < 3; d++)
          for (let u = 0; u < 2; u++)
            assert.ok(Math.abs(g["fc/kernel"]!.data[d * 2 + u]! - (xs[d]! + xs[3 + d]!)) <= tol)
      },
    ),
    runs({ seed: 7, numRuns: 100 }),
  )
})

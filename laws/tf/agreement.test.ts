/**
 * The tf interpreter agrees with the static and the reference interpreters
 * on generated well-shaped networks:
 * - runtime output and tap shapes equal the shape checker's;
 * - `init`'s parameter count equals the static count; the same seed gives the same parameters;
 * - outputs, taps, new state and gradients equal the float64 reference's,
 *   in train mode and in eval mode with running statistics that are not
 *   (0, 1), with batch-norm γ and β that are not (1, 0),
 *   on every backend present (cpu, wasm, cmkg-cpu; `CMKG_BACKEND` picks one).
 *
 * Every node kind and variant of `Arb.KINDS` (average pools whose windows
 * overlap the padding, strided and dilated convs, shared loops, …) gets runs
 * of its own, with parameters upstream of it, and the law asserts that the
 * generated networks reached each one.
 *
 * Tolerances, from float32 (unit round-off 6e-8) against float64, per tensor.
 * Both have a term for conditioning: `spread`, how far tf's result moves when
 * every parameter and input is nudged by ≤ 1e-6 relative (16 ulp). float32's
 * rounding moves a result about as far, and an ill-conditioned one (a loop of
 * batch norms over a batch of 2, a 1×1 conv's kernel before a batch norm,
 * scale-invariant up to ε) moves far; a wrong factor or a missing term is not
 * sensitive to the nudge.
 * - values: |tf − ref| ≤ 1e-5 · max|ref| + 4 · max spread, over each output,
 *   tap or state tensor (worst seen 0.13 of it; 4.3e-6 of max|ref|);
 * - gradients of each parameter tensor k, against the central finite
 *   difference (h = 1e-6) of the float64 reference:
 *   ‖tf_k − ref_k‖ ≤ 2e-5 · ‖ref_k‖ + 4 · ‖spread_k‖ + 1e-5 · ‖ref‖, where ‖ref‖,
 *   the norm over all parameters, bounds the noise of a gradient that cancels
 *   to 0 (a conv bias before a batch norm). Over 11,622 tensors (8 runs per
 *   kind, three backends, both modes) the worst error was 0.32 of this
 *   tolerance; a well-conditioned tensor's relative error stays below 3e-5.
 *   The stock average-pool gradient (wrong at the padded borders) is off by
 *   25 % of its tensor's norm.
 * Finite differences across a relu or max-pool kink (an activation within
 * ~1e-6 of it) would be wrong; no generated case has hit one so far.
 */
import assert from "node:assert/strict"
import { before, test } from "node:test"
import * as tf from "@tensorflow/tfjs-core"
import fc from "fast-check"
import * as Net from "../../src/dsl/Net.ts"
import * as Shape from "../../src/dsl/Shape.ts"
import * as Ref from "../../src/interpreters/reference/index.ts"
import * as Check from "../../src/interpreters/shape-check/index.ts"
import { apply } from "../../src/interpreters/tf/apply.ts"
import { valueAndGrad } from "../../src/interpreters/tf/autodiff.ts"
import * as Init from "../../src/interpreters/tf/init.ts"
import * as Arb from "../../src/laws/net.ts"
import { lawBackends, runs } from "../arbitraries/Runs.ts"

const VALUE_TOL = 1e-5
const GRAD_TOL = 2e-5
const ETA = 1e-6
const SPREAD = 4
const GRAD_FLOOR = 1e-5

/** Every parameter moved by ETA at most (relative), as `nudge` does. */
const nudgedParams = (v: Values, seed: number): Record<string, Float32Array> =>
  Object.fromEntries(Object.entries(v.params).map(([k, a], i) => [k, nudge(a, seed + 300 + i)]))

/** `a` with every value moved by a generated relative amount in [−ETA, ETA]. */
const nudge = (a: Float32Array, seed: number): Float32Array => {
  const r = randomValues(a.length, seed)
  return a.map((q, i) => q * (1 + ETA * r[i]!))
}

let backends: string[] = []
before(async () => {
  backends = await lawBackends()
})

const options: Arb.NetOptions = { loops: true, groups: true, sigmoid: true, head: true }
const KINDS = Arb.kinds(options)

/** A network containing `kind` (every kind when undefined) on a generated image input. */
const netAndInput = (kind?: Arb.Kind, maxLength = 4) =>
  Arb.imageShape(7).chain((input) =>
    Arb.wellShaped(input, kind === undefined ? options : { ...options, include: kind }, maxLength).map(
      (net) => ({ input, net }),
    ),
  )

const randomValues = (n: number, seed: number, lo = -1, hi = 1): Float32Array => {
  const rand = Init.prng(seed)
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * rand())
}

interface Values {
  readonly params: Record<string, Float32Array>
  readonly state: Record<string, Float32Array>
  readonly shapes: Record<string, number[]>
}

/**
 * `init`'s parameters with batch norm's γ, β and running statistics replaced
 * by generated ones (init's 1, 0 and (0, 1) would hide a γ or a statistic used in the wrong place).
 */
const values = (net: Net.AnyNet, input: Shape.Shape, seed: number): Values => {
  const { params, state } = Init.init(net, input, seed)
  const shapes: Record<string, number[]> = {}
  const read = (tree: Init.Tree, fresh: (k: string, n: number, i: number) => Float32Array | undefined) =>
    Object.fromEntries(
      Object.entries(tree).map(([k, t], i) => {
        shapes[k] = t.shape
        return [k, fresh(k, t.size, i) ?? Float32Array.from(t.dataSync())]
      }),
    )
  const p = read(params, (k, n, i) =>
    k.endsWith("/gamma")
      ? randomValues(n, seed + 100 + i, 0.5, 1.5)
      : k.endsWith("/beta")
        ? randomValues(n, seed + 100 + i, -0.5, 0.5)
        : undefined,
  )
  const s = read(state, (k, n, i) =>
    k.endsWith("/mean")
      ? randomValues(n, seed + 200 + i, -0.5, 0.5)
      : randomValues(n, seed + 200 + i, 0.25, 2),
  )
  Init.dispose(params, state)
  return { params: p, state: s, shapes }
}

const tensors = (v: Record<string, Float32Array>, shapes: Record<string, number[]>): Init.Tree =>
  Object.fromEntries(Object.entries(v).map(([k, a]) => [k, tf.tensor(a, shapes[k])]))
const refTensors = (v: Record<string, Float32Array>, shapes: Record<string, number[]>): Ref.Params =>
  Object.fromEntries(
    Object.entries(v).map(([k, a]) => [k, Ref.Tensors.make(shapes[k]!, Float64Array.from(a))]),
  )

/** The largest errors seen, in the units of each tolerance, printed after each law. */
const worst = { value: 0, valueRelative: 0, gradient: 0, gradientRelative: 0 }
const report = (what: string) => {
  const line =
    worst.gradient === 0
      ? `worst error ${worst.value.toFixed(2)} of the tolerance, ${worst.valueRelative.toExponential(1)} of max|ref|`
      : `worst error ${worst.gradient.toFixed(2)} of the tolerance, ${worst.gradientRelative.toExponential(1)} of the tensor's norm (of those > 1e-3 of all)`
  console.log(`# ${what}: ${line}`)
  Object.assign(worst, { value: 0, valueRelative: 0, gradient: 0, gradientRelative: 0 })
}

/**
 * |actual − expected| ≤ VALUE_TOL · max|expected| + SPREAD · spread element by element, where
 * spread is the largest change of `actual` under the ETA nudge (`nudged`).
 */
const close = (
  actual: ArrayLike<number>,
  nudged: ArrayLike<number>,
  expected: ArrayLike<number>,
  what: string,
) => {
  assert.equal(actual.length, expected.length, `${what}: length`)
  let scale = Number.MIN_VALUE
  let spread = 0
  for (let i = 0; i < expected.length; i++) {
    scale = Math.max(scale, Math.abs(expected[i]!))
    spread = Math.max(spread, Math.abs(actual[i]! - nudged[i]!))
  }
  const tol = VALUE_TOL * scale + SPREAD * spread
  for (let i = 0; i < actual.length; i++) {
    const err = Math.abs(actual[i]! - expected[i]!)
    worst.value = Math.max(worst.value, err / tol)
    worst.valueRelative = Math.max(worst.valueRelative, err / scale)
    assert.ok(
      err <= tol,
      `${what}[${i}]: tf ${actual[i]} vs reference ${expected[i]} (max |reference| ${scale}, spread under a ${ETA} nudge ${spread})`,
    )
  }
}

const norm = (a: ArrayLike<number>, b?: ArrayLike<number>): number => {
  let s = 0
  for (let i = 0; i < a.length; i++) s += (a[i]! - (b === undefined ? 0 : b[i]!)) ** 2
  return Math.sqrt(s)
}

/** Runs `f` on every backend (or the one `CMKG_BACKEND` names). */
const onEveryBackend = (f: (backend: string) => void) => {
  assert.ok(backends.length > 0)
  for (const b of backends) {
    tf.setBackend(b)
    assert.equal(tf.getBackend(), b)
    f(b)
  }
  tf.setBackend(backends[0]!)
}

/** Every kind gets `numRuns` cases of its own, from seeds seed, seed + 1, … */
const forEveryKind = (
  law: string,
  defaults: { seed: number; numRuns: number },
  property: (kind: Arb.Kind) => fc.IProperty<[{ input: Shape.Shape; net: Net.AnyNet }, ...unknown[]]>,
) => {
  const r = runs(
    defaults,
    { endOnFailure: true, includeErrorInReport: true },
    `per kind (${KINDS.length} kinds, the i-th from seed + i): ${law}`,
  )
  for (const [i, kind] of KINDS.entries())
    try {
      fc.assert(property(kind), { ...r, seed: r.seed + i })
    } catch (e) {
      // fast-check names seed + i; the law's seed is what FC_SEED takes.
      const message = e instanceof Error ? e.message : String(e)
      throw new Error(`${law}, kind ${kind} (FC_SEED=${r.seed} FC_RUNS=${r.numRuns} repeats it): ${message}`)
    }
}

/** The kinds every case of a law reached, to assert coverage after it. */
const coverage = () => {
  const seen = new Set<Arb.Kind>()
  return {
    note: (net: Net.AnyNet, input: Shape.Shape) => {
      for (const k of Arb.reached(net, input)) seen.add(k)
    },
    assertAll: () =>
      assert.deepEqual(
        KINDS.filter((k) => !seen.has(k)),
        [],
        "kinds no generated network reached with parameters upstream",
      ),
  }
}

test("runtime output and tap shapes equal the static shapes; init's parameter count equals the static count", () => {
  fc.assert(
    fc.property(netAndInput(undefined, 6), fc.integer({ min: 2, max: 3 }), ({ input, net }, batch) => {
      const checked = Check.check(net, input)
      assert.ok(checked.ok)
      tf.tidy(() => {
        const { params, state } = Init.init(net, input, 1)
        assert.equal(Init.count(params), checked.summary.cost.params)
        assert.equal(Init.count(state), checked.summary.cost.buffers)
        const x = tf.tensor(randomValues(batch * Shape.size(input), 7), [batch, ...input])
        for (const mode of ["train", "eval"] as const) {
          const r = apply(net, params, state, x, mode)
          assert.deepEqual(r.y.shape, [batch, ...checked.summary.output])
          assert.deepEqual(Object.keys(r.taps).sort(), Object.keys(checked.summary.taps).sort())
          for (const [name, shape] of Object.entries(checked.summary.taps))
            assert.deepEqual(r.taps[name]!.shape, [batch, ...shape], name)
        }
      })
    }),
    runs({ seed: 4242, numRuns: 60 }),
  )
})

test("the same seed gives the same parameters; another seed different ones", () => {
  const net = Net.seq(Net.conv2d(4, 3), Net.batchNorm(), Net.globalAvgPool, Net.dense(2))
  const a = Init.init(net, [5, 5, 2], 11)
  const b = Init.init(net, [5, 5, 2], 11)
  const c = Init.init(net, [5, 5, 2], 12)
  for (const k of Object.keys(a.params)) assert.deepEqual(a.params[k]!.dataSync(), b.params[k]!.dataSync(), k)
  assert.notDeepEqual(a.params["0/kernel"]!.dataSync(), c.params["0/kernel"]!.dataSync())
  Init.dispose(a.params, a.state, b.params, b.state, c.params, c.state)
})

test("forward (output, taps, new state) agrees with the float64 reference, in train and eval modes, for every kind, on every backend", () => {
  const reached = coverage()
  forEveryKind("forward", { seed: 4242, numRuns: 2 }, (kind) =>
    fc.property(
      netAndInput(kind),
      fc.integer({ min: 2, max: 3 }),
      fc.nat(),
      ({ input, net }, batch, seed) => {
        reached.note(net, input)
        const v = values(net, input, seed)
        const xs = randomValues(batch * Shape.size(input), seed + 1)
        const rx = Ref.Tensors.make([batch, ...input], Float64Array.from(xs))
        for (const mode of ["train", "eval"] as const) {
          const r = Ref.apply(net, refTensors(v.params, v.shapes), refTensors(v.state, v.shapes), rx, mode)
          onEveryBackend((backend) =>
            tf.tidy(() => {
              const what = `${kind}, ${backend}, ${mode}`
              const run = (ps: Record<string, Float32Array>, x: Float32Array) =>
                apply(
                  net,
                  tensors(ps, v.shapes),
                  tensors(v.state, v.shapes),
                  tf.tensor(x, [batch, ...input]),
                  mode,
                )
              const t = run(v.params, xs)
              const n = run(nudgedParams(v, seed), nudge(xs, seed + 299))
              close(t.y.dataSync(), n.y.dataSync(), r.y.data, `${what}: output`)
              for (const name of Object.keys(r.taps))
                close(
                  t.taps[name]!.dataSync(),
                  n.taps[name]!.dataSync(),
                  r.taps[name]!.data,
                  `${what}: tap ${name}`,
                )
              for (const k of Object.keys(r.state))
                close(t.state[k]!.dataSync(), n.state[k]!.dataSync(), r.state[k]!.data, `${what}: state ${k}`)
            }),
          )
        }
      },
    ),
  )
  reached.assertAll()
  report("forward")
})

/** ⟨net(x), p⟩ for a fixed random projection p: a scalar whose gradient reaches every output. */
const gradientLaw = (mode: Ref.Mode, seed: number) => {
  const reached = coverage()
  forEveryKind(`gradients, ${mode} mode`, { seed, numRuns: 2 }, (kind) =>
    fc.property(netAndInput(kind), fc.nat(), ({ input, net }, seed) => {
      reached.note(net, input)
      const batch = 2
      const v = values(net, input, seed)
      const xs = randomValues(batch * Shape.size(input), seed + 1)
      const out = Check.check(net, input).summary.output!
      const proj = randomValues(batch * Shape.size(out), seed + 2)
      const rx = Ref.Tensors.make([batch, ...input], Float64Array.from(xs))
      const rstate = refTensors(v.state, v.shapes)
      const f = (ps: Ref.Params) => {
        const y = Ref.apply(net, ps, rstate, rx, mode).y.data
        let s = 0
        for (let i = 0; i < y.length; i++) s += y[i]! * proj[i]!
        return s
      }
      const rg = Ref.gradient(f, refTensors(v.params, v.shapes), 1e-6)
      const total = norm(Object.values(rg).flatMap((g) => Array.from(g.data)))
      onEveryBackend((backend) =>
        tf.tidy(() => {
          const state = tensors(v.state, v.shapes)
          const p = tf.tensor(proj, [batch, ...out])
          const gradients = (ps: Record<string, Float32Array>, x: Float32Array) =>
            valueAndGrad(
              (t) =>
                tf.sum(tf.mul(apply(net, t, state, tf.tensor(x, [batch, ...input]), mode).y, p)) as tf.Scalar,
              tensors(ps, v.shapes),
            ).grads
          const grads = gradients(v.params, xs)
          assert.deepEqual(Object.keys(grads).sort(), Object.keys(rg).sort())
          // The same gradients with every parameter and input moved by ≤ ETA relative: their spread
          // is how much float32's rounding (≈ 1e-7 relative at every op) can move this gradient.
          const nudged = gradients(nudgedParams(v, seed), nudge(xs, seed + 299))
          for (const [k, g] of Object.entries(rg)) {
            const ours = grads[k]!.dataSync()
            const err = norm(ours, g.data)
            const own = norm(g.data)
            const spread = norm(ours, nudged[k]!.dataSync())
            const tol = GRAD_TOL * own + SPREAD * spread + GRAD_FLOOR * total
            worst.gradient = Math.max(worst.gradient, err / tol)
            if (own > 1e-3 * total) worst.gradientRelative = Math.max(worst.gradientRelative, err / own)
            assert.ok(
              err <= tol,
              `${kind}, ${backend}, ${mode}: gradient of ${k}: error ${err.toExponential(2)}, its norm ${own.toExponential(2)}, spread under a ${ETA} nudge ${spread.toExponential(2)}, all parameters' ${total.toExponential(2)}`,
            )
          }
        }),
      )
    }),
  )
  reached.assertAll()
  report(`gradients, ${mode} mode`)
}

test("gradients w.r.t. every parameter tensor agree with the reference's float64 finite differences, train mode, for every kind, on every backend", () =>
  gradientLaw("train", 5151))

test("gradients w.r.t. every parameter tensor agree with the reference's float64 finite differences, eval mode, for every kind, on every backend", () =>
  gradientLaw("eval", 6161))

test("no tensors leak from apply inside tidy", () => {
  const net = Net.seq(Net.conv2d(3, 3), Net.batchNorm(), Net.relu, Net.globalAvgPool, Net.dense(2))
  const { params, state } = Init.init(net, [6, 6, 2], 3)
  const before = tf.memory().numTensors
  tf.tidy(() => {
    apply(net, params, state, tf.ones([2, 6, 6, 2]), "eval")
  })
  assert.equal(tf.memory().numTensors, before)
  Init.dispose(params, state)
})

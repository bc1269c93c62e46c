/**
 * The laws kit used as a user would (through `src/laws/index.ts`, i.e. `cmkg/laws`):
 * its laws hold on cmkg's interpreters over generated networks and losses, and
 * they FAIL — naming the tensor and the size of the error — on broken values:
 * an interpreter off by a relative 1e-3, a dropped tap, a loss off by 1e-3, a
 * hand-perturbed gradient, an HVP missing its second-order term, a zero tolerance.
 */
import assert from "node:assert/strict"
import { readFileSync } from "node:fs"
import { before, test } from "node:test"
import * as tf from "@tensorflow/tfjs-core"
import fc from "fast-check"
import * as Net from "../../src/dsl/Net.ts"
import * as Check from "../../src/interpreters/shape-check/index.ts"
import * as Laws from "../../src/laws/index.ts"

before(() => Laws.ready())

const smallNet = Net.seq(
  Net.conv2d(3, 3),
  Net.batchNorm(),
  Net.relu,
  Net.tap("features"),
  Net.globalAvgPool,
  Net.dense(2),
)
const value: Laws.NetValue = { net: smallNet, input: [4, 4, 2] }

// ---- the laws hold -----------------------------------------------------------------------------

test("interpretersAgree holds on generated networks (loops, groups, sigmoid, taps, batch norm)", () => {
  fc.assert(
    fc.property(Laws.netValue({ maxLayers: 4, maxSize: 5 }), fc.nat(), (v, seed) => {
      Laws.assertInterpretersAgree(v, { seed })
    }),
    { seed: 101, numRuns: 12 },
  )
})

test("interpretersAgree holds on generated losses over a student and a teacher", () => {
  fc.assert(
    fc.property(Laws.lossValue({ maxLayers: 2, maxSize: 4 }), fc.nat(), (v, seed) => {
      Laws.assertInterpretersAgree(v, { seed })
    }),
    { seed: 102, numRuns: 8 },
  )
})

test("a report lists what it compared and its margin", () => {
  const r = Laws.interpretersAgree(value, { seed: 3, wrtInput: true })
  assert.ok(r.ok, Laws.format(r))
  const names = r.comparisons.map((c) => c.what)
  for (const w of [
    "train output",
    "eval output",
    "train tap features",
    "train state 1/mean",
    "train gradient 0/kernel",
    "train gradient <input>",
    "tf init 1/variance",
  ])
    assert.ok(names.includes(w), `${w} in ${names.join(", ")}`)
  assert.ok(r.worst !== undefined && r.worst.error <= r.worst.tolerance)
})

test("the arbitraries make well-formed values: networks type-check, parameter trees fit them, losses check against their models", () => {
  const netWithParams = Laws.netValue().chain((v) =>
    Laws.parameters(v.net, v.input).map((drawn) => ({ ...v, ...drawn })),
  )
  fc.assert(
    fc.property(netWithParams, ({ net, input, params, state }) => {
      const checked = Check.check(net, input)
      assert.ok(checked.ok)
      assert.deepEqual(Object.keys(params).sort(), checked.summary.params.map((p) => p.path).sort())
      for (const p of checked.summary.params) assert.deepEqual(params[p.path]!.shape, p.shape)
      assert.equal(Object.keys(state).length, checked.summary.state.length)
      for (const t of Object.values(params))
        assert.ok(
          t.data.every((v) => Math.fround(v) === v),
          "float32 values",
        )
    }),
    { seed: 104, numRuns: 40 },
  )
  fc.assert(
    fc.property(Laws.lossValue(), (v) => {
      Laws.drawLossWorld(v, 2, 0) // throws, naming the term, when the loss does not check against its models
    }),
    { seed: 105, numRuns: 40 },
  )
})

// ---- and they catch broken values -------------------------------------------------------------------

/** cmkg's tf apply with its output scaled by 1 + δ: a bug of relative size δ in the last layer. */
const offBy =
  (delta: number): typeof Laws.TfInterpreter.apply =>
  (net, params, state, x, mode) => {
    const r = Laws.TfInterpreter.apply(net, params, state, x, mode)
    return { ...r, y: tf.mul(r.y, 1 + delta) }
  }

test("interpretersAgree catches a tf interpreter whose output is off by a relative 1e-3, in values and gradients", () => {
  const r = Laws.interpretersAgree(value, { seed: 3, tf: { apply: offBy(1e-3) } })
  assert.equal(r.ok, false)
  const failed = r.failures.map((c) => c.what)
  assert.ok(failed.includes("train output") && failed.includes("eval output"), failed.join(", "))
  assert.ok(failed.includes("train gradient 5/kernel"), failed.join(", "))
  assert.ok(!failed.includes("train tap features"), "the taps before the bug still agree")
  const output = r.failures.find((c) => c.what === "train output")!
  assert.ok(output.error > 1e-4 && output.error < 1e-3, `measured ${output.error}`)
  assert.throws(
    () => Laws.assertInterpretersAgree(value, { seed: 3, tf: { apply: offBy(1e-3) } }),
    (e: unknown) =>
      e instanceof Laws.LawViolation &&
      /does not hold/.test(e.message) &&
      /train output: error \d\.\d\de-4 > tolerance/.test(e.message) &&
      /tf -?\d.*, reference -?\d/.test(e.message),
  )
})

test("interpretersAgree catches a tf interpreter whose batch norm uses ε = 1e-3 instead of the network's 1e-5", () => {
  const withEps = (eps: number) =>
    Net.seq(
      Net.conv2d(3, 3),
      Net.batchNorm({ eps }),
      Net.relu,
      Net.tap("features"),
      Net.globalAvgPool,
      Net.dense(2),
    )
  assert.ok(Laws.interpretersAgree({ net: withEps(1e-5), input: [4, 4, 2] }, { seed: 3 }).ok)
  const wrongEps: typeof Laws.TfInterpreter.apply = (_net, params, state, x, mode) =>
    Laws.TfInterpreter.apply(withEps(1e-3), params, state, x, mode)
  const r = Laws.interpretersAgree(
    { net: withEps(1e-5), input: [4, 4, 2] },
    { seed: 3, tf: { apply: wrongEps } },
  )
  assert.equal(r.ok, false)
  const failed = r.failures.map((c) => c.what)
  assert.ok(failed.includes("train tap features") && failed.includes("train output"), Laws.format(r))
})

test("interpretersAgree catches a tf interpreter that drops a tap: the shape comparison names it", () => {
  const dropTap: typeof Laws.TfInterpreter.apply = (net, params, state, x, mode) => {
    const r = Laws.TfInterpreter.apply(net, params, state, x, mode)
    const { features: _, ...taps } = r.taps
    return { ...r, taps }
  }
  const r = Laws.interpretersAgree(value, { seed: 3, tf: { apply: dropTap } })
  assert.equal(r.ok, false)
  const shape = r.failures.find((c) => c.what === "train tap features shape")
  assert.ok(shape !== undefined, Laws.format(r))
  assert.match(shape.detail, /runtime missing, static \[2, 4, 4, 3\]/)
})

test("interpretersAgree catches a reference that runs batch norm in eval mode when asked for train", () => {
  const evalOnly: typeof Laws.Reference.apply = (net, params, state, x) =>
    Laws.Reference.apply(net, params, state, x, "eval")
  const r = Laws.interpretersAgree(value, { seed: 3, reference: { apply: evalOnly }, gradients: false })
  assert.equal(r.ok, false)
  assert.deepEqual(
    r.failures.map((c) => c.what).filter((w) => w.startsWith("eval")),
    [],
  )
  assert.ok(r.failures.some((c) => c.what === "train output"))
})

test("interpretersAgree catches a tf loss off by a relative 1e-3 on generated losses", () => {
  const [v] = fc.sample(Laws.lossValue({ maxLayers: 2, maxSize: 4 }), { seed: 7, numRuns: 1 })
  const skewed: typeof Laws.TfLoss.evaluate = (loss, env) => tf.mul(Laws.TfLoss.evaluate(loss, env), 1 + 1e-3)
  assert.ok(Laws.interpretersAgree(v!, { seed: 1 }).ok)
  const r = Laws.interpretersAgree(v!, { seed: 1, tf: { evaluate: skewed } })
  assert.equal(r.ok, false)
  assert.ok(
    r.failures.some((c) => c.what === "train loss value"),
    Laws.format(r),
  )
})

test("a deliberately wrong tolerance (0) fails: float32 and float64 really differ, and the report says by how much", () => {
  const r = Laws.interpretersAgree(value, { seed: 3, tolerance: { value: 0, gradient: 0 } })
  assert.equal(r.ok, false)
  const output = r.failures.find((c) => c.what === "train output")!
  // Of the order of float32 round-off: more than 0, far below the default budget.
  assert.ok(
    output.error > 0 && output.error < Laws.Tolerances.valueTolerance(Laws.Tolerances.depth(smallNet)),
  )
})

// ---- gradients and HVPs against finite differences ------------------------------------------------

/** f(a, b) = Σ softplus(a)·b + ½Σ a²·b², once on tf and once in float64, with its gradient and HVP by hand. */
const softplus = (z: number) => Math.log1p(Math.exp(z))
const sigmoid = (z: number) => 1 / (1 + Math.exp(-z))
const smooth = {
  tf: (p: Laws.TfInterpreter.Tree) =>
    tf.add(
      tf.sum(tf.mul(tf.softplus(p.a!), p.b!)),
      tf.mul(0.5, tf.sum(tf.mul(tf.square(p.a!), tf.square(p.b!)))),
    ) as tf.Scalar,
  float64: (p: Laws.Reference.Params) => {
    let s = 0
    p.a!.data.forEach((a, i) => {
      const b = p.b!.data[i]!
      s += softplus(a) * b + 0.5 * a * a * b * b
    })
    return s
  },
} satisfies Laws.ScalarFunction
const byHand = (p: Laws.Reference.Params): Laws.Reference.Params => ({
  a: Laws.Reference.Tensors.generate(p.a!.shape, (i) => {
    const [a, b] = [p.a!.data[i]!, p.b!.data[i]!]
    return sigmoid(a) * b + a * b * b
  }),
  b: Laws.Reference.Tensors.generate(p.b!.shape, (i) => {
    const [a, b] = [p.a!.data[i]!, p.b!.data[i]!]
    return softplus(a) + a * a * b
  }),
})
const hvpByHand = (p: Laws.Reference.Params, v: Laws.Reference.Params, withSecondOrder = true) => {
  const el = (i: number) => [p.a!.data[i]!, p.b!.data[i]!, v.a!.data[i]!, v.b!.data[i]!] as const
  return {
    a: Laws.Reference.Tensors.generate(p.a!.shape, (i) => {
      const [a, b, va, vb] = el(i)
      const s = sigmoid(a)
      return (withSecondOrder ? s * (1 - s) * b + b * b : 0) * va + (s + 2 * a * b) * vb
    }),
    b: Laws.Reference.Tensors.generate(p.b!.shape, (i) => {
      const [a, b, va, vb] = el(i)
      return (sigmoid(a) + 2 * a * b) * va + a * a * vb
    }),
  }
}
const point = fc.tuple(Laws.tensor([2, 3]), Laws.tensor([2, 3])).map(([a, b]) => ({ a, b }))
/** A point where every term of f matters (no element near 0). */
const typical = {
  a: Laws.Reference.Tensors.generate([2, 3], (i) => Math.fround(0.3 + 0.2 * i)),
  b: Laws.Reference.Tensors.generate([2, 3], (i) => Math.fround(0.9 - 0.25 * i)),
}

test("gradients and HVPs of a smooth function match finite differences: tf autodiff and by hand, float64 and float32", () => {
  fc.assert(
    fc.property(point, fc.nat(), (at, seed) => {
      Laws.assertGradientsMatchFiniteDifferences(smooth, at)
      Laws.assertGradientsMatchFiniteDifferences({ float64: smooth.float64, gradient: byHand }, at)
      Laws.assertGradientsMatchFiniteDifferences({ tf: smooth.tf }, at, { seed })
      Laws.assertHvpMatchesFiniteDifferences(smooth, at, { seed })
      Laws.assertHvpMatchesFiniteDifferences({ float64: smooth.float64, hvp: hvpByHand }, at, { seed })
      Laws.assertHvpMatchesFiniteDifferences({ tf: smooth.tf }, at, { seed })
    }),
    { seed: 103, numRuns: 15 },
  )
})

test("a hand-perturbed gradient (one element off by 1e-3) fails, in float64 and float32, naming the tensor", () => {
  const at = typical
  const perturbed = (p: Laws.Reference.Params) => {
    const g = byHand(p)
    const b = Float64Array.from(g.b!.data)
    b[4] = b[4]! + 1e-3
    return { ...g, b: Laws.Reference.Tensors.make(g.b!.shape, b) }
  }
  const r64 = Laws.gradientsMatchFiniteDifferences({ float64: smooth.float64, gradient: perturbed }, at)
  assert.deepEqual(
    r64.failures.map((c) => c.what),
    ["gradient b"],
  )
  assert.match(Laws.format(r64), /gradient b: error .* worst element 4/)
  const r32 = Laws.gradientsMatchFiniteDifferences({ tf: smooth.tf, gradient: perturbed }, at, {
    directions: 4,
  })
  assert.equal(
    r32.ok,
    true,
    "1e-3 is below float32 differences' resolution (2e-2 relative): the float64 check is the sharp one",
  )
  const bigger = (p: Laws.Reference.Params) => {
    const g = perturbed(p)
    return {
      ...g,
      b: Laws.Reference.Tensors.generate(g.b!.shape, (i) => g.b!.data[i]! + (i === 4 ? 0.5 : 0)),
    }
  }
  const r32big = Laws.gradientsMatchFiniteDifferences({ tf: smooth.tf, gradient: bigger }, at, {
    directions: 4,
  })
  assert.equal(r32big.ok, false)
  assert.ok(
    r32big.failures.every((c) => c.what.includes("gradient b")),
    Laws.format(r32big),
  )
})

test("an HVP that drops its second-order term (Gauss-Newton style) fails; so does tfjs's autodiff of a perturbed function", () => {
  const at = typical
  const r = Laws.hvpMatchesFiniteDifferences(
    { float64: smooth.float64, hvp: (p, v) => hvpByHand(p, v, false) },
    at,
    { seed: 1 },
  )
  assert.equal(r.ok, false)
  assert.deepEqual(
    r.failures.map((c) => c.what),
    ["Hv0 a"],
  )
  // tf's function is not the float64 one (a 1e-3 extra curvature in a): caught by the float64 differences.
  const drifted: Laws.ScalarFunction = {
    tf: (p) => tf.add(smooth.tf(p), tf.mul(5e-4, tf.sum(tf.square(p.a!)))) as tf.Scalar,
    float64: smooth.float64,
  }
  assert.equal(Laws.hvpMatchesFiniteDifferences(drifted, at, { seed: 1 }).ok, false)
  assert.equal(Laws.gradientsMatchFiniteDifferences(drifted, at).ok, false)
})

test("on a network, tf's gradients and HVPs match the reference's float64 differences, every tensor compared or skipped at a kink", () => {
  const { params, state } = Laws.drawParams(smallNet, [4, 4, 2], 9)
  const x = fc.sample(Laws.batchOf([4, 4, 2], 2), { seed: 9, numRuns: 1 })[0]!
  const onTf = (p: Laws.TfInterpreter.Tree) =>
    tf.sum(
      tf.square(Laws.TfInterpreter.apply(smallNet, p, Laws.treeToTf(state), Laws.toTf(x), "batch-stats").y),
    ) as tf.Scalar
  const inFloat64 = (p: Laws.Reference.Params) =>
    Laws.Reference.apply(smallNet, p, state, x, "train").y.data.reduce((s, v) => s + v * v, 0)
  const depth = Laws.Tolerances.depth(smallNet)
  const g = Laws.assertGradientsMatchFiniteDifferences({ tf: onTf, float64: inFloat64 }, params, { depth })
  assert.equal(g.comparisons.length + g.skipped, Object.keys(params).length)
  Laws.assertHvpMatchesFiniteDifferences({ tf: onTf, float64: inFloat64 }, params, { depth, seed: 4 })
})

test("a check leaves no tensors behind, whether the law holds or not", () => {
  const live = () => tf.memory().numTensors
  const before = live()
  Laws.interpretersAgree(value, { seed: 3, wrtInput: true })
  Laws.interpretersAgree(value, { seed: 3, tf: { apply: offBy(1e-3) } })
  Laws.gradientsMatchFiniteDifferences(smooth, typical)
  Laws.gradientsMatchFiniteDifferences({ tf: smooth.tf }, typical)
  Laws.hvpMatchesFiniteDifferences(smooth, typical)
  Laws.hvpMatchesFiniteDifferences({ tf: smooth.tf }, typical)
  assert.equal(live(), before)
})

// ---- the doc's example is this directory's example.test.ts --------------------------------------------

test("docs/laws-kit.md's example is test/laws-kit/example.test.ts, up to its imports", () => {
  const doc = readFileSync("docs/laws-kit.md", "utf8")
  const fenced = /## Example[\s\S]*?```ts\n([\s\S]*?)```/.exec(doc)
  assert.ok(fenced !== null, "docs/laws-kit.md has a ```ts block under ## Example")
  const body = (s: string) =>
    s
      .replace(/^\/\*\*[\s\S]*?\*\/\n/, "")
      .split("\n")
      .filter((l) => !l.startsWith("import "))
      .join("\n")
      .trim()
  assert.equal(body(fenced[1]!), body(readFileSync("test/laws-kit/example.test.ts", "utf8")))
})

test("the kit's float64 half (arbitraries, networks, values, tolerances, reports, float64 differences) imports no tfjs", () => {
  for (const f of ["arbitraries", "net", "values", "tolerances", "report", "fd64"]) {
    const source = readFileSync(`src/laws/${f}.ts`, "utf8")
    const imports = [...source.matchAll(/from\s+"([^"]+)"/g)].map((m) => m[1]!)
    for (const i of imports)
      assert.ok(
        !i.startsWith("@tensorflow") &&
          !i.includes("interpreters/tf") &&
          !/\/(agree|finite-differences)\.ts$/.test(i),
        `src/laws/${f}.ts imports ${i}`,
      )
  }
})

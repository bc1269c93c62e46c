/**
 * The shape checker's bad-input reports, node kind by node kind, each at the
 * boundary where a value stops being valid (and the first valid value on the
 * other side), with the exact message and path a user reads; and what a failed
 * layer leaves for the layers after it (checking goes on past each error).
 */
import assert from "node:assert/strict"
import { describe, test } from "node:test"
import * as Net from "../../src/dsl/Net.ts"
import * as Check from "../../src/interpreters/shape-check/index.ts"

/** The formatted errors of checking `net` on `input` (none when it checks). */
const errors = (net: Net.AnyNet, input: readonly number[], path = ""): string[] => {
  const c = Check.check(net, input, path)
  return c.ok ? [] : c.errors.map(Check.formatError)
}
const ok = (net: Net.AnyNet, input: readonly number[]) => {
  const c = Check.check(net, input)
  assert.ok(c.ok, c.ok ? "" : c.errors.map(Check.formatError).join("; "))
  return c.summary
}
const output = (net: Net.AnyNet, input: readonly number[]) => Check.check(net, input).summary.output

/** A node with fields the constructors would not make (the checker must still say what is wrong). */
const raw = <T extends Net.Node>(n: T): Net.Net => n as unknown as Net.Net
const conv = (fields: Partial<Extract<Net.Node, { _tag: "Conv2d" }>>) =>
  raw({ ...(Net.conv2d(4, 3) as unknown as Extract<Net.Node, { _tag: "Conv2d" }>), ...fields })

describe("input shapes", () => {
  test("must have positive integer dimensions and at least one axis", () => {
    for (const input of [[], [0, 3], [2.5], [-1]])
      assert.deepEqual(errors(Net.relu, input), [
        `<root>: input shape [${input.join(", ")}] must have positive integer dimensions and at least one axis`,
      ])
    assert.deepEqual(errors(Net.relu, [], "student"), [
      "student: input shape [] must have positive integer dimensions and at least one axis",
    ])
    assert.deepEqual(ok(Net.relu, [1]).output, [1])
  })
})

describe("convolutions", () => {
  test("each hyper-parameter must be a positive integer, reported once, and the layer's output is unknown", () => {
    const cases: Array<[Net.Net, string]> = [
      [conv({ filters: 0 }), "filters must be a positive integer, got 0"],
      [conv({ kernel: [3, 0] }), "kernel must be a positive integer, got 3×0"],
      [conv({ stride: [1.5, 1] }), "stride must be a positive integer, got 1.5×1"],
      [conv({ dilation: [1, 0] }), "dilation must be a positive integer, got 1×0"],
      [conv({ groups: 0 }), "groups must be a positive integer, got 0"],
    ]
    for (const [net, message] of cases) {
      assert.deepEqual(errors(Net.scope("c", net), [8, 8, 4]), [`c: ${message}`])
      assert.equal(output(net, [8, 8, 4]), undefined)
    }
  })

  test("an input that is not H×W×C", () => {
    assert.deepEqual(errors(Net.conv2d(4, 3), [8]), [
      "<root>: conv2d expects an image-like input H×W×C, got 8",
    ])
    assert.deepEqual(errors(Net.maxPool(2), [8, 8]), [
      "<root>: max pool expects an image-like input H×W×C, got 8×8",
    ])
    assert.deepEqual(errors(Net.avgPool(2), [8]), [
      "<root>: avg pool expects an image-like input H×W×C, got 8",
    ])
    assert.deepEqual(errors(Net.globalAvgPool, [8]), [
      "<root>: global average pool expects an image-like input H×W×C, got 8",
    ])
    assert.deepEqual(errors(Net.pixelShuffle(2), [4, 4, 4, 4]), [
      "<root>: pixel shuffle expects an image-like input H×W×C, got 4×4×4×4",
    ])
  })

  test("groups must divide the input channels and the filters, each on its own", () => {
    const message = (g: number, c: number, f: number) =>
      `<root>: groups=${g} must divide both input channels (${c}) and filters (${f})`
    assert.deepEqual(errors(Net.conv2d(8, 3, { groups: 2 }), [5, 5, 3]), [message(2, 3, 8)])
    assert.deepEqual(errors(Net.conv2d(6, 3, { groups: 4 }), [5, 5, 4]), [message(4, 4, 6)])
    assert.deepEqual(ok(Net.conv2d(8, 3, { groups: 4 }), [5, 5, 4]).output, [5, 5, 8])
  })

  test("a kernel that does not fit, along either axis; one that just fits", () => {
    assert.deepEqual(errors(Net.conv2d(4, 5, { padding: "valid" }), [4, 8, 1]), [
      "<root>: kernel 5×5 (dilation 1×1) does not fit input 4×8×1",
    ])
    assert.deepEqual(errors(Net.conv2d(4, 3, { padding: "valid", dilation: 2 }), [8, 4, 1]), [
      "<root>: kernel 3×3 (dilation 2×2) does not fit input 8×4×1",
    ])
    assert.equal(output(Net.conv2d(4, 5, { padding: "valid" }), [8, 4, 1]), undefined)
    assert.deepEqual(ok(Net.conv2d(4, 5, { padding: "valid" }), [5, 5, 1]).output, [1, 1, 4])
  })

  test("fan-in and fan-out of a grouped, non-square kernel", () => {
    const s = ok(Net.conv2d(8, [3, 2], { groups: 2 }), [6, 6, 4])
    const kernel = s.params.find((p) => p.path === "kernel")!
    const bias = s.params.find((p) => p.path === "bias")!
    assert.deepEqual(kernel.shape, [3, 2, 2, 8])
    assert.equal(kernel.fanIn, 2 * 3 * 2)
    assert.equal(kernel.fanOut, (8 / 2) * 3 * 2)
    assert.equal(bias.fanOut, kernel.fanOut)
  })
})

describe("batch norm", () => {
  test("eps > 0 and momentum in [0, 1], both ends of the interval included", () => {
    const message = (eps: number, momentum: number) =>
      `bn: batch norm needs eps > 0 and momentum in [0, 1], got eps ${eps}, momentum ${momentum}`
    for (const [eps, momentum] of [
      [0, 0.1],
      [-1e-5, 0.1],
      [1e-5, -0.1],
      [1e-5, 1.1],
      [Number.NaN, 0.1],
    ] as const)
      assert.deepEqual(errors(Net.scope("bn", Net.batchNorm({ eps, momentum })), [4]), [
        message(eps, momentum),
      ])
    for (const momentum of [0, 1]) ok(Net.batchNorm({ eps: 1e-12, momentum }), [4])
  })

  test("γ and β are parameters, the running mean and variance buffers, each counted once", () => {
    const s = ok(Net.scope("bn", Net.batchNorm()), [3, 3, 5])
    assert.equal(s.cost.params, 10)
    assert.equal(s.cost.buffers, 10)
    assert.deepEqual(
      s.state.map((b) => [b.path, b.role]),
      [
        ["bn/mean", "mean"],
        ["bn/variance", "variance"],
      ],
    )
    // A batch norm shared across a loop's iterations has one γ, β, mean and variance.
    const shared = Net.loop({
      iterations: 3,
      body: Net.scope("bn", Net.batchNorm()),
      feedback: Net.identity,
      readout: Net.identity,
      batchNorm: "shared",
    })
    const l = ok(shared, [2, 2, 5])
    assert.equal(l.cost.params, 10)
    assert.equal(l.cost.buffers, 10)
    assert.deepEqual(l.loops[0]!.paramsPerIteration, [10, 0, 0])
  })
})

describe("pooling", () => {
  test("a window that does not fit, along either axis; one that just fits", () => {
    assert.deepEqual(errors(Net.maxPool(3), [2, 8, 1]), ["<root>: pool window 3×3 does not fit input 2×8×1"])
    assert.deepEqual(errors(Net.avgPool(3), [8, 2, 1]), ["<root>: pool window 3×3 does not fit input 8×2×1"])
    assert.deepEqual(ok(Net.maxPool(3), [3, 3, 1]).output, [1, 1, 1])
    assert.deepEqual(
      errors(raw({ _tag: "Pool", op: "max", kernel: [0, 2], stride: [1, 1], padding: "valid" }), [4, 4, 1]),
      ["<root>: kernel must be a positive integer, got 0×2"],
    )
  })

  test("explicit padding may be at most half the window, on each side of each axis", () => {
    const pool = (kernel: number, padding: [[number, number], [number, number]]) =>
      Net.avgPool(kernel, { stride: 1, padding })
    assert.deepEqual(
      errors(
        pool(3, [
          [2, 0],
          [0, 0],
        ]),
        [6, 6, 1],
      ),
      ["<root>: pool padding 2,0,0,0 exceeds half the window 3×3"],
    )
    assert.deepEqual(
      errors(
        pool(3, [
          [0, 0],
          [0, 2],
        ]),
        [6, 6, 1],
      ),
      ["<root>: pool padding 0,0,0,2 exceeds half the window 3×3"],
    )
    assert.deepEqual(
      ok(
        pool(2, [
          [1, 1],
          [1, 1],
        ]),
        [4, 4, 1],
      ).output,
      [5, 5, 1],
    )
    assert.deepEqual(
      ok(
        pool(3, [
          [1, 0],
          [0, 1],
        ]),
        [4, 4, 1],
      ).output,
      [3, 3, 1],
    )
    // Named paddings are not checked against the window.
    assert.deepEqual(ok(Net.avgPool(3, { stride: 1, padding: "same" }), [4, 4, 1]).output, [4, 4, 1])
  })
})

describe("dense, reshape and pixel shuffle", () => {
  test("dense: units, a vector input, the declared input features", () => {
    assert.deepEqual(errors(Net.scope("fc", Net.dense(0)), [4]), [
      "fc: units must be a positive integer, got 0",
    ])
    assert.deepEqual(errors(Net.dense(3, { inFeatures: 4 }), [5]), [
      "<root>: expects 4 input features, got 5",
    ])
    assert.deepEqual(ok(Net.dense(3, { inFeatures: 5 }), [5]).output, [3])
    // A dense layer after an error still gives its units, so the layers after it are checked.
    const c = Check.check(Net.seq(Net.scope("a", Net.dense(5)), Net.scope("b", Net.dense(2))), [4, 4, 1])
    assert.equal(c.ok, false)
    assert.deepEqual(
      c.summary.layers.map((l) => [l.path, l.output]),
      [
        ["a", [5]],
        ["b", [2]],
      ],
    )
    const after = Check.check(
      Net.seq(Net.scope("a", conv({ filters: 0 })), Net.scope("b", Net.dense(7))),
      [4, 4, 1],
    )
    assert.deepEqual(
      after.summary.layers.map((l) => [l.path, l.output]),
      [
        ["a", undefined],
        ["b", [7]],
      ],
    )
  })

  test("reshape: at most one −1, no 0 or < −1, the element count kept", () => {
    const bad = (shape: number[], input: number[]) =>
      assert.deepEqual(errors(Net.reshape(shape), input), [
        `<root>: cannot reshape ${input.join("×")} (${input.reduce((a, b) => a * b, 1)} elements) to ${shape.join("×")}`,
      ])
    bad([], [4, 3])
    bad([-1, -1], [4, 3])
    bad([0, 12], [4, 3])
    bad([-2, -6], [4, 3])
    bad([3, 5], [4, 3])
    bad([5, -1], [4, 3])
    assert.deepEqual(ok(Net.reshape([2, -1]), [4, 3]).output, [2, 6])
    assert.deepEqual(ok(Net.reshape([-1]), [4, 3]).output, [12])
    assert.deepEqual(ok(Net.reshape([3, 4]), [12]).output, [3, 4])
  })

  test("pixel shuffle: a positive integer factor whose square divides the channels", () => {
    for (const factor of [1.5, 0, -1])
      assert.deepEqual(errors(Net.pixelShuffle(factor), [4, 4, 8]), [
        `<root>: pixel shuffle by ${factor} needs channels divisible by ${factor * factor}, got 8`,
      ])
    assert.deepEqual(errors(Net.pixelShuffle(2), [4, 4, 6]), [
      "<root>: pixel shuffle by 2 needs channels divisible by 4, got 6",
    ])
    assert.deepEqual(ok(Net.pixelShuffle(1), [4, 4, 6]).output, [4, 4, 6])
  })
})

describe("residuals, branches and taps", () => {
  test("a residual whose body and shortcut disagree; a residual after its body failed keeps the shortcut's shape", () => {
    assert.deepEqual(errors(Net.scope("r", Net.residual(Net.conv2d(8, 3))), [4, 4, 2]), [
      "r: residual body gives 4×4×8 but the shortcut gives 4×4×2",
    ])
    const c = Check.check(Net.scope("r", Net.residual(conv({ filters: 0 }))), [4, 4, 2])
    assert.equal(c.ok, false)
    assert.deepEqual(c.summary.layers.findLast((l) => l.path === "r")!.output, [4, 4, 2])
  })

  test("concat needs equal shapes but the last axis; add and mul equal shapes; no branches is an error", () => {
    const two = (a: Net.Net, b: Net.Net, combine: typeof Net.add) => Net.scope("p", combine(a, b))
    assert.deepEqual(errors(two(Net.identity, Net.maxPool(2), Net.concat), [4, 4, 2]), [
      "p: concat needs equal shapes but the last axis, got 4×4×2, 2×2×2",
    ])
    assert.deepEqual(errors(two(Net.identity, Net.flatten, Net.concat), [4, 4, 2]), [
      "p: concat needs equal shapes but the last axis, got 4×4×2, 32",
    ])
    assert.deepEqual(ok(two(Net.identity, Net.conv2d(3, 1), Net.concat), [4, 4, 2]).output, [4, 4, 5])
    assert.deepEqual(ok(two(Net.dense(3), Net.dense(5), Net.concat), [4]).output, [8])
    assert.deepEqual(errors(two(Net.identity, Net.conv2d(3, 1), Net.add), [4, 4, 2]), [
      "p: add needs equal shapes, got 4×4×2, 4×4×3",
    ])
    assert.deepEqual(errors(two(Net.conv2d(3, 1), Net.identity, Net.mul), [4, 4, 2]), [
      "p: mul needs equal shapes, got 4×4×3, 4×4×2",
    ])
    assert.deepEqual(ok(two(Net.identity, Net.conv2d(2, 1), Net.add), [4, 4, 2]).output, [4, 4, 2])
    assert.deepEqual(errors(Net.scope("p", Net.concat()), [4]), ["p: concat of no branches"])
  })

  test("a tap after a failed layer names no shape", () => {
    const c = Check.check(Net.seq(conv({ filters: 0 }), Net.tap("after")), [4, 4, 1])
    assert.equal(c.ok, false)
    assert.deepEqual(c.summary.taps, {})
  })
})

describe("loops", () => {
  const body = Net.seq(Net.scope("conv", Net.conv2d(2, 3, { bias: false })), Net.scope("bn", Net.batchNorm()))
  const readout = Net.seq(Net.globalAvgPool, Net.scope("head", Net.dense(3)))
  const make = (iterations: number, feedback: Net.Net = Net.identity) =>
    Net.scope("L", Net.loop({ iterations, body, feedback, readout }))

  test("a positive integer number of iterations, not nested", () => {
    for (const n of [0, 1.5, -1])
      assert.deepEqual(errors(make(n), [4, 4, 2]), [
        `L: loop needs a positive integer number of iterations, got ${n}`,
      ])
    const nested = Net.scope(
      "outer",
      Net.loop({ iterations: 2, body: make(2), feedback: Net.identity, readout: Net.identity }),
    )
    assert.ok(errors(nested, [4, 4, 2]).includes("outer/body/L: loops cannot be nested"))
  })

  test("the feedback must give the loop input's shape", () => {
    assert.deepEqual(errors(make(3, Net.conv2d(5, 1)), [4, 4, 2]), [
      "L/feedback: loop feedback gives 4×4×5 but must match the loop input 4×4×2",
    ])
  })

  test("parameters per iteration: all at the first, one batch norm's γ and β at each later one", () => {
    const s = ok(make(3), [4, 4, 2])
    const first = 3 * 3 * 2 * 2 + 2 * 2 + (2 * 3 + 3)
    assert.deepEqual(s.loops[0]!.paramsPerIteration, [first, 4, 4])
    assert.equal(s.cost.params, first + 8)
    // Each layer is listed once, however many iterations visit it.
    const paths = s.layers.map((l) => l.path)
    assert.equal(new Set(paths).size, paths.length)
    // After the loop, parameter paths may be used again without being shared ones.
    assert.deepEqual(
      errors(
        Net.seq(make(2), Net.scope("L", Net.scope("readout", Net.scope("head", Net.dense(2))))),
        [4, 4, 2],
      ),
      [
        "L/readout/head/kernel: two layers share this parameter path; wrap one in a scope",
        "L/readout/head/bias: two layers share this parameter path; wrap one in a scope",
      ],
    )
  })
})

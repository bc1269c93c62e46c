/** Hand-computed examples for every leaf operation of the reference interpreter. */
import assert from "node:assert/strict"
import { describe, test } from "node:test"
import * as Net from "../../src/dsl/Net.ts"
import { apply, init, type Params, type State } from "../../src/interpreters/reference/index.ts"
import { fill, generate, make } from "../../src/interpreters/reference/Tensor.ts"
import { check } from "../../src/interpreters/shape-check/index.ts"
import { assertClose, assertTensor, sliceLast } from "./helpers.ts"

const none: State = {}

describe("Conv2d", () => {
  // x = 1 … 9 (3×3, one channel); k = Sobel-x [[1,0,−1],[2,0,−2],[1,0,−1]] (cross-correlation, as TF).
  const x = make([1, 3, 3, 1], [1, 2, 3, 4, 5, 6, 7, 8, 9])
  const kernel = make([3, 3, 1, 1], [1, 0, -1, 2, 0, -2, 1, 0, -1])

  test("3×3 valid: one output, Σ x·k + bias", () => {
    const net = Net.scope("c", Net.conv2d(1, 3, { padding: "valid" }))
    const params: Params = { "c/kernel": kernel, "c/bias": make([1], [0.5]) }
    // (1 − 3) + 2·(4 − 6) + (7 − 9) + 0.5
    assertTensor(apply(net, params, none, x, "eval").y, [1, 1, 1, 1], [-7.5])
  })

  test("3×3 same, stride 1: zero padding of 1 on every side", () => {
    const net = Net.scope("c", Net.conv2d(1, 3, { bias: false }))
    const y = apply(net, { "c/kernel": kernel }, none, x, "eval").y
    // e.g. (0,0): x(0,1)·(−2) + x(1,1)·(−1) = −4 − 5; (2,0): x(1,1)·(−1) + x(2,1)·(−2) = −5 − 16
    assertTensor(y, [1, 3, 3, 1], [-9, -6, 9, -20, -8, 20, -21, -6, 21])
  })

  test("1×1 conv over channels is a per-pixel matrix product", () => {
    const net = Net.scope("c", Net.conv2d(2, 1))
    const params: Params = {
      "c/kernel": make([1, 1, 3, 2], [1, 2, 3, 4, 5, 6]), // rows: input channel, columns: filter
      "c/bias": make([2], [10, 20]),
    }
    const y = apply(net, params, none, make([1, 1, 2, 3], [1, 0, 0, 1, 1, 1]), "eval").y
    // pixel 0 = [1,0,0] → [1, 2] + bias; pixel 1 = [1,1,1] → [1+3+5, 2+4+6] + bias
    assertTensor(y, [1, 1, 2, 2], [11, 22, 19, 32])
  })

  test("dilation 2 skips every other input", () => {
    const net = Net.scope("c", Net.conv2d(1, [1, 3], { dilation: [1, 2], padding: "valid", bias: false }))
    const y = apply(
      net,
      { "c/kernel": make([1, 3, 1, 1], [1, 10, 100]) },
      none,
      make([1, 1, 5, 1], [1, 2, 3, 4, 5]),
      "eval",
    ).y
    assertTensor(y, [1, 1, 1, 1], [1 + 10 * 3 + 100 * 5])
  })

  test("explicit padding [[top, bottom], [left, right]]", () => {
    const net = Net.scope(
      "c",
      Net.conv2d(1, 1, {
        padding: [
          [1, 0],
          [0, 2],
        ],
        bias: false,
      }),
    )
    const y = apply(net, { "c/kernel": make([1, 1, 1, 1], [1]) }, none, make([1, 1, 1, 1], [7]), "eval").y
    assertTensor(y, [1, 2, 3, 1], [0, 0, 0, 7, 0, 0])
  })

  test("same padding with stride 2 follows TensorFlow: out = ceil(in/2), the odd padding cell goes after", () => {
    const ones = (h: number, w: number) => fill([1, h, w, 1], 1)
    const net = Net.scope("c", Net.conv2d(1, 3, { stride: 2, bias: false }))
    const params: Params = { "c/kernel": fill([3, 3, 1, 1], 1) }
    // 8×8: out 4, total = 3·2 + 3 − 8 = 1 → before 0, after 1. Window (0,0) covers rows/cols 0…2 (9 cells),
    // window (3,3) covers 6…8 of which 8 is padding (2×2 cells); (0,3): 3×2.
    const y8 = apply(net, params, none, ones(8, 8), "eval").y
    assert.deepEqual(y8.shape, [1, 4, 4, 1])
    assert.deepEqual([y8.data[0], y8.data[3], y8.data[15]], [9, 6, 4])
    // 7×7: out 4, total = 3·2 + 3 − 7 = 2 → before 1, after 1: (0,0) covers −1…1 (2×2 cells), (3,3) covers 5…7.
    const y7 = apply(net, params, none, ones(7, 7), "eval").y
    assert.deepEqual(y7.shape, [1, 4, 4, 1])
    assert.deepEqual([y7.data[0], y7.data[1], y7.data[15]], [4, 6, 4])
    // An asymmetric input tells before from after: 1×4, kernel [1,2], stride 2 → out 2, total 0 → no padding.
    const row = Net.scope("c", Net.conv2d(1, [1, 2], { stride: 2, bias: false }))
    const yr = apply(
      row,
      { "c/kernel": make([1, 2, 1, 1], [1, 1]) },
      none,
      make([1, 1, 4, 1], [1, 2, 4, 8]),
      "eval",
    ).y
    assertTensor(yr, [1, 1, 2, 1], [3, 12])
    // 1×5, kernel 4, stride 2 → out 3, total = 4 + 4 − 5 = 3 → before 1, after 2.
    const wide = Net.scope("c", Net.conv2d(1, [1, 4], { stride: 2, bias: false }))
    const yw = apply(
      wide,
      { "c/kernel": make([1, 4, 1, 1], [1, 1, 1, 1]) },
      none,
      make([1, 1, 5, 1], [1, 2, 4, 8, 16]),
      "eval",
    ).y
    // windows: −1…2 → 1+2+4; 1…4 → 2+4+8+16; 3…6 → 8+16
    assertTensor(yw, [1, 1, 3, 1], [7, 30, 24])
  })

  test("output sizes agree with the shape checker over strides, dilations and paddings", () => {
    const paddings: Net.Padding[] = [
      "same",
      "valid",
      [
        [1, 2],
        [0, 1],
      ],
    ]
    for (const size of [5, 6, 7, 8])
      for (const kernel of [1, 2, 3])
        for (const stride of [1, 2, 3])
          for (const dilation of [1, 2])
            for (const padding of paddings) {
              const net = Net.scope("c", Net.conv2d(2, kernel, { stride, dilation, padding }))
              const checked = check(net, [size, size + 1, 1])
              if (!checked.ok) continue
              const { params, state } = init(net, [size, size + 1, 1], 1)
              const y = apply(net, params, state, fill([1, size, size + 1, 1], 1), "eval").y
              assert.deepEqual(
                y.shape,
                [1, ...checked.summary.output],
                JSON.stringify({ size, kernel, stride, dilation, padding }),
              )
            }
  })

  test("grouped conv = the two halves convolved separately and concatenated", () => {
    const grouped = Net.scope("g", Net.conv2d(6, 3, { groups: 2 }))
    const { params } = init(grouped, [5, 5, 4], 7)
    const x = generate([2, 5, 5, 4], (i) => Math.sin(i * 0.37))
    const y = apply(grouped, params, none, x, "eval").y

    const kernel = params["g/kernel"]!
    assert.deepEqual(kernel.shape, [3, 3, 2, 6]) // Cin/groups = 2
    const single = Net.scope("c", Net.conv2d(3, 3))
    const half = (g: number) =>
      apply(
        single,
        {
          "c/kernel": sliceLast(kernel, 3 * g, 3 * g + 3),
          "c/bias": sliceLast(params["g/bias"]!, 3 * g, 3 * g + 3),
        },
        none,
        sliceLast(x, 2 * g, 2 * g + 2),
        "eval",
      ).y
    assertClose(sliceLast(y, 0, 3), half(0))
    assertClose(sliceLast(y, 3, 6), half(1))
  })
})

describe("BatchNorm", () => {
  // B=2, H=1, W=2, C=2. Channel 0: 1, 3, 5, 7 (μ 4, biased σ² 5, unbiased 20/3); channel 1: all 10.
  const x = make([2, 1, 2, 2], [1, 10, 3, 10, 5, 10, 7, 10])
  const net = Net.scope("bn", Net.batchNorm({ eps: 4, momentum: 0.1 }))
  const params: Params = { "bn/gamma": make([2], [2, 3]), "bn/beta": make([2], [0.5, -1]) }
  const state: State = { "bn/mean": make([2], [0, 0]), "bn/variance": make([2], [1, 1]) }

  test("train normalises with batch statistics (biased variance), reducing over the batch too", () => {
    const r = apply(net, params, state, x, "train")
    // channel 0: (x − 4)/√(5 + 4)·2 + 0.5 = (−3, −1, 1, 3)/3·2 + 0.5; channel 1: 0·3 − 1
    assertTensor(r.y, [2, 1, 2, 2], [-1.5, -1, -1 / 6, -1, 7 / 6, -1, 2.5, -1])
  })

  test("train updates running stats with momentum and the unbiased variance", () => {
    const r = apply(net, params, state, x, "train")
    assertTensor(r.state["bn/mean"]!, [2], [0.9 * 0 + 0.1 * 4, 0.9 * 0 + 0.1 * 10])
    assertTensor(r.state["bn/variance"]!, [2], [0.9 * 1 + 0.1 * (20 / 3), 0.9 * 1 + 0.1 * 0])
    // the input state is untouched
    assertTensor(state["bn/mean"]!, [2], [0, 0])
  })

  test("eval uses the running stats and leaves the state unchanged", () => {
    const running: State = { "bn/mean": make([2], [1, 2]), "bn/variance": make([2], [5, 0]) }
    const r = apply(net, params, running, x, "eval")
    // channel 0: (x − 1)/√9·2 + 0.5; channel 1: (10 − 2)/√4·3 − 1 = 11
    assertTensor(r.y, [2, 1, 2, 2], [0.5, 11, 4 / 3 + 0.5, 11, 8 / 3 + 0.5, 11, 4 + 0.5, 11])
    assert.deepEqual(Object.keys(r.state).sort(), ["bn/mean", "bn/variance"])
    assertTensor(r.state["bn/mean"]!, [2], [1, 2])
    assertTensor(r.state["bn/variance"]!, [2], [5, 0])
  })

  test("works on vectors (B×C) and refuses a single value per channel in train", () => {
    const v = make([2, 1], [1, 3])
    const s: State = { "bn/mean": make([1], [0]), "bn/variance": make([1], [1]) }
    const p: Params = { "bn/gamma": make([1], [1]), "bn/beta": make([1], [0]) }
    const r = apply(net, p, s, v, "train") // μ 2, σ² 1 → (∓1)/√5
    assertTensor(r.y, [2, 1], [-1 / Math.sqrt(5), 1 / Math.sqrt(5)])
    assertTensor(r.state["bn/variance"]!, [1], [0.9 + 0.1 * 2])
    assert.throws(() => apply(net, p, s, make([1, 1], [1]), "train"), /more than one value/)
  })
})

describe("activations, taps and reshaping", () => {
  test("relu, sigmoid, identity", () => {
    const x = make([1, 3], [-2, 0, 3])
    assertTensor(apply(Net.relu, {}, none, x, "eval").y, [1, 3], [0, 0, 3])
    assertTensor(
      apply(Net.sigmoid, {}, none, x, "eval").y,
      [1, 3],
      [1 / (1 + Math.exp(2)), 0.5, 1 / (1 + Math.exp(-3))],
    )
    assertTensor(apply(Net.identity, {}, none, x, "eval").y, [1, 3], [-2, 0, 3])
  })

  test("a tap records the activation flowing through it", () => {
    const r = apply(
      Net.seq(Net.tap("before"), Net.relu, Net.tap("after")),
      {},
      none,
      make([1, 2], [-1, 1]),
      "eval",
    )
    assertTensor(r.taps.before!, [1, 2], [-1, 1])
    assertTensor(r.taps.after!, [1, 2], [0, 1])
  })

  test("global average pool, flatten, reshape, dense", () => {
    const x = make([1, 2, 1, 2], [1, 10, 3, 30]) // (h, w, c): (0,0)=[1,10], (1,0)=[3,30]
    assertTensor(apply(Net.globalAvgPool, {}, none, x, "eval").y, [1, 2], [2, 20])
    assertTensor(apply(Net.flatten, {}, none, x, "eval").y, [1, 4], [1, 10, 3, 30])
    assertTensor(apply(Net.reshape([-1, 2, 1]), {}, none, x, "eval").y, [1, 2, 2, 1], [1, 10, 3, 30])
    const dense = Net.scope("fc", Net.dense(2))
    const params: Params = {
      "fc/kernel": make([3, 2], [1, 0, 0, 1, 1, 1]),
      "fc/bias": make([2], [0.5, -0.5]),
    }
    // [1, 2, 3]·K = [1 + 3, 2 + 3]
    assertTensor(
      apply(dense, params, none, make([2, 3], [1, 2, 3, 0, 0, 0]), "eval").y,
      [2, 2],
      [4.5, 4.5, 0.5, -0.5],
    )
  })

  test("pixel shuffle: output (b, h·r+i, w·r+j, c) = input (b, h, w, (i·r+j)·C + c)", () => {
    // 1×2 spatial, 4 channels, r = 2, C = 1: w0 = [0,1,2,3], w1 = [4,5,6,7]
    const y = apply(Net.pixelShuffle(2), {}, none, make([1, 1, 2, 4], [0, 1, 2, 3, 4, 5, 6, 7]), "eval").y
    // row 0 (i=0): w0 j0, w0 j1, w1 j0, w1 j1 = 0, 1, 4, 5; row 1 (i=1): 2, 3, 6, 7
    assertTensor(y, [1, 2, 4, 1], [0, 1, 4, 5, 2, 3, 6, 7])
    // C = 2: channels (i·2 + j)·2 + c, one pixel
    const y2 = apply(Net.pixelShuffle(2), {}, none, make([1, 1, 1, 8], [0, 1, 2, 3, 4, 5, 6, 7]), "eval").y
    assertTensor(y2, [1, 2, 2, 2], [0, 1, 2, 3, 4, 5, 6, 7])
    // The formula element by element on a larger case (B 2, H 2, W 3, r 3, C 2).
    const [B, H, W, r, C] = [2, 2, 3, 3, 2]
    const x = generate([B, H, W, C * r * r], (i) => i)
    const z = apply(Net.pixelShuffle(r), {}, none, x, "eval").y
    assert.deepEqual(z.shape, [B, H * r, W * r, C])
    for (let b = 0; b < B; b++)
      for (let h = 0; h < H; h++)
        for (let w = 0; w < W; w++)
          for (let i = 0; i < r; i++)
            for (let j = 0; j < r; j++)
              for (let c = 0; c < C; c++)
                assert.equal(
                  z.data[((b * H * r + h * r + i) * W * r + w * r + j) * C + c],
                  x.data[((b * H + h) * W + w) * C * r * r + (i * r + j) * C + c],
                )
  })
})

describe("Pool", () => {
  const grid = (sign: number) =>
    make(
      [1, 3, 3, 1],
      [1, 2, 3, 4, 5, 6, 7, 8, 9].map((v) => sign * v),
    )

  test("2×2 stride 2 same on 3×3 (pad 0 before, 1 after): max ignores padding, avg counts real cells", () => {
    // Negative inputs: a zero-padded max would give 0.
    const max = apply(Net.maxPool(2, { padding: "same" }), {}, none, grid(-1), "eval").y
    assertTensor(max, [1, 2, 2, 1], [-1, -3, -7, -9])
    const avg = apply(Net.avgPool(2, { padding: "same" }), {}, none, grid(1), "eval").y
    // (1+2+4+5)/4, (3+6)/2, (7+8)/2, 9/1
    assertTensor(avg, [1, 2, 2, 1], [3, 4.5, 7.5, 9])
  })

  test("3×3 stride 1 explicit padding 1: avg over the non-padded cells only", () => {
    const avg = apply(Net.avgPool(3, { stride: 1, padding: 1 }), {}, none, grid(1), "eval").y
    // corners: 4 cells, edges: 6 cells, centre: 9
    assertTensor(avg, [1, 3, 3, 1], [3, 3.5, 4, 4.5, 5, 5.5, 6, 6.5, 7])
    const max = apply(Net.maxPool(3, { stride: 2, padding: 1 }), {}, none, grid(-1), "eval").y
    // out = floor((3 + 2 − 3)/2) + 1 = 2; windows rows/cols −1…1 and 1…3
    assertTensor(max, [1, 2, 2, 1], [-1, -2, -4, -5])
  })

  test("valid pooling drops the remainder and pools each channel separately", () => {
    const x = make([1, 2, 3, 2], [1, -1, 2, -2, 3, -3, 4, -4, 5, -5, 6, -6])
    const y = apply(Net.maxPool(2), {}, none, x, "eval").y
    assertTensor(y, [1, 1, 1, 2], [5, -1])
  })
})

describe("combinators", () => {
  const x = make([1, 3], [1, -2, 3])

  test("residual: body(x) + x, or + shortcut(x)", () => {
    assertTensor(apply(Net.residual(Net.relu), {}, none, x, "eval").y, [1, 3], [2, -2, 6])
    assertTensor(
      apply(Net.residual(Net.relu, Net.sigmoid), {}, none, make([1, 1], [0]), "eval").y,
      [1, 1],
      [0.5],
    )
  })

  test("parallel: add, mul and concat (last axis, in order)", () => {
    assertTensor(apply(Net.add(Net.identity, Net.relu), {}, none, x, "eval").y, [1, 3], [2, -2, 6])
    assertTensor(apply(Net.mul(Net.identity, Net.relu), {}, none, x, "eval").y, [1, 3], [1, -0, 9])
    const img = make([1, 1, 2, 1], [-1, 2])
    assertTensor(
      apply(Net.concat(Net.relu, Net.identity), {}, none, img, "eval").y,
      [1, 1, 2, 2],
      [0, -1, 2, 2],
    )
  })

  test("declared input channels / features are checked", () => {
    const conv = Net.scope("c", Net.conv2d(1, 1, { inChannels: 2, bias: false }))
    assert.throws(
      () => apply(conv, { "c/kernel": make([1, 1, 3, 1], [1, 1, 1]) }, none, fill([1, 1, 1, 3]), "eval"),
      /expects 2 input channels, got 3/,
    )
    const dense = Net.scope("d", Net.dense(1, { inFeatures: 2, bias: false }))
    assert.throws(
      () => apply(dense, { "d/kernel": make([3, 1], [1, 1, 1]) }, none, fill([1, 3]), "eval"),
      /expects 2 input features, got 3/,
    )
  })

  test("scopes and sequence indices name parameters as Net.children says", () => {
    const net = Net.seq(
      Net.scope("a", Net.dense(1, { bias: false })),
      Net.seq(Net.relu, Net.dense(1, { bias: false })),
    )
    // the nested seq is spliced: relu is index 1, the dense index 2
    const params: Params = { "a/kernel": make([1, 1], [-2]), "2/kernel": make([1, 1], [3]) }
    assertTensor(apply(net, params, none, make([1, 1], [-1]), "eval").y, [1, 1], [6])
    assert.throws(
      () => apply(net, { "a/kernel": make([1, 1], [1]) }, none, make([1, 1], [1]), "eval"),
      /missing parameter 2\/kernel/,
    )
    assert.throws(
      () => apply(net, { ...params, "a/kernel": make([2, 1], [1, 1]) }, none, make([1, 1], [1]), "eval"),
      /a\/kernel has shape \[2, 1\], expected \[1, 1\]/,
    )
  })
})

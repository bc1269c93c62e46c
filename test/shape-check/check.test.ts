/** The shape-check interpreter on hand-checked networks. */
import assert from "node:assert/strict"
import { test } from "node:test"
import * as Net from "../../src/dsl/Net.ts"
import * as Zoo from "../../src/dsl/zoo.ts"
import * as Check from "../../src/interpreters/shape-check/index.ts"

test("ResNet-34 matches torchvision's 21,797,672 parameters and 3,663,761,408 MACs", () => {
  const c = Check.check(Zoo.resnet34({ outputs: 1000 }), [224, 224, 3])
  assert.ok(c.ok)
  assert.equal(c.summary.cost.params, 21_797_672)
  assert.equal(c.summary.cost.macs, 3_663_761_408)
})

test("parameter paths follow torchvision's state-dict names", () => {
  const c = Check.check(Zoo.resnet18({ outputs: 10 }), [64, 64, 1])
  const paths = c.summary.params.map((p) => p.path)
  for (const p of [
    "conv1/kernel",
    "layer2/0/downsample/0/kernel",
    "layer2/0/downsample/1/gamma",
    "layer4/1/bn2/beta",
    "fc/kernel",
    "fc/bias",
  ])
    assert.ok(paths.includes(p), p)
  assert.deepEqual(c.summary.params.find((p) => p.path === "conv1/kernel")!.shape, [7, 7, 1, 64])
  assert.deepEqual(c.summary.taps, {
    stem: [16, 16, 64],
    layer1: [16, 16, 64],
    layer2: [8, 8, 128],
    layer3: [4, 4, 256],
    layer4: [2, 2, 512],
    pool: [512],
  })
})

test("conv output sizes: same, valid, explicit, stride and dilation", () => {
  const out = (net: Net.AnyNet, x: readonly number[]) => Check.check(net, x).summary.output
  assert.deepEqual(out(Net.conv2d(4, 3, { stride: 2 }), [7, 7, 1]), [4, 4, 4])
  assert.deepEqual(out(Net.conv2d(4, 3, { padding: "valid" }), [7, 7, 1]), [5, 5, 4])
  assert.deepEqual(out(Net.conv2d(4, 3, { padding: "valid", dilation: 2 }), [7, 7, 1]), [3, 3, 4])
  assert.deepEqual(out(Net.conv2d(4, 7, { stride: 2, padding: 3 }), [224, 224, 3]), [112, 112, 4])
  assert.deepEqual(out(Net.maxPool(3, { stride: 2, padding: 1 }), [112, 112, 4]), [56, 56, 4])
  assert.deepEqual(out(Net.pixelShuffle(2), [4, 4, 8]), [8, 8, 2])
})

test("grouped conv counts params and MACs per group", () => {
  const c = Check.check(Net.conv2d(8, 3, { groups: 2, bias: false }), [5, 5, 4])
  assert.ok(c.ok)
  assert.equal(c.summary.cost.params, 3 * 3 * 2 * 8)
  assert.equal(c.summary.cost.macs, 5 * 5 * 8 * 3 * 3 * 2)
})

test("all errors are reported with their paths, and checking continues past each", () => {
  const net = Net.seq(
    Net.scope("a", Net.conv2d(8, 3, { inChannels: 4 })),
    Net.scope("b", Net.conv2d(8, 3, { groups: 3 })),
    Net.scope("c", Net.dense(5)),
  )
  const c = Check.check(net, [8, 8, 3])
  assert.equal(c.ok, false)
  assert.deepEqual(
    (c as { errors: readonly Check.ShapeError[] }).errors.map((e) => Check.formatError(e)),
    [
      "a: expects 4 input channels, got 3 (input 8×8×3)",
      "b: groups=3 must divide both input channels (8) and filters (8)",
      "c: dense expects a vector, got 8×8×8 (add flatten or globalAvgPool before it)",
    ],
  )
})

test("duplicate parameter paths and duplicate taps are errors", () => {
  const c = Check.check(
    Net.seq(Net.scope("x", Net.dense(3)), Net.scope("x", Net.dense(3)), Net.tap("t"), Net.tap("t")),
    [4],
  )
  assert.equal(c.ok, false)
  const messages = (c as { errors: readonly Check.ShapeError[] }).errors.map(Check.formatError)
  assert.ok(messages.some((m) => m.startsWith("x/kernel: two layers share this parameter path")))
  assert.ok(messages.some((m) => m.includes('tap "t" is declared twice')))
})

test("a loop shares its parameters except per-iteration batch norms, and costs each iteration", () => {
  const body = Net.seq(
    Net.scope("conv", Net.conv2d(4, 3, { bias: false })),
    Net.scope("bn", Net.batchNorm()),
    Net.relu,
  )
  const feedback = Net.seq(Net.scope("att", Net.conv2d(2, 1)), Net.sigmoid)
  const readout = Net.seq(Net.globalAvgPool, Net.scope("head", Net.dense(3)), Net.tap("pose"))
  const make = (iterations: number) => Net.loop({ iterations, body, feedback, readout })
  const one = Check.check(make(1), [6, 6, 2])
  const two = Check.check(make(2), [6, 6, 2])
  const three = Check.check(make(3), [6, 6, 2])
  assert.ok(one.ok && two.ok && three.ok)
  // Each extra iteration adds one batch norm's γ and β (2·4), nothing else; the
  // feedback's parameters (4·2 + 2) exist only once some iteration uses it.
  assert.equal(three.summary.cost.params - two.summary.cost.params, 2 * 4)
  assert.equal(two.summary.cost.params - one.summary.cost.params, 2 * 4 + (4 * 2 + 2))
  const loop = three.summary.loops[0]!
  const bodyMacs = 6 * 6 * 4 * 3 * 3 * 2
  const headMacs = 4 * 3
  const feedbackMacs = 6 * 6 * 2 * 4
  assert.deepEqual(loop.macsPerIteration, [
    bodyMacs + headMacs,
    feedbackMacs + bodyMacs + headMacs,
    feedbackMacs + bodyMacs + headMacs,
  ])
  assert.deepEqual(Object.keys(three.summary.taps).sort(), ["pose", "pose@0", "pose@1", "pose@2"])
  assert.ok(three.summary.params.some((p) => p.path === "body/bn@2/gamma"))
  assert.equal(Check.macsAtExit(three.summary, loop, 0), one.summary.cost.macs)
  assert.equal(
    Check.expectedMacs(three.summary, loop, [0.5, 0, 0.5]),
    (Check.macsAtExit(three.summary, loop, 0) + three.summary.cost.macs) / 2,
  )
})

test("typed taps: a network's tap names are part of its type", () => {
  const net = Net.seq(Net.conv2d(2, 3), Net.tap("feat"), Net.globalAvgPool, Net.tap("pooled"))
  const names: Net.TapsOf<typeof net>[] = ["feat", "pooled"]
  // @ts-expect-error "nope" is not a tap of this network: a compile error, checked by tsc in `npm test`.
  const wrong: Net.TapsOf<typeof net> = "nope"
  assert.deepEqual(Net.tapNames(net), names)
  assert.equal(wrong, "nope")
})

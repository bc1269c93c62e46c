/**
 * The shape checker of losses, on generated networks:
 * - attention transfer between taps of different spatial size is rejected with
 *   an error whose path names the pair (`loss/…/AttentionTransfer/pair i`) and
 *   whose message names both shapes; taps of equal spatial size (any channels)
 *   are accepted;
 * - the checker agrees with the tf interpreter: a loss it accepts evaluates
 *   (no `LossError`) on the models' actual outputs.
 */
import assert from "node:assert/strict"
import { before, test } from "node:test"
import * as tf from "@tensorflow/tfjs-core"
import fc from "fast-check"
import * as Loss from "../../src/dsl/Loss.ts"
import * as Net from "../../src/dsl/Net.ts"
import * as Program from "../../src/dsl/Program.ts"
import * as Shape from "../../src/dsl/Shape.ts"
import * as Check from "../../src/interpreters/shape-check/index.ts"
import { checkLoss } from "../../src/interpreters/shape-check/loss.ts"
import { apply } from "../../src/interpreters/tf/apply.ts"
import * as Init from "../../src/interpreters/tf/init.ts"
import * as TfLoss from "../../src/interpreters/tf/loss.ts"
import { readyForLaws, runs } from "../arbitraries/Runs.ts"

const defaults = { seed: 5005, numRuns: 40 }

before(async () => {
  await readyForLaws()
})

/** A conv net whose tap "a" is at stride `s1` and tap "b" at stride `s1·s2`, with `c` channels. */
const net = (s1: number, s2: number, c: number) =>
  Net.seq(
    Net.conv2d(c, 3, { stride: s1 }),
    Net.batchNorm(),
    Net.relu,
    Net.tap("a"),
    Net.conv2d(c + 1, 3, { stride: s2 }),
    Net.relu,
    Net.tap("b"),
    Net.globalAvgPool,
    Net.dense(3),
  )

const arch = fc.record({
  s1: fc.integer({ min: 1, max: 2 }),
  s2: fc.integer({ min: 1, max: 2 }),
  c: fc.integer({ min: 1, max: 3 }),
})

test("attention transfer between taps of different spatial size is rejected, naming the path and both shapes", () => {
  fc.assert(
    fc.property(arch, arch, fc.integer({ min: 4, max: 9 }), fc.nat({ max: 2 }), (sa, ta, size, extra) => {
      const student = Program.model("student", net(sa.s1, sa.s2, sa.c), [size, size, 3])
      const teacher = Program.model("teacher", net(ta.s1, ta.s2, ta.c), [size, size, 1])
      const models = {
        student: Check.check(student.net, student.input).summary,
        teacher: Check.check(teacher.net, teacher.input).summary,
      }
      const pairs = (["a", "b"] as const).map((t) => [Loss.tap(student, t), Loss.tap(teacher, t)] as const)
      const padded = [...Array.from({ length: extra }, () => pairs[0]!), ...pairs]
      const loss = Loss.sum(Loss.regression(student), Loss.scale(1e3, Loss.attentionTransfer(padded)))
      const report = checkLoss(loss, { models, fields: { joints3d: [3] }, metaParams: [] })
      const expected = padded.flatMap(([s, t], i) => {
        const a = models.student.taps[(s as { tap: string }).tap]!
        const b = models.teacher.taps[(t as { tap: string }).tap]!
        return a[0] === b[0] && a[1] === b[1] ? [] : [{ i, a, b }]
      })
      assert.equal(report.errors.length, expected.length, JSON.stringify(report.errors))
      report.errors.forEach((e, k) => {
        const { i, a, b } = expected[k]!
        assert.equal(e.path, `loss/Sum/term 1/Scale/AttentionTransfer/pair ${i}`)
        assert.ok(e.message.includes(Shape.format(a)) && e.message.includes(Shape.format(b)), e.message)
      })
      if (expected.length === 0)
        tf.tidy(() => {
          const s = Init.init(student.net, student.input, 1)
          const t = Init.init(teacher.net, teacher.input, 2)
          const env: TfLoss.Env = {
            outputs: {
              student: apply(student.net, s.params, s.state, tf.ones([2, size, size, 3]), "eval"),
              teacher: apply(teacher.net, t.params, t.state, tf.ones([2, size, size, 1]), "eval"),
            },
            batch: { joints3d: tf.zeros([2, 3]) },
            params: {},
            meta: {},
          }
          assert.ok(Number.isFinite(TfLoss.evaluate(loss, env).arraySync()))
        })
    }),
    runs(defaults),
  )
})

/**
 * The CMKD conventions and schedule the flagship programs declare (CMKG §5.2,
 * Eqs. 1–4, Algorithm 1), read from the program values themselves: every
 * squared error states its reduction, every L_DIST its λ and L_ATT variant,
 * the KD rows fine-tune the L_REG-phase student for as many epochs again, the
 * baseline gets the same total, and Algorithm 1's θ-step is plain SGD.
 */
import assert from "node:assert/strict"
import { test } from "node:test"
import type * as Experiment from "../../src/dsl/Experiment.ts"
import type * as Loss from "../../src/dsl/Loss.ts"
import * as Optimizer from "../../src/dsl/Optimizer.ts"
import * as Program from "../../src/dsl/Program.ts"
import type * as Step from "../../src/dsl/Step.ts"
import cmkdRhd from "../../src/programs/cmkd-rhd.ts"
import cmkgStb from "../../src/programs/cmkg-stb.ts"
import * as S from "../../src/programs/settings.ts"

const resolve = (value: Program.Family, scale: Program.Scale) =>
  Program.resolve(value, { scale, data: {} }) as Program.Program<Experiment.Experiment>
const trains = (p: Program.Program<Experiment.Experiment>) =>
  p.experiment!.stages.filter((s): s is Experiment.Train => s._tag === "Train")
const minimizeOf = (s: Experiment.Train) => {
  assert.equal(s.step._tag, "Minimize", s.name)
  return s.step as Extract<Step.Step, { _tag: "Minimize" }>
}

/** Every leaf of a loss with the scale factors above it multiplied in. */
const leaves = (l: Loss.Loss, factor = 1): { readonly leaf: Loss.Loss; readonly factor: number }[] =>
  l._tag === "Sum"
    ? l.terms.flatMap((t) => leaves(t, factor))
    : l._tag === "Scale"
      ? leaves(l.loss, factor * l.factor)
      : [{ leaf: l, factor }]

/** (reduce of every squared error, variant and λ of every attention term) of a KD loss. */
const conventionsOf = (l: Loss.Loss) => {
  const ls = leaves(l)
  const reduces = [...new Set(ls.flatMap(({ leaf }) => (leaf._tag === "SquaredError" ? [leaf.reduce] : [])))]
  const att = ls.flatMap(({ leaf, factor }) =>
    leaf._tag === "AttentionTransfer" ? [{ variant: leaf.variant, lambda: factor }] : [],
  )
  return { reduces, att }
}

test("cmkd-rhd --scale small: the grid {sum, mean} × {paper, code} × {1e3, balanced}, each cell's loss as its row says", () => {
  const p = resolve(cmkdRhd, "small")
  const fineTunes = trains(p).filter((s) => s.name.startsWith("fine-tune: KD student (L_ACT + L_ATT"))
  const cells = fineTunes.map((s) => {
    const { reduces, att } = conventionsOf(minimizeOf(s).loss)
    assert.equal(reduces.length, 1, `${s.name}: one reduction for L_REG and L_ACT, got ${reduces.join(", ")}`)
    assert.equal(att.length, 1, s.name)
    const [reduce] = reduces as [Loss.Reduction]
    const { variant, lambda } = att[0]!
    // The row's label names the conventions its loss has.
    assert.ok(s.name.includes(`, ${reduce}, ${variant} L_ATT,`), s.name)
    const expected = s.name.includes("balanced")
      ? S.balancedLambda(S.settings("small"), reduce, variant)
      : 1e3
    assert.equal(lambda, expected, s.name)
    return `${reduce}/${variant}/${s.name.includes("balanced") ? "balanced" : "1e3"}`
  })
  assert.deepEqual(cells.sort(), [
    "mean/code/1e3",
    "mean/code/balanced",
    "mean/paper/1e3",
    "mean/paper/balanced",
    "sum/code/1e3",
    "sum/code/balanced",
    "sum/paper/1e3",
    "sum/paper/balanced",
  ])
  // The main row, by the stated rule: sum, the paper's L_ATT, λ balanced.
  const rows = p.experiment!.stages.flatMap((s) => (s._tag === "Evaluate" ? [s.row] : []))
  const main = [...new Set(rows.filter((r) => r.endsWith("— main row")))]
  assert.equal(main.length, 1, main.join("; "))
  assert.match(main[0]!, /sum, paper L_ATT, λ balanced/)
})

test("cmkd-rhd: the paper's schedule — KD rows and the baseline fine-tune the L_REG-phase student for as many epochs again", () => {
  for (const scale of ["tiny", "small", "paper"] as const) {
    const p = resolve(cmkdRhd, scale)
    const ts = trains(p)
    const phase = ts.find((s) => s.name === "L_REG phase")!
    const teacher = ts.find((s) => s.name === "teacher")!
    const fineTunes = ts.filter((s) => s !== phase && s !== teacher)
    assert.ok(fineTunes.length >= 6, `${scale}: ${fineTunes.length} fine-tuning stages`)
    for (const s of fineTunes) {
      assert.equal(s.epochs, phase.epochs, `${scale} ${s.name}`)
      assert.deepEqual(Object.values(s.init), [{ _tag: "Copy", from: "rgb-regression-phase" }], s.name)
    }
    assert.equal(teacher.epochs, 2 * phase.epochs, scale)
    const baseline = fineTunes.find((s) => s.name.startsWith("rgb baseline"))!
    assert.deepEqual(
      leaves(minimizeOf(baseline).loss).map(({ leaf }) => leaf._tag),
      ["SquaredError"],
      "the baseline trains with L_REG only",
    )
  }
  assert.equal(trains(resolve(cmkdRhd, "paper")).find((s) => s.name === "L_REG phase")!.epochs, 100)
})

test("cmkg-stb: G with the main conventions, meta-training as long as the L_REG phase, Algorithm 1's θ-step plain SGD at α", () => {
  const s = S.settings("small")
  const p = resolve(cmkgStb, "small")
  const ts = trains(p)
  const phase = ts.find((t) => t.name.startsWith("student pre-training"))!
  const metas = ts.filter((t) => t.name.startsWith("meta-train"))
  assert.ok(metas.length > 0)
  for (const m of metas) {
    assert.equal(m.epochs, phase.epochs, m.name)
    assert.equal(m.step._tag, "Together")
    const [mStep, thetaStep] = (m.step as Extract<Step.Step, { _tag: "Together" }>).steps as [
      Step.Step,
      Step.Step,
    ]
    assert.equal(thetaStep._tag, "Minimize")
    const theta = thetaStep as Extract<Step.Step, { _tag: "Minimize" }>
    assert.deepEqual(theta.optimizer, Optimizer.sgd({ lr: s.lr }), `${m.name}: plain SGD at α`)
    assert.equal(mStep._tag, "MetaMinimize")
    const main = S.mainConventions(s)
    const { reduces, att } = conventionsOf(theta.loss)
    assert.deepEqual(reduces, [main.reduce])
    assert.deepEqual(att, [{ variant: main.attention, lambda: main.lambda }])
  }
})

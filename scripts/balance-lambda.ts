/**
 * Measures the balanced λ of `settings.ts`'s BALANCED_LAMBDA: runs cmkd-rhd's
 * first stages (the depth teacher and the RGB student's L_REG phase) at one
 * scale and seed, then one epoch of a probe that evaluates, at that student
 * and teacher, L_ACT (sum and mean) and L_ATT (paper and code) on every
 * training batch without moving any parameter (SGD at rate 0). Prints
 * λ = mean L_ACT / mean L_ATT for each reduction and variant, as the entry to
 * paste into BALANCED_LAMBDA.
 *
 *   node --import tsx scripts/balance-lambda.ts --scale small [--seed 1] [--out DIR]
 */
import { mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"
import * as Experiment from "../src/dsl/Experiment.ts"
import * as Loss from "../src/dsl/Loss.ts"
import * as Optimizer from "../src/dsl/Optimizer.ts"
import * as Program from "../src/dsl/Program.ts"
import * as Step from "../src/dsl/Step.ts"
import * as Runner from "../src/interpreters/tf/experiment.ts"
import * as Tf from "../src/interpreters/tf/index.ts"
import cmkdRhd from "../src/programs/cmkd-rhd.ts"
import * as S from "../src/programs/settings.ts"

const { values } = parseArgs({
  options: {
    scale: { type: "string", default: "small" },
    seed: { type: "string", default: "1" },
    out: { type: "string" },
    threads: { type: "string" },
  },
})
const scale = values.scale as Program.Scale
if (!Program.scales.includes(scale))
  throw new Error(`--scale ${scale}: expected one of ${Program.scales.join(", ")}`)
const seed = Number(values.seed)
const out = values.out ?? mkdtempSync(join(tmpdir(), "balance-lambda-"))

const program = Program.resolve(cmkdRhd, { scale, data: {} }) as Program.Program<Experiment.Experiment>
const e = program.experiment!
const s = S.settings(scale)
const model = (name: string) => program.models.find((m) => m.name === name)! as Program.Model<S.BackboneTap>
const teacher = model("teacher")
const student = model("rgb-regression-phase")
// The stages that make the teacher and the L_REG-phase student, as cmkd-rhd runs them.
const upTo = e.stages.findIndex((st) => st._tag === "Train" && st.name === "L_REG phase")
const trainStages = e.stages.slice(0, upTo + 1).filter((st) => st._tag === "Train")
const firstFineTune = e.stages.find((st) => st._tag === "Train" && st.name.startsWith("fine-tune"))!

const act = (reduce: Loss.Reduction) =>
  Loss.activationMatch(Loss.tap(student, "layer4"), Loss.tap(teacher, "layer4"), reduce)
const att = (variant: Loss.AttentionVariant) =>
  Loss.attentionTransfer(
    s.taps.map((t) => [Loss.tap(student, t), Loss.tap(teacher, t)] as const),
    variant,
  )
const probes: readonly (readonly [string, Loss.Loss])[] = [
  ["act-sum", act("sum")],
  ["act-mean", act("mean")],
  ["att-paper", att("paper")],
  ["att-code", att("code")],
]
const frozen = Optimizer.sgd({ lr: 0 })
const probe = Experiment.train({
  name: "probe",
  data: firstFineTune.data,
  epochs: 1,
  batchSize: firstFineTune.batchSize,
  step: Step.together(...probes.map(([, loss]) => Step.minimize({ loss, wrt: student, optimizer: frozen }))),
  init: {},
})
const probeProgram = Program.program({
  name: "balance-lambda",
  description: "cmkd-rhd's teacher and L_REG phase, then L_ACT and L_ATT measured",
  models: [teacher, student],
  experiment: Experiment.experiment({ feeds: e.feeds, stages: [...trainStages, probe] }),
})

const backend = await Tf.ready(
  "auto",
  values.threads === undefined ? {} : { threads: Number(values.threads) },
)
await Runner.run(probeProgram, {
  out,
  seed,
  backend: backend.name,
  resume: false,
  reporter: { progress: () => {}, log: (line) => console.error(line) },
})

const records = readFileSync(join(out, "metrics.jsonl"), "utf8")
  .trim()
  .split("\n")
  .map((l) => JSON.parse(l) as Record<string, unknown>)
  .filter((r) => r.stage === "probe")
const mean = (i: number) => records.reduce((a, r) => a + (r[`${i}/minimize`] as number), 0) / records.length
const [actSum, actMean, attPaper, attCode] = probes.map((_, i) => mean(i)) as [number, number, number, number]
console.log(
  `// ${scale}, seed ${seed}, ${records.length} batches: L_ACT sum ${actSum.toPrecision(4)}, mean ${actMean.toPrecision(4)}; L_ATT paper ${attPaper.toPrecision(4)}, code ${attCode.toPrecision(4)}`,
)
const entry = {
  sum: { paper: actSum / attPaper, code: actSum / attCode },
  mean: { paper: actMean / attPaper, code: actMean / attCode },
}
const fmt = (x: number) => Number(x.toPrecision(3))
console.log(
  `${scale}: { sum: { paper: ${fmt(entry.sum.paper)}, code: ${fmt(entry.sum.code)} }, mean: { paper: ${fmt(entry.mean.paper)}, code: ${fmt(entry.mean.code)} } },`,
)

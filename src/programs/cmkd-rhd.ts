/**
 * CMKD on the source domain — CMKG paper, Table 1 in miniature.
 *
 * A depth teacher and an RGB baseline are trained with L_REG; three RGB
 * students are trained with L_REG + L_DIST from the same initialisation as
 * the baseline: with L_ACT only, with L_ACT + L_ATT (λ = 1e3) as the paper's
 * Eq. 3 writes L_ATT, and with L_ATT as Zagoruyko & Komodakis's code computes
 * it (means over channels and positions instead of sums). Each is evaluated on
 * the source test split (EPE in mm; the gain is baseline − student).
 */
import * as Experiment from "../dsl/Experiment.ts"
import * as Loss from "../dsl/Loss.ts"
import * as Program from "../dsl/Program.ts"
import * as Step from "../dsl/Step.ts"
import * as S from "./settings.ts"

const TABLE1 = "Table 1: CMKD on the source"
const BASELINE = "RGB baseline (L_REG)"

export default Program.family({
  name: "cmkd-rhd",
  description:
    "Cross-modal knowledge distillation (depth teacher → RGB student) on the source domain: CMKG Table 1 in miniature",
  build: (options) => {
    const s = S.settings(options.scale)
    const teacher = Program.model("teacher", s.backbone(1), S.input(s, 1))
    const baseline = Program.model("rgb-baseline", s.backbone(3), S.input(s, 3))
    const act = Program.model("kd-act", s.backbone(3), S.input(s, 3))
    const actAtt = Program.model("kd-act-att", s.backbone(3), S.input(s, 3))
    const actAttCode = Program.model("kd-act-att-code", s.backbone(3), S.input(s, 3))
    const source = S.splits(s, options, "rhd", ["rgb", "depth"])
    const distil = (student: typeof act, attention: Loss.AttentionVariant | undefined) =>
      Loss.sum(
        Loss.regression(student),
        attention === undefined
          ? Loss.activationMatch(Loss.tap(student, "layer4"), Loss.tap(teacher, "layer4"))
          : Loss.distillation({ student, teacher, last: "layer4", taps: s.taps, variant: attention }),
      )
    const train = (name: string, model: typeof act, loss: Loss.Loss) =>
      Experiment.train({
        name,
        data: source.train,
        epochs: s.epochs,
        batchSize: s.batchSize,
        step: Step.minimize({ loss, wrt: model, optimizer: S.adam(s) }),
        init: { [model.name]: Experiment.scratch },
      })
    const evaluate = (model: typeof act, row: string) =>
      Experiment.evaluate({
        name: `evaluate ${model.name}`,
        model,
        data: source.test,
        table: TABLE1,
        row,
        column: "source",
      })
    return Program.program({
      name: "cmkd-rhd",
      description: "CMKG Table 1 in miniature",
      models: [teacher, baseline, act, actAtt, actAttCode],
      experiment: Experiment.experiment({
        feeds: {
          teacher: "depth",
          "rgb-baseline": "rgb",
          "kd-act": "rgb",
          "kd-act-att": "rgb",
          "kd-act-att-code": "rgb",
        },
        // Every student (and the teacher) against the baseline, seed by seed.
        references: { [TABLE1]: BASELINE },
        stages: [
          train("teacher", teacher, Loss.regression(teacher)),
          evaluate(teacher, "depth teacher"),
          train("rgb baseline", baseline, Loss.regression(baseline)),
          evaluate(baseline, BASELINE),
          train("kd: L_ACT", act, distil(act, undefined)),
          evaluate(act, "KD student (L_ACT)"),
          train("kd: L_ACT + L_ATT", actAtt, distil(actAtt, "paper")),
          evaluate(actAtt, "KD student (L_ACT + L_ATT)"),
          train("kd: L_ACT + L_ATT (code variant)", actAttCode, distil(actAttCode, "code")),
          evaluate(actAttCode, "KD student (L_ACT + L_ATT, code variant)"),
        ],
      }),
    })
  },
})

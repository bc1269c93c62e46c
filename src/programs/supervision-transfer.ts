/**
 * Supervision transfer — Gupta, Hoffman & Malik, Table 4 in miniature.
 *
 * A network on RGB is trained with labels. A network on depth (the
 * unlabeled modality) then learns to reproduce one mid-level layer of the RGB
 * network over paired images (Eq. 2: squared ℓ2 between t(ψ(I_depth)) and
 * φ(I_rgb); t is the identity here because the layers' shapes agree), and is
 * fine-tuned on few labels. Compared with training on the few labels from
 * scratch and with starting from the RGB network's weights, and with the
 * transfer layer varied.
 */
import * as Data from "../dsl/Data.ts"
import * as Experiment from "../dsl/Experiment.ts"
import * as Loss from "../dsl/Loss.ts"
import * as Program from "../dsl/Program.ts"
import * as Step from "../dsl/Step.ts"
import * as S from "./settings.ts"

const TABLE4 = "Table 4: supervision transfer to depth"
const FROM_SCRATCH = "depth from scratch (few labels)"

export default Program.family({
  name: "supervision-transfer",
  description:
    "Cross-modal supervision transfer (RGB → depth) with the transfer layer varied: Gupta et al. Table 4 in miniature",
  build: (options) => {
    const s = S.settings(options.scale)
    const rgb = Program.model("rgb", s.backbone(3), S.input(s, 3))
    const source = S.splits(s, options, "rhd", ["rgb", "depth"])
    // Few labels: a tenth of the paired set, drawn separately (another seed) from the same domain.
    const fewLabels =
      source.train._tag === "Synthetic"
        ? Data.synthetic({
            domain: "rhd",
            count: Math.max(s.batchSize * 2, Math.floor(s.trainCount / 10)),
            imageSize: s.imageSize,
            seed: 3,
            modalities: ["depth"],
          })
        : Data.split(Data.withModalities(source.train, ["depth"]), { test: 0.9 }).train
    const depthTest = Data.withModalities(source.test, ["depth"])
    const layers = ["layer2", "layer3", "layer4"] as const
    const depthModel = (name: string) => Program.model(name, s.backbone(1), S.input(s, 1))
    const scratch = depthModel("depth-scratch")
    const copied = depthModel("depth-copy-rgb")
    const transferred = layers.map((l) => ({ layer: l, model: depthModel(`depth-transfer-${l}`) }))

    const step = (model: Program.Model, loss: Loss.Loss) =>
      Step.minimize({ loss, wrt: model, optimizer: S.adam(s) })
    const fineTune = (model: Program.Model, init: Experiment.Init) =>
      Experiment.train({
        name: `${model.name}: fine-tune on few labels`,
        data: fewLabels,
        epochs: s.epochs,
        batchSize: s.batchSize,
        step: step(model, Loss.regression(model)),
        init: { [model.name]: init },
      })
    const evaluate = (model: Program.Model, row: string) =>
      Experiment.evaluate({
        name: `evaluate ${model.name}`,
        model,
        data: depthTest,
        table: TABLE4,
        row,
        column: "depth",
      })

    return Program.program({
      name: "supervision-transfer",
      description: "Gupta et al. Table 4 in miniature",
      models: [rgb, scratch, copied, ...transferred.map((t) => t.model)],
      experiment: Experiment.experiment({
        feeds: Object.fromEntries([
          ["rgb", "rgb"],
          ...[scratch, copied, ...transferred.map((t) => t.model)].map((m) => [m.name, "depth"]),
        ]),
        // Every way of starting the depth network against starting it from scratch, seed by seed.
        references: { [TABLE4]: FROM_SCRATCH },
        stages: [
          Experiment.train({
            name: "rgb network (labels)",
            data: source.train,
            epochs: s.epochs,
            batchSize: s.batchSize,
            step: step(rgb, Loss.regression(rgb)),
            init: { rgb: Experiment.scratch },
          }),
          fineTune(scratch, Experiment.scratch),
          evaluate(scratch, FROM_SCRATCH),
          fineTune(copied, Experiment.copy(rgb)),
          evaluate(copied, "depth initialised with RGB weights"),
          ...transferred.flatMap(({ layer, model }) => [
            Experiment.train({
              name: `${model.name}: transfer ${layer} over paired images`,
              data: source.train,
              epochs: s.epochs,
              batchSize: s.batchSize,
              step: step(model, Loss.transfer(Loss.tap(model, layer), Loss.tap(rgb, layer))),
              init: { [model.name]: Experiment.scratch },
            }),
            fineTune(model, Experiment.keep),
            evaluate(model, `supervision transfer at ${layer}`),
          ]),
        ],
      }),
    })
  },
})

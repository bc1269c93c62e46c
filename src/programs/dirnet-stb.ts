/**
 * DIR-Net (Yang et al., WACV 2022) on STB — in miniature on the synthetic
 * STB-like hands unless `--data stb=DIR` names the real set:
 *
 * - Table 3 (recursive refinement): "No Iter." (stage 0 of the progressive
 *   protocol), "Iter. w/out AMG" (the loop feeding back RF's up-sampled
 *   output instead of AMG's map), "Iter. w/ AMG" and "Iter. w/ AMG + 𝒢"
 *   (the REINFORCE gate at τ_gate = 1), at loop point 3;
 * - Table 2 (loop points 1–4, the prediction after the last loop);
 * - Figure 7: 3D AUC against average GFLOPs for several τ_var and τ_gate,
 *   evaluated on the one trained loop-point-3 network and gate.
 *
 * Every network is trained with the progressive protocol (Algorithm 1).
 * GFLOPs and parameters are the shape checker's. No MANO: the pose head
 * regresses the 21 3D joints and a weak-perspective camera (see
 * `src/dsl/dirnet.ts`). `cmkg check programs/dirnet-stb.ts --scale paper`
 * shows the paper-sized networks' per-loop costs; `paper` is the paper's
 * STB model (32 base channels, 512-unit heads, l_max = 5, 224×224, 50 + 20
 * epochs per stage, lr 1e-3).
 */
import * as Dirnet from "../dsl/dirnet.ts"
import type * as Experiment from "../dsl/Experiment.ts"
import * as Program from "../dsl/Program.ts"
import * as S from "./settings.ts"

/** What `--scale` means for DIR-Net (data sizes and batch from `settings.ts` unless overridden). */
export interface DirnetSettings {
  readonly data: S.Settings
  readonly width: number
  readonly hidden: number
  /** l_max + 1. */
  readonly iterations: number
  readonly epochs: { readonly first: number; readonly later: number }
  readonly lr: number
  readonly gate: Partial<Dirnet.GateSettings>
  /** Loop points of Table 2 (3 is Table 3's and Figure 7's network). */
  readonly loopPoints: readonly Dirnet.LoopPoint[]
  readonly tauVarQuantiles: readonly number[]
  readonly tauGate: readonly number[]
}

const sweep = {
  tauVarQuantiles: [0, 0.1, 0.25, 0.5, 0.75, 0.9, 1],
  tauGate: [0.25, 0.5, 1, 2, 4, 8],
}

export const dirnetSettings = (scale: Program.Scale): DirnetSettings => {
  const data = S.settings(scale)
  switch (scale) {
    case "tiny":
      return {
        // 1¾–3¾ minutes measured on a 2-core machine another job was also using.
        data: { ...data, trainCount: 192, testCount: 128, batchSize: 16 },
        width: 8,
        hidden: 32,
        iterations: 3,
        epochs: { first: 4, later: 2 },
        lr: 3e-3,
        // The tiny networks cost ~10⁻³ GFLOPs a loop: μ makes that comparable to the pose loss.
        gate: { steps: 150, flopsWeight: 1000 },
        loopPoints: [1, 2, 3, 4],
        ...sweep,
      }
    case "small":
      return {
        data: { ...data, trainCount: 2000, testCount: 400, batchSize: 32 },
        width: 8,
        hidden: 64,
        iterations: 4,
        epochs: { first: 8, later: 3 },
        lr: 2e-3,
        gate: { steps: 300, flopsWeight: 100 },
        loopPoints: [1, 2, 3, 4],
        ...sweep,
      }
    case "paper":
      return {
        data: { ...data, imageSize: 224 },
        width: 32,
        hidden: 512,
        iterations: 6,
        epochs: { first: 50, later: 20 },
        lr: 1e-3,
        gate: { steps: 1000, flopsWeight: 1 },
        loopPoints: [1, 2, 3, 4],
        ...sweep,
      }
  }
}

const TABLE3 = "Table 3: recursive refinement"
const TABLE2 = "Table 2: loop points"
const DEPTHS = "Exits of the loop-point-3 network: fixed depth and oracle"
const NO_ITER = "No Iter."
const afterLoop = (k: number) => `after loop ${k}`

/** The experiment for some settings (tests build it with smaller ones). */
export const build = (
  s: DirnetSettings,
  options: Program.Options,
): Program.Program<Experiment.Experiment> => {
  const net = { width: s.width, hidden: s.hidden, iterations: s.iterations }
  const loop = (p: Dirnet.LoopPoint) => Dirnet.variant(`ir9-loop${p}`, { ...net, loopPoint: p })
  const main = loop(3)
  const noAmg = Dirnet.variant("ir9-loop3-no-amg", { ...net, loopPoint: 3, feedback: "upsample" })
  const others = s.loopPoints.filter((p) => p !== 3).map(loop)
  const data = S.splits(s.data, options, "stb", ["rgb"])
  const spec = Dirnet.spec({
    imageSize: s.data.imageSize,
    train: data.train,
    test: data.test,
    batchSize: s.data.batchSize,
    lr: s.lr,
    epochs: s.epochs,
    variants: [main, noAmg, ...others],
    rows: [
      Dirnet.row(TABLE3, NO_ITER, main, Dirnet.noIter),
      Dirnet.row(TABLE3, "Iter. w/out AMG", noAmg, Dirnet.exitLast),
      Dirnet.row(TABLE3, "Iter. w/ AMG", main, Dirnet.exitLast),
      Dirnet.row(TABLE3, "Iter. w/ AMG + 𝒢", main, Dirnet.gateExit(1)),
      ...s.loopPoints.map((p) => Dirnet.row(TABLE2, `(${p})`, p === 3 ? main : loop(p), Dirnet.exitLast)),
      // Does a later loop help on some inputs? The oracle against the best fixed depth says (not in the paper).
      ...Array.from({ length: s.iterations }, (_, k) =>
        Dirnet.row(DEPTHS, afterLoop(k + 1), main, Dirnet.exitAfter(k + 1)),
      ),
      Dirnet.row(DEPTHS, "oracle", main, Dirnet.oracleExit),
    ],
    references: {
      [TABLE3]: NO_ITER,
      [TABLE2]: `(${s.loopPoints[0]})`,
      [DEPTHS]: afterLoop(1),
    },
    gate: s.gate,
    sweep: { model: main.name, tauVarQuantiles: s.tauVarQuantiles, tauGate: s.tauGate },
  })
  return Program.program({
    name: "dirnet-stb",
    description: `DIR-Net's IR9 (width ${s.width}, ${s.hidden}-unit heads, l_max = ${s.iterations - 1}) on ${s.data.imageSize}×${s.data.imageSize} STB-like hands, progressive training: Table 3 (with and without AMG, the gate), Table 2 (loop points ${s.loopPoints.join(", ")}) and Figure 7 (τ_var, τ_gate) in miniature`,
    models: Dirnet.models(spec),
    experiment: Dirnet.experiment(spec),
  })
}

export default Program.family({
  name: "dirnet-stb",
  description: "DIR-Net on STB: Tables 2 and 3 and Figure 7 in miniature",
  build: (options) => build(dirnetSettings(options.scale), options),
})

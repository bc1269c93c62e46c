/**
 * DIR-Net (Yang, Bhalgat, Chang, Porikli, Kwak — "Dynamic Iterative
 * Refinement for Efficient 3D Hand Pose Estimation", WACV 2022) as pure
 * network values.
 *
 * The IR9 backbone is a ResNet-9 (torchvision's ResNet-18 layout with one
 * basic block per stage: a 7×7/2 stem, a 3×3/2 max pool, four stages of
 * widths `w, 2w, 4w, 8w`) split at a **loop point** (the paper's Figure 9)
 * into
 * - the feature extractor FE (run once),
 * - the refiner RF (the {@link Net.Loop}'s `body`: run every iteration, with
 *   its own batch norms per iteration — the paper's "separate Batch
 *   Normalization layer in each iteration"; RF starts with a batch norm, the
 *   "one BatchNorm layer at the beginning of RF" of Sec. 5),
 * - the attention map generator AMG (the loop's `feedback`): a 1×1
 *   convolution to `4^d·C_FE` channels, `d` pixel shuffles by 2 (`2^d` is
 *   the spatial ratio between FE's and RF's outputs) and a sigmoid, whose
 *   map multiplies FE's features: `hₖ = RF⁽ᵏ⁾(FE(x) ⊙ AMG(hₖ₋₁))`,
 * - the pose and uncertainty heads (the loop's `readout`, after global
 *   average pooling): Ψ_pose, two dense layers giving the 21 3D joints
 *   (63 numbers, tap `pose`) and a weak-perspective camera (3 numbers,
 *   tap `camera`), and Ψ_var = Ψ²_var ∘ Ψ¹_var, two dense layers giving the
 *   log-variances `[α_2D, α_3D]` (tap `logvar`); Ψ¹_var's output is what
 *   the gate reads (tap `gateFeatures`).
 *
 * The readout's output is `concat[pose 63, camera 3, α 2]` (68 numbers, see
 * {@link layout}); inside the loop every tap `t` is also exposed per
 * iteration as `t@k` (k = 0 … l_max), so losses can sum over loops (Eq. 12).
 *
 * **Deviation from the paper: no MANO.** The paper's pose head predicts MANO
 * pose/shape coefficients θ, β and a camera (R, t, s), and obtains the 3D
 * joints from the MANO hand model. MANO's model files are licensed and not
 * redistributable, so they are unavailable here: the head regresses the 21
 * root-relative 3D joints directly (in the data's units, see `Data`), with
 * the rotation R folded into the joints (R = I), and the 2D joints are their
 * weak-perspective re-projection `J2D = S·(s·Π J3D + t + ½)` (see
 * {@link Camera}; the loss algebra's `Loss.reproject` signal).
 * The paper's regularisers on θ and β have no counterpart.
 *
 * The gate 𝒢 (Sec. 4.2) is a separate two-layer network ({@link gate}) on
 * `gateFeatures`, giving logits for `[EXIT, CONTINUE]`.
 *
 * The experiment of the paper's Tables 2 and 3 and Figure 7 is an ordinary
 * staged `Experiment` ({@link experiment} of a {@link Spec}: which variants
 * to train, the rows to evaluate and the exit-threshold sweeps): Algorithm
 * 1's stages as Train stages whose `wrt` (`Params`) and partitioned optimizer
 * express its parameter groups, the gate's REINFORCE training as a
 * `Reinforce` step, the rows and sweeps as `EvaluateExits` stages (`Exits`),
 * all run by the one runner.
 *
 * @module
 */
import type * as Data from "./Data.ts"
import * as Exits from "./Exits.ts"
import * as Experiment from "./Experiment.ts"
import * as Loss from "./Loss.ts"
import * as Net from "./Net.ts"
import * as Optimizer from "./Optimizer.ts"
import * as Params from "./Params.ts"
import * as Program from "./Program.ts"
import type * as Shape from "./Shape.ts"
import * as Step from "./Step.ts"
import * as Zoo from "./zoo.ts"

// ---- options --------------------------------------------------------------------

/**
 * Where the loop starts (the paper's Figure 9): RF is the stages from this
 * point on, FE everything before it.
 * - 1: FE = stem (→ S/4); RF = layer1…layer4; AMG upsamples ×8 (3 pixel shuffles);
 * - 2: FE = stem + layer1 (→ S/4); RF = layer2…layer4; ×8;
 * - 3: FE = stem + layer1 + layer2 (→ S/8, the paper's best: 224 → 28); RF = layer3, layer4; ×4;
 * - 4: FE = stem + layer1…layer3 (→ S/16); RF = layer4; ×2.
 */
export type LoopPoint = 1 | 2 | 3 | 4

export interface Options {
  /** Loop iterations `l_max + 1` (iteration 0 is the plain forward pass). Default 6 (the paper's l_max = 5). */
  readonly iterations?: number
  /** Default 3. */
  readonly loopPoint?: LoopPoint
  /** Base channels (first stage); the paper uses 32 for STB, 16 for FPHA. Default 32. */
  readonly width?: number
  /** Units of the first dense layer of each head; the paper uses 512 for STB, 256 for FPHA. Default 512. */
  readonly hidden?: number
  /** Input channels. Default 3 (RGB). */
  readonly inChannels?: number
  /** The loop's feedback (see {@link Feedback}). Default `"amg"`. */
  readonly feedback?: Feedback
}

/**
 * What the loop feeds back into FE's features:
 * - `"amg"`: DIR-Net's attention map generator (a 1×1 convolution, pixel
 *   shuffles, a sigmoid);
 * - `"upsample"`: Table 3's "Iter. w/out AMG", RF's output enlarged to FE's
 *   size with no parameters — its channels repeated, then pixel-shuffled
 *   (repeating channels ×4 before a ×2 pixel shuffle is exactly
 *   nearest-neighbour ×2 up-sampling) — and, since the loop multiplies,
 *   squashed by a sigmoid like AMG's map.
 */
export type Feedback = "amg" | "upsample"

/** The options with their defaults filled in. */
export interface Resolved {
  readonly iterations: number
  readonly loopPoint: LoopPoint
  readonly width: number
  readonly hidden: number
  readonly inChannels: number
  readonly feedback: Feedback
}

export const resolve = (o: Options = {}): Resolved => ({
  iterations: o.iterations ?? 6,
  loopPoint: o.loopPoint ?? 3,
  width: o.width ?? 32,
  hidden: o.hidden ?? 512,
  inChannels: o.inChannels ?? 3,
  feedback: o.feedback ?? "amg",
})

/** The per-sample input shape for an image side `imageSize` (a multiple of 32). */
export const inputShape = (imageSize: number, o: Options = {}): Shape.Shape => [
  imageSize,
  imageSize,
  resolve(o).inChannels,
]

// ---- layout of the readout ----------------------------------------------------------

export const JOINTS = 21
/** `[start, size)` of each part of the readout's output vector. */
export const layout = {
  pose: [0, 3 * JOINTS],
  camera: [3 * JOINTS, 3],
  logvar: [3 * JOINTS + 3, 2],
} as const
export const READOUT_SIZE = 3 * JOINTS + 3 + 2

/**
 * The weak-perspective camera `c = (c₀, c₁, c₂)` the pose head predicts, in
 * units of the image side `S`: scale `s = s₀·exp(clip(c₀, −4, 4))`
 * (positive, as the paper's `s ∈ ℝ⁺`), translation `t = (c₁, c₂)`, and
 * `J2D_j = S·(s·(x_j, y_j) + t + ½)` in pixels (Π drops z). With a zero
 * camera a hand is centred and spans about `s₀·S` pixels per bone unit.
 */
export interface Camera {
  /** Default 0.25: on the synthetic hands (joints in MCP–PIP bone units) a bone is ≈ S/4 pixels. */
  readonly baseScale: number
}
export const camera: Camera = { baseScale: 0.25 }

// ---- taps ----------------------------------------------------------------------------

/** Taps inside the loop (each also as `name@k`). */
export type LoopTap = "rf" | "features" | "pose" | "camera" | "gateFeatures" | "logvar" | "attention"
/** Every tap of a DIR-Net: FE's output `fe`, and the loop's taps (`attention@k` exists for k ≥ 1 only). */
export type Tap = "fe" | Net.LoopTaps<LoopTap>

// ---- parts ------------------------------------------------------------------------------

const stageWidths = (width: number): readonly number[] => [width, 2 * width, 4 * width, 8 * width]

const stem = (r: Resolved): Net.Net =>
  Net.seq(
    Net.scope(
      "conv1",
      Net.conv2d(r.width, 7, { stride: 2, padding: 3, bias: false, inChannels: r.inChannels }),
    ),
    Net.scope("bn1", Net.batchNorm()),
    Net.relu,
    Net.maxPool(3, { stride: 2, padding: 1 }),
  )

/** Stage `i` (1-based): one basic block scoped `layer{i}/0`, then its ReLU. */
const stage = (r: Resolved, i: number): Net.Net => {
  const widths = stageWidths(r.width)
  const inChannels = i === 1 ? r.width : widths[i - 2]!
  return Net.scope(
    `layer${i}`,
    Net.seq(Net.scope("0", Zoo.basicBlock(widths[i - 1]!, i === 1 ? 1 : 2, inChannels)), Net.relu),
  )
}

/** Spatial downsampling of FE (relative to the input) at a loop point. */
const feStride = (p: LoopPoint): number => (p <= 2 ? 4 : p === 3 ? 8 : 16)
/** Output channels of FE at a loop point. */
const feChannels = (r: Resolved): number =>
  r.loopPoint === 1 ? r.width : stageWidths(r.width)[r.loopPoint - 2]!
/** RF's output is `S/32 × S/32 × 8w`. */
const rfChannels = (r: Resolved): number => 8 * r.width

/** Number of ×2 pixel shuffles in AMG: log₂ of FE's spatial size over RF's. */
export const shuffles = (p: LoopPoint): number => Math.log2(32 / feStride(p))

export interface Parts {
  readonly fe: Net.Net
  readonly rf: Net.Net<"rf">
  readonly amg: Net.Net<"attention">
  readonly readout: Net.Net<"features" | "pose" | "camera" | "gateFeatures" | "logvar">
  /** FE's output channels and spatial stride, RF's output channels, AMG's pixel shuffles. */
  readonly feChannels: number
  readonly feStride: number
  readonly rfChannels: number
  readonly shuffles: number
}

/** FE, RF, AMG and the heads of IR9 for the options. */
export const parts = (o: Options = {}): Parts => {
  const r = resolve(o)
  const p = r.loopPoint
  const fe = Net.seq(stem(r), ...[1, 2, 3].filter((i) => i < p).map((i) => stage(r, i)))
  const rf = Net.seq(
    Net.scope("bn0", Net.batchNorm()),
    ...[1, 2, 3, 4].filter((i) => i >= p).map((i) => stage(r, i)),
    Net.tap("rf"),
  )
  const d = shuffles(p)
  const cFe = feChannels(r)
  const shuffled = Array.from({ length: d }, () => Net.pixelShuffle(2))
  const amg =
    r.feedback === "amg"
      ? Net.seq(
          Net.scope("conv", Net.conv2d(4 ** d * cFe, 1, { inChannels: rfChannels(r) })),
          ...shuffled,
          Net.sigmoid,
          Net.tap("attention"),
        )
      : Net.seq(
          // Repeat RF's channels so that d shuffles by 2 land on FE's channel count.
          Net.concat(...Array.from({ length: (4 ** d * cFe) / rfChannels(r) }, () => Net.identity)),
          ...shuffled,
          Net.sigmoid,
          Net.tap("attention"),
        )
  const c = rfChannels(r)
  const pose = Net.scope(
    "pose",
    Net.seq(
      Net.scope("fc1", Net.dense(r.hidden, { inFeatures: c })),
      Net.relu,
      Net.scope(
        "fc2",
        Net.concat(
          Net.seq(Net.scope("joints", Net.dense(3 * JOINTS)), Net.tap("pose")),
          Net.seq(Net.scope("camera", Net.dense(3)), Net.tap("camera")),
        ),
      ),
    ),
  )
  const variance = Net.scope(
    "var",
    Net.seq(
      Net.scope("fc1", Net.dense(r.hidden, { inFeatures: c })),
      Net.relu,
      Net.tap("gateFeatures"),
      Net.scope("fc2", Net.dense(2)),
      Net.tap("logvar"),
    ),
  )
  const readout = Net.seq(
    Net.globalAvgPool,
    Net.tap("features"),
    Net.scope("heads", Net.concat(pose, variance)),
  )
  return { fe, rf, amg, readout, feChannels: cFe, feStride: feStride(p), rfChannels: c, shuffles: d }
}

// ---- networks ------------------------------------------------------------------------------

/**
 * DIR-Net's IR9 with `iterations` loops: `seq(fe: FE, tap fe, loop: Loop(RF, AMG, heads))`.
 * Parameter paths: `fe/…`, `loop/body/…` (batch norms `loop/body/…/bn1@k`),
 * `loop/feedback/conv/…`, `loop/readout/pose/…`, `loop/readout/var/…`.
 */
export const dirnet = (o: Options = {}): Net.Net<Tap> => {
  const r = resolve(o)
  const p = parts(r)
  return Net.seq(
    Net.scope("fe", p.fe),
    Net.tap("fe"),
    Net.scope(
      "loop",
      Net.loop({
        iterations: r.iterations,
        body: p.rf,
        feedback: p.amg,
        readout: p.readout,
        batchNorm: "perIteration",
      }),
    ),
  )
}

/**
 * The network without a loop — FE, RF then the heads, the paper's "No Iter."
 * baseline — with the same parameter paths as {@link dirnet}'s iteration 0
 * except that RF's batch norms are not suffixed (`loop/body/bn0` for
 * `loop/body/bn0@0`); {@link plainPath} maps one to the other.
 */
export const plain = (
  o: Options = {},
): Net.Net<"fe" | "rf" | "features" | "pose" | "camera" | "gateFeatures" | "logvar"> => {
  const p = parts(o)
  return Net.seq(
    Net.scope("fe", p.fe),
    Net.tap("fe"),
    Net.scope("loop", Net.seq(Net.scope("body", p.rf), Net.scope("readout", p.readout))),
  )
}

/** The path in {@link plain} of a parameter or state path of {@link dirnet}'s iteration 0 (`…@0/gamma` → `…/gamma`). */
export const plainPath = (path: string): string => path.replace(/@0\//, "/")

/** Which part of IR9 a parameter or state path of {@link dirnet} belongs to. */
export type Part = "fe" | "rf" | "amg" | "heads"
export const partOf = (path: string): Part =>
  path.startsWith("fe/")
    ? "fe"
    : path.startsWith("loop/body/")
      ? "rf"
      : path.startsWith("loop/feedback/")
        ? "amg"
        : "heads"

/** The iteration a per-iteration batch-norm path belongs to (`loop/body/bn0@2/gamma` → 2), undefined for shared ones. */
export const iterationOf = (path: string): number | undefined => {
  const m = /@(\d+)\//.exec(path)
  return m === null ? undefined : Number(m[1])
}

/** Options of the gate 𝒢 (Sec. 4.2). */
export interface GateOptions {
  /** Features it reads: Ψ¹_var's width (the backbone's `hidden`). */
  readonly inFeatures: number
  /** Units of its hidden layer. Default 64. */
  readonly hidden?: number
}

/** The gate's two actions, in the order of its logits. */
export const ACTIONS = ["exit", "continue"] as const

/** The gate 𝒢(A | f): two dense layers from `gateFeatures` to logits `[EXIT, CONTINUE]`. */
export const gate = (o: GateOptions): Net.Net<"gateLogits"> =>
  Net.seq(
    Net.scope("fc1", Net.dense(o.hidden ?? 64, { inFeatures: o.inFeatures })),
    Net.relu,
    Net.scope("fc2", Net.dense(ACTIONS.length)),
    Net.tap("gateLogits"),
  )

// ---- exit policies of a results row (`Exits.Policy` is what evaluates them) -------------------------

export type ExitPolicy =
  /** Exit after every loop: the last iteration's prediction ("IR-Net", no dynamic exit). */
  | { readonly _tag: "Last" }
  /** Every sample exits after loop `loop` (0-based): the accuracy the network has at that fixed depth. */
  | { readonly _tag: "Loop"; readonly loop: number }
  /** Each sample exits at the loop of least 3D error against its labels: the most per-input exits can win. */
  | { readonly _tag: "Oracle" }
  /** Exit at the first loop whose average predicted variance `mean(exp α_2D, exp α_3D)` is below `tau` (Sec. 4.1). */
  | { readonly _tag: "Variance"; readonly tau: number }
  /** Sample EXIT/CONTINUE at each loop from `softmax(𝒢(f)/temperature)` (Sec. 4.2); the last loop always exits. */
  | { readonly _tag: "Gate"; readonly temperature: number; readonly seed: number }

export const exitLast: ExitPolicy = { _tag: "Last" }
/** Exit after loop `loop`, counted from 1 as the paper's loop points are. */
export const exitAfter = (loop: number): ExitPolicy => ({ _tag: "Loop", loop: loop - 1 })
export const oracleExit: ExitPolicy = { _tag: "Oracle" }
export const varianceExit = (tau: number): ExitPolicy => ({ _tag: "Variance", tau })
export const gateExit = (temperature: number, seed = 0): ExitPolicy => ({ _tag: "Gate", temperature, seed })

// ---- losses (Eqs. 3, 8, 9, 12) -----------------------------------------------------------------

/**
 * The re-projected 2D joints of iteration `k` (or of the last iteration):
 * `Loss.reproject(pose@k, camera@k)` into pixels of the model's input side
 * with the default {@link camera} (a `Net` cannot multiply two of its own
 * activations, so the bilinear re-projection is a signal of the loss
 * algebra, which every interpreter of losses gives a meaning).
 */
export const reprojected = (model: Program.Model<Tap>, k?: number): Loss.Signal =>
  Loss.reproject(
    Loss.tap(model, k === undefined ? "pose" : (`pose@${k}` as Tap)),
    Loss.tap(model, k === undefined ? "camera" : (`camera@${k}` as Tap)),
    { imageSize: model.input[0]!, baseScale: camera.baseScale },
  )

/** L_2D of iteration k (Eq. 3): mean absolute error of the re-projected joints, in pixels. */
export const loss2d = (model: Program.Model<Tap>, k: number): Loss.Loss =>
  Loss.absoluteError(reprojected(model, k), Loss.field("joints2d"), "mean")
/** L_3D of iteration k (Eq. 3): mean squared error of the 3D joints. */
export const loss3d = (model: Program.Model<Tap>, k: number): Loss.Loss =>
  Loss.squaredError(Loss.tap(model, `pose@${k}`), Loss.field("joints3d"), "mean")
/** L_var of iteration k (Eqs. 8, 9) in their bounded form: L_var2D (log-variance `logvar[0]`) + L_var3D (`logvar[1]`). */
export const lossVar = (model: Program.Model<Tap>, k: number): Loss.Loss =>
  Loss.sum(
    Loss.uncertainty({
      prediction: reprojected(model, k),
      target: Loss.field("joints2d"),
      logVariance: Loss.slice(Loss.tap(model, `logvar@${k}`), 0, 1),
      norm: "l1",
      reduce: "mean",
    }),
    Loss.uncertainty({
      prediction: Loss.tap(model, `pose@${k}`),
      target: Loss.field("joints3d"),
      logVariance: Loss.slice(Loss.tap(model, `logvar@${k}`), 1, 1),
      norm: "l2",
      reduce: "mean",
    }),
  )

/** γ_2D, γ_3D, γ_var of Eq. 12. */
export interface Weights {
  readonly loss2d: number
  readonly loss3d: number
  readonly lossVar: number
}
/** Defaults for the synthetic hands: L_2D is in pixels (≈ 10× L_3D's bone units). */
export const weights: Weights = { loss2d: 0.1, loss3d: 1, lossVar: 0.1 }

/** Eq. 12: `Σ_{k<iterations} γ_2D·L_2D^k + γ_3D·L_3D^k + γ_var·L_var^k`. */
export const totalLoss = (model: Program.Model<Tap>, iterations: number, w: Weights = weights): Loss.Loss =>
  Loss.overLoops(iterations, (k) =>
    Loss.sum(
      Loss.scale(w.loss2d, loss2d(model, k)),
      Loss.scale(w.loss3d, loss3d(model, k)),
      Loss.scale(w.lossVar, lossVar(model, k)),
    ),
  )

/** The pose error of iteration k the gate's reward reads (Eq. 11): `L_2D^k + L_3D^k`. */
export const poseLoss = (model: Program.Model<Tap>, k: number): Loss.Loss =>
  Loss.sum(loss2d(model, k), loss3d(model, k))

// ---- the experiment: an ordinary staged `Experiment` ----------------------------------------------

/** A DIR-Net the experiment trains with the progressive protocol (Algorithm 1); also a program model of that name. */
export interface Variant {
  readonly name: string
  readonly options: Resolved
}

/**
 * How a results row evaluates its variant on the test set: `NoIter` is the
 * network after stage 0 of its progressive training (FE, RF and the heads
 * once, Table 3's "No Iter."); an exit policy evaluates the trained network,
 * each sample leaving the loop where the policy says.
 */
export type Evaluate = { readonly _tag: "NoIter" } | ExitPolicy
export const noIter: Evaluate = { _tag: "NoIter" }

/** One row of a results table: 3D AUC and EPE, average GFLOPs and parameters of a variant under an evaluation. */
export interface Row {
  readonly table: string
  readonly row: string
  /** The {@link Variant} evaluated. */
  readonly model: string
  readonly evaluate: Evaluate
}

/** The gate 𝒢 and its REINFORCE training (Eqs. 10, 11), on the frozen network's training-set features. */
export interface GateSettings {
  /** Units of the gate's hidden layer. */
  readonly hidden: number
  /** Full-batch policy-gradient steps on the training set. */
  readonly steps: number
  /** Adam's learning rate. */
  readonly lr: number
  /** Eq. 11's λ (pose-error weight) and the GFLOPs weight μ of the reward `−λ(L_2D + L_3D) − μ·GFLOPs`. */
  readonly lambda: number
  readonly flopsWeight: number
  /** Softmax temperature while training. */
  readonly temperature: number
}

/**
 * Figure 7: AUC against average GFLOPs for several τ_var and τ_gate, all
 * evaluated on one trained network (and one trained gate). τ_var values are
 * given as quantiles of the average predicted variance over the training
 * set (every sample at every loop), since the variances' scale is only
 * known once trained.
 */
export interface Sweep {
  readonly model: string
  readonly tauVarQuantiles: readonly number[]
  readonly tauGate: readonly number[]
}

/**
 * What the paper's Tables 2 and 3 and Figure 7 vary: which variants to
 * train, the rows to evaluate, the gate and the sweeps. {@link experiment}
 * turns it into the staged `Experiment` the one runner runs, and
 * {@link models} into the program's models.
 */
export interface Spec {
  /** Side of the square RGB input (a multiple of 32). */
  readonly imageSize: number
  readonly train: Data.Spec
  readonly test: Data.Spec
  readonly batchSize: number
  /** Algorithm 1's base learning rate (Adam). */
  readonly lr: number
  /** Epochs of stage 0 and of every later stage (the paper: 50 and 20). */
  readonly epochs: { readonly first: number; readonly later: number }
  readonly weights: Weights
  readonly variants: readonly Variant[]
  readonly rows: readonly Row[]
  /** Each table's reference row (table → row): the rows a summary pairs every other row of the table with. */
  readonly references: Readonly<Record<string, string>>
  readonly gate: GateSettings
  readonly sweep: Sweep | undefined
}

export const gateDefaults: GateSettings = {
  hidden: 64,
  steps: 200,
  lr: 1e-2,
  lambda: 1,
  flopsWeight: 1,
  temperature: 1,
}

export const variant = (name: string, options: Options): Variant => ({ name, options: resolve(options) })

export const row = (table: string, name: string, model: Variant, evaluate: Evaluate): Row => ({
  table,
  row: name,
  model: model.name,
  evaluate,
})

export const spec = (o: {
  readonly imageSize: number
  readonly train: Data.Spec
  readonly test: Data.Spec
  readonly batchSize: number
  readonly lr?: number
  readonly epochs: { readonly first: number; readonly later: number }
  readonly weights?: Weights
  readonly variants: readonly Variant[]
  readonly rows: readonly Row[]
  readonly references?: Readonly<Record<string, string>>
  readonly gate?: Partial<GateSettings>
  readonly sweep?: Sweep
}): Spec => ({
  imageSize: o.imageSize,
  train: o.train,
  test: o.test,
  batchSize: o.batchSize,
  lr: o.lr ?? 1e-3,
  epochs: o.epochs,
  weights: o.weights ?? weights,
  variants: o.variants,
  rows: o.rows,
  references: o.references ?? {},
  gate: { ...gateDefaults, ...o.gate },
  sweep: o.sweep,
})

/** The variants that train stage 0 together: their options differ only in the loop's feedback and length. */
export const stage0Key = (o: Resolved): string => JSON.stringify({ ...o, iterations: 1, feedback: undefined })

/** The variants grouped by {@link stage0Key}, in order of first appearance. */
export const stage0Groups = (e: Spec): Variant[][] => {
  const groups = new Map<string, Variant[]>()
  for (const v of e.variants) {
    const key = stage0Key(v.options)
    groups.set(key, [...(groups.get(key) ?? []), v])
  }
  return [...groups.values()]
}

/**
 * The program model a variant trains in stage `k` of Algorithm 1: its
 * network with `k + 1` loops, named after the variant (the last stage's is
 * the variant itself). Variants sharing a stage 0 share its model (the
 * first one's).
 */
export const stageModel = (e: Spec, v: Variant, k: number): Program.Model<Tap> => {
  const owner = k === 0 ? stage0Groups(e).find((g) => g.includes(v))![0]! : v
  const name = k === owner.options.iterations - 1 ? owner.name : `${owner.name}-stage${k}`
  const options = { ...(k === 0 ? owner.options : v.options), iterations: k + 1 }
  return Program.model(name, dirnet(options), inputShape(e.imageSize, options))
}

/** The gate model of a variant: 𝒢 on its `gateFeatures`. */
export const gateModel = (e: Spec, v: Variant): Program.Model<"gateLogits"> =>
  Program.model(`${v.name}-gate`, gate({ inFeatures: v.options.hidden, hidden: e.gate.hidden }), [
    v.options.hidden,
  ])

/** The variants whose gate a row or the sweep reads. */
const gated = (e: Spec): Variant[] =>
  e.variants.filter(
    (v) =>
      e.rows.some((r) => r.model === v.name && r.evaluate._tag === "Gate") ||
      (e.sweep?.model === v.name && e.sweep.tauGate.length > 0),
  )

/**
 * Algorithm 1's parameter groups at stage `k ≥ 1`: FE is not trained (the
 * step's `wrt` leaves it out), AMG keeps the base rate, everything else
 * trains at the base rate ÷ 10^k.
 */
export const stageOptimizer = (lr: number, k: number): Optimizer.Optimizer =>
  k === 0
    ? Optimizer.adam({ lr })
    : Optimizer.partition({
        optimizers: { amg: Optimizer.adam({ lr }), rest: Optimizer.adam({ lr: lr / 10 ** k }) },
        rules: [Optimizer.rule("amg", Params.prefix("loop/feedback"))],
        otherwise: "rest",
      })

/** What a stage `k ≥ 1` trains: everything but the feature extractor FE. */
export const afterStage0: Params.Filter = Params.not(Params.prefix("fe"))

/** Samples a data spec yields, when known statically (synthetic data). */
const sizeOf = (spec: Data.Spec): number | undefined =>
  spec._tag === "Synthetic" ? Math.floor(spec.count * (spec.subset.to - spec.subset.from)) : undefined

/** The exit policy that evaluates a row ("No Iter." is the last loop of the stage-0 network). */
const exitPolicy = (ev: Evaluate, gate: () => Program.Model): Exits.Policy => {
  switch (ev._tag) {
    case "NoIter":
    case "Last":
      return Exits.last
    case "Loop":
      return Exits.loop(ev.loop)
    case "Oracle":
      return Exits.oracle
    case "Variance":
      return Exits.variance(ev.tau)
    case "Gate":
      return Exits.gate(gate(), ev.temperature, ev.seed)
  }
}

/**
 * The experiment as stages of the one runner: every variant's progressive
 * training (Algorithm 1) as Train stages — a shared stage 0 per group of
 * variants, then each variant's stages 1 … l_max, each starting from the
 * previous stage's model (`Experiment.copy`: the new loop's batch norms,
 * and AMG at stage 1, start fresh), FE left out of `wrt` and AMG's rate
 * kept by a partitioned optimizer ({@link stageOptimizer}); the gates'
 * REINFORCE training as Train stages of a `Reinforce` step (full batch on
 * the training set, `steps` updates, when its size is known; one epoch of
 * mini-batches otherwise); then every
 * row and every point of the sweep as an `EvaluateExits` stage.
 */
export const experiment = (e: Spec): Experiment.Experiment => {
  const stages: Experiment.Stage[] = []
  const step = (m: Program.Model<Tap>, k: number) =>
    Step.minimize({
      loss: totalLoss(m, k + 1, e.weights),
      wrt: k === 0 ? m : Params.only(m, afterStage0),
      optimizer: stageOptimizer(e.lr, k),
    })
  for (const group of stage0Groups(e)) {
    const m0 = stageModel(e, group[0]!, 0)
    stages.push(
      Experiment.train({
        name: `${group.map((v) => v.name).join(" + ")} · stage 0`,
        data: e.train,
        epochs: e.epochs.first,
        batchSize: e.batchSize,
        step: step(m0, 0),
        init: { [m0.name]: Experiment.scratch },
      }),
    )
    for (const v of group) {
      for (let k = 1; k < v.options.iterations; k++) {
        const m = stageModel(e, v, k)
        stages.push(
          Experiment.train({
            name: `${v.name} · stage ${k}`,
            data: e.train,
            epochs: e.epochs.later,
            batchSize: e.batchSize,
            step: step(m, k),
            init: { [m.name]: Experiment.copy(stageModel(e, v, k - 1)) },
          }),
        )
      }
      if (v.options.iterations === 1 && v !== group[0])
        // A one-loop variant is its group's stage 0, copied.
        stages.push(
          Experiment.train({
            name: `${v.name} · stage 0 (shared)`,
            data: e.train,
            epochs: 0,
            batchSize: e.batchSize,
            step: step(stageModel(e, v, 0), 0),
            init: { [v.name]: Experiment.copy(m0) },
          }),
        )
    }
  }
  const trainSize = sizeOf(e.train)
  for (const v of gated(e)) {
    const g = gateModel(e, v)
    stages.push(
      Experiment.train({
        name: `${v.name} · gate (REINFORCE)`,
        data: e.train,
        // Full batch, `steps` updates on the frozen network's features; when the size is unknown (real data),
        // one epoch of mini-batches, one update each.
        epochs: 1,
        batchSize: trainSize ?? e.batchSize,
        step: Exits.reinforce({
          gate: g,
          network: v.name,
          lambda: e.gate.lambda,
          flopsWeight: e.gate.flopsWeight,
          temperature: e.gate.temperature,
          updates: trainSize === undefined ? 1 : e.gate.steps,
          optimizer: Optimizer.adam({ lr: e.gate.lr }),
        }),
        init: { [g.name]: Experiment.scratch },
      }),
    )
  }
  const variantOf = (name: string) => e.variants.find((v) => v.name === name)!
  for (const r of e.rows) {
    const v = variantOf(r.model)
    const ev = r.evaluate
    const policy = exitPolicy(ev, () => gateModel(e, v))
    stages.push(
      Exits.evaluate({
        name: `${r.table} · ${r.row}`,
        model: ev._tag === "NoIter" ? stageModel(e, v, 0) : r.model,
        data: e.test,
        policy,
        into: { _tag: "Row", table: r.table, row: r.row, column: "test", variant: r.model, label: ev },
      }),
    )
  }
  if (e.sweep !== undefined) {
    const v = variantOf(e.sweep.model)
    for (const q of e.sweep.tauVarQuantiles)
      stages.push(
        Exits.evaluate({
          name: `Figure 7 · τ_var quantile ${q}`,
          model: v.name,
          data: e.test,
          policy: Exits.varianceQuantile(q, e.train),
          into: { _tag: "Sweep", series: "τ_var", variant: v.name },
        }),
      )
    for (const t of e.sweep.tauGate)
      stages.push(
        Exits.evaluate({
          name: `Figure 7 · τ_gate ${t}`,
          model: v.name,
          data: e.test,
          policy: Exits.gate(gateModel(e, v), t, 0),
          into: { _tag: "Sweep", series: "τ_gate", variant: v.name },
        }),
      )
  }
  return Experiment.experiment({
    feeds: Object.fromEntries(models(e).map((m) => [m.name, "rgb" as const])),
    stages,
    references: e.references,
  })
}

/** The program models of an experiment: every stage's network of every variant, and the gates. */
export const models = (e: Spec): Program.Model[] => {
  const all = new Map<string, Program.Model>()
  for (const v of e.variants)
    for (let k = 0; k < v.options.iterations; k++) {
      const m = stageModel(e, v, k)
      all.set(m.name, m)
    }
  for (const v of gated(e)) all.set(gateModel(e, v).name, gateModel(e, v))
  return [...all.values()]
}

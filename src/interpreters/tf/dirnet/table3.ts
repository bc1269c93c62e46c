/**
 * The paper's Table 3 (ablation of the recursive refinement) in miniature,
 * on synthetic STB-like hands: IR9 trained with the progressive protocol;
 * rows "No Iter." (stage 0: FE, RF and the heads once), "Iter. w/ AMG"
 * (all loops), "Iter. w/ AMG + τ_var" (variance exit) and "Iter. w/ AMG + 𝒢"
 * (the REINFORCE gate at τ_gate). GFLOPs are the shape checker's expected
 * cost under each row's exit distribution; 3D AUC is over 20–50 mm (STB).
 * The "Iter. w/out AMG" row is not reproduced.
 *
 * @module
 */

import * as Metrics from "../../../data/metrics.ts"
import { open } from "../../../data/open.ts"
import type * as Stream from "../../../data/stream.ts"
import * as Data from "../../../dsl/Data.ts"
import * as Dirnet from "../../../dsl/dirnet.ts"
import * as Costs from "../../shape-check/dirnet.ts"
import * as Check from "../../shape-check/index.ts"
import * as Init from "../init.ts"
import * as Exits from "./exits.ts"
import * as Train from "./train.ts"

export interface Row {
  readonly method: string
  readonly auc3d: number
  /** Mean 3D joint error, mm. */
  readonly epe: number
  readonly gflops: number
  readonly params: number
  /** Mean exit loop (0-based). */
  readonly meanExit: number
}

export interface Options {
  readonly dirnet?: Dirnet.Options
  readonly imageSize?: number
  readonly trainCount?: number
  readonly testCount?: number
  readonly batchSize?: number
  /** Epochs of stage 0 and of each later stage (the paper: 50 and 20). */
  readonly epochs?: readonly [number, number]
  readonly lr?: number
  /** Eq. 11's λ and the GFLOPs weight μ; gate steps; τ_gate. */
  readonly gate?: {
    readonly lambda?: number
    readonly flopsWeight?: number
    readonly steps?: number
    readonly temperature?: number
  }
  /** τ_var; default: the median average variance at loop 0 on the training set. */
  readonly tauVar?: number
  readonly seed?: number
  readonly log?: (line: string) => void
}

const concat = (parts: readonly Float32Array[]): Float32Array => {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0))
  let o = 0
  for (const p of parts) {
    out.set(p, o)
    o += p.length
  }
  return out
}

/** Runs every iteration over a whole dataset in one batch list, concatenated. */
const allIterations = (t: Train.Trained, batches: Iterable<Stream.Batch>) => {
  const parts: Exits.Iterations[] = []
  const truth: Float32Array[] = []
  const scale: Float32Array[] = []
  for (const raw of batches) {
    const b = Train.toTensors(raw, t.imageSize)
    parts.push(Exits.iterations(t, b))
    Train.disposeBatch(b)
    truth.push(raw.joints3d)
    scale.push(raw.scale)
  }
  const n = t.options.iterations
  const its: Exits.Iterations = {
    iterations: n,
    size: parts.reduce((a, p) => a + p.size, 0),
    hidden: t.options.hidden,
    pose: Array.from({ length: n }, (_, k) => concat(parts.map((p) => p.pose[k]!))),
    joints2d: Array.from({ length: n }, (_, k) => concat(parts.map((p) => p.joints2d[k]!))),
    logvar: Array.from({ length: n }, (_, k) => concat(parts.map((p) => p.logvar[k]!))),
    gateFeatures: Array.from({ length: n }, (_, k) => concat(parts.map((p) => p.gateFeatures[k]!))),
    poseLoss: Array.from({ length: n }, (_, k) => concat(parts.map((p) => p.poseLoss[k]!))),
  }
  return { its, truth: concat(truth), scale: concat(scale) }
}

/** Trains and evaluates the Table 3 miniature; returns its rows. */
export const table3 = (o: Options = {}): Row[] => {
  const imageSize = o.imageSize ?? 64
  const options = Dirnet.resolve({ width: 8, hidden: 64, iterations: 4, loopPoint: 3, ...o.dirnet })
  const batchSize = o.batchSize ?? 16
  const train = open(
    Data.synthetic({ domain: "stb", count: o.trainCount ?? 256, imageSize, seed: o.seed ?? 0 }),
  )
  const test = open(
    Data.synthetic({ domain: "stb", count: o.testCount ?? 128, imageSize, seed: (o.seed ?? 0) + 1 }),
  )
  const [e0, e1] = o.epochs ?? [6, 3]
  const log = o.log ?? (() => {})
  const input = Dirnet.inputShape(imageSize, options)
  const rows: Row[] = []
  const row = (
    method: string,
    its: Exits.Iterations,
    data: { truth: Float32Array; scale: Float32Array },
    exits: Int32Array,
    params: number,
    macsAtExit: readonly number[],
  ) => {
    const r = Metrics.report3d(Exits.poseAtExit(its, exits), data.truth, data.scale)
    const dist = Costs.exitDistribution(exits, its.iterations)
    const result: Row = {
      method,
      auc3d: r.auc20to50,
      epe: r.epe,
      gflops: Costs.gflops(Costs.expectedMacs({ macsAtExit }, dist)),
      params,
      meanExit: dist.reduce((a, p, k) => a + p * k, 0),
    }
    log(JSON.stringify(result))
    rows.push(result)
  }
  const testBatches = () => test.batches({ batchSize: 64, seed: 0, epoch: 0 })
  const trained = Train.progressive({
    dirnet: options,
    imageSize,
    batches: (epoch) => train.batches({ batchSize, seed: o.seed ?? 0, epoch }),
    epochs: (s) => (s === 0 ? e0 : e1),
    ...(o.lr === undefined ? {} : { lr: o.lr }),
    seed: o.seed ?? 0,
    onStep: (i) => {
      if (i.epoch === 0) return
      log(`stage ${i.stage} epoch ${i.epoch} loss ${i.loss.toFixed(3)}`)
    },
    onStage: (stage, t) => {
      if (stage !== 0) return
      // "No Iter.": stage 0 is FE, RF and the heads once.
      const e = allIterations(t, testBatches())
      const params = Check.check(Dirnet.plain(options), input).summary.cost.params
      row("No Iter.", e.its, e, new Int32Array(e.its.size), params, Costs.loopCosts(t.net, input).macsAtExit)
    },
  })
  const costs = Costs.loopCosts(trained.net, input)
  const evalSet = allIterations(trained, testBatches())
  const trainSet = allIterations(trained, train.batches({ batchSize: 64, seed: 0, epoch: 0 }))
  const last = new Int32Array(evalSet.its.size).fill(options.iterations - 1)
  row("Iter. w/ AMG", evalSet.its, evalSet, last, costs.params, costs.macsAtExit)
  const variances = Array.from({ length: trainSet.its.size }, (_, b) =>
    Exits.averageVariance(trainSet.its, 0, b),
  ).sort((a, b) => a - b)
  const tau = o.tauVar ?? variances[Math.floor(variances.length / 2)]!
  row(
    `Iter. w/ AMG + τ_var=${tau.toPrecision(3)}`,
    evalSet.its,
    evalSet,
    Exits.varianceExits(evalSet.its, tau),
    costs.params,
    costs.macsAtExit,
  )
  const g = o.gate ?? {}
  const reward = Exits.rewards(trainSet.its, costs, {
    lambda: g.lambda ?? 1,
    flopsWeight: g.flopsWeight ?? 1,
  })
  const gate = Exits.trainGate(Exits.initGate(options.hidden, (o.seed ?? 0) + 99), trainSet.its, reward, {
    steps: g.steps ?? 200,
    seed: o.seed ?? 0,
  })
  const gateParams = Init.count(gate.params)
  row(
    `Iter. w/ AMG + G (τ_gate=${g.temperature ?? 1})`,
    evalSet.its,
    evalSet,
    Exits.gateExits(gate, evalSet.its, g.temperature ?? 1, o.seed ?? 0),
    costs.params + gateParams,
    costs.macsAtExit,
  )
  Init.dispose(gate.params)
  Train.dispose(trained)
  return rows
}

/**
 * What `cmkg run`'s runner (src/interpreters/tf/experiment.ts) costs per step
 * beyond the step itself: tiny-64-train's step (cmkd-rhd's "rgb baseline"
 * stage with zoo's smallResNet, batch 64 at 64×64, as bench/dsl.ts times it)
 * run by the runner over a synthetic split, against the same step in a bare
 * loop over the same batches (batch → tensors → `StepRun.run` → dispose). The
 * two alternate within one process, `--rounds` times; each side's wall-clock
 * and CPU time per step are measured between the end of its first and of its
 * last step (the runner's at its progress reports), so start-up, the epoch's
 * checkpoint and the results are left out. CPU time (this process's) is the
 * steadier of the two on a machine other processes share. `runner ÷ bare − 1` is the runner's overhead per step: its
 * metrics line, progress, Effects and the yield to the event loop where
 * Ctrl-C lands. `--trivial` times a one-channel network at 8×8, batch 2,
 * where the step costs almost nothing and the overhead shows in µs.
 *
 *   node --import tsx bench/runner-overhead.ts [--steps 8] [--rounds 4] [--threads 1] [--backend auto] [--trivial]
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as tf from "@tensorflow/tfjs-core"
import { Effect, Layer } from "effect"
import type { BackendPreference } from "../src/backend/index.ts"
import { open } from "../src/data/open.ts"
import { batchSeed } from "../src/data/stream.ts"
import * as Data from "../src/dsl/Data.ts"
import * as Experiment from "../src/dsl/Experiment.ts"
import type * as Loss from "../src/dsl/Loss.ts"
import * as Program from "../src/dsl/Program.ts"
import * as Zoo from "../src/dsl/zoo.ts"
import * as Runner from "../src/interpreters/tf/experiment.ts"
import * as Tf from "../src/interpreters/tf/index.ts"
import * as StepRun from "../src/interpreters/tf/step.ts"
import cmkdRhd from "../src/programs/cmkd-rhd.ts"
import { stageOf } from "./dsl.ts"
import { median } from "./stats.ts"

const args = process.argv.slice(2)
const opt = (name: string, dflt: string): string => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt
}
const trivial = args.includes("--trivial")
const steps = Number(opt("steps", trivial ? "400" : "8"))
const rounds = Number(opt("rounds", "4"))
const batch = trivial ? 2 : 64
const imageSize = trivial ? 8 : 64
const seed = 1

const selected = await Tf.ready(opt("backend", "auto") as BackendPreference, {
  threads: Number(opt("threads", "1")),
})

// The workload's stage, its model's network replaced by the workload's and its data by a synthetic split of `steps` batches.
const { program: cmkd, stage } = stageOf(cmkdRhd, "paper", "rgb baseline")
const net = trivial ? Zoo.smallResNet({ outputs: 63, widths: [1, 1] }) : Zoo.smallResNet({ outputs: 63 })
const models = cmkd.models.map((m) =>
  Program.model(m.name, net, [imageSize, imageSize, m.input[m.input.length - 1]!]),
)
const data = Data.synthetic({ domain: "rhd", count: batch * steps, imageSize, seed: 5, modalities: ["rgb"] })
const train = Experiment.train({ name: stage.name, data, epochs: 1, batchSize: batch, step: stage.step })
const program = Program.program({
  name: "runner-overhead",
  description: "tiny-64-train through the runner",
  models,
  experiment: Experiment.experiment({ feeds: cmkd.experiment!.feeds, stages: [train] }),
})
const ctx: StepRun.Context = {
  models: Object.fromEntries(models.map((m) => [m.name, m])),
  feeds: program.experiment!.feeds,
}
const ds = open(data)

/** When a step ended: wall-clock and CPU seconds (this process, all its threads). */
interface Mark {
  readonly wall: number
  readonly cpu: number
}
const mark = (): Mark => {
  const c = process.cpuUsage()
  return { wall: performance.now() / 1000, cpu: (c.user + c.system) / 1e6 }
}

/** Seconds per step between the end of the first and of the last step. */
const perStep = (marks: readonly Mark[]): Mark => ({
  wall: (marks.at(-1)!.wall - marks[0]!.wall) / (marks.length - 1),
  cpu: (marks.at(-1)!.cpu - marks[0]!.cpu) / (marks.length - 1),
})

/** The runner, from an empty run directory: one epoch of `steps` steps (each step's end marked by its progress report). */
const throughRunner = async (): Promise<Mark> => {
  const out = mkdtempSync(join(tmpdir(), "cmkg-runner-overhead-"))
  const marks: Mark[] = []
  await Effect.runPromise(
    Runner.run(program, {
      out,
      seed,
      resume: false,
      reporter: { progress: () => marks.push(mark()), log: () => {} },
    }).pipe(Effect.provide(Layer.succeed(Tf.Backend, selected))),
  )
  rmSync(out, { recursive: true, force: true })
  return perStep(marks)
}

/** The same steps in a bare loop: the runner's world for this stage (initialised with the run's seed), its batches. */
const bare = (): Mark => {
  const model = ctx.models["rgb-baseline"]!
  const { params, state } = Tf.init(model.net, model.input, seed)
  let world: StepRun.World = {
    params: { [model.name]: params },
    state: { [model.name]: state },
    meta: {},
    opt: {},
  }
  const marks: Mark[] = []
  for (const b of ds.batches({ batchSize: batch, seed: batchSeed(seed, data), epoch: 0, dropLast: true })) {
    const t: Partial<Record<Loss.Field, tf.Tensor>> = {
      joints3d: tf.tensor2d(b.joints3d, [b.size, 63]),
      joints2d: tf.tensor2d(b.joints2d, [b.size, 42]),
      rgb: tf.tensor4d(b.rgb, [b.size, imageSize, imageSize, 3]),
    }
    world = StepRun.run(stage.step, world, t, ctx).world
    for (const v of Object.values(t)) v.dispose()
    marks.push(mark())
  }
  for (const tree of [...Object.values(world.params), ...Object.values(world.state)])
    for (const v of Object.values(tree)) v.dispose()
  for (const s of Object.values(world.opt))
    for (const slot of s.slots)
      for (const tree of Object.values(slot)) for (const v of Object.values(tree)) v.dispose()
  return perStep(marks)
}

/**
 * The Effect machinery of one runner step with nothing to do: the step's Effects as `trainStage` runs them
 * (its batch acquired and released around a synchronous step, then the yield to the event loop), against
 * the promise-based runner's `await setImmediate` per step. Microseconds per step, over `n` steps.
 */
const machinery = async (n: number): Promise<{ effect: number; promise: number }> => {
  const attempt = <A>(f: () => A) => Effect.try({ try: f, catch: (e) => e })
  const t0 = performance.now()
  await Effect.runPromise(
    Effect.gen(function* () {
      let sum = 0
      for (let i = 0; i < n; i++) {
        sum += yield* Effect.acquireUseRelease(
          attempt(() => ({ i })),
          (b) => attempt(() => b.i),
          () => Effect.sync(() => {}),
        )
        yield* Effect.yieldNow
      }
      return sum
    }),
  )
  const t1 = performance.now()
  for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setImmediate(resolve))
  const t2 = performance.now()
  return { effect: ((t1 - t0) * 1000) / n, promise: ((t2 - t1) * 1000) / n }
}

// One untimed round first: tfjs compiles and caches its kernels on the first steps of each side.
bare()
await throughRunner()
const wall: number[] = []
const cpu: number[] = []
for (let r = 0; r < rounds; r++) {
  const b = bare()
  const runner = await throughRunner()
  wall.push(runner.wall / b.wall)
  cpu.push(runner.cpu / b.cpu)
  console.log(
    `round ${r + 1}: ms/step bare ${(b.wall * 1e3).toFixed(3)} (CPU ${(b.cpu * 1e3).toFixed(3)}), ` +
      `runner ${(runner.wall * 1e3).toFixed(3)} (CPU ${(runner.cpu * 1e3).toFixed(3)}); ` +
      `runner ÷ bare ${(runner.wall / b.wall).toFixed(4)} (CPU ${(runner.cpu / b.cpu).toFixed(4)})`,
  )
}
const summary = (xs: number[]) =>
  `median ${median(xs).toFixed(4)} (min ${Math.min(...xs).toFixed(4)}, max ${Math.max(...xs).toFixed(4)})`
console.log(
  `${trivial ? "trivial step (8×8, batch 2)" : "tiny-64-train"} on ${selected.name}, ${steps} steps × ${rounds} rounds: ` +
    `runner ÷ bare wall ${summary(wall)}; CPU ${summary(cpu)}`,
)
await machinery(2000)
const per = [await machinery(20000), await machinery(20000), await machinery(20000)]
console.log(
  `per step with nothing to do (20000 steps × 3): the runner's Effects ${per.map((p) => p.effect.toFixed(1)).join(", ")} µs; ` +
    `the promise-based runner's await setImmediate ${per.map((p) => p.promise.toFixed(1)).join(", ")} µs`,
)

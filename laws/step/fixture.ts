/**
 * Tiny CMKG setups for the step laws: a student on `rgb` and a teacher on
 * `depth` with the same small conv architecture (conv + batch norm + relu +
 * pool + conv + relu + global pool + dense), G = L_REG + L_DIST and
 * F = L_REG + R(θ; φ) (CMKG Eqs. 8-10).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core"
import * as Loss from "../../src/dsl/Loss.ts"
import * as Net from "../../src/dsl/Net.ts"
import * as Program from "../../src/dsl/Program.ts"
import * as Ref from "../../src/interpreters/reference/index.ts"
import * as Init from "../../src/interpreters/tf/init.ts"
import type * as Steps from "../../src/interpreters/tf/step.ts"

export interface Arch {
  readonly size: number
  readonly c1: number
  readonly c2: number
  readonly out: number
  readonly pool: "max" | "avg"
  /** The first convolution's stride and dilation (both > 1: convolved densely, then subsampled). */
  readonly stride?: 1 | 2
  readonly dilation?: 1 | 2
}

export const net = (a: Arch) =>
  Net.seq(
    Net.conv2d(a.c1, 3, { stride: a.stride ?? 1, dilation: a.dilation ?? 1 }),
    Net.batchNorm(),
    Net.relu,
    Net.tap("a"),
    a.pool === "max" ? Net.maxPool(2) : Net.avgPool(2),
    Net.conv2d(a.c2, 3),
    Net.relu,
    Net.tap("b"),
    Net.globalAvgPool,
    Net.dense(a.out),
  )

export const setup = (a: Arch, seed: number, batchSize: number, phiScale = 0.05, lambda = 10) => {
  const student = Program.model("student", net(a), [a.size, a.size, 2])
  const teacher = Program.model("teacher", net(a), [a.size, a.size, 1])
  const G = Loss.sum(
    Loss.regression(student),
    Loss.distillation({ student, teacher, last: "b", taps: ["a", "b"], lambda }),
  )
  const F = Loss.sum(Loss.regression(student), Loss.weightedNorm(student, "phi"))
  const ctx: Steps.Context = { models: { student, teacher }, feeds: { student: "rgb", teacher: "depth" } }
  const rand = Ref.mulberry32(seed)
  const u = (shape: number[], scale = 1) =>
    tf.tensor(
      Float32Array.from({ length: shape.reduce((x, y) => x * y, 1) }, () => (2 * rand() - 1) * scale),
      shape,
    )
  const s = Init.init(student.net, student.input, seed)
  const t = Init.init(teacher.net, teacher.input, seed + 1)
  // Non-trivial running statistics for the frozen teacher.
  const tState = Object.fromEntries(
    Object.entries(t.state).map(([k, v]) => {
      const w = k.endsWith("variance") ? tf.add(v, tf.abs(u(v.shape, 0.5))) : u(v.shape, 0.3)
      v.dispose()
      return [k, w]
    }),
  )
  const phi = Object.fromEntries(Object.entries(s.params).map(([k, v]) => [k, u(v.shape, phiScale)]))
  const world: Steps.World = {
    params: { student: s.params, teacher: t.params },
    state: { student: s.state, teacher: tState },
    meta: { phi },
    opt: {},
  }
  const batch = {
    rgb: u([batchSize, a.size, a.size, 2]),
    depth: u([batchSize, a.size, a.size, 1]),
    joints3d: u([batchSize, a.out]),
  }
  return { student, teacher, G, F, ctx, world, batch, rand }
}

/** Every value of a tree, its entries in key order (to compare trees element by element). */
export const flatValues = (t: Init.Tree): number[] =>
  Object.keys(t)
    .sort()
    .flatMap((k) => Array.from(t[k]!.dataSync()))

/** A copy of a world's tensors, without optimizer state (running a step on it leaves `w` whole). */
export const cloneWorld = (w: Steps.World): Steps.World => {
  const copy = (g: Readonly<Record<string, Init.Tree>>) =>
    Object.fromEntries(
      Object.entries(g).map(([n, t]) => [
        n,
        Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v.clone()])),
      ]),
    )
  return { params: copy(w.params), state: copy(w.state), meta: copy(w.meta), opt: {} }
}

/** Disposes every tensor of a world. */
export const disposeWorld = (w: Steps.World): void => {
  for (const group of [w.params, w.state, w.meta]) for (const tree of Object.values(group)) Init.dispose(tree)
  for (const s of Object.values(w.opt))
    for (const slot of s.slots) for (const tree of Object.values(slot)) Init.dispose(tree)
}

/**
 * Data sources as pure values: which hand-pose dataset, which part of it,
 * at which input size and with which modalities. No I/O happens here;
 * `src/data/open.ts` gives a spec its meaning (a stream of batches), and the
 * shape checker reads `modalities` and `shapes`.
 *
 * Every source yields the same per-sample fields, after the CMKG
 * preprocessing (MANO joint order, hand crop, root-relative pose):
 * - `rgb`: `[S, S, 3]`, values in [0, 1];
 * - `depth`: `[S, S, 1]`, (z − z_wrist) / 200 mm clamped to [-1, 1], 1 where there is no surface;
 * - `joints3d`: `[63]`, 21 joints × (x, y, z), camera axes, relative to the wrist and divided by
 *   `scale`, i.e. in units of the middle finger's MCP–PIP bone;
 * - `joints2d`: `[42]`, 21 joints × (u, v) in pixels of the `S × S` input;
 * - `scale`: `[1]`, the MCP–PIP bone length in mm (so `joints3d · scale` is in mm).
 *
 * @module
 */
import * as Shape from "./Shape.ts"

// ---- models ----------------------------------------------------------------------

/** An input modality: the weak one (`rgb`) or the superior one (`depth`). */
export type Modality = "rgb" | "depth"

/** Built-in synthetic domains: `rhd` is the paired source, the others are RGB-only targets. */
export const SYNTHETIC_DOMAINS = [
  "rhd",
  "stb",
  "freihand-gs",
  "freihand-hom",
  "freihand-sample",
  "freihand-auto",
] as const
export type SyntheticDomain = (typeof SYNTHETIC_DOMAINS)[number]

/** FreiHAND's four training image styles (file id = index + 32,560 · version). */
export const FREIHAND_VERSIONS = ["gs", "hom", "sample", "auto"] as const
export type FreihandVersion = (typeof FREIHAND_VERSIONS)[number]

/** STB sequences; the papers evaluate on B1 and train on B2–B6. */
export const STB_TEST: readonly string[] = ["B1Counting", "B1Random"]
export const STB_TRAIN: readonly string[] = [2, 3, 4, 5, 6].flatMap((b) => [`B${b}Counting`, `B${b}Random`])

/** A half-open fraction `[from, to)` of a source's samples, in its natural order. */
export interface Subset {
  readonly from: number
  readonly to: number
}

interface Common {
  /** Side of the square network input, in pixels. */
  readonly imageSize: number
  readonly modalities: readonly Modality[]
  readonly subset: Subset
}

/** Generated paired hands (see `src/data/synthetic`). */
export interface Synthetic extends Common {
  readonly _tag: "Synthetic"
  readonly domain: SyntheticDomain
  readonly count: number
  readonly seed: number
}

/** Rendered Hand Pose dataset (`RHD_published_v2/`), one split. */
export interface Rhd extends Common {
  readonly _tag: "Rhd"
  readonly dir: string
  readonly split: "training" | "evaluation"
}

/** Stereo Hand Pose Tracking Benchmark, RealSense (SK) colour images of the listed sequences. */
export interface Stb extends Common {
  readonly _tag: "Stb"
  readonly dir: string
  readonly sequences: readonly string[]
}

/** FreiHAND training set in one of its four styles. */
export interface Freihand extends Common {
  readonly _tag: "Freihand"
  readonly dir: string
  readonly version: FreihandVersion
}

/** A data source. */
export type Spec = Synthetic | Rhd | Stb | Freihand

// ---- constructors ----------------------------------------------------------------

const ALL: Subset = { from: 0, to: 1 }

/**
 * Synthetic hands of a domain. Defaults: 64 px, seed 0, the domain's modalities
 * (`rhd`: rgb + depth; the others: rgb).
 *
 * @example Data.synthetic({ domain: "rhd", count: 2000, imageSize: 64, seed: 1 })
 */
export const synthetic = (o: {
  readonly domain: SyntheticDomain
  readonly count: number
  readonly imageSize?: number
  readonly seed?: number
  readonly modalities?: readonly Modality[]
}): Synthetic => ({
  _tag: "Synthetic",
  domain: o.domain,
  count: o.count,
  seed: o.seed ?? 0,
  imageSize: o.imageSize ?? 64,
  modalities: o.modalities ?? (o.domain === "rhd" ? ["rgb", "depth"] : ["rgb"]),
  subset: ALL,
})

/** RHD from `dir` (holding `training/` and `evaluation/`). Defaults: 64 px, rgb + depth. */
export const rhd = (o: {
  readonly dir: string
  readonly split: "training" | "evaluation"
  readonly imageSize?: number
  readonly modalities?: readonly Modality[]
}): Rhd => ({
  _tag: "Rhd",
  dir: o.dir,
  split: o.split,
  imageSize: o.imageSize ?? 64,
  modalities: o.modalities ?? ["rgb", "depth"],
  subset: ALL,
})

/**
 * STB from `dir` (holding `labels/` and one folder per sequence). Defaults: the
 * training sequences B2–B6, 64 px, rgb (the target domain has no depth in CMKG).
 */
export const stb = (o: {
  readonly dir: string
  readonly sequences?: readonly string[]
  readonly imageSize?: number
  readonly modalities?: readonly Modality[]
}): Stb => ({
  _tag: "Stb",
  dir: o.dir,
  sequences: o.sequences ?? STB_TRAIN,
  imageSize: o.imageSize ?? 64,
  modalities: o.modalities ?? ["rgb"],
  subset: ALL,
})

/** FreiHAND training images of one style from `dir` (holding `training_xyz.json`, `training/rgb/`). RGB only. */
export const freihand = (o: {
  readonly dir: string
  readonly version: FreihandVersion
  readonly imageSize?: number
}): Freihand => ({
  _tag: "Freihand",
  dir: o.dir,
  version: o.version,
  imageSize: o.imageSize ?? 64,
  modalities: ["rgb"],
  subset: ALL,
})

// ---- combinators -----------------------------------------------------------------

/**
 * Splits a source into disjoint train and test parts by position: the last
 * `test` fraction of the (current subset of the) samples is the test part.
 *
 * @example const { train, test } = Data.split(Data.synthetic({ domain: "rhd", count: 1000 }), { test: 0.2 })
 */
export const split = <S extends Spec>(
  spec: S,
  o: { readonly test: number },
): { readonly train: S; readonly test: S } => {
  if (!(o.test > 0 && o.test < 1))
    throw new Error(`Data.split: test fraction must be in (0, 1), got ${o.test}`)
  const { from, to } = spec.subset
  const cut = from + (to - from) * (1 - o.test)
  return { train: { ...spec, subset: { from, to: cut } }, test: { ...spec, subset: { from: cut, to } } }
}

/** The same source at another input size. */
export const withImageSize = <S extends Spec>(spec: S, imageSize: number): S => ({ ...spec, imageSize })

/** The same source restricted to some modalities (e.g. an RGB-only view of paired data). */
export const withModalities = <S extends Spec>(spec: S, modalities: readonly Modality[]): S => ({
  ...spec,
  modalities,
})

// ---- folds -----------------------------------------------------------------------

/** Per-sample shapes of a source's fields (no batch dimension). Absent modalities are absent. */
export interface Shapes {
  readonly rgb?: Shape.Shape
  readonly depth?: Shape.Shape
  readonly joints3d: Shape.Shape
  readonly joints2d: Shape.Shape
  readonly scale: Shape.Shape
}

/** Number of hand joints in every source. */
export const JOINTS = 21

export const shapes = (spec: Spec): Shapes => {
  const s = spec.imageSize
  return {
    ...(spec.modalities.includes("rgb") ? { rgb: Shape.image(s, s, 3) } : {}),
    ...(spec.modalities.includes("depth") ? { depth: Shape.image(s, s, 1) } : {}),
    joints3d: Shape.vector(JOINTS * 3),
    joints2d: Shape.vector(JOINTS * 2),
    scale: Shape.vector(1),
  }
}

/** Whether the source provides a modality. */
export const has = (spec: Spec, m: Modality): boolean => spec.modalities.includes(m)

/** A one-line description, e.g. `synthetic rhd ×2000 @64 seed 1 [rgb+depth] [0, 0.8)`. */
export const describe = (spec: Spec): string => {
  const tail = `@${spec.imageSize} [${spec.modalities.join("+")}]${
    spec.subset.from === 0 && spec.subset.to === 1 ? "" : ` [${spec.subset.from}, ${spec.subset.to})`
  }`
  switch (spec._tag) {
    case "Synthetic":
      return `synthetic ${spec.domain} ×${spec.count} seed ${spec.seed} ${tail}`
    case "Rhd":
      return `rhd ${spec.split} ${spec.dir} ${tail}`
    case "Stb":
      return `stb ${spec.sequences.join(",")} ${spec.dir} ${tail}`
    case "Freihand":
      return `freihand ${spec.version} ${spec.dir} ${tail}`
  }
}

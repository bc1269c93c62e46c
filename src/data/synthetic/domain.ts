/**
 * Named synthetic domains: configurations that shift appearance and geometry
 * the way the real datasets differ. `rhd` is the paired RGB + depth source
 * with large variation; `stb` and the four FreiHAND styles are RGB-only
 * targets.
 *
 * Every field is plain data so a domain can be hashed into the cache key.
 *
 * @module
 */
import * as Data from "../../dsl/Data.ts"
import type * as Background from "./background.ts"
import type * as Hand from "./hand.ts"

/** Names of the built-in domains. */
export const NAMES = Data.SYNTHETIC_DOMAINS
export type Name = Data.SyntheticDomain

type Range = readonly [number, number]
type Rgb = readonly [number, number, number]

/** How the hand is turned relative to the camera. */
export type View =
  | { readonly _tag: "Any" }
  /** Palm towards the camera, then yaw / pitch / roll within these ranges (degrees). */
  | { readonly _tag: "Facing"; readonly yaw: Range; readonly pitch: Range; readonly roll: Range }

export interface Domain {
  readonly name: string
  /** Modalities the domain provides: depth only where the real dataset has it. */
  readonly modalities: readonly ("rgb" | "depth")[]
  readonly pose: Hand.PoseDistribution
  readonly view: View
  /** Horizontal field of view of the full camera (degrees). */
  readonly fov: Range
  /** Distance of the wrist from the camera (mm). */
  readonly distance: Range
  /** Hand position off the optical axis, as a fraction of the half field of view. */
  readonly offAxis: number
  /** Crop side over the 2D joint bounding box's side: how much of the image the hand fills. */
  readonly margin: Range
  /** Crop-centre jitter, as a fraction of the crop. */
  readonly shift: number
  readonly skinTones: readonly Rgb[]
  readonly skinJitter: number
  /** Probability that the forearm wears a sleeve (random colour) rather than bare skin. */
  readonly sleeve: number
  readonly ambient: Range
  readonly diffuse: Range
  readonly specular: Range
  /** How far the light colour strays from white. */
  readonly lightTint: number
  readonly background: readonly Background.Family[]
  /** FreiHAND "hom": pull the hand's colour this far towards the background's mean colour. */
  readonly harmonise: number
  /** FreiHAND "auto": probability of re-colouring the hand by a random channel mix. */
  readonly recolour: number
  /** Sensor noise std-dev (in [0, 1] intensity). */
  readonly noise: Range
  /** Number of 3×3 box-blur passes (per 64 px of image size). */
  readonly blur: readonly number[]
}

// Skin albedos (linear-ish RGB), light to dark.
const TONES_ALL: readonly Rgb[] = [
  [0.93, 0.76, 0.65],
  [0.87, 0.66, 0.54],
  [0.78, 0.57, 0.44],
  [0.66, 0.46, 0.34],
  [0.5, 0.34, 0.24],
  [0.36, 0.24, 0.17],
]

const FREIHAND_BASE = {
  modalities: ["rgb"],
  pose: { gesture: 0.3, jitter: 0.12, size: [0.85, 1.15] },
  view: { _tag: "Facing", yaw: [-180, 180], pitch: [-60, 60], roll: [-90, 90] },
  fov: [40, 50],
  distance: [400, 650],
  offAxis: 0.3,
  margin: [1.25, 1.45],
  shift: 0.05,
  skinTones: TONES_ALL.slice(0, 5),
  skinJitter: 0.06,
  sleeve: 0.2,
  ambient: [0.35, 0.5],
  diffuse: [0.55, 0.8],
  specular: [0.05, 0.15],
  lightTint: 0.08,
  harmonise: 0,
  recolour: 0,
  noise: [0.01, 0.03],
  blur: [0, 1],
} as const

/** The built-in domains. */
export const builtIn: Readonly<Record<Name, Domain>> = {
  // RHD: rendered characters, any viewpoint, varied skin/light, cluttered backgrounds, paired depth.
  rhd: {
    name: "rhd",
    modalities: ["rgb", "depth"],
    pose: { gesture: 0.25, jitter: 0.15, size: [0.8, 1.2] },
    view: { _tag: "Any" },
    fov: [40, 80],
    distance: [300, 900],
    offAxis: 0.7,
    margin: [1.2, 1.9],
    shift: 0.12,
    skinTones: TONES_ALL,
    skinJitter: 0.1,
    sleeve: 0.5,
    ambient: [0.15, 0.55],
    diffuse: [0.4, 0.95],
    specular: [0, 0.3],
    lightTint: 0.25,
    background: ["clutter", "clutter", "natural"],
    harmonise: 0,
    recolour: 0,
    noise: [0.01, 0.06],
    blur: [0, 0, 1, 1, 2],
  },
  // STB: one subject in a lab, RealSense colour camera (≈ 56° HFOV), palm mostly towards the camera, counting gestures.
  stb: {
    name: "stb",
    modalities: ["rgb"],
    pose: { gesture: 0.85, jitter: 0.08, size: [0.95, 1.05] },
    view: { _tag: "Facing", yaw: [-35, 35], pitch: [-30, 30], roll: [-35, 35] },
    fov: [55, 57],
    distance: [350, 550],
    offAxis: 0.4,
    margin: [1.3, 1.5],
    shift: 0.06,
    skinTones: [[0.86, 0.64, 0.52]],
    skinJitter: 0.03,
    sleeve: 0.9,
    ambient: [0.45, 0.6],
    diffuse: [0.45, 0.6],
    specular: [0.02, 0.08],
    lightTint: 0.05,
    background: ["lab"],
    harmonise: 0,
    recolour: 0,
    noise: [0.015, 0.03],
    blur: [0, 1],
  },
  "freihand-gs": { ...FREIHAND_BASE, name: "freihand-gs", background: ["green"] },
  "freihand-hom": { ...FREIHAND_BASE, name: "freihand-hom", background: ["natural"], harmonise: 0.45 },
  "freihand-sample": { ...FREIHAND_BASE, name: "freihand-sample", background: ["natural", "clutter"] },
  "freihand-auto": { ...FREIHAND_BASE, name: "freihand-auto", background: ["natural"], recolour: 1 },
}

/** Whether `name` is a built-in domain. */
export const isName = (name: string): name is Name => (NAMES as readonly string[]).includes(name)

/** The domain called `name`; throws listing the known names otherwise. */
export const get = (name: string): Domain => {
  if (!isName(name)) throw new Error(`unknown synthetic domain "${name}" (known: ${NAMES.join(", ")})`)
  return builtIn[name]
}

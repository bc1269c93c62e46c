/**
 * What `--scale` means for the experiment programs, and where their data
 * comes from (`--data rhd=DIR,stb=DIR,freihand=DIR`, else the synthetic
 * domains).
 *
 * `paper` follows the papers: ResNet-18 at 256×256, batch 32, Adam 2.5e-4.
 * `tiny` and `small` shrink images, widths, data and epochs so that a run
 * fits one 2-core machine without a GPU (tiny: under 5 minutes for cmkg-stb;
 * small: tens of minutes per seed).
 *
 * @module
 */
import * as Data from "../dsl/Data.ts"
import type * as Net from "../dsl/Net.ts"
import * as Optimizer from "../dsl/Optimizer.ts"
import type * as Program from "../dsl/Program.ts"
import * as Zoo from "../dsl/zoo.ts"

export interface Settings {
  readonly scale: Program.Scale
  readonly imageSize: number
  /** Training / test samples per synthetic domain. */
  readonly trainCount: number
  readonly testCount: number
  readonly epochs: number
  readonly batchSize: number
  readonly lr: number
  /** The backbone of every hand-pose network, for `channels` input channels (3 rgb, 1 depth). */
  readonly backbone: (channels: number) => Net.Net<BackboneTap>
  readonly taps: readonly BackboneTap[]
}

/** Taps the distillation losses use: each stage's output. */
export type BackboneTap = "layer1" | "layer2" | "layer3" | "layer4"

const small = (widths: readonly number[]) => (_channels: number) =>
  Zoo.smallResNet({ outputs: 63, widths }) as Net.Net<BackboneTap>

export const settings = (scale: Program.Scale): Settings => {
  switch (scale) {
    case "tiny":
      return {
        scale,
        imageSize: 32,
        trainCount: 384,
        testCount: 128,
        epochs: 3,
        batchSize: 32,
        lr: 2e-3,
        backbone: small([8, 16, 24, 32]),
        taps: ["layer1", "layer2", "layer3", "layer4"],
      }
    case "small":
      return {
        scale,
        imageSize: 32,
        trainCount: 4000,
        testCount: 400,
        epochs: 12,
        batchSize: 32,
        lr: 2e-3,
        backbone: small([8, 16, 32, 64]),
        taps: ["layer1", "layer2", "layer3", "layer4"],
      }
    case "paper":
      return {
        scale,
        imageSize: 256,
        trainCount: 40000,
        testCount: 2700,
        epochs: 100,
        batchSize: 32,
        lr: 2.5e-4,
        backbone: () => Zoo.resnet18({ outputs: 63 }) as Net.Net<BackboneTap>,
        taps: ["layer1", "layer2", "layer3", "layer4"],
      }
  }
}

export const adam = (s: Settings): Optimizer.Optimizer => Optimizer.adam({ lr: s.lr })

/** The input shape of a network reading `channels` channels. */
export const input = (s: Settings, channels: number): readonly number[] => [
  s.imageSize,
  s.imageSize,
  channels,
]

export type Domain = Data.SyntheticDomain

/**
 * Train and test splits of a domain: the real dataset when `options.data`
 * names its directory, else a synthetic domain (train and test drawn with
 * different seeds, so they never share a sample).
 */
export const splits = (
  s: Settings,
  options: Program.Options,
  domain: Domain,
  modalities: readonly Data.Modality[],
): { readonly train: Data.Spec; readonly test: Data.Spec } => {
  const real = realSplits(s, options, domain, modalities)
  if (real !== undefined) return real
  const make = (count: number, seed: number) =>
    Data.synthetic({ domain, count, imageSize: s.imageSize, seed, modalities: [...modalities] })
  return { train: make(s.trainCount, 1), test: make(s.testCount, 2) }
}

const realSplits = (
  s: Settings,
  options: Program.Options,
  domain: Domain,
  modalities: readonly Data.Modality[],
) => {
  const size = s.imageSize
  if (domain === "rhd" && options.data.rhd !== undefined) {
    const dir = options.data.rhd
    return {
      train: Data.rhd({ dir, split: "training", imageSize: size, modalities: [...modalities] }),
      test: Data.rhd({ dir, split: "evaluation", imageSize: size, modalities: [...modalities] }),
    }
  }
  if (domain === "stb" && options.data.stb !== undefined) {
    const dir = options.data.stb
    return {
      train: Data.stb({ dir, sequences: Data.STB_TRAIN, imageSize: size, modalities: [...modalities] }),
      test: Data.stb({ dir, sequences: Data.STB_TEST, imageSize: size, modalities: [...modalities] }),
    }
  }
  if (domain.startsWith("freihand-") && options.data.freihand !== undefined) {
    const version = domain.slice("freihand-".length) as Data.FreihandVersion
    const all = Data.freihand({ dir: options.data.freihand, version, imageSize: size })
    return Data.split(all, { test: 0.1 })
  }
  return undefined
}

/**
 * A model zoo: ordinary functions that build `Net` values.
 *
 * The ResNets follow torchvision's layout exactly (parameter paths mirror its
 * state-dict names, `layer3/0/conv1` for `layer3.0.conv1`), so parameter and
 * MAC counts can be checked against torchvision's published figures.
 *
 * @module
 */
import * as Net from "./Net.ts"

/** Taps every ResNet exposes: the output of each stage and the pooled features. */
export type ResNetTap = "stem" | "layer1" | "layer2" | "layer3" | "layer4" | "pool"

const conv = (
  name: string,
  inChannels: number | undefined,
  filters: number,
  kernel: number,
  stride: number,
  padding: number,
) =>
  Net.scope(
    name,
    Net.conv2d(filters, kernel, {
      stride,
      padding,
      bias: false,
      ...(inChannels === undefined ? {} : { inChannels }),
    }),
  )
const bn = (name: string) => Net.scope(name, Net.batchNorm())

const downsample = (inChannels: number, filters: number, stride: number) =>
  Net.scope("downsample", Net.seq(conv("0", inChannels, filters, 1, stride, 0), bn("1")))

/** torchvision's BasicBlock without its final ReLU: two 3×3 convs; a 1×1 projection when the shape changes. */
export const basicBlock = (filters: number, stride: number, inChannels: number): Net.Net =>
  Net.residual(
    Net.seq(
      conv("conv1", inChannels, filters, 3, stride, 1),
      bn("bn1"),
      Net.relu,
      conv("conv2", filters, filters, 3, 1, 1),
      bn("bn2"),
    ),
    stride !== 1 || inChannels !== filters ? downsample(inChannels, filters, stride) : undefined,
  )

/** torchvision's Bottleneck without its final ReLU (ResNet v1.5: the stride sits on the 3×3 conv), expansion 4. */
export const bottleneck = (width: number, stride: number, inChannels: number): Net.Net =>
  Net.residual(
    Net.seq(
      conv("conv1", inChannels, width, 1, 1, 0),
      bn("bn1"),
      Net.relu,
      conv("conv2", width, width, 3, stride, 1),
      bn("bn2"),
      Net.relu,
      conv("conv3", width, width * 4, 1, 1, 0),
      bn("bn3"),
    ),
    stride !== 1 || inChannels !== width * 4 ? downsample(inChannels, width * 4, stride) : undefined,
  )

/** A stage: blocks scoped `0`, `1`, … (each followed by its ReLU, outside the scope as in torchvision's naming). */
const stage = (blocks: readonly Net.Net[]): Net.Net =>
  Net.seq(...blocks.flatMap((b, i) => [Net.scope(String(i), b), Net.relu]))

export interface ResNetOptions {
  /** Number of outputs of the final dense layer (`fc`). */
  readonly outputs: number
  /** Stage widths; torchvision's are 64, 128, 256, 512. */
  readonly widths?: readonly number[]
}

type Block = (filters: number, stride: number, inChannels: number) => Net.Net

const resnet = (
  block: Block,
  expansion: number,
  depths: readonly number[],
  options: ResNetOptions,
): Net.Net<ResNetTap> => {
  const widths = options.widths ?? [64, 128, 256, 512]
  let channels = widths[0]!
  const stages = depths.map((depth, i) => {
    const blocks: Net.Net[] = []
    for (let b = 0; b < depth; b++) {
      const stride = b === 0 && i > 0 ? 2 : 1
      blocks.push(block(widths[i]!, stride, channels))
      channels = widths[i]! * expansion
    }
    return [Net.scope(`layer${i + 1}`, stage(blocks)), Net.tap(`layer${i + 1}`)]
  })
  return Net.seq(
    conv("conv1", undefined, widths[0]!, 7, 2, 3),
    bn("bn1"),
    Net.relu,
    Net.maxPool(3, { stride: 2, padding: 1 }),
    Net.tap("stem"),
    ...(stages.flat() as Net.Net<ResNetTap>[]),
    Net.globalAvgPool,
    Net.tap("pool"),
    Net.scope("fc", Net.dense(options.outputs, { inFeatures: channels })),
  )
}

/** ResNet-18 (torchvision layout); the input's channels and size are free. */
export const resnet18 = (options: ResNetOptions): Net.Net<ResNetTap> =>
  resnet(basicBlock, 1, [2, 2, 2, 2], options)
/** ResNet-34 (torchvision layout). */
export const resnet34 = (options: ResNetOptions): Net.Net<ResNetTap> =>
  resnet(basicBlock, 1, [3, 4, 6, 3], options)
/** ResNet-50 (torchvision layout, v1.5 bottlenecks). */
export const resnet50 = (options: ResNetOptions): Net.Net<ResNetTap> =>
  resnet(bottleneck, 4, [3, 4, 6, 3], options)

export interface SmallResNetOptions {
  readonly outputs: number
  /** Channels of each stage (one stage per entry); default `[16, 32, 64, 128]`. */
  readonly widths?: readonly number[]
  /** Basic blocks per stage; default 1. */
  readonly blocksPerStage?: number
  /** Stride of the first block of each stage; default 1 for the first, 2 after. */
  readonly strides?: readonly number[]
}

/**
 * A width/depth-configurable small ResNet for fast experiments (the
 * `tiny-64-train` benchmark network with the defaults): a 3×3 stem, basic
 * blocks, global average pooling and a dense head. Taps `stem`, `layer1`…
 * `layerN` and `pool`.
 */
export const smallResNet = (options: SmallResNetOptions): Net.Net<string> => {
  const widths = options.widths ?? [16, 32, 64, 128]
  const perStage = options.blocksPerStage ?? 1
  let channels = widths[0]!
  const stages = widths.map((w, i) => {
    const blocks: Net.Net[] = []
    for (let b = 0; b < perStage; b++) {
      const stride = b === 0 ? (options.strides?.[i] ?? (i === 0 ? 1 : 2)) : 1
      blocks.push(basicBlock(w, stride, channels))
      channels = w
    }
    return [Net.scope(`layer${i + 1}`, stage(blocks)), Net.tap(`layer${i + 1}`)]
  })
  return Net.seq(
    conv("conv1", undefined, widths[0]!, 3, 1, 1),
    bn("bn1"),
    Net.relu,
    Net.tap("stem"),
    ...stages.flat(),
    Net.globalAvgPool,
    Net.tap("pool"),
    Net.scope("fc", Net.dense(options.outputs, { inFeatures: channels })),
  )
}

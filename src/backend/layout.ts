/**
 * Slice and PadV2 for `cmkg-cpu` as block copies.
 *
 * tfjs's cpu kernels move one element at a time with index arithmetic; a
 * padded ResNet stem (pad, then a valid max pool) spent 8 s per step in the
 * Slice that is the pad's gradient. Here every run of elements contiguous in
 * both tensors (the innermost dimensions, merged while they are taken whole)
 * is one `TypedArray.set`.
 *
 * @module
 */
import type { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu"
import { type KernelConfig, slice_util, type TensorInfo } from "@tensorflow/tfjs-core"
import { valuesOf, withFallback } from "./kernel.ts"
import { alloc } from "./pool.ts"

const strides = (shape: readonly number[]): number[] => {
  const s = new Array<number>(shape.length).fill(1)
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1]! * shape[i + 1]!
  return s
}

/**
 * Copy the block of `size` at `srcStart` in `src` (shape `srcShape`) to `dstStart`
 * in `dst` (shape `dstShape`); both of the same rank.
 */
const copyBlock = (
  src: Float32Array,
  srcShape: readonly number[],
  srcStart: readonly number[],
  dst: Float32Array,
  dstShape: readonly number[],
  dstStart: readonly number[],
  size: readonly number[],
): void => {
  const rank = size.length
  if (size.some((d) => d === 0)) return
  // The innermost dims taken whole in both tensors form one contiguous run.
  let inner = rank - 1
  let run = size[inner]!
  while (inner > 0 && size[inner] === srcShape[inner] && size[inner] === dstShape[inner]) {
    inner--
    run *= size[inner]!
  }
  const ss = strides(srcShape)
  const ds = strides(dstShape)
  const index = new Array<number>(inner).fill(0)
  const outer = size.slice(0, inner).reduce((a, b) => a * b, 1)
  for (let k = 0; k < outer; k++) {
    let s = srcStart[inner]! * ss[inner]!
    let d = dstStart[inner]! * ds[inner]!
    for (let i = 0; i < inner; i++) {
      s += (srcStart[i]! + index[i]!) * ss[i]!
      d += (dstStart[i]! + index[i]!) * ds[i]!
    }
    dst.set(src.subarray(s, s + run), d)
    for (let i = inner - 1; i >= 0; i--) {
      if (++index[i]! < size[i]!) break
      index[i] = 0
    }
  }
}

const slice = withFallback("Slice", ({ inputs, attrs }, b: MathBackendCPU) => {
  const { x } = inputs as { x: TensorInfo }
  if (x.dtype !== "float32" || x.shape.length === 0) return undefined
  const a = attrs as unknown as { begin: number | number[]; size: number | number[] }
  const [begin, size] = slice_util.parseSliceParams(x as never, a.begin, a.size)
  const n = size.reduce((p, q) => p * q, 1)
  const out = alloc(n)
  copyBlock(valuesOf(b, x), x.shape, begin, out, size, new Array(size.length).fill(0), size)
  return b.makeTensorInfo(size, "float32", out)
})

const padV2 = withFallback("PadV2", ({ inputs, attrs }, b: MathBackendCPU) => {
  const { x } = inputs as { x: TensorInfo }
  if (x.dtype !== "float32" || x.shape.length === 0) return undefined
  const { paddings, constantValue } = attrs as unknown as {
    paddings: Array<[number, number]>
    constantValue: number
  }
  if (paddings.some(([lo, hi]) => lo < 0 || hi < 0)) return undefined
  const shape = x.shape.map((d, i) => d + paddings[i]![0] + paddings[i]![1])
  const out = alloc(shape.reduce((p, q) => p * q, 1))
  out.fill(constantValue)
  copyBlock(
    valuesOf(b, x),
    x.shape,
    new Array(x.shape.length).fill(0),
    out,
    shape,
    paddings.map(([lo]) => lo),
    x.shape,
  )
  return b.makeTensorInfo(shape, "float32", out)
})

export const layoutKernels = (backendName: string): Array<KernelConfig> => [
  { kernelName: "Slice", backendName, kernelFunc: slice },
  { kernelName: "PadV2", backendName, kernelFunc: padV2 },
]

/**
 * A PNG contact sheet of synthetic samples: per domain one row of RGB images
 * with the 2D skeleton drawn, each next to its depth map (dark grey where the
 * domain has no depth modality).
 *
 * @module
 */
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import * as Png from "fast-png"
import * as Data from "../dsl/Data.ts"
import * as Joints from "./joints.ts"
import * as Domain from "./synthetic/domain.ts"
import * as Generate from "./synthetic/generate.ts"
import * as Render from "./synthetic/render.ts"

/** Colours of the wrist and the five fingers (thumb … little). */
const COLOURS: readonly (readonly [number, number, number])[] = [
  [255, 255, 255],
  [255, 60, 60],
  [255, 200, 0],
  [60, 220, 60],
  [0, 200, 255],
  [200, 80, 255],
]

const line = (
  img: Uint8Array,
  width: number,
  x0: number,
  y0: number,
  x1: number,
  y1: number,
  c: readonly number[],
) => {
  const n = Math.ceil(Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0))) + 1
  for (let i = 0; i <= n; i++) {
    const x = Math.floor(x0 + ((x1 - x0) * i) / n)
    const y = Math.floor(y0 + ((y1 - y0) * i) / n)
    if (x < 0 || y < 0 || x >= width || y * width * 3 >= img.length) continue
    img.set(c, (y * width + x) * 3)
  }
}

/** Draws the 21-joint skeleton (`joints2d` in cell pixels) into a cell of a sheet at (`ox`, `oy`). */
const skeleton = (img: Uint8Array, width: number, ox: number, oy: number, size: number, uv: Float32Array) => {
  const inCell = (x: number, y: number) => x >= 0 && y >= 0 && x < size && y < size
  for (let j = 1; j < Joints.COUNT; j++) {
    const p = Joints.PARENT[j]!
    const [x0, y0, x1, y1] = [uv[p * 2]!, uv[p * 2 + 1]!, uv[j * 2]!, uv[j * 2 + 1]!]
    if (!inCell(x0, y0) || !inCell(x1, y1)) continue
    line(img, width, ox + x0, oy + y0, ox + x1, oy + y1, COLOURS[1 + Math.floor((j - 1) / 4)]!)
  }
}

/**
 * Writes `preview-<domain>.png` (or `preview-all.png` when no domain is
 * given: one row per built-in domain) into directory `out`; returns its path.
 * Defaults: 8 samples per row, 128 px, seed 0.
 */
export const writePreview = (o: {
  readonly domain?: Data.SyntheticDomain
  readonly out: string
  readonly count?: number
  readonly imageSize?: number
  readonly seed?: number
}): string => {
  const names: readonly Data.SyntheticDomain[] = o.domain !== undefined ? [o.domain] : Data.SYNTHETIC_DOMAINS
  const count = o.count ?? 8
  const s = o.imageSize ?? 128
  const width = count * 2 * s
  const img = new Uint8Array(width * names.length * s * 3)
  const canvas = Render.canvas(s)
  names.forEach((name, row) => {
    const domain = Domain.get(name)
    const hasDepth = domain.modalities.includes("depth")
    for (let i = 0; i < count; i++) {
      const r = Generate.render(domain, s, o.seed ?? 0, i, canvas)
      const ox = i * 2 * s
      const oy = row * s
      const rootZ = r.joints3d[2]!
      for (let y = 0; y < s; y++)
        for (let x = 0; x < s; x++) {
          const at = ((oy + y) * width + ox + x) * 3
          img.set(r.rgb.subarray((y * s + x) * 3, (y * s + x) * 3 + 3), at)
          const z = r.depth[y * s + x]!
          // Near is bright: 200 mm in front of the wrist → 255, 200 mm behind → 0.
          const g = !hasDepth
            ? 40
            : Number.isFinite(z)
              ? Math.max(0, Math.min(255, Math.round(128 - ((z - rootZ) / 200) * 127)))
              : 0
          img.fill(g, at + s * 3, at + s * 3 + 3)
        }
      skeleton(img, width, ox, oy, s, r.joints2d)
    }
  })
  mkdirSync(o.out, { recursive: true })
  const path = join(o.out, `preview-${o.domain ?? "all"}.png`)
  writeFileSync(path, Png.encode({ width, height: names.length * s, channels: 3, data: img }))
  return path
}

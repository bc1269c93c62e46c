/**
 * Procedural backgrounds for the synthetic RGB images, one family per look:
 * cluttered scenes (with skin-coloured distractors), a lab/office, a green
 * screen, and smooth "natural" photos.
 *
 * Images are Float32Array `S·S·3`, row-major, linear values in [0, 1].
 *
 * @module
 */
import * as Random from "../random.ts"

/** Background families. */
export type Family = "clutter" | "lab" | "green" | "natural"

type Rgb = readonly [number, number, number]

const randomColour = (r: Random.Random): Rgb => [r.next(), r.next(), r.next()]

/** Bilinearly upsampled random colour grid: smooth, low-frequency colour fields. */
const valueNoise = (out: Float32Array, size: number, cells: number, amp: number, palette: () => Rgb) => {
  const n = cells + 1
  const grid = new Float32Array(n * n * 3)
  for (let i = 0; i < n * n; i++) {
    const c = palette()
    grid[i * 3] = c[0]
    grid[i * 3 + 1] = c[1]
    grid[i * 3 + 2] = c[2]
  }
  const step = cells / size
  for (let y = 0; y < size; y++) {
    const gy = (y + 0.5) * step
    const y0 = Math.min(Math.floor(gy), cells - 1)
    const fy = gy - y0
    for (let x = 0; x < size; x++) {
      const gx = (x + 0.5) * step
      const x0 = Math.min(Math.floor(gx), cells - 1)
      const fx = gx - x0
      const a = (y0 * n + x0) * 3
      const b = a + 3
      const c = a + n * 3
      const d = c + 3
      const o = (y * size + x) * 3
      for (let k = 0; k < 3; k++) {
        const top = grid[a + k]! + (grid[b + k]! - grid[a + k]!) * fx
        const bot = grid[c + k]! + (grid[d + k]! - grid[c + k]!) * fx
        out[o + k] = out[o + k]! * (1 - amp) + (top + (bot - top) * fy) * amp
      }
    }
  }
}

const fill = (out: Float32Array, c: Rgb) => {
  for (let i = 0; i < out.length; i += 3) {
    out[i] = c[0]
    out[i + 1] = c[1]
    out[i + 2] = c[2]
  }
}

const rect = (out: Float32Array, size: number, x0: number, y0: number, x1: number, y1: number, c: Rgb) => {
  const xa = Math.max(0, Math.floor(x0))
  const xb = Math.min(size, Math.ceil(x1))
  const ya = Math.max(0, Math.floor(y0))
  const yb = Math.min(size, Math.ceil(y1))
  for (let y = ya; y < yb; y++)
    for (let x = xa; x < xb; x++) {
      const o = (y * size + x) * 3
      out[o] = c[0]
      out[o + 1] = c[1]
      out[o + 2] = c[2]
    }
}

/** A thick segment (a stick, a cable, a finger-like distractor) with round ends and simple shading. */
const stick = (
  out: Float32Array,
  size: number,
  ax: number,
  ay: number,
  bx: number,
  by: number,
  w: number,
  c: Rgb,
) => {
  const xa = Math.max(0, Math.floor(Math.min(ax, bx) - w))
  const xb = Math.min(size, Math.ceil(Math.max(ax, bx) + w))
  const ya = Math.max(0, Math.floor(Math.min(ay, by) - w))
  const yb = Math.min(size, Math.ceil(Math.max(ay, by) + w))
  const dx = bx - ax
  const dy = by - ay
  const ll = dx * dx + dy * dy || 1
  for (let y = ya; y < yb; y++)
    for (let x = xa; x < xb; x++) {
      const px = x + 0.5 - ax
      const py = y + 0.5 - ay
      const t = Math.max(0, Math.min(1, (px * dx + py * dy) / ll))
      const ex = px - t * dx
      const ey = py - t * dy
      const d2 = (ex * ex + ey * ey) / (w * w)
      if (d2 < 1) {
        const shade = 0.55 + 0.45 * Math.sqrt(1 - d2)
        const o = (y * size + x) * 3
        out[o] = c[0] * shade
        out[o + 1] = c[1] * shade
        out[o + 2] = c[2] * shade
      }
    }
}

const ellipse = (out: Float32Array, size: number, cx: number, cy: number, rx: number, ry: number, c: Rgb) => {
  const ya = Math.max(0, Math.floor(cy - ry))
  const yb = Math.min(size, Math.ceil(cy + ry))
  const xa = Math.max(0, Math.floor(cx - rx))
  const xb = Math.min(size, Math.ceil(cx + rx))
  for (let y = ya; y < yb; y++)
    for (let x = xa; x < xb; x++) {
      const u = (x + 0.5 - cx) / rx
      const v = (y + 0.5 - cy) / ry
      if (u * u + v * v < 1) {
        const o = (y * size + x) * 3
        out[o] = c[0]
        out[o + 1] = c[1]
        out[o + 2] = c[2]
      }
    }
}

/** Stripes or a checker pattern multiplied into the image (textured cloth, tiles, shelves). */
const texture = (out: Float32Array, size: number, r: Random.Random) => {
  const period = Random.uniform(r, 3, 14) * (size / 64)
  const angle = r.next() * Math.PI
  const ca = Math.cos(angle) / period
  const sa = Math.sin(angle) / period
  const checker = r.next() < 0.4
  const depth = Random.uniform(r, 0.15, 0.45)
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const u = x * ca + y * sa
      const v = -x * sa + y * ca
      const on = checker ? (Math.floor(u) + Math.floor(v)) & 1 : Math.floor(u) & 1
      const m = on ? 1 : 1 - depth
      const o = (y * size + x) * 3
      out[o] = out[o]! * m
      out[o + 1] = out[o + 1]! * m
      out[o + 2] = out[o + 2]! * m
    }
}

/**
 * Draws a background of `family` into `out` (`size·size·3`).
 * `skin` is a skin colour used for hand-like distractors in cluttered scenes.
 */
export const draw = (out: Float32Array, size: number, family: Family, r: Random.Random, skin: Rgb): void => {
  const s = size
  switch (family) {
    case "clutter": {
      fill(out, randomColour(r))
      valueNoise(out, s, 3, 0.8, () => randomColour(r))
      if (r.next() < 0.6) texture(out, s, r)
      const shapes = 4 + Random.int(r, 10)
      for (let i = 0; i < shapes; i++) {
        const kind = r.next()
        const c = randomColour(r)
        const x = r.next() * s
        const y = r.next() * s
        const w = Random.uniform(r, 0.08, 0.5) * s
        const h = Random.uniform(r, 0.08, 0.5) * s
        if (kind < 0.35) rect(out, s, x - w / 2, y - h / 2, x + w / 2, y + h / 2, c)
        else if (kind < 0.6) ellipse(out, s, x, y, w / 2, h / 2, c)
        else {
          // Sticks, a third of them skin-coloured: finger-like distractors that only RGB sees.
          const tone: Rgb = r.next() < 0.35 ? [skin[0] * 0.95, skin[1] * 0.95, skin[2] * 0.95] : c
          const a = r.next() * Math.PI * 2
          const len = Random.uniform(r, 0.15, 0.6) * s
          stick(
            out,
            s,
            x,
            y,
            x + Math.cos(a) * len,
            y + Math.sin(a) * len,
            Random.uniform(r, 0.02, 0.06) * s,
            tone,
          )
        }
      }
      return
    }
    case "lab": {
      // A lit office wall with a desk, a monitor and a shelf: large, low-texture rectangles.
      const wall: Rgb = [
        Random.uniform(r, 0.55, 0.8),
        Random.uniform(r, 0.52, 0.75),
        Random.uniform(r, 0.45, 0.7),
      ]
      fill(out, wall)
      valueNoise(out, s, 2, 0.25, () => {
        const k = Random.uniform(r, 0.7, 1.1)
        return [wall[0] * k, wall[1] * k, wall[2] * k]
      })
      const horizon = Random.uniform(r, 0.55, 0.9) * s
      rect(out, s, 0, horizon, s, s, [
        Random.uniform(r, 0.3, 0.5),
        Random.uniform(r, 0.25, 0.4),
        Random.uniform(r, 0.2, 0.3),
      ])
      const mx = Random.uniform(r, -0.2, 0.7) * s
      rect(out, s, mx, horizon - 0.45 * s, mx + 0.45 * s, horizon - 0.1 * s, [0.08, 0.08, 0.1])
      if (r.next() < 0.5) rect(out, s, 0, 0.15 * s, 0.3 * s, 0.2 * s, [0.35, 0.3, 0.25])
      return
    }
    case "green": {
      const g: Rgb = [Random.uniform(r, 0.05, 0.2), Random.uniform(r, 0.55, 0.8), Random.uniform(r, 0.1, 0.3)]
      fill(out, g)
      valueNoise(out, s, 2, 0.2, () => {
        const k = Random.uniform(r, 0.8, 1.1)
        return [g[0] * k, g[1] * k, g[2] * k]
      })
      return
    }
    case "natural": {
      // Smooth multi-scale colour fields with a consistent palette: foliage, sky, rooms.
      const base = randomColour(r)
      fill(out, base)
      const around = () =>
        [
          Math.min(1, Math.max(0, base[0] + 0.35 * Random.normal(r))),
          Math.min(1, Math.max(0, base[1] + 0.35 * Random.normal(r))),
          Math.min(1, Math.max(0, base[2] + 0.35 * Random.normal(r))),
        ] as const
      valueNoise(out, s, 2, 0.9, around)
      valueNoise(out, s, 6, 0.5, around)
      valueNoise(out, s, 16, 0.25, around)
      return
    }
  }
}

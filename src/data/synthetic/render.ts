/**
 * A tiny z-buffer renderer for capsule bodies: each capsule is drawn as a
 * chain of spheres seen through a pinhole camera, which gives per-pixel depth
 * and normals; the RGB image shades them over a background, the depth map
 * keeps the clean surface depth.
 *
 * @module
 */
import type * as Hand from "./hand.ts"

/** Pinhole intrinsics in pixels of the rendered image: `u = fx·X/Z + cx`, `v = fy·Y/Z + cy`. */
export interface Intrinsics {
  readonly fx: number
  readonly fy: number
  readonly cx: number
  readonly cy: number
}

/** Reusable per-size buffers (rendering allocates nothing per sample). */
export interface Canvas {
  readonly size: number
  /** Surface depth (mm, camera z); `Infinity` where nothing was drawn. */
  readonly depth: Float32Array
  /** Unit surface normals, camera frame. */
  readonly nx: Float32Array
  readonly ny: Float32Array
  readonly nz: Float32Array
  /** Part drawn at each pixel: -1 none, else `Capsule.part`. */
  readonly part: Int8Array
  /** Colour work buffer, `S·S·3`, linear [0, 1]. */
  readonly rgb: Float32Array
  readonly scratch: Float32Array
}

export const canvas = (size: number): Canvas => ({
  size,
  depth: new Float32Array(size * size),
  nx: new Float32Array(size * size),
  ny: new Float32Array(size * size),
  nz: new Float32Array(size * size),
  part: new Int8Array(size * size),
  rgb: new Float32Array(size * size * 3),
  scratch: new Float32Array(size * size * 3),
})

/**
 * Rasterises capsules (camera frame, mm, in front of the camera) into the
 * canvas's depth, normal and part buffers.
 */
export const rasterise = (c: Canvas, capsules: readonly Hand.Capsule[], k: Intrinsics): void => {
  const { size, depth, nx, ny, nz, part } = c
  depth.fill(Number.POSITIVE_INFINITY)
  part.fill(-1)
  for (const cap of capsules) {
    const dx = cap.b[0] - cap.a[0]
    const dy = cap.b[1] - cap.a[1]
    const dz = cap.b[2] - cap.a[2]
    const len = Math.hypot(dx, dy, dz)
    // Spheres half a radius apart look like a smooth capsule.
    const n = Math.max(1, Math.ceil(len / (0.5 * Math.min(cap.ra, cap.rb))))
    const il = len > 0 ? 1 / len : 0
    const ax = dx * il
    const ay = dy * il
    const az = dz * il
    for (let i = 0; i <= n; i++) {
      // Inside the body the normal is the cylinder's (no axial part): no ribs between spheres.
      const body = i > 0 && i < n ? 1 : 0
      const t = i / n
      const X = cap.a[0] + dx * t
      const Y = cap.a[1] + dy * t
      const Z = cap.a[2] + dz * t
      const r = cap.ra + (cap.rb - cap.ra) * t
      if (Z <= r) continue
      const u = (k.fx * X) / Z + k.cx
      const v = (k.fy * Y) / Z + k.cy
      const pr = (k.fx * r) / Z
      const x0 = Math.max(0, Math.floor(u - pr))
      const x1 = Math.min(size - 1, Math.ceil(u + pr))
      const y0 = Math.max(0, Math.floor(v - pr))
      const y1 = Math.min(size - 1, Math.ceil(v + pr))
      if (x0 > x1 || y0 > y1) continue
      const toMm = Z / k.fx
      for (let y = y0; y <= y1; y++) {
        const oy = (y + 0.5 - v) * toMm
        for (let x = x0; x <= x1; x++) {
          const ox = (x + 0.5 - u) * toMm
          const h2 = r * r - ox * ox - oy * oy
          if (h2 <= 0) continue
          const h = Math.sqrt(h2)
          const z = Z - h
          const p = y * size + x
          if (z < depth[p]!) {
            let n0 = ox / r
            let n1 = oy / r
            let n2 = -h / r
            if (body) {
              const along = n0 * ax + n1 * ay + n2 * az
              n0 -= along * ax
              n1 -= along * ay
              n2 -= along * az
              const l = Math.sqrt(n0 * n0 + n1 * n1 + n2 * n2) || 1
              n0 /= l
              n1 /= l
              n2 /= l
            }
            depth[p] = z
            nx[p] = n0
            ny[p] = n1
            nz[p] = n2
            part[p] = cap.part
          }
        }
      }
    }
  }
}

/** Lighting and materials for shading. */
export interface Look {
  /** Albedo per part (0 skin, 1 forearm), linear RGB. */
  readonly albedo: readonly (readonly [number, number, number])[]
  /** Direction the light travels (camera frame, unit). */
  readonly light: readonly [number, number, number]
  readonly lightColour: readonly [number, number, number]
  readonly ambient: number
  readonly diffuse: number
  readonly specular: number
  /** Per-pixel multiplicative skin texture amplitude. */
  readonly grain: number
  /** Random numbers for the grain (one per pixel at least). */
  readonly noise: () => number
}

/**
 * Shades the rasterised parts over the background already in `c.rgb`.
 * Lambert + ambient + a Blinn highlight; pixels on the silhouette are blended
 * half with the background, a cheap anti-aliasing.
 */
export const shade = (c: Canvas, look: Look): void => {
  const { size, nx, ny, nz, part, rgb } = c
  const [lx, ly, lz] = look.light
  // Half vector between the reversed light and the view direction (0, 0, -1).
  let hx = -lx
  let hy = -ly
  let hz = -lz - 1
  const hl = Math.hypot(hx, hy, hz) || 1
  hx /= hl
  hy /= hl
  hz /= hl
  for (let p = 0; p < size * size; p++) {
    const q = part[p]!
    if (q < 0) continue
    const a = look.albedo[q]!
    const n0 = nx[p]!
    const n1 = ny[p]!
    const n2 = nz[p]!
    const lambert = Math.max(0, -(n0 * lx + n1 * ly + n2 * lz))
    const nh = Math.max(0, n0 * hx + n1 * hy + n2 * hz)
    const spec = look.specular * nh ** 24
    const g = 1 + look.grain * (look.noise() - 0.5)
    const light = look.ambient + look.diffuse * lambert
    // Rim pixels (normal nearly perpendicular to the view) blend with what is behind.
    const cover = n2 < -0.2 ? 1 : 0.5 + 2.5 * -n2
    for (let k = 0; k < 3; k++) {
      const v = a[k]! * g * light * look.lightColour[k]! + spec
      rgb[p * 3 + k] = rgb[p * 3 + k]! * (1 - cover) + v * cover
    }
  }
}

/** `passes` rounds of a separable 3-tap box blur (lens / motion softness). */
export const blur = (c: Canvas, passes: number): void => {
  const { size, rgb, scratch } = c
  for (let pass = 0; pass < passes; pass++) {
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++) {
        const l = x > 0 ? x - 1 : x
        const r = x < size - 1 ? x + 1 : x
        for (let k = 0; k < 3; k++)
          scratch[(y * size + x) * 3 + k] =
            (rgb[(y * size + l) * 3 + k]! + rgb[(y * size + x) * 3 + k]! + rgb[(y * size + r) * 3 + k]!) / 3
      }
    for (let y = 0; y < size; y++) {
      const u = y > 0 ? y - 1 : y
      const d = y < size - 1 ? y + 1 : y
      for (let x = 0; x < size; x++)
        for (let k = 0; k < 3; k++)
          rgb[(y * size + x) * 3 + k] =
            (scratch[(u * size + x) * 3 + k]! +
              scratch[(y * size + x) * 3 + k]! +
              scratch[(d * size + x) * 3 + k]!) /
            3
    }
  }
}

// A fixed table of standard normals: per-pixel noise is read from it at a random
// offset and stride, ~10× cheaper than drawing fresh normals per pixel.
const NOISE_BITS = 16
const NOISE = (() => {
  const t = new Float32Array(1 << NOISE_BITS)
  let s = 0x2545f491
  const next = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return (s + 0.5) / 4294967296
  }
  for (let i = 0; i < t.length; i++) t[i] = Math.sqrt(-2 * Math.log(next())) * Math.cos(2 * Math.PI * next())
  return t
})()

/**
 * Adds Gaussian sensor noise of std-dev `sigma` and quantises to 8 bits.
 * `uniform` picks where in the noise table this image reads.
 */
export const toBytes = (c: Canvas, sigma: number, uniform: () => number, out: Uint8Array): void => {
  const { rgb } = c
  const mask = (1 << NOISE_BITS) - 1
  let at = Math.floor(uniform() * (mask + 1))
  const stride = 2 * Math.floor(uniform() * 1000) + 1
  for (let i = 0; i < rgb.length; i++) {
    at = (at + stride) & mask
    const v = rgb[i]! + NOISE[at]! * sigma
    out[i] = v <= 0 ? 0 : v >= 1 ? 255 : Math.round(v * 255)
  }
}

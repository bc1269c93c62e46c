/**
 * Rendering a Vega-Lite specification in Node: SVG through a headless Vega
 * view, PNG by rasterising that SVG with skia (`@napi-rs/canvas`), since the
 * `canvas` package does not install offline.
 *
 * @module
 */
import { createCanvas, Image } from "@napi-rs/canvas"
import * as vega from "vega"
import * as vegaLite from "vega-lite"

export interface Rendered {
  readonly svg: string
  readonly png: Buffer
  /** The PNG's pixel size (twice the SVG's, for sharp text). */
  readonly width: number
  readonly height: number
}

/** PNG pixels per SVG unit. */
export const PNG_SCALE = 2

export const render = async (spec: vegaLite.TopLevelSpec): Promise<Rendered> => {
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: "none" })
  try {
    const svg = await view.toSVG()
    const scaled = await view.toSVG(PNG_SCALE)
    const img = new Image()
    img.src = Buffer.from(scaled)
    const canvas = createCanvas(img.width, img.height)
    const ctx = canvas.getContext("2d")
    ctx.fillStyle = "white"
    ctx.fillRect(0, 0, img.width, img.height)
    ctx.drawImage(img, 0, 0)
    return { svg, png: await canvas.encode("png"), width: img.width, height: img.height }
  } finally {
    view.finalize()
  }
}

// What the report tests read back of a report: SVG texts and sizes, PNG pixels, and headless Chromium.
import * as assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Image } from "@napi-rs/canvas"
import type * as Png from "fast-png"

export const CHROMIUM = "/usr/bin/chromium"

/** The text content of an SVG's `<text>` elements (legend labels, titles, axis labels). */
export const texts = (svg: string): string[] =>
  [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) =>
    m[1]!
      .replace(/&lt;/g, "<")
      .replace(/&gt;/g, ">")
      .replace(/&quot;/g, '"')
      .replace(/&#39;/g, "'")
      .replace(/&amp;/g, "&"),
  )

export const svgSize = (svg: string) => {
  const m = /^<svg[^>]*\swidth="(\d+(?:\.\d+)?)"[^>]*\sheight="(\d+(?:\.\d+)?)"/.exec(svg)
  assert.ok(m, "the SVG has a width and a height")
  return { width: Number(m[1]), height: Number(m[2]) }
}

/** An SVG that skia loads has a size; a malformed one does not. */
export const parsesAsSvg = (svg: string) => {
  const img = new Image()
  img.src = Buffer.from(svg)
  return img.width > 0 && img.height > 0
}

export const nonWhiteFraction = (png: Png.DecodedPng) => {
  const c = png.channels
  let n = 0
  for (let i = 0; i < png.data.length; i += c)
    if (png.data[i]! < 235 || png.data[i + 1]! < 235 || png.data[i + 2]! < 235) n++
  return n / (png.width * png.height)
}

export const chromium = (args: string[]) => {
  const profile = mkdtempSync(join(tmpdir(), "cmkg-chromium-"))
  try {
    return spawnSync(
      CHROMIUM,
      [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        `--user-data-dir=${profile}`,
        ...args,
      ],
      { encoding: "utf8", timeout: 60_000, maxBuffer: 64 * 1024 * 1024 },
    )
  } finally {
    rmSync(profile, { recursive: true, force: true })
  }
}

/** Installs Debian's chromium when missing (scripts/ensure-chromium.sh), else fails saying how to get it. */
export const ensureChromium = () => {
  const setup = spawnSync("sh", ["scripts/ensure-chromium.sh"], { encoding: "utf8" })
  if (setup.status !== 0 || spawnSync(CHROMIUM, ["--version"]).status !== 0)
    assert.fail(
      `${CHROMIUM} is missing and scripts/ensure-chromium.sh could not install it (exit ${setup.status}: ${setup.stderr.trim()}); install Debian's chromium package to run this test`,
    )
}

/** The preview contact sheet. */
import assert from "node:assert/strict"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { test } from "node:test"
import * as Png from "fast-png"
import * as Preview from "../../src/data/preview.ts"

test("writePreview writes a grid of RGB/depth pairs: one row per domain, skeleton drawn", () => {
  const out = mkdtempSync(join(tmpdir(), "cmkg-preview-"))
  try {
    const one = Png.decode(
      readFileSync(Preview.writePreview({ domain: "rhd", out, count: 3, imageSize: 32 })),
    )
    assert.deepEqual([one.width, one.height, one.channels], [3 * 2 * 32, 32, 3])
    const all = Preview.writePreview({ out, count: 2, imageSize: 32 })
    assert.equal(all, join(out, "preview-all.png"))
    const png = Png.decode(readFileSync(all))
    assert.deepEqual([png.width, png.height], [2 * 2 * 32, 6 * 32])
    // The thumb's skeleton colour (pure-ish red) appears in the rhd row.
    let red = 0
    for (let p = 0; p < 32 * png.width; p++) if (png.data[p * 3] === 255 && png.data[p * 3 + 1] === 60) red++
    assert.ok(red > 0, "skeleton drawn")
  } finally {
    rmSync(out, { recursive: true, force: true })
  }
})

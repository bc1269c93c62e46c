/**
 * What the bench reports: per-round ratios as median and range, and results
 * free of machine-specific absolute paths (also the committed latest.json).
 */
import assert from "node:assert/strict"
import { readFileSync } from "node:fs"
import { test } from "node:test"
import {
  median,
  perRoundRatio,
  relativeDifference,
  scrubJson,
  scrubPaths,
  spread,
} from "../../bench/stats.ts"

test("median of odd and even lengths; the spread keeps every round", () => {
  assert.equal(median([3, 1, 2]), 2)
  assert.equal(median([4, 1, 3, 2]), 2.5)
  assert.throws(() => median([]))
  assert.deepEqual(spread([1.2, 0.9, 1.0, 5, 1.1]), {
    median: 1.1,
    min: 0.9,
    max: 5,
    rounds: [1.2, 0.9, 1, 5, 1.1],
  })
})

test("the per-round ratio is images/s of a over images/s of b, round by round", () => {
  // a takes 100 ms, b 150 ms in round 1: a is 1.5× as fast; round 2 the other way round.
  assert.deepEqual(perRoundRatio([100, 200], [150, 100]), [1.5, 0.5])
  assert.throws(() => perRoundRatio([1], [1, 2]), /rounds differ/)
  assert.ok(Math.abs(relativeDifference(1.05, 1) - 0.05) < 1e-12)
  assert.equal(relativeDifference(1, 1.05), relativeDifference(1.05, 1))
})

test("paths under the repository become relative, other absolute paths keep their last two segments", () => {
  const note =
    "skipped tensorflow (Cannot find package '@tensorflow/tfjs-node' imported from /home/ada/cmkg/src/backend/index.ts); also /opt/other/src/interpreters/tf/backend/index.ts, see https://example.org/a/b"
  assert.equal(
    scrubPaths(note, "/home/ada/cmkg"),
    "skipped tensorflow (Cannot find package '@tensorflow/tfjs-node' imported from src/backend/index.ts); also …/backend/index.ts, see https://example.org/a/b",
  )
  assert.deepEqual(
    scrubJson({ command: "npm run bench -- --out /var/x/a.json --python /usr/bin/python3", n: 3 }, "/r"),
    {
      command: "npm run bench -- --out …/x/a.json --python /usr/bin/python3",
      n: 3,
    },
  )
})

test("the committed bench/results/latest.json holds no absolute path", () => {
  const text = readFileSync(new URL("../../bench/results/latest.json", import.meta.url), "utf8")
  const strings: string[] = []
  JSON.parse(text, (_k, v) => {
    if (typeof v === "string") strings.push(v)
    return v
  })
  const absolute = strings.filter((s) => /(^|[\s'"(=:])\/(?!\/|usr\/|bin\/|etc\/|lib\/)[^\s'"():,]+/.test(s))
  assert.deepEqual(absolute, [])
})

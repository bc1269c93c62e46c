// Runs the DIR-Net Table 3 miniature: `npx tsx test/dirnet/table3.run.mts [imageSize] [trainCount] [epochs0] [epochs1]`.

import { table3 } from "../../src/interpreters/tf/dirnet/table3.ts"
import * as Tf from "../../src/interpreters/tf/index.ts"

await Tf.ready("cpu")
const [size, count, e0, e1] = process.argv.slice(2).map(Number)
const t0 = performance.now()
const rows = table3({
  imageSize: size || 32,
  trainCount: count || 128,
  testCount: 64,
  batchSize: 16,
  epochs: [e0 || 4, e1 || 2],
  lr: 3e-3,
  dirnet: { width: 8, hidden: 32, iterations: 3, loopPoint: 3 },
  gate: { lambda: 1, flopsWeight: 1000, steps: 150 },
  log: (l) => console.log(l),
})
console.table(rows)
console.log(`total ${((performance.now() - t0) / 1000).toFixed(0)} s`)

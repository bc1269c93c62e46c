#!/usr/bin/env node
// `npm run mutate [module…]`: a mutation score (StrykerJS) for the modules whose bugs are silent,
// each mutant run only against the test files that cover it among that module's relevant tests,
// so it fits on a 2-core machine. Not part of `npm test` (it takes tens of minutes).
//
//   npm run mutate                  every module below
//   npm run mutate -- optimizer     modules whose name contains "optimizer"
//   MUTATE_FILES=src/a.ts:10-20 npm run mutate -- a
//                                   only those lines (Stryker's file:start-end), e.g. what changed since
//                                   the module was last scored
//
// Reports: reports/mutation/<module>.html and .json; a table of killed/survived per module at the end,
// and the survivors (file:line, mutator, replacement) so a reader can decide which need a test.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { Stryker } from "@stryker-mutator/core"

/** Each module under test, with the test files that exercise it (fast files first: a failure stops the rest). */
const MODULES = [
  {
    name: "tf/optimizer",
    mutate: ["src/interpreters/tf/optimizer.ts"],
    tests: ["test/tf/optimizer.test.ts", "laws/optimizer/non-negative.test.ts", "test/tf/train.test.ts"],
  },
  {
    name: "tf/loss",
    mutate: ["src/interpreters/tf/loss.ts"],
    tests: [
      "test/tf/loss.test.ts",
      "laws/loss/agreement.test.ts",
      "laws/loss/distillation.test.ts",
      "laws/loss/regulariser.test.ts",
      "laws/loss/transfer-uncertainty.test.ts",
      "test/dirnet/losses.test.ts",
    ],
  },
  {
    name: "tf/gradients",
    mutate: ["src/interpreters/tf/gradients.ts", "src/interpreters/tf/gradients/*.ts"],
    tests: ["test/tf/gradients.test.ts", "laws/tf/second-order.test.ts", "laws/step/meta-gradient.test.ts"],
  },
  {
    name: "tf/step",
    mutate: ["src/interpreters/tf/step.ts"],
    tests: [
      "test/step/errors.test.ts",
      "test/step/world.test.ts",
      "test/step/select.test.ts",
      "test/step/run.test.ts",
      "laws/dirnet/exits.test.ts",
      "laws/step/algorithm.test.ts",
      "laws/step/meta-gradient.test.ts",
    ],
  },
  {
    name: "shape-check/index",
    mutate: ["src/interpreters/shape-check/index.ts"],
    tests: [
      "test/shape-check/errors.test.ts",
      "test/shape-check/check.test.ts",
      "test/shape-check/references.test.ts",
      "test/reference/shapes.test.ts",
      "test/step/check.test.ts",
      "test/loss/check.test.ts",
      "laws/shape-check/algebra.test.ts",
      "laws/loss/shape-check.test.ts",
    ],
  },
]

const only = process.argv.slice(2)
const selected = only.length === 0 ? MODULES : MODULES.filter((m) => only.some((o) => m.name.includes(o)))
if (selected.length === 0) {
  console.error(
    `mutate: no module matches ${only.join(", ")}; modules: ${MODULES.map((m) => m.name).join(", ")}`,
  )
  process.exit(2)
}

const slug = (name) => name.replaceAll("/", "-")
const rows = []
for (const m of selected) {
  const report = `reports/mutation/${slug(m.name)}`
  mkdirSync("reports/mutation", { recursive: true })
  console.log(`\n# mutate ${m.name}: ${m.mutate.join(", ")} against ${m.tests.length} test files`)
  const stryker = new Stryker({
    testRunner: "tap",
    plugins: ["@stryker-mutator/tap-runner"],
    tap: {
      testFiles: m.tests,
      nodeArgs: ["--test-reporter=tap", "--import", "tsx", "-r", "{{hookFile}}", "{{testFile}}"],
      forceBail: true,
    },
    mutate: process.env.MUTATE_FILES === undefined ? m.mutate : process.env.MUTATE_FILES.split(","),
    coverageAnalysis: "perTest",
    concurrency: Number(process.env.MUTATE_CONCURRENCY ?? 1),
    // The suites load tfjs (≈1 s) per file: give each mutant run room beyond the dry run's time.
    timeoutMS: 30_000,
    timeoutFactor: 2,
    // The first, unmutated run of every test file; Stryker's default (5 min) is too short beside other work.
    dryRunTimeoutMinutes: Number(process.env.MUTATE_DRY_RUN_MINUTES ?? 30),
    reporters: ["html", "json", "progress"],
    htmlReporter: { fileName: `${report}.html` },
    jsonReporter: { fileName: `${report}.json` },
    // One sandbox directory per module, so that two modules can be scored at once (one per core).
    tempDirName: `.stryker-tmp/${slug(m.name)}`,
    // Stryker rewrites the sandbox's tsconfig through TypeScript's JS API, which TypeScript 7 (native)
    // does not have; tsx needs no rewrite, so point Stryker at a file that does not exist.
    tsconfigFile: "stryker-skips-tsconfig-rewrite.json",
    cleanTempDir: "always",
    // Only src/ and the test files are needed in the sandbox; node_modules is linked, not copied.
    ignorePatterns: ["runs", "experiments", "bench/results", "reports", ".scratch", "dist", "docs"],
    thresholds: { high: 90, low: 80, break: null },
  })
  const results = await stryker.runMutationTest()
  const count = (...statuses) => results.filter((r) => statuses.includes(r.status)).length
  const killed = count("Killed", "Timeout")
  const survived = count("Survived", "NoCoverage")
  const ignored = count("CompileError", "RuntimeError", "Ignored")
  rows.push({ name: m.name, killed, survived, ignored, total: results.length })
  const json = JSON.parse(readFileSync(`${report}.json`, "utf8"))
  const survivors = Object.entries(json.files).flatMap(([file, f]) =>
    f.mutants
      .filter((x) => x.status === "Survived" || x.status === "NoCoverage")
      .map(
        (x) =>
          `${file}:${x.location.start.line} ${x.mutatorName} → ${JSON.stringify(x.replacement ?? "")} (${x.status})`,
      ),
  )
  writeFileSync(`${report}.survivors.txt`, `${survivors.join("\n")}\n`)
}

console.log("\n| module | killed | survived | score | not run (compile/runtime errors) |")
console.log("|---|---|---|---|---|")
for (const r of rows) {
  const score = r.killed + r.survived === 0 ? 0 : (100 * r.killed) / (r.killed + r.survived)
  console.log(`| ${r.name} | ${r.killed} | ${r.survived} | ${score.toFixed(1)} % | ${r.ignored} |`)
}
console.log(
  "\nsurvivors: reports/mutation/<module>.survivors.txt; full reports: reports/mutation/<module>.html",
)

/**
 * What a run directory holds, as Effect `Schema`s: `program.json`, one line
 * of `metrics.jsonl`, `results.json` (staged experiments' or DIR-Net's),
 * `summary.json`, and the tfjs weights manifest of a checkpoint's or a
 * saved model's `model.json`. The runners' types for what they write are
 * these schemas' types, and everything that reads a run directory back
 * (`cmkg report`, `--resume`) decodes with them (`read.ts`), so a file that
 * does not match fails naming the file and the path inside it.
 *
 * The schemas describe the JSON exactly as the runners write it today:
 * changing a schema must not change a byte of what they write.
 *
 * @module
 */
import { Schema } from "effect"

// ---- results.json --------------------------------------------------------------------------------

/** One evaluated row of a results table (staged runner). */
export const StagedRow = Schema.Struct({
  stage: Schema.String,
  table: Schema.String,
  row: Schema.String,
  column: Schema.String,
  model: Schema.String,
  samples: Schema.Number,
  epe: Schema.Number,
  auc20to50: Schema.Number,
  auc0to50: Schema.Number,
  /** 3D PCK at the report's thresholds, keyed by threshold. */
  pck: Schema.Record(Schema.String, Schema.Number),
  /** 3D PCK at thresholds 0..50 mm, for the PCK plot: [threshold, fraction]. */
  pckCurve: Schema.Array(Schema.Tuple([Schema.Number, Schema.Number])),
})
export type StagedRow = typeof StagedRow.Type

/** How a DIR-Net row was evaluated (`Dirnet.Evaluate` of the DSL, as JSON). */
export const DirnetEvaluate = Schema.Union([
  Schema.TaggedStruct("NoIter", {}),
  Schema.TaggedStruct("Last", {}),
  Schema.TaggedStruct("Loop", { loop: Schema.Number }),
  Schema.TaggedStruct("Oracle", {}),
  Schema.TaggedStruct("Variance", { tau: Schema.Number }),
  Schema.TaggedStruct("Gate", { temperature: Schema.Number, seed: Schema.Number }),
])

/** A DIR-Net results row: a staged row with DIR-Net's cost columns. */
export const DirnetRow = Schema.Struct({
  ...StagedRow.fields,
  /** How the row was evaluated (the experiment's `Dirnet.Evaluate`). */
  evaluate: DirnetEvaluate,
  /** Average GFLOPs per sample under the row's exits. */
  gflops: Schema.Number,
  /** Parameters of what the row runs (the gate's included when it decides the exits). */
  params: Schema.Number,
  /** Mean exit loop (0-based) and the fraction of samples exiting after each loop. */
  meanExit: Schema.Number,
  exits: Schema.Array(Schema.Number),
})
export type DirnetRow = typeof DirnetRow.Type

/** One point of DIR-Net's Figure 7. */
export const SweepPoint = Schema.Struct({
  series: Schema.Literals(["τ_var", "τ_gate"]),
  tau: Schema.Number,
  /** For τ_var: the quantile of the training set's average variances it is (absent for τ_gate). */
  quantile: Schema.optional(Schema.Number),
  auc20to50: Schema.Number,
  epe: Schema.Number,
  gflops: Schema.Number,
  meanExit: Schema.Number,
  exits: Schema.Array(Schema.Number),
})
export type SweepPoint = typeof SweepPoint.Type

/** The shape checker's costs of a DIR-Net variant, as the results record them. */
export const LoopCosts = Schema.Struct({
  model: Schema.String,
  /** GFLOPs of one sample that exits after loop k (k = 0 … l_max). */
  gflopsAtExit: Schema.Array(Schema.Number),
  params: Schema.Number,
  noIterParams: Schema.Number,
})
export type LoopCosts = typeof LoopCosts.Type

const resultsFields = {
  program: Schema.String,
  seed: Schema.Number,
  backend: Schema.String,
  /** Wall time of training and evaluation, across resumes. */
  seconds: Schema.Number,
}
/** What every seed's results begin with, whatever the experiment's kind. */
export type ResultsHeader = Schema.Struct<typeof resultsFields>["Type"]

/**
 * `results.json` of a staged experiment. It carries no `kind` (its JSON
 * predates DIR-Net's): a `kind` key makes it DIR-Net's or an error.
 */
export const StagedResults = Schema.Struct({
  kind: Schema.optionalKey(
    Schema.Never.annotate({ identifier: '"DirNetExperiment" or no kind (a staged experiment)' }),
  ),
  ...resultsFields,
  /** Each table's reference row (the experiment's `references`; absent when it declares none). */
  references: Schema.optionalKey(Schema.Record(Schema.String, Schema.String)),
  rows: Schema.Array(StagedRow),
})
export type StagedResults = typeof StagedResults.Type

/** `results.json` of a DIR-Net experiment: its rows with costs, the Figure 7 sweep, the per-loop costs. */
export const DirnetResults = Schema.Struct({
  kind: Schema.Literal("DirNetExperiment"),
  ...resultsFields,
  /** Each table's reference row (the experiment's `references`; absent when it declares none). */
  references: Schema.optionalKey(Schema.Record(Schema.String, Schema.String)),
  rows: Schema.Array(DirnetRow),
  /** Absent when the experiment sweeps no thresholds. */
  sweep: Schema.optional(Schema.Struct({ model: Schema.String, points: Schema.Array(SweepPoint) })),
  loops: Schema.Array(LoopCosts),
  gateParams: Schema.Number,
})
export type DirnetResults = typeof DirnetResults.Type

/** `results.json`: one seed's results, tagged by experiment kind (`kind`, absent for staged experiments). */
export const Results = Schema.Union([StagedResults, DirnetResults]).annotate({
  identifier: 'the results of a staged experiment or of a DIR-Net one (kind "DirNetExperiment")',
})
export type Results = typeof Results.Type

/** A results row of either kind (the columns every row has, and DIR-Net's costs when present). */
export type Row = Results["rows"][number]

// ---- summary.json --------------------------------------------------------------------------------

const MeanStd = Schema.Struct({ mean: Schema.Number, std: Schema.Number })

/**
 * A row's paired difference from its table's reference row in one metric
 * (row − reference, seed by seed): the mean over seeds, its 95 % Student's t
 * interval (absent with one seed), and the seeds the row does better in.
 */
export const PairedMetric = Schema.Struct({
  mean: Schema.Number,
  low: Schema.optionalKey(Schema.Number),
  high: Schema.optionalKey(Schema.Number),
  wins: Schema.Number,
})
export type PairedMetric = typeof PairedMetric.Type

/** A cell against the same column's reference row, over the seeds that have both. */
export const Paired = Schema.Struct({
  /** The table's reference row (the experiment's `references`). */
  reference: Schema.String,
  /** Seeds paired. */
  n: Schema.Number,
  /** EPE difference, mm (negative: the row is better; wins counts seeds with a lower EPE). */
  epe: PairedMetric,
  /** AUC 20–50 difference (positive: the row is better; wins counts seeds with a higher AUC). */
  auc20to50: PairedMetric,
  /** Average GFLOPs difference, when both rows carry costs (DIR-Net's; wins counts seeds with fewer GFLOPs). */
  gflops: Schema.optionalKey(PairedMetric),
})
export type Paired = typeof Paired.Type

/** One table cell over seeds. */
export const SummaryCell = Schema.Struct({
  table: Schema.String,
  row: Schema.String,
  column: Schema.String,
  /** Seeds with this cell. */
  n: Schema.Number,
  epe: MeanStd,
  auc20to50: MeanStd,
  auc0to50: MeanStd,
  /** Cost columns, when the rows carry them (DIR-Net's): average GFLOPs per sample and parameters. */
  gflops: Schema.optionalKey(MeanStd),
  params: Schema.optionalKey(MeanStd),
  /** Against the table's reference row, when the experiment declares one (never on the reference itself). */
  paired: Schema.optionalKey(Paired),
})
export type SummaryCell = typeof SummaryCell.Type

/** `summary.json`: mean ± standard deviation of every table cell over the seeds. */
export const Summary = Schema.Struct({
  program: Schema.String,
  seeds: Schema.Array(Schema.Number),
  backend: Schema.String,
  cells: Schema.Array(SummaryCell),
})
export type Summary = typeof Summary.Type

// ---- metrics.jsonl -------------------------------------------------------------------------------

const POSITION_KEYS: ReadonlySet<string> = new Set(["stage", "epoch", "step", "time"])

/**
 * One line of `metrics.jsonl`: the position (stage or DIR-Net phase, epoch,
 * step, seconds since the run began), then one loss value per loss key. A
 * non-finite loss is written as `null` (`JSON.stringify(NaN)`): the line
 * that stops a run for a non-finite loss has one.
 */
export const MetricsLine = Schema.StructWithRest(
  Schema.Struct({ stage: Schema.String, epoch: Schema.Number, step: Schema.Number, time: Schema.Number }),
  [
    Schema.Record(
      Schema.String.check(Schema.makeFilter((key: string) => !POSITION_KEYS.has(key))),
      Schema.NullOr(Schema.Number),
    ),
  ],
)
export type MetricsLine = typeof MetricsLine.Type

// ---- program.json --------------------------------------------------------------------------------

/**
 * `program.json` as it is read back: the program's name, description and
 * meta-parameters, and the options `cmkg run` was given. `cmkg run` writes
 * the whole program value (models, experiment) and every option; the rest
 * is not read back, so it is not decoded.
 */
export const ProgramJson = Schema.Struct({
  program: Schema.Struct({
    name: Schema.String,
    description: Schema.optionalKey(Schema.String),
    experiment: Schema.optionalKey(
      Schema.Struct({
        metaParams: Schema.optionalKey(
          Schema.Array(Schema.Struct({ name: Schema.String, like: Schema.String })),
        ),
      }),
    ),
  }),
  options: Schema.Struct({
    /** `--scale` (absent only in program.json files not written by `cmkg run`). */
    scale: Schema.optionalKey(Schema.String),
  }),
})
export type ProgramJson = typeof ProgramJson.Type

/** Parameter shapes by `model/path` (torchvision's names inside each model). */
export const Parameters = Schema.Record(Schema.String, Schema.Array(Schema.Int))

/** `program.json` as `cmkg run --resume` reads it: what decides what a run trains, compared with the command's. */
export const ResumableProgramJson = Schema.Struct({
  program: Schema.Struct({ name: Schema.String }),
  options: Schema.Struct({
    scale: Schema.String,
    data: Schema.Record(Schema.String, Schema.String),
    seeds: Schema.Int,
    firstSeed: Schema.optionalKey(Schema.Int),
  }),
  /** Absent in run directories written before cmkg recorded it: then parameters are not compared. */
  parameters: Schema.optionalKey(Parameters),
})
export type ResumableProgramJson = typeof ResumableProgramJson.Type

// ---- model.json (checkpoints and saved models) -----------------------------------------------------
// What `interpreters/tf/checkpoint.ts` writes for a run's numbered checkpoints and its saved models:
// tfjs's weights format, one manifest shard `weights.bin` of float32 tensors, the SHA-256 of
// `weights.bin`, and cmkg's metadata (a runner's position, or a saved model's {@link ModelMeta}).

export const WeightSpec = Schema.Struct({
  name: Schema.String,
  shape: Schema.Array(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))),
  dtype: Schema.Literal("float32"),
})

/** `model.json` of any checkpoint `save` writes (numbered ones and `models/<name>/`). */
export const ModelJson = Schema.Struct({
  weightsManifest: Schema.Tuple([
    Schema.Struct({
      paths: Schema.Tuple([Schema.Literal("weights.bin")]),
      weights: Schema.Array(WeightSpec),
    }),
  ]),
  userDefinedMetadata: Schema.Struct({
    /** The caller's metadata. */
    cmkg: Schema.Unknown,
    /** Hex SHA-256 of `weights.bin` (absent in checkpoints written before cmkg recorded it). */
    weightsSha256: Schema.optionalKey(Schema.String.check(Schema.isPattern(/^[0-9a-f]{64}$/))),
  }),
})
export type ModelJson = typeof ModelJson.Type

/** Optimizer step counts and slot counts by key. */
export const Counts = Schema.Record(
  Schema.String,
  Schema.Struct({ count: Schema.Int, slots: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)) }),
)

/**
 * What every runner's position carries for the journal (`tf/journal.ts`);
 * the runner's own fields are kept as they are, for the runner to read.
 */
export const Progress = Schema.StructWithRest(
  Schema.Struct({
    seconds: Schema.Finite,
    /** metrics.jsonl's length at the checkpoint (absent: a checkpoint older than this field). */
    metricsBytes: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))),
  }),
  [Schema.Record(Schema.String, Schema.Unknown)],
)

/** `userDefinedMetadata.cmkg` of a run's numbered checkpoint (`checkpoints/NNNNNN/`). */
export const NumberedMeta = Schema.Struct({
  position: Progress,
  counts: Counts,
  serial: Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)),
})
export type NumberedMeta = typeof NumberedMeta.Type

/** cmkg's metadata of a saved model (`models/<slug>/model.json`), as far as the report reads it. */
export const ModelMeta = Schema.Struct({
  model: Schema.optionalKey(Schema.String),
  row: Schema.optionalKey(Schema.String),
  table: Schema.optionalKey(Schema.String),
})
export type ModelMeta = typeof ModelMeta.Type

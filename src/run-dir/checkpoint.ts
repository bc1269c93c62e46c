/**
 * What a checkpoint's `model.json` holds, as cmkg reads it back (tfjs's
 * weights format with cmkg's metadata; see `interpreters/tf/checkpoint.ts`):
 * one manifest shard `weights.bin` of float32 tensors, the SHA-256 of
 * `weights.bin`, and for a run's numbered checkpoints the runner's position,
 * the optimizers' counts and the checkpoint's number.
 *
 * @module
 */
import { Schema } from "effect"

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

/**
 * Stages of a sweep as jobs on BullMQ (Redis), pulled by whichever worker is
 * free.
 *
 * A run is a set of {@link Node}s (one per seed × stage, from
 * `dsl/StageGraph.ts`'s `sweep`), each naming the nodes it needs. Every node
 * becomes one BullMQ job whose id is `<run>/<node>`, added once everything it
 * needs has completed. BullMQ flows cannot express this: a flow is a tree (a
 * job has one parent), and a teacher read by four students is a node with
 * four dependents. So readiness is re-derived from the queue's own job states
 * instead — no table of our own — and adding a job whose id exists is a no-op
 * in BullMQ, so {@link enqueueReady} can run anywhere, any number of times:
 * - on submission (the nodes that need nothing),
 * - on every worker after each job it completes (its dependents, once their
 *   other needs are done; whichever of two workers finishing the last two
 *   needs checks second sees both completed),
 * - in the follower (`cmkg run --cluster`) on every poll, which also covers a
 *   worker lost between completing a job and adding its dependents.
 *
 * Workers: a BullMQ `Worker` with `concurrency` = the machine's capacity. A
 * worker that dies (SIGKILL, machine lost) stops renewing its job's lock;
 * BullMQ's stalled-job check, run by every other worker every
 * {@link TIMING}`.stalledIntervalMs`, moves the job back to waiting once the
 * lock has expired ({@link TIMING}`.lockDurationMs`), and the next free worker
 * resumes it from the stage's last checkpoint (the executor's business).
 *
 * @module
 */
import { hostname } from "node:os"
import { type Job, Queue, WaitingError, Worker } from "bullmq"
import { Data, Schema } from "effect"
import * as Url from "./url.ts"

/** The one queue every cmkg run and worker shares (runs are told apart by job id and data). */
export const QUEUE = "cmkg-stages"

/**
 * How fast a lost worker's stage is handed on: its lock expires `lockDurationMs`
 * after the last renewal (a live worker renews every half of it, between two
 * training steps), and the stalled check runs every `stalledIntervalMs`; so a
 * stage of a dead worker waits again within lockDuration + stalledInterval
 * (45 s). `maxStalledCount`: how many lost workers one stage survives before it
 * is failed (BullMQ's default, 1, would fail it at the second loss).
 */
export const TIMING = { lockDurationMs: 30_000, stalledIntervalMs: 15_000, maxStalledCount: 10 } as const

/** One unit of work: a stage of a seed, and what it needs done first. */
export interface Node {
  /** Unique within its run, e.g. `2/5` (seed 2, stage 5). */
  readonly id: string
  readonly needs: readonly string[]
  /** What `cmkg status` shows, e.g. `seed 2 · train kd-act`. */
  readonly label: string
}

const NodeSchema = Schema.Struct({
  id: Schema.String,
  needs: Schema.Array(Schema.String),
  label: Schema.String,
})

/** A job's data: the node it runs, the whole plan (to find dependents), and what the executor needs. */
export const TaskSchema = Schema.Struct({
  run: Schema.String,
  node: Schema.String,
  plan: Schema.Array(NodeSchema),
  /** Executor-specific (for `cmkg`: the program, scale, data, backend and run directory). */
  spec: Schema.Unknown,
})
export type Task = typeof TaskSchema.Type

/** A job's data that is not a cmkg task (another tool's job, or a version skew between machines). */
export class BadTask extends Data.TaggedError("BadTask")<{ readonly message: string }> {}

export const jobId = (run: string, node: string): string => `${run}/${node}`

/** A run id: letters, digits, `-`, `.`, `_` (BullMQ job ids may not contain `:`). */
export const validRun = (run: string): boolean => /^[\w.-]+$/.test(run)

const queueOf = (c: Url.Connection) => new Queue(QUEUE, { connection: Url.ioredis(c) })

/**
 * Adds the job of every node of `plan` (or only of `candidates`, when given)
 * that is not in the queue yet and whose needs have all completed. Safe to
 * call concurrently and repeatedly. Returns the nodes it added.
 */
export const enqueueReady = async (
  queue: Queue,
  run: string,
  plan: readonly Node[],
  spec: unknown,
  candidates?: ReadonlySet<string>,
): Promise<string[]> => {
  const states = new Map<string, string>()
  const state = async (node: string) => {
    const known = states.get(node)
    if (known !== undefined) return known
    const s = await queue.getJobState(jobId(run, node))
    states.set(node, s)
    return s
  }
  const added: string[] = []
  for (const n of plan) {
    if (candidates !== undefined && !candidates.has(n.id)) continue
    if ((await state(n.id)) !== "unknown") continue
    let ready = true
    for (const need of n.needs) if ((await state(need)) !== "completed") ready = false
    if (!ready) continue
    const data: Task = { run, node: n.id, plan, spec }
    await queue.add(n.label, data, { jobId: jobId(run, n.id), attempts: 1 })
    added.push(n.id)
  }
  return added
}

/** Submits a run: checks the plan and adds the nodes that need nothing. */
export const submit = async (
  c: Url.Connection,
  run: string,
  plan: readonly Node[],
  spec: unknown,
): Promise<string[]> => {
  if (!validRun(run)) throw new Error(`run id "${run}": only letters, digits, "-", "." and "_"`)
  const ids = new Set(plan.map((n) => n.id))
  for (const n of plan)
    for (const need of n.needs)
      if (!ids.has(need))
        throw new Error(`plan of run ${run}: node ${n.id} needs ${need}, which is not in the plan`)
  const queue = queueOf(c)
  try {
    return await enqueueReady(queue, run, plan, spec)
  } finally {
    await queue.close()
  }
}

/** What an executor can tell about the stage it runs. */
export interface Running {
  /** The stage's progress (0–100), shown by `cmkg status`; also proves the worker alive. */
  readonly progress: (percent: number) => Promise<void>
  /** Times this job was started before (a previous worker was lost): resume from its checkpoint. */
  readonly attempt: number
  /**
   * Aborted when this worker has lost the stage's lock (the queue was out of
   * reach for longer than the lock time, and another worker may have the
   * stage now): stop it, keeping its last checkpoint.
   */
  readonly lost: AbortSignal
}

export interface WorkOptions {
  /** Jobs this worker runs at once (its cores, or one GPU). */
  readonly capacity: number
  /** Runs one stage; throws to fail it. */
  readonly execute: (task: Task, running: Running) => Promise<void>
  /** A line per event (job started, done, failed). */
  readonly log: (line: string) => void
  /**
   * True once the worker is stopping (Ctrl-C): a stage that `execute` gave up
   * then (after checkpointing) goes back to waiting for any worker, instead of
   * failing.
   */
  readonly stopping?: () => boolean
  /** For tests: shorter lock and stalled-check intervals than {@link TIMING}. */
  readonly timing?:
    | typeof TIMING
    | { lockDurationMs: number; stalledIntervalMs: number; maxStalledCount: number }
}

/** The name a worker shows in `cmkg status`: host and process. */
export const workerName = (): string => `${hostname()}:${process.pid}`

/**
 * Says once when the BullMQ queues and workers of one process lose their
 * Redis connection, and once when it is back: ioredis reconnects for ever on
 * its own (every command waits meanwhile), which is what a worker with a
 * stage in hand should do, but silently, and BullMQ would print each failed
 * attempt's stack instead. Errors that are not about the connection are
 * logged as they come.
 */
export const reportConnection = (
  emitters: readonly (Queue | Worker)[],
  c: Url.Connection,
  log: (line: string) => void,
): void => {
  let down = false
  const onError = (e: Error) => {
    const connection = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|Connection is closed|connect/i.test(
      e.message,
    )
    if (!connection) return log(`queue error: ${e.message}`)
    if (down) return
    down = true
    log(`lost the connection to ${c.display} (${e.message}); reconnecting, and waiting meanwhile`)
  }
  for (const emitter of emitters) {
    // The same listener on both classes (their typed `on` overloads do not unify).
    if (emitter instanceof Worker) emitter.on("error", onError)
    else emitter.on("error", onError)
    emitter.getBackend().on("ready", () => {
      if (!down) return
      down = false
      log(`connection to ${c.display} is back`)
    })
  }
}

/** Starts a worker pulling stages from the queue; resolves to it (close it to stop). */
export const work = async (c: Url.Connection, o: WorkOptions): Promise<Worker> => {
  const timing = o.timing ?? TIMING
  const queue = queueOf(c)
  const worker = new Worker(
    QUEUE,
    // BullMQ passes the abort signal only to a processor that declares a third parameter.
    async (job: Job, token?: string, signal?: AbortSignal) => {
      const lost = signal ?? new AbortController().signal
      const decoded = Schema.decodeUnknownExit(TaskSchema)(job.data)
      if (decoded._tag === "Failure")
        throw new BadTask({ message: `job ${job.id}: not a cmkg stage task (${String(decoded.cause)})` })
      const task = decoded.value
      o.log(`${job.id} · ${job.name}: started${(job.attemptsStarted ?? 1) > 1 ? " (resuming)" : ""}`)
      try {
        await o.execute(task, {
          progress: (p) => job.updateProgress(p),
          attempt: Math.max(0, (job.attemptsStarted ?? 1) - 1) + (job.stalledCounter ?? 0),
          lost,
        })
      } catch (e) {
        if (lost.aborted) {
          // The stage is no longer this worker's to finish or fail: the one that holds its lock does.
          o.log(
            `${job.id} · ${job.name}: stopped here, its lock was lost; the worker that holds it now goes on`,
          )
          throw new WaitingError()
        }
        if (o.stopping?.() !== true) throw e
        // BullMQ's way to hand an active job back: move it, then tell the worker so.
        await job.moveToWait(token)
        o.log(`${job.id} · ${job.name}: handed back to the queue`)
        throw new WaitingError()
      }
      return { node: task.node }
    },
    {
      connection: Url.ioredis(c),
      concurrency: o.capacity,
      name: workerName(),
      lockDuration: timing.lockDurationMs,
      stalledInterval: timing.stalledIntervalMs,
      maxStalledCount: timing.maxStalledCount,
    },
  )
  worker.on("completed", (job: Job) => {
    o.log(`${job.id} · ${job.name}: done`)
    const task = job.data as Task
    // Only the nodes that read this one can have become ready: a few Redis calls, not one per node of
    // the plan (0.5 ms against 50 ms for 5 seeds × 47 stages); the follower's polls cover the rest.
    const dependents = new Set(task.plan.filter((n) => n.needs.includes(task.node)).map((n) => n.id))
    enqueueReady(queue, task.run, task.plan, task.spec, dependents).catch((e) =>
      o.log(
        `${job.id}: could not add the stages that follow it (${e instanceof Error ? e.message : e}); the follower will`,
      ),
    )
  })
  worker.on("lockRenewalFailed", (ids: string[]) => {
    for (const id of ids) {
      o.log(`${id}: lost its lock (the queue was out of reach longer than the lock time); stopping it here`)
      worker.cancelJob(id, "lock lost")
    }
  })
  reportConnection([worker, queue], c, o.log)
  worker.on("failed", (job: Job | undefined, err: Error) =>
    o.log(`${job?.id ?? "?"} · ${job?.name ?? ""}: failed: ${err.message}`),
  )
  worker.on("closed", () => {
    queue.close().catch(() => undefined)
  })
  await worker.waitUntilReady()
  return worker
}

/** One node's state as `cmkg status` shows it. */
export interface NodeStatus {
  readonly node: string
  readonly label: string
  /** `pending` (needs not done yet), or BullMQ's: waiting, active, completed, failed, … */
  readonly state: string
  readonly worker: string | undefined
  readonly progress: number | undefined
  /** When its job was added (its needs done), started by a worker and finished (ms since the epoch). */
  readonly addedAt: number | undefined
  readonly startedAt: number | undefined
  readonly finishedAt: number | undefined
  readonly error: string | undefined
}

const statusOf = async (queue: Queue, run: string, n: Node): Promise<NodeStatus> => {
  const job = await queue.getJob(jobId(run, n.id))
  if (job === undefined || job === null)
    return {
      node: n.id,
      label: n.label,
      state: "pending",
      worker: undefined,
      progress: undefined,
      addedAt: undefined,
      startedAt: undefined,
      finishedAt: undefined,
      error: undefined,
    }
  return {
    node: n.id,
    label: n.label,
    state: await job.getState(),
    worker: job.processedBy,
    progress: typeof job.progress === "number" ? job.progress : undefined,
    addedAt: job.timestamp,
    startedAt: job.processedOn,
    finishedAt: job.finishedOn,
    error: job.failedReason === undefined || job.failedReason === "" ? undefined : job.failedReason,
  }
}

/** The state of every node of a run. */
export const status = async (queue: Queue, run: string, plan: readonly Node[]): Promise<NodeStatus[]> =>
  Promise.all(plan.map((n) => statusOf(queue, run, n)))

/** The runs in the queue (from their jobs' data), newest first, with their plans. */
export const runs = async (
  c: Url.Connection,
): Promise<{ run: string; plan: readonly Node[]; spec: unknown; submitted: number }[]> => {
  const queue = queueOf(c)
  try {
    const jobs = await queue.getJobs(["waiting", "active", "completed", "failed", "delayed", "prioritized"])
    const byRun = new Map<string, { run: string; plan: readonly Node[]; spec: unknown; submitted: number }>()
    for (const job of jobs) {
      const decoded = Schema.decodeUnknownExit(TaskSchema)(job.data)
      if (decoded._tag === "Failure") continue
      const t = decoded.value
      const seen = byRun.get(t.run)
      if (seen === undefined || job.timestamp < seen.submitted)
        byRun.set(t.run, { run: t.run, plan: t.plan, spec: t.spec, submitted: job.timestamp })
    }
    return [...byRun.values()].sort((a, b) => b.submitted - a.submitted)
  } finally {
    await queue.close()
  }
}

/** Opens the queue for a caller that polls it (the follower, `cmkg status`); close it when done. */
export const open = (c: Url.Connection): Queue => queueOf(c)

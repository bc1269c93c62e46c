/**
 * What `cmkg status` and the follower of `cmkg run --cluster` print: one line
 * per stage (state, worker, progress, time) and a one-line tally.
 *
 * @module
 */
import type * as Engine from "./engine.ts"

const duration = (ms: number): string => {
  const s = Math.round(ms / 1000)
  return s < 60 ? `${s} s` : s < 3600 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${(s / 3600).toFixed(1)} h`
}

/** `12 stages: 3 done, 2 running, 1 waiting, 6 pending`. */
export const tally = (nodes: readonly Engine.NodeStatus[]): string => {
  const count = new Map<string, number>()
  for (const n of nodes) count.set(n.state, (count.get(n.state) ?? 0) + 1)
  const order = ["completed", "active", "waiting", "pending", "failed"]
  const states = [
    ...order.filter((s) => count.has(s)),
    ...[...count.keys()].filter((s) => !order.includes(s)),
  ]
  const name: Record<string, string> = { completed: "done", active: "running" }
  const parts = states.map((state) => `${count.get(state)} ${name[state] ?? state}`)
  return `${nodes.length} stages: ${parts.join(", ")}`
}

/** One line of a stage: `seed 1 · 2/6 train kd-act   running  62 %  host:1234  1 min 5 s`. */
export const line = (n: Engine.NodeStatus, now: number): string => {
  const state = n.state === "completed" ? "done" : n.state === "active" ? "running" : n.state
  const progress = n.state === "active" && n.progress !== undefined ? ` ${n.progress.toFixed(0)} %` : ""
  const time =
    n.startedAt === undefined
      ? ""
      : ` ${duration((n.finishedAt ?? now) - n.startedAt)}${n.finishedAt === undefined ? " so far" : ""}`
  const worker = n.worker === undefined ? "" : ` on ${n.worker}`
  const error = n.error === undefined ? "" : `: ${n.error}`
  return `${n.label.padEnd(48)} ${state}${progress}${worker}${time}${error}`
}

export const table = (nodes: readonly Engine.NodeStatus[], now: number): string =>
  [...nodes.map((n) => line(n, now)), tally(nodes)].join("\n")

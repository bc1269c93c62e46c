/**
 * Progress display: one line rewritten in place on a terminal, plain log
 * lines (at most one every few seconds, plus every epoch's end) otherwise.
 *
 * @module
 */
import type { Progress, Reporter } from "../interpreters/tf/experiment.ts"

const clock = (s: number): string => {
  if (!Number.isFinite(s) || s < 0) return "?"
  const m = Math.floor(s / 60)
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, "0")}s` : `${Math.round(s)}s`
}

const describe = (p: Progress): string => {
  const losses = Object.entries(p.losses)
    .map(([k, v]) => `${k} ${v.toPrecision(4)}`)
    .join(", ")
  return (
    `[${p.stageIndex + 1}/${p.stages}] ${p.stage} · epoch ${p.epoch + 1}/${p.epochs} · step ${p.step + 1}/${p.steps} · ` +
    `${losses} · ${p.imagesPerSecond.toFixed(0)} img/s · stage left ${clock(p.secondsLeft)}`
  )
}

export const reporter = (stream: NodeJS.WriteStream = process.stdout): Reporter => {
  const tty = stream.isTTY === true
  let lastLine = 0
  let open = false
  return {
    progress: (p) => {
      if (tty) {
        const line = describe(p)
        const width = stream.columns ?? 120
        stream.write(`\r${line.length > width - 1 ? `${line.slice(0, width - 2)}…` : line.padEnd(width - 1)}`)
        open = true
        return
      }
      const now = Date.now()
      const endOfEpoch = p.step + 1 === p.steps
      if (endOfEpoch || now - lastLine > 5000) {
        stream.write(`${describe(p)}\n`)
        lastLine = now
      }
    },
    log: (line) => {
      if (open) stream.write("\n")
      open = false
      stream.write(`${line}\n`)
    },
  }
}

/**
 * A throw-away Redis server for the engine's tests: Debian's `redis-server`
 * on a free loopback port, no persistence, killed when the test ends. Where
 * the binary is missing the tests are skipped naming why, except on CI
 * (`CI=true`), where its absence fails (scripts/install-redis.sh installs it).
 */
import assert from "node:assert/strict"
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { createServer } from "node:net"
import { test } from "node:test"

const onCI = (): boolean => {
  const ci = process.env.CI ?? ""
  return ci !== "" && ci !== "0" && ci !== "false"
}

/** Why the engine's suites cannot run here, or undefined. On CI a missing server is a failing test. */
export const redisSkip = (): string | undefined => {
  const found = spawnSync("redis-server", ["--version"], { encoding: "utf8" })
  if (found.status === 0) return undefined
  const why = "redis-server is not installed (bash scripts/install-redis.sh installs Debian's)"
  if (onCI()) test("redis-server is installed on CI", () => assert.fail(`CI=${process.env.CI} but ${why}`))
  return why
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = createServer()
    s.once("error", reject)
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })

export interface Redis {
  readonly url: string
  readonly stop: () => Promise<void>
  /** Kills the server (SIGKILL, as a crash), waits `downMs`, and starts it again on the same port and files. */
  readonly restart: (downMs: number) => Promise<void>
}

/** Starts `redis-server` on `port` and resolves once it accepts connections. */
const launch = async (port: number, extra: readonly string[]): Promise<ChildProcess> => {
  const child: ChildProcess = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", ...extra],
    { stdio: ["ignore", "pipe", "inherit"] },
  )
  await new Promise<void>((resolve, reject) => {
    let seen = ""
    child.stdout!.on("data", (d: Buffer) => {
      seen += d.toString()
      if (seen.includes("Ready to accept connections")) resolve()
    })
    child.once("exit", (code) =>
      reject(new Error(`redis-server exited (${code}) before it was ready:\n${seen}`)),
    )
  })
  child.stdout!.resume()
  return child
}

const kill = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    child.once("exit", () => resolve())
    child.kill("SIGKILL")
  })

/**
 * Starts a server and waits until it accepts connections. `extra` options
 * come last, so they override the defaults (no persistence).
 */
export const startRedis = async (extra: readonly string[] = []): Promise<Redis> => {
  const port = await freePort()
  let child = await launch(port, extra)
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: () => kill(child),
    restart: async (downMs) => {
      await kill(child)
      await new Promise((r) => setTimeout(r, downMs))
      child = await launch(port, extra)
    },
  }
}

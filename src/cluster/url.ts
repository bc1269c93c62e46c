/**
 * The `--cluster URL` of `cmkg run`, `cmkg worker` and `cmkg status`: where
 * the queue lives. A Redis server, BullMQ's store:
 * `redis://[user:password@]host[:port][/db]`, or `rediss://…` over TLS. The
 * password may also come from the environment (`CMKG_CLUSTER_PASSWORD`), so
 * that it appears in no command line; it is never printed (messages show the
 * URL with `***` for it). A URL that is not one is refused naming it.
 *
 * @module
 */
import { Data } from "effect"
import { Redis } from "ioredis"

/** A `--cluster` value that is not a Redis URL cmkg can use. */
export class BadClusterUrl extends Data.TaggedError("BadClusterUrl")<{ readonly message: string }> {}

/** What BullMQ's ioredis connection needs. */
export interface Connection {
  readonly host: string
  readonly port: number
  readonly db: number
  readonly username?: string
  readonly password?: string
  /** `rediss://`: TLS, the server's certificate checked against the system's CAs. */
  readonly tls: boolean
  /** The URL as given, for messages (its password replaced by `***`). */
  readonly display: string
}

export const parse = (value: string): Connection => {
  const bad = (why: string) =>
    new BadClusterUrl({
      message: `--cluster ${JSON.stringify(value)}: ${why} (expected redis://host[:port][/db], e.g. redis://127.0.0.1:6379)`,
    })
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw bad("not a URL")
  }
  if (url.protocol !== "redis:" && url.protocol !== "rediss:")
    throw bad(`unsupported scheme "${url.protocol.replace(/:$/, "")}"`)
  if (url.hostname === "") throw bad("no host")
  const port = url.port === "" ? 6379 : Number(url.port)
  const path = url.pathname.replace(/^\//, "")
  const db = path === "" ? 0 : Number(path)
  if (!Number.isInteger(db) || db < 0) throw bad(`database "${path}" is not a non-negative integer`)
  const username = url.username === "" ? undefined : decodeURIComponent(url.username)
  const password =
    url.password === "" ? process.env.CMKG_CLUSTER_PASSWORD || undefined : decodeURIComponent(url.password)
  const display = password === undefined ? value : value.replace(`:${url.password}@`, ":***@")
  return {
    host: url.hostname,
    port,
    db,
    ...(username === undefined ? {} : { username }),
    ...(password === undefined ? {} : { password }),
    tls: url.protocol === "rediss:",
    display,
  }
}

/** ioredis options for BullMQ (workers need `maxRetriesPerRequest: null` to block on the queue). */
export const ioredis = (c: Connection) => ({
  host: c.host,
  port: c.port,
  db: c.db,
  ...(c.username === undefined ? {} : { username: c.username }),
  ...(c.password === undefined ? {} : { password: c.password }),
  ...(c.tls ? { tls: {} } : {}),
  maxRetriesPerRequest: null,
})

/** The server cannot be reached, or refuses cmkg (a wrong password). */
export class Unreachable extends Data.TaggedError("Unreachable")<{ readonly message: string }> {}

/**
 * Connects once and pings, without retrying: a URL nobody answers, or a
 * wrong password, is one line naming the URL (BullMQ itself would retry for
 * ever, silently).
 */
export const check = async (c: Connection): Promise<void> => {
  const client = new Redis({
    ...ioredis(c),
    lazyConnect: true,
    connectTimeout: 5000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  })
  // The socket's own error (ECONNREFUSED, a TLS failure) says more than the "Connection is closed" that follows.
  let socketError: string | undefined
  client.on("error", (e: Error) => {
    socketError ??= e.message
  })
  try {
    await client.connect()
    await client.ping()
  } catch (e) {
    const why = socketError ?? (e instanceof Error ? e.message : String(e))
    const hint = /WRONGPASS|NOAUTH|invalid password/i.test(why)
      ? "the password is wrong or missing (put it in the URL or in CMKG_CLUSTER_PASSWORD)"
      : "is a Redis server running there, and reachable from this machine?"
    throw new Unreachable({
      message: `--cluster ${c.display}: cannot use the Redis server: ${why} (${hint})`,
    })
  } finally {
    client.disconnect()
  }
}

/**
 * The `--cluster URL` of `cmkg run`, `cmkg worker` and `cmkg status`: where
 * the queue lives. Today a Redis server (`redis://[user:password@]host[:port][/db]`,
 * BullMQ's store); a URL that is not one is refused naming it.
 *
 * @module
 */
import { Data } from "effect"

/** A `--cluster` value that is not a Redis URL cmkg can use. */
export class BadClusterUrl extends Data.TaggedError("BadClusterUrl")<{ readonly message: string }> {}

/** What BullMQ's ioredis connection needs. */
export interface Connection {
  readonly host: string
  readonly port: number
  readonly db: number
  readonly username?: string
  readonly password?: string
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
  if (url.protocol !== "redis:") throw bad(`unsupported scheme "${url.protocol.replace(/:$/, "")}"`)
  if (url.hostname === "") throw bad("no host")
  const port = url.port === "" ? 6379 : Number(url.port)
  const path = url.pathname.replace(/^\//, "")
  const db = path === "" ? 0 : Number(path)
  if (!Number.isInteger(db) || db < 0) throw bad(`database "${path}" is not a non-negative integer`)
  const username = url.username === "" ? undefined : decodeURIComponent(url.username)
  const password = url.password === "" ? undefined : decodeURIComponent(url.password)
  const display = password === undefined ? value : value.replace(`:${url.password}@`, ":***@")
  return {
    host: url.hostname,
    port,
    db,
    ...(username === undefined ? {} : { username }),
    ...(password === undefined ? {} : { password }),
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
  maxRetriesPerRequest: null,
})

/**
 * Recycled output buffers for the `cmkg-cpu` kernels.
 *
 * A training step allocates the same large activations and gradients every
 * step. A fresh Float32Array costs a page fault per 4 KiB on first write (on
 * these VMs ~60 ms for a 16 MB activation, more than oneDNN's batch norm on
 * it) and is freed only when V8 collects it. Arrays allocated here return to
 * the pool when the backend disposes their tensor, and are handed out again
 * (not zeroed: every kernel using `alloc` writes its whole output).
 *
 * Safety: only arrays allocated here are recycled, once each; `readSync` hands
 * callers a copy of them (a `dataSync()` result outlives its tensor), and a cpu
 * kernel output that is a view into a pooled input is copied (see cmkgCpu.ts).
 *
 * @module
 */
import { totalmem } from "node:os"

/** Below this many elements allocation is cheap and buffers are not pooled. */
const MIN_ELEMENTS = 1 << 14
/**
 * At most this many bytes wait in the pool; beyond, disposed buffers go to the GC. A step frees
 * most of what it allocated at its end, so the pool must hold a step's peak of live buffers, or
 * the next step allocates the rest afresh: with 1 GiB, a ResNet-18 distillation or meta step at
 * batch 16–32 allocated ~480 MB new per step, and V8's collections of them (triggered by external
 * memory growth) took ~10 % of the step. Holding the peak costs no peak memory (those buffers were
 * live at the peak); the quarter of the machine's memory bounds what stale sizes can keep.
 */
const CAPACITY_BYTES = Math.min(4 * 2 ** 30, Math.floor(totalmem() / 4))

const free = new Map<number, Array<Float32Array>>()
const ours = new WeakSet<Float32Array>()
const waiting = new WeakSet<Float32Array>()
let waitingBytes = 0

/** A Float32Array of `n` elements with arbitrary contents (the caller overwrites all of it). */
export const alloc = (n: number): Float32Array => {
  if (n < MIN_ELEMENTS) return new Float32Array(n)
  const a = free.get(n)?.pop()
  if (a !== undefined) {
    waiting.delete(a)
    waitingBytes -= a.byteLength
    return a
  }
  const b = new Float32Array(n)
  ours.add(b)
  return b
}

/** True when `a` came from `alloc` and may be recycled. */
export const isPooled = (a: unknown): boolean => a instanceof Float32Array && ours.has(a)

/** Return a buffer whose tensor was disposed. Ignores foreign arrays and a second return. */
export const recycle = (a: unknown): void => {
  if (
    !(a instanceof Float32Array) ||
    !ours.has(a) ||
    waiting.has(a) ||
    waitingBytes + a.byteLength > CAPACITY_BYTES
  )
    return
  waiting.add(a)
  waitingBytes += a.byteLength
  const list = free.get(a.length)
  if (list === undefined) free.set(a.length, [a])
  else list.push(a)
}

/** Bytes currently waiting for reuse (for the benchmark's memory report). */
export const pooledBytes = (): number => waitingBytes

/** Drop every waiting buffer (they go to the GC). */
export const drain = (): void => {
  free.clear()
  waitingBytes = 0
}

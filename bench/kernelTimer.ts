/**
 * Times every kernel of a tfjs backend, and records in which gradient it ran:
 * each kernel registered for the backend is re-registered behind a timer, and
 * the gradient functions of the kernels bench/breakdown.ts distinguishes
 * (convolution backwards, batch norm) mark their thunks as that context. Once
 * installed it stays for the life of the process (the bench installs it after
 * its timed rounds); it counts only between `start` and `stop`.
 *
 * @module
 */
import { PerformanceObserver } from "node:perf_hooks"
import * as tf from "@tensorflow/tfjs-core"
import { type KernelTime, type Profile, TFJS_CONTEXTS } from "./breakdown.ts"

export interface KernelTimer {
  /**
   * Runs `step` `steps` times and returns the mean wall time per step, the mean kernel times per
   * step, and the mean time per step the main thread spent in V8's garbage-collection pauses
   * (inside kernels or outside; observed entries arrive asynchronously, hence the promise).
   */
  readonly profile: (step: () => unknown, steps: number) => Promise<Profile & { readonly gc_ms: number }>
}

export const installKernelTimer = (backendName: string): KernelTimer => {
  const times = new Map<string, { kernel: string; context: string; ms: number; calls: number }>()
  const contexts: string[] = []
  let on = false
  // Kernels that dispatch kernels through the engine are counted once, at the outermost.
  let depth = 0
  for (const k of tf.getKernelsForBackend(backendName)) {
    const f = k.kernelFunc
    tf.unregisterKernel(k.kernelName, backendName)
    tf.registerKernel({
      ...k,
      kernelFunc: (a) => {
        if (!on || depth > 0) return f(a)
        depth++
        const t = performance.now()
        try {
          return f(a)
        } finally {
          const dt = performance.now() - t
          depth--
          const context = contexts[contexts.length - 1] ?? ""
          const key = `${k.kernelName}\u0000${context}`
          const s = times.get(key) ?? { kernel: k.kernelName, context, ms: 0, calls: 0 }
          s.ms += dt
          s.calls++
          times.set(key, s)
        }
      },
    })
  }
  const within = <T>(context: string, f: () => T): T => {
    contexts.push(context)
    try {
      return f()
    } finally {
      contexts.pop()
    }
  }
  for (const name of TFJS_CONTEXTS) {
    // The engine reads `gradFunc` off the registered config when it records a tape node.
    const config = tf.getGradient(name) as { gradFunc: tf.GradFunc } | undefined
    if (config === undefined) continue
    const gradFunc = config.gradFunc
    config.gradFunc = (dy, saved, attrs) =>
      within(name, () => {
        const thunks = gradFunc(dy, saved, attrs)
        return Object.fromEntries(
          Object.entries(thunks).map(([input, thunk]) => [input, () => within(name, thunk)]),
        )
      })
  }
  const pauses: Array<{ start: number; ms: number }> = []
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) pauses.push({ start: e.startTime, ms: e.duration })
  }).observe({ entryTypes: ["gc"] })
  return {
    profile: async (step, steps) => {
      times.clear()
      pauses.length = 0
      on = true
      const t0 = performance.now()
      try {
        for (let i = 0; i < steps; i++) step()
      } finally {
        on = false
      }
      const t1 = performance.now()
      const stepMs = (t1 - t0) / steps
      // The observer hears of the last pauses on a later turn of the event loop.
      await new Promise((ok) => setTimeout(ok, 50))
      const gc = pauses.filter((p) => p.start >= t0 && p.start < t1).reduce((a, p) => a + p.ms, 0)
      const kernels: KernelTime[] = [...times.values()].map((s) => ({
        kernel: s.kernel,
        context: s.context,
        ms: s.ms / steps,
        calls: s.calls / steps,
      }))
      return { step_ms: stepMs, kernels, gc_ms: gc / steps }
    },
  }
}

/**
 * The float64 reference meaning of `Loss` values: naive loops over
 * `Float64Array`s, the oracle the tf interpreter (`tf/loss.ts`) is tested
 * against. Same semantics, same ε's (see `tf/loss.ts` for the definitions):
 * every pointwise loss is the mean over the batch of a per-sample value.
 *
 * @module
 */
import type * as Loss from "../../dsl/Loss.ts"
import type { Params } from "./index.ts"
import { fill, formatShape, sameShape, size, type Tensor } from "./Tensor.ts"

/** ε inside the attention maps' ℓ2 norm (as the tf interpreter). */
export const ATTENTION_EPS = 1e-12
/** ε inside the per-sample ℓ2 norm of the `l2` uncertainty loss (as the tf interpreter). */
export const NORM_EPS = 1e-12

export interface Env {
  readonly outputs: Readonly<
    Record<string, { readonly y: Tensor; readonly taps: Readonly<Record<string, Tensor>> }>
  >
  readonly batch: Readonly<Partial<Record<Loss.Field, Tensor>>>
  readonly params: Readonly<Record<string, Params>>
  readonly meta: Readonly<Record<string, Params>>
}

const fail = (message: string): never => {
  throw new Error(message)
}

export const signal = (s: Loss.Signal, env: Env): Tensor => {
  switch (s._tag) {
    case "Output":
      return (env.outputs[s.model] ?? fail(`no outputs of model "${s.model}"`)).y
    case "Tap": {
      const out = env.outputs[s.model] ?? fail(`no outputs of model "${s.model}"`)
      return out.taps[s.tap] ?? fail(`model "${s.model}" has no tap "${s.tap}"`)
    }
    case "Field":
      return env.batch[s.field] ?? fail(`the batch has no field "${s.field}"`)
    case "Slice": {
      const x = signal(s.signal, env)
      const last = x.shape[x.shape.length - 1]!
      if (!(s.start >= 0 && s.size >= 1 && s.start + s.size <= last))
        fail(`slice [${s.start}, ${s.start + s.size}) is outside the last axis of size ${last}`)
      const outer = x.data.length / last
      const y = fill([...x.shape.slice(0, -1), s.size])
      for (let o = 0; o < outer; o++)
        for (let j = 0; j < s.size; j++) y.data[o * s.size + j] = x.data[o * last + s.start + j]!
      return y
    }
    case "Reproject": {
      // J2D_j = S·(s·(x_j, y_j) + t + ½), s = s₀·exp(clip(c₀, −4, 4)), t = (c₁, c₂).
      const pose = signal(s.pose, env)
      const camera = signal(s.camera, env)
      const B = pose.shape[0]!
      const n = pose.shape[1]!
      if (pose.shape.length !== 2 || n % 3 !== 0 || n === 0)
        fail(`Reproject: the pose must be [B, 3J], got ${formatShape(pose.shape)}`)
      if (!sameShape(camera.shape, [B, 3]))
        fail(
          `Reproject: the camera must be [B, 3] for a pose ${formatShape(pose.shape)}, got ${formatShape(camera.shape)}`,
        )
      const J = n / 3
      const y = fill([B, 2 * J])
      for (let b = 0; b < B; b++) {
        const c0 = camera.data[3 * b]!
        const scale = s.baseScale * Math.exp(Math.min(4, Math.max(-4, c0)))
        for (let j = 0; j < J; j++)
          for (let a = 0; a < 2; a++)
            y.data[b * 2 * J + 2 * j + a] =
              s.imageSize * (scale * pose.data[b * n + 3 * j + a]! + camera.data[3 * b + 1 + a]! + 0.5)
      }
      return y
    }
    default: {
      const _: never = s
      return _
    }
  }
}

const check = (what: string, a: Tensor, b: Tensor): void => {
  if (!sameShape(a.shape, b.shape))
    fail(`${what}: shapes ${formatShape(a.shape)} and ${formatShape(b.shape)} differ`)
}

/** Per-sample values `f` over row `b` of `[B, n]`-flattened tensors. */
const rows = (x: Tensor): { B: number; n: number } => {
  const B = x.shape[0]!
  return { B, n: size(x.shape.slice(1)) }
}

/** Mean over the batch of `perSample(b)`. */
const batchMean = (B: number, perSample: (b: number) => number): number => {
  let s = 0
  for (let b = 0; b < B; b++) s += perSample(b)
  return s / B
}

/** ℓ2-normalised attention maps, `[B][P]`. */
export const attentionMap = (q: Tensor, variant: Loss.AttentionVariant): number[][] => {
  const C = q.shape[q.shape.length - 1]!
  const { B, n } = rows(q)
  const P = n / C
  return Array.from({ length: B }, (_, b) => {
    const a = Array.from({ length: P }, (_, p) => {
      let s = 0
      for (let c = 0; c < C; c++) s += q.data[(b * P + p) * C + c]! ** 2
      return variant === "paper" ? s : s / C
    })
    const norm = Math.sqrt(a.reduce((acc, v) => acc + v * v, 0) + ATTENTION_EPS)
    return a.map((v) => v / norm)
  })
}

const paramsOf = (env: Env, model: string): Params => env.params[model] ?? fail(`no parameters of "${model}"`)

/** The loss's value on `env`. */
export const evaluate = (l: Loss.Loss, env: Env): number => {
  switch (l._tag) {
    case "SquaredError":
    case "AbsoluteError": {
      const p = signal(l.prediction, env)
      const t = signal(l.target, env)
      check(l._tag, p, t)
      const { B, n } = rows(p)
      return batchMean(B, (b) => {
        let s = 0
        for (let i = b * n; i < (b + 1) * n; i++) {
          const d = p.data[i]! - t.data[i]!
          s += l._tag === "SquaredError" ? d * d : Math.abs(d)
        }
        return l.reduce === "sum" ? s : s / n
      })
    }
    case "AttentionTransfer": {
      let total = 0
      l.pairs.forEach(([s, t], i) => {
        const qs = signal(s, env)
        const qt = signal(t, env)
        if (!sameShape(qs.shape.slice(0, -1), qt.shape.slice(0, -1)))
          fail(
            `AttentionTransfer pair ${i}: ${formatShape(qs.shape)} and ${formatShape(qt.shape)} differ in spatial size`,
          )
        const as = attentionMap(qs, l.variant)
        const at = attentionMap(qt, l.variant)
        total += batchMean(as.length, (b) => {
          let d = 0
          as[b]!.forEach((v, p) => {
            d += (v - at[b]![p]!) ** 2
          })
          return l.variant === "paper" ? d : d / as[b]!.length
        })
      })
      return total
    }
    case "Transfer": {
      const s = signal(l.student, env)
      const t = signal(l.teacher, env)
      let mapped = s
      if (l.adapter !== undefined) {
        const adapter = paramsOf(env, l.adapter)
        const kernel = adapter.kernel ?? fail(`adapter "${l.adapter}" has no kernel`)
        const bias = adapter.bias
        const cs = s.shape[s.shape.length - 1]!
        const ct = kernel.shape[kernel.shape.length - 1]!
        if (kernel.data.length !== cs * ct)
          fail(`adapter "${l.adapter}": kernel ${formatShape(kernel.shape)} does not map ${cs} channels`)
        const outer = s.data.length / cs
        mapped = fill([...s.shape.slice(0, -1), ct])
        for (let o = 0; o < outer; o++)
          for (let j = 0; j < ct; j++) {
            let v = bias === undefined ? 0 : bias.data[j]!
            for (let c = 0; c < cs; c++) v += s.data[o * cs + c]! * kernel.data[c * ct + j]!
            mapped.data[o * ct + j] = v
          }
      }
      check("Transfer", mapped, t)
      const { B, n } = rows(t)
      return batchMean(B, (b) => {
        let acc = 0
        for (let i = b * n; i < (b + 1) * n; i++) acc += (mapped.data[i]! - t.data[i]!) ** 2
        return acc
      })
    }
    case "Uncertainty": {
      const p = signal(l.prediction, env)
      const t = signal(l.target, env)
      check("Uncertainty", p, t)
      const a = signal(l.logVariance, env)
      const { B, n } = rows(p)
      if (a.data.length !== B)
        fail(`Uncertainty: the log-variance must be one scalar per sample, got ${formatShape(a.shape)}`)
      // Per coordinate: d² (ℓ2); |d| (ℓ1 norm) or smooth-ℓ1 (ℓ1 mean: d²/2 below |d| = 1, |d| − ½ above).
      const error = (d: number) =>
        l.norm === "l2"
          ? d * d
          : l.reduce === "norm"
            ? Math.abs(d)
            : Math.abs(d) < 1
              ? (d * d) / 2
              : Math.abs(d) - 0.5
      return batchMean(B, (b) => {
        let acc = 0
        for (let i = b * n; i < (b + 1) * n; i++) acc += error(p.data[i]! - t.data[i]!)
        const alpha = a.data[b]!
        if (l.reduce === "mean")
          return l.norm === "l2"
            ? (Math.exp(-alpha) / 2) * (acc / n) + alpha / 2
            : Math.exp(-alpha) * (acc / n) + alpha / 2
        return l.norm === "l2"
          ? (Math.exp(-alpha) / 2) * Math.sqrt(acc + NORM_EPS) + alpha / 2
          : Math.exp(-alpha) * (acc - 0.5) + alpha / 2
      })
    }
    case "WeightedNorm": {
      const theta = paramsOf(env, l.model)
      const phi = env.meta[l.phi] ?? fail(`no meta-parameters "${l.phi}"`)
      let s = 0
      for (const [k, t] of Object.entries(theta)) {
        const w = phi[k] ?? fail(`meta-parameters "${l.phi}" have no entry "${k}"`)
        check(`WeightedNorm ${l.phi}/${k}`, w, t)
        for (let i = 0; i < t.data.length; i++)
          s += w.data[i]! * (l.p === 2 ? t.data[i]! ** 2 : Math.abs(t.data[i]!))
      }
      return s
    }
    case "Norm": {
      let s = 0
      for (const t of Object.values(paramsOf(env, l.model)))
        for (let i = 0; i < t.data.length; i++) s += l.p === 2 ? t.data[i]! ** 2 : Math.abs(t.data[i]!)
      return l.sigma * s
    }
    case "Sum":
      return l.terms.reduce((acc, t) => acc + evaluate(t, env), 0)
    case "Scale":
      return l.factor * evaluate(l.loss, env)
    default: {
      const _: never = l
      return _
    }
  }
}

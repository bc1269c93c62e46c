/**
 * A minimal ONNX protobuf writer: just enough of ModelProto / GraphProto /
 * NodeProto / AttributeProto / ValueInfoProto / TensorProto to build the tiny
 * single-purpose models the `cmkg-cpu` backend runs through onnxruntime.
 *
 * Field numbers follow onnx/onnx.proto (IR version 8).
 */

/** ONNX TensorProto.DataType codes used here. */
export const DType = { float32: 1, int32: 6, int64: 7, bool: 9 } as const
export type DTypeName = keyof typeof DType

export type AttrValue =
  | { readonly kind: "int"; readonly value: number }
  | { readonly kind: "ints"; readonly value: ReadonlyArray<number> }
  | { readonly kind: "float"; readonly value: number }
  | { readonly kind: "floats"; readonly value: ReadonlyArray<number> }
  | { readonly kind: "string"; readonly value: string }

export const int = (value: number): AttrValue => ({ kind: "int", value })
export const ints = (value: ReadonlyArray<number>): AttrValue => ({ kind: "ints", value })
export const float = (value: number): AttrValue => ({ kind: "float", value })
export const floats = (value: ReadonlyArray<number>): AttrValue => ({ kind: "floats", value })
export const str = (value: string): AttrValue => ({ kind: "string", value })

export interface OnnxNode {
  readonly op: string
  readonly inputs: ReadonlyArray<string>
  readonly outputs: ReadonlyArray<string>
  readonly attrs?: Readonly<Record<string, AttrValue>>
  readonly domain?: string
}

export interface OnnxValueInfo {
  readonly name: string
  readonly dtype: DTypeName
  readonly shape: ReadonlyArray<number>
}

export interface OnnxInitializer {
  readonly name: string
  readonly dtype: "float32" | "int64"
  readonly shape: ReadonlyArray<number>
  readonly values: ReadonlyArray<number>
}

export interface OnnxGraph {
  readonly nodes: ReadonlyArray<OnnxNode>
  readonly inputs: ReadonlyArray<OnnxValueInfo>
  readonly outputs: ReadonlyArray<OnnxValueInfo>
  readonly initializers?: ReadonlyArray<OnnxInitializer>
  readonly opset?: number
}

// ---------------------------------------------------------------- wire format

class Writer {
  private readonly bytes: Array<number> = []

  varint(v: number | bigint): this {
    let x = BigInt.asUintN(64, BigInt(v))
    while (x >= 0x80n) {
      this.bytes.push(Number(x & 0x7fn) | 0x80)
      x >>= 7n
    }
    this.bytes.push(Number(x))
    return this
  }

  tag(field: number, wire: number): this {
    return this.varint((field << 3) | wire)
  }

  int(field: number, v: number): this {
    return this.tag(field, 0).varint(v)
  }

  raw(field: number, data: Uint8Array): this {
    this.tag(field, 2).varint(data.length)
    for (const b of data) this.bytes.push(b)
    return this
  }

  string(field: number, s: string): this {
    return this.raw(field, new TextEncoder().encode(s))
  }

  message(field: number, w: Writer): this {
    return this.raw(field, w.finish())
  }

  float(field: number, v: number): this {
    const b = new Uint8Array(4)
    new DataView(b.buffer).setFloat32(0, v, true)
    this.tag(field, 5)
    for (const x of b) this.bytes.push(x)
    return this
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.bytes)
  }
}

const attribute = (name: string, a: AttrValue): Writer => {
  const w = new Writer().string(1, name)
  switch (a.kind) {
    case "float":
      return w.float(2, a.value).int(20, 1)
    case "int":
      return w.int(3, a.value).int(20, 2)
    case "string":
      return w.string(4, a.value).int(20, 3)
    case "floats":
      for (const v of a.value) w.float(7, v)
      return w.int(20, 6)
    case "ints":
      for (const v of a.value) w.int(8, v)
      return w.int(20, 7)
  }
}

const valueInfo = (v: OnnxValueInfo): Writer => {
  const shape = new Writer()
  for (const d of v.shape) shape.message(1, new Writer().int(1, d))
  const tensorType = new Writer().int(1, DType[v.dtype]).message(2, shape)
  return new Writer().string(1, v.name).message(2, new Writer().message(1, tensorType))
}

const tensor = (t: OnnxInitializer): Writer => {
  const w = new Writer()
  for (const d of t.shape) w.int(1, d)
  w.int(2, DType[t.dtype]).string(8, t.name)
  if (t.dtype === "float32") {
    w.raw(9, new Uint8Array(Float32Array.from(t.values).buffer))
  } else {
    w.raw(9, new Uint8Array(BigInt64Array.from(t.values.map((x) => BigInt(x))).buffer))
  }
  return w
}

const node = (n: OnnxNode, i: number): Writer => {
  const w = new Writer()
  for (const s of n.inputs) w.string(1, s)
  for (const s of n.outputs) w.string(2, s)
  w.string(3, `n${i}`).string(4, n.op)
  for (const [k, a] of Object.entries(n.attrs ?? {})) w.message(5, attribute(k, a))
  if (n.domain !== undefined) w.string(7, n.domain)
  return w
}

/** Serialise a one-graph ONNX model (IR version 8, default opset 17). */
export const encodeModel = (g: OnnxGraph): Uint8Array => {
  const graph = new Writer()
  g.nodes.forEach((n, i) => {
    graph.message(1, node(n, i))
  })
  graph.string(2, "cmkg")
  const used = new Set(g.nodes.flatMap((n) => n.inputs))
  for (const t of g.initializers ?? []) if (used.has(t.name)) graph.message(5, tensor(t))
  for (const v of g.inputs) graph.message(11, valueInfo(v))
  for (const v of g.outputs) graph.message(12, valueInfo(v))
  return new Writer()
    .int(1, 8)
    .string(2, "cmkg")
    .message(7, graph)
    .message(8, new Writer().string(1, "").int(2, g.opset ?? 17))
    .message(8, new Writer().string(1, "com.microsoft").int(2, 1))
    .finish()
}

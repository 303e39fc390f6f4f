// GGUF v2/v3 writer (spec: ggml/docs/gguf.md), the inverse of ./gguf.ts.
// Layout: magic "GGUF", u32 version, u64 tensor_count, u64 kv_count, key/values, tensor infos
// (name, n_dims, ne[] innermost-first, u32 type, u64 offset relative to the data section), padding
// to `alignment`, then each tensor's bytes at an aligned offset. Written in chunks with
// fs.writeSync: the header is one buffer, tensor data is streamed one tensor at a time (a tensor
// may be produced lazily by a function so that a whole model never sits in memory).
import { closeSync, openSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { GgmlType, TYPE_TRAITS, rowBytes, typeName } from "../backends/dtypes.js";
import { ValidationError } from "../errors.js";
import { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GgufValueType } from "./gguf.js";
import type { MetadataValue } from "./types.js";

/** Scalar GGUF value types a key/value may have (arrays use `{ array: <scalar type> }`). */
export type GgufScalarType =
  | "u8" | "i8" | "u16" | "i16" | "u32" | "i32" | "f32" | "bool" | "string" | "u64" | "i64" | "f64";
export type GgufKvType = GgufScalarType | { array: GgufScalarType };
export type GgufScalar = number | bigint | boolean | string;
/** One metadata entry: [key, type, value]; an array type takes a JS array of scalars. */
export type GgufKv = readonly [key: string, type: GgufKvType, value: GgufScalar | readonly GgufScalar[]];

export interface GgufTensorToWrite {
  readonly name: string;
  readonly dtype: GgmlType;
  /** outermost-first (as TensorInfo.shape): a matrix is [rows=out, cols=in] */
  readonly shape: readonly number[];
  /** raw bytes in `dtype`, or a function producing them when the writer reaches this tensor */
  readonly data: Uint8Array | (() => Uint8Array);
}

export interface GgufWriteOptions {
  readonly metadata: readonly GgufKv[];
  readonly tensors: readonly GgufTensorToWrite[];
  /** data alignment in bytes (power of two); written as general.alignment when not 32 */
  readonly alignment?: number;
  readonly version?: 2 | 3;
}

const SCALAR_CODES: Record<GgufScalarType, GgufValueType> = {
  u8: GgufValueType.UINT8, i8: GgufValueType.INT8, u16: GgufValueType.UINT16, i16: GgufValueType.INT16,
  u32: GgufValueType.UINT32, i32: GgufValueType.INT32, f32: GgufValueType.FLOAT32, bool: GgufValueType.BOOL,
  string: GgufValueType.STRING, u64: GgufValueType.UINT64, i64: GgufValueType.INT64, f64: GgufValueType.FLOAT64,
};

/** Growable little-endian byte sink for the header. */
class ByteSink {
  buf = new Uint8Array(1 << 16);
  view = new DataView(this.buf.buffer);
  len = 0;
  private readonly enc = new TextEncoder();
  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const nb = new Uint8Array(cap);
    nb.set(this.buf.subarray(0, this.len));
    this.buf = nb;
    this.view = new DataView(nb.buffer);
  }
  u8(v: number): void { this.reserve(1); this.view.setUint8(this.len, v); this.len += 1; }
  i8(v: number): void { this.reserve(1); this.view.setInt8(this.len, v); this.len += 1; }
  u16(v: number): void { this.reserve(2); this.view.setUint16(this.len, v, true); this.len += 2; }
  i16(v: number): void { this.reserve(2); this.view.setInt16(this.len, v, true); this.len += 2; }
  u32(v: number): void { this.reserve(4); this.view.setUint32(this.len, v, true); this.len += 4; }
  i32(v: number): void { this.reserve(4); this.view.setInt32(this.len, v, true); this.len += 4; }
  f32(v: number): void { this.reserve(4); this.view.setFloat32(this.len, v, true); this.len += 4; }
  f64(v: number): void { this.reserve(8); this.view.setFloat64(this.len, v, true); this.len += 8; }
  u64(v: number | bigint): void { this.reserve(8); this.view.setBigUint64(this.len, BigInt(v), true); this.len += 8; }
  i64(v: number | bigint): void { this.reserve(8); this.view.setBigInt64(this.len, BigInt(v), true); this.len += 8; }
  str(s: string): void {
    const b = this.enc.encode(s);
    this.u64(b.length);
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  pad(alignment: number): void {
    const n = (alignment - (this.len % alignment)) % alignment;
    this.reserve(n);
    this.buf.fill(0, this.len, this.len + n);
    this.len += n;
  }
}

function writeScalar(s: ByteSink, t: GgufScalarType, v: GgufScalar, key: string): void {
  const num = (): number => {
    if (typeof v !== "number" || !Number.isFinite(v)) throw new ValidationError(key, v, `expected a finite number for GGUF type ${t}`);
    if (t !== "f32" && t !== "f64" && !Number.isInteger(v)) throw new ValidationError(key, v, `expected an integer for GGUF type ${t}`);
    return v;
  };
  switch (t) {
    case "u8": return s.u8(num());
    case "i8": return s.i8(num());
    case "u16": return s.u16(num());
    case "i16": return s.i16(num());
    case "u32": return s.u32(num());
    case "i32": return s.i32(num());
    case "f32": return s.f32(num());
    case "f64": return s.f64(num());
    case "u64": return s.u64(typeof v === "bigint" ? v : num());
    case "i64": return s.i64(typeof v === "bigint" ? v : num());
    case "bool":
      if (typeof v !== "boolean") throw new ValidationError(key, v, "expected a boolean");
      return s.u8(v ? 1 : 0);
    case "string":
      if (typeof v !== "string") throw new ValidationError(key, v, "expected a string");
      return s.str(v);
  }
}

function writeKv(s: ByteSink, [key, type, value]: GgufKv): void {
  s.str(key);
  if (typeof type === "object") {
    if (!Array.isArray(value)) throw new ValidationError(key, value, `expected an array of ${type.array}`);
    s.u32(GgufValueType.ARRAY);
    s.u32(SCALAR_CODES[type.array]);
    s.u64(value.length);
    for (const v of value as readonly GgufScalar[]) writeScalar(s, type.array, v, key);
    return;
  }
  if (Array.isArray(value)) throw new ValidationError(key, value, `expected a scalar of type ${type}`);
  s.u32(SCALAR_CODES[type]);
  writeScalar(s, type, value as GgufScalar, key);
}

/** Bytes a tensor of `dtype` and outermost-first `shape` takes (validates block alignment). */
export function tensorBytes(name: string, dtype: GgmlType, shape: readonly number[]): number {
  if (!TYPE_TRAITS.has(dtype)) throw new ValidationError(`tensor ${name}.dtype`, dtype, "unknown GGML type");
  if (shape.length < 1 || shape.length > 4 || shape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new ValidationError(`tensor ${name}.shape`, shape, "expected 1..4 positive integer dimensions");
  }
  const inner = shape[shape.length - 1]!;
  try {
    return rowBytes(dtype, inner) * shape.slice(0, -1).reduce((a, b) => a * b, 1);
  } catch (e) {
    throw new ValidationError(`tensor ${name}.shape`, shape, (e as Error).message);
  }
}

interface Planned { t: GgufTensorToWrite; nbytes: number; offset: number }

function planTensors(tensors: readonly GgufTensorToWrite[], alignment: number): Planned[] {
  const seen = new Set<string>();
  let off = 0;
  return tensors.map((t) => {
    if (seen.has(t.name)) throw new ValidationError("tensor name", t.name, "duplicate tensor name");
    seen.add(t.name);
    const nbytes = tensorBytes(t.name, t.dtype, t.shape);
    const p = { t, nbytes, offset: off };
    off += Math.ceil(nbytes / alignment) * alignment;
    return p;
  });
}

function buildHeader(opts: GgufWriteOptions, plan: Planned[], alignment: number, version: number): Uint8Array {
  const s = new ByteSink();
  const kvs = [...opts.metadata];
  if (alignment !== GGUF_DEFAULT_ALIGNMENT && !kvs.some(([k]) => k === "general.alignment")) {
    kvs.push(["general.alignment", "u32", alignment]);
  }
  s.u32(GGUF_MAGIC);
  s.u32(version);
  s.u64(plan.length);
  s.u64(kvs.length);
  const keys = new Set<string>();
  for (const kv of kvs) {
    if (keys.has(kv[0])) throw new ValidationError("metadata key", kv[0], "duplicate metadata key");
    keys.add(kv[0]);
    writeKv(s, kv);
  }
  for (const { t, offset } of plan) {
    s.str(t.name);
    s.u32(t.shape.length);
    for (let d = t.shape.length - 1; d >= 0; d--) s.u64(t.shape[d]!); // ne[] is innermost-first
    s.u32(t.dtype);
    s.u64(offset);
  }
  s.pad(alignment);
  return s.buf.subarray(0, s.len);
}

function writeAll(fd: number, b: Uint8Array): void {
  let done = 0;
  while (done < b.length) done += writeSync(fd, b, done, b.length - done);
}

/** Writes a GGUF file (to `path + ".tmp"`, renamed into place once complete). */
export function writeGguf(path: string, opts: GgufWriteOptions): void {
  const alignment = opts.alignment ?? GGUF_DEFAULT_ALIGNMENT;
  const version = opts.version ?? 3;
  if (!Number.isInteger(alignment) || alignment <= 0 || (alignment & (alignment - 1)) !== 0) {
    throw new ValidationError("alignment", alignment, "must be a power of two");
  }
  if (version !== 2 && version !== 3) throw new ValidationError("version", version, "GGUF version must be 2 or 3");
  const plan = planTensors(opts.tensors, alignment);
  const header = buildHeader(opts, plan, alignment, version);
  const tmp = `${path}.tmp-${process.pid}`;
  let fd: number | null = openSync(tmp, "w");
  try {
    writeAll(fd, header);
    const zeros = new Uint8Array(alignment);
    for (const { t, nbytes } of plan) {
      const data = typeof t.data === "function" ? t.data() : t.data;
      if (data.length !== nbytes) {
        throw new ValidationError(`tensor ${t.name}.data`, data.length,
          `expected ${nbytes} bytes for ${typeName(t.dtype)} [${t.shape.join(", ")}]`);
      }
      writeAll(fd, data);
      writeAll(fd, zeros.subarray(0, (alignment - (nbytes % alignment)) % alignment));
    }
    closeSync(fd);
    fd = null;
  } catch (e) {
    if (fd !== null) closeSync(fd);
    unlinkSync(tmp);
    throw e;
  }
  renameSync(tmp, path);
}

/** GGUF types of the tokenizer keys llama.cpp reads (it checks key types strictly). */
const KNOWN_TYPES: Record<string, GgufKvType> = {
  "tokenizer.ggml.tokens": { array: "string" },
  "tokenizer.ggml.merges": { array: "string" },
  "tokenizer.ggml.scores": { array: "f32" },
  "tokenizer.ggml.token_type": { array: "i32" },
  "tokenizer.ggml.precompiled_charsmap": { array: "u8" },
};

/** Picks the GGUF type for a value read back by ./gguf.ts (which drops the types): known keys use
 *  llama.cpp's types, `*_token_id` is u32, other integers u32 (i32 if negative), fractions f32. */
export function inferKvType(key: string, value: MetadataValue): GgufKvType {
  const known = KNOWN_TYPES[key];
  if (known) return known;
  const scalar = (v: MetadataValue): GgufScalarType => {
    if (typeof v === "string") return "string";
    if (typeof v === "boolean") return "bool";
    if (typeof v === "bigint") return v < 0n ? "i64" : "u64";
    if (typeof v === "number") return Number.isInteger(v) ? (v < 0 ? "i32" : "u32") : "f32";
    throw new ValidationError(key, v, "nested arrays are not supported");
  };
  if (!Array.isArray(value)) return scalar(value);
  if (value.length === 0) return { array: "u32" };
  const types = new Set(value.map(scalar));
  if (types.has("f32")) return { array: "f32" };
  if (types.has("i32")) return { array: "i32" };
  return { array: scalar(value[0]!) };
}

/** [key, type, value] for a value read by ./gguf.ts, typed by inferKvType. */
export function toKv(key: string, value: MetadataValue): GgufKv {
  return [key, inferKvType(key, value), value as GgufScalar | GgufScalar[]];
}

// GGUF v2/v3 reader: header, metadata key/values, tensor infos, aligned data section.
// Spec: ggml/docs/gguf.md. Only the header is parsed eagerly; tensor bytes are views (mmap) or
// lazy reads. Every malformed input becomes a CheckpointError naming the file and the field.
import { CheckpointError } from "../errors.js";
import { GgmlType, TYPE_TRAITS, rowBytes } from "../backends/dtypes.js";
import { openMappedFile, type MappedFile } from "./mapped-file.js";
import type { Checkpoint, MetadataValue, TensorInfo } from "./types.js";

export const GGUF_MAGIC = 0x46554747; // "GGUF" little-endian
export const GGUF_DEFAULT_ALIGNMENT = 32;

export enum GgufValueType {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
}

/** Reads the header through a window that grows on demand (vocabularies can be megabytes). */
class HeaderCursor {
  pos = 0;
  private win: Uint8Array = new Uint8Array(0);
  private view = new DataView(this.win.buffer);
  private readonly dec = new TextDecoder("utf-8", { fatal: false });
  constructor(private readonly f: MappedFile, private field = "header") {}

  at(field: string): this { this.field = field; return this; }

  private need(n: number): void {
    if (this.pos + n <= this.win.length) return;
    if (this.pos + n > this.f.size) {
      throw new CheckpointError(this.f.path, this.field, `header runs past the end of the file (needs byte ${this.pos + n}, file has ${this.f.size})`);
    }
    const want = Math.min(this.f.size, Math.max(this.pos + n, this.win.length * 2, 1 << 20));
    this.win = this.f.bytes(0, want);
    this.view = new DataView(this.win.buffer, this.win.byteOffset, this.win.byteLength);
  }
  u8(): number { this.need(1); return this.view.getUint8(this.pos++); }
  i8(): number { this.need(1); return this.view.getInt8(this.pos++); }
  u16(): number { this.need(2); const v = this.view.getUint16(this.pos, true); this.pos += 2; return v; }
  i16(): number { this.need(2); const v = this.view.getInt16(this.pos, true); this.pos += 2; return v; }
  u32(): number { this.need(4); const v = this.view.getUint32(this.pos, true); this.pos += 4; return v; }
  i32(): number { this.need(4); const v = this.view.getInt32(this.pos, true); this.pos += 4; return v; }
  f32(): number { this.need(4); const v = this.view.getFloat32(this.pos, true); this.pos += 4; return v; }
  f64(): number { this.need(8); const v = this.view.getFloat64(this.pos, true); this.pos += 8; return v; }
  u64big(): bigint { this.need(8); const v = this.view.getBigUint64(this.pos, true); this.pos += 8; return v; }
  i64big(): bigint { this.need(8); const v = this.view.getBigInt64(this.pos, true); this.pos += 8; return v; }
  /** u64 that must fit a JS number and be at most `max` */
  count(max: number, what: string): number {
    const v = this.u64big();
    if (v > BigInt(max)) throw new CheckpointError(this.f.path, this.field, `${what} ${v} is larger than the file allows (${max})`);
    return Number(v);
  }
  str(): string {
    const n = this.count(this.f.size - this.pos, "string length");
    this.need(n);
    const s = this.dec.decode(this.win.subarray(this.pos, this.pos + n));
    this.pos += n;
    return s;
  }
}

function readValue(c: HeaderCursor, type: number, path: string, key: string): MetadataValue {
  switch (type) {
    case GgufValueType.UINT8: return c.u8();
    case GgufValueType.INT8: return c.i8();
    case GgufValueType.UINT16: return c.u16();
    case GgufValueType.INT16: return c.i16();
    case GgufValueType.UINT32: return c.u32();
    case GgufValueType.INT32: return c.i32();
    case GgufValueType.FLOAT32: return c.f32();
    case GgufValueType.FLOAT64: return c.f64();
    case GgufValueType.BOOL: return c.u8() !== 0;
    case GgufValueType.STRING: return c.str();
    case GgufValueType.UINT64: return narrow(c.u64big());
    case GgufValueType.INT64: return narrow(c.i64big());
    case GgufValueType.ARRAY: {
      const et = c.u32();
      const n = c.count(Number.MAX_SAFE_INTEGER, "array length");
      const out: MetadataValue[] = new Array(Math.min(n, 1 << 24));
      out.length = 0;
      for (let i = 0; i < n; i++) out.push(readValue(c, et, path, key));
      return out;
    }
    default:
      throw new CheckpointError(path, key, `unknown metadata value type ${type}`);
  }
}

/** 64-bit ints that fit a double become numbers (what every consumer wants); others stay bigint. */
function narrow(v: bigint): number | bigint {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v;
}

interface RawTensor { name: string; dims: number[]; type: number; offset: bigint }

function readTensorInfo(c: HeaderCursor, path: string, i: number): RawTensor {
  c.at(`tensor_infos[${i}]`);
  const name = c.str();
  c.at(`tensor ${name}`);
  const nd = c.u32();
  if (nd < 1 || nd > 4) throw new CheckpointError(path, `tensor ${name}`, `n_dims ${nd} is out of range 1..4`);
  const dims: number[] = [];
  for (let d = 0; d < nd; d++) dims.push(c.count(Number.MAX_SAFE_INTEGER, "dimension"));
  const type = c.u32();
  const offset = c.u64big();
  return { name, dims, type, offset };
}

export interface GgufHeader {
  version: number;
  metadata: Map<string, MetadataValue>;
  tensors: RawTensor[];
  dataOffset: number;
  alignment: number;
}

export function parseGgufHeader(f: MappedFile): GgufHeader {
  const c = new HeaderCursor(f, "magic");
  if (f.size < 24) throw new CheckpointError(f.path, "header", `file is ${f.size} bytes, too short for a GGUF header`);
  const magic = c.u32();
  if (magic !== GGUF_MAGIC) throw new CheckpointError(f.path, "magic", `bad magic 0x${magic.toString(16).padStart(8, "0")} (expected "GGUF")`);
  const version = c.at("version").u32();
  if (version !== 2 && version !== 3) throw new CheckpointError(f.path, "version", `GGUF version ${version} is not supported (2 and 3 are)`);
  // each tensor info takes >= 8+4+8+4+8 bytes and each kv >= 8+4+1: bound the counts by the file size
  const nTensors = c.at("tensor_count").count(Math.floor(f.size / 32), "tensor_count");
  const nKv = c.at("metadata_kv_count").count(Math.floor(f.size / 13), "metadata_kv_count");
  const metadata = new Map<string, MetadataValue>();
  for (let i = 0; i < nKv; i++) {
    const key = c.at(`metadata[${i}].key`).str();
    const vt = c.at(key).u32();
    metadata.set(key, readValue(c, vt, f.path, key));
  }
  const tensors: RawTensor[] = [];
  for (let i = 0; i < nTensors; i++) tensors.push(readTensorInfo(c, f.path, i));
  const al = metadata.get("general.alignment");
  const alignment = al === undefined ? GGUF_DEFAULT_ALIGNMENT : Number(al);
  if (!Number.isInteger(alignment) || alignment <= 0 || (alignment & (alignment - 1)) !== 0) {
    throw new CheckpointError(f.path, "general.alignment", `alignment ${String(al)} is not a power of two`);
  }
  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  return { version, metadata, tensors, dataOffset, alignment };
}

function toTensorInfo(f: MappedFile, h: GgufHeader, t: RawTensor): TensorInfo {
  const field = `tensor ${t.name}`;
  if (!TYPE_TRAITS.has(t.type)) throw new CheckpointError(f.path, field, `unknown tensor type ${t.type}`);
  const type = t.type as GgmlType;
  let nbytes: number;
  try {
    nbytes = rowBytes(type, t.dims[0]!) * t.dims.slice(1).reduce((a, b) => a * b, 1);
  } catch (e) {
    throw new CheckpointError(f.path, field, (e as Error).message);
  }
  if (t.offset % BigInt(h.alignment) !== 0n) throw new CheckpointError(f.path, field, `offset ${t.offset} is not aligned to ${h.alignment}`);
  const start = h.dataOffset + Number(t.offset);
  if (start + nbytes > f.size) {
    throw new CheckpointError(f.path, field, `truncated: data [${start}, ${start + nbytes}) runs past the end of the file (${f.size} bytes)`);
  }
  return {
    name: t.name, dtype: type, shape: [...t.dims].reverse(), file: f.path,
    data: () => f.bytes(start, nbytes),
  };
}

export function openGguf(path: string): Checkpoint {
  const f = openMappedFile(path);
  try {
    const h = parseGgufHeader(f);
    const tensors = new Map<string, TensorInfo>();
    for (const t of h.tensors) {
      if (tensors.has(t.name)) throw new CheckpointError(path, `tensor ${t.name}`, "duplicate tensor name");
      tensors.set(t.name, toTensorInfo(f, h, t));
    }
    return { format: "gguf", path, metadata: h.metadata, tensors, close: () => f.close() };
  } catch (e) {
    f.close();
    throw e;
  }
}

/** Reads only the metadata (e.g. a vocab-only file); tensors are ignored. */
export function readGgufMetadata(path: string): Map<string, MetadataValue> {
  const f = openMappedFile(path);
  try { return parseGgufHeader(f).metadata; } finally { f.close(); }
}

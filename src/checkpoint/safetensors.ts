// safetensors reader (single file, or an HF directory, sharded through model.safetensors.index.json)
// and writer. Format: u64 little-endian header length N, N bytes of JSON
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}, then the data
// section; offsets are relative to the data section start (8 + N). Tensor bytes are read lazily
// through MappedFile (mmap view or positional read).
import { closeSync, existsSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { GgmlType } from "../backends/dtypes.js";
import { CheckpointError, ValidationError } from "../errors.js";
import { openMappedFile, type MappedFile } from "./mapped-file.js";
import type { Checkpoint, TensorInfo } from "./types.js";

/** safetensors dtype -> GGML type and bytes per element (the floating types the engine reads). */
const DTYPES: Record<string, { type: GgmlType; size: number }> = {
  F32: { type: GgmlType.F32, size: 4 },
  F16: { type: GgmlType.F16, size: 2 },
  BF16: { type: GgmlType.BF16, size: 2 },
};
const WRITE_DTYPES: Record<string, number> = { F32: 4, F16: 2, BF16: 2, I32: 4, I64: 8, I8: 1, U8: 1 };
/** JSON header cap: larger headers are corrupt (real ones are a few hundred KiB). */
const MAX_HEADER = 100 * 1024 * 1024;

interface HeaderEntry { dtype: string; shape: number[]; data_offsets: [number, number] }

function readHeader(f: MappedFile): { json: Record<string, unknown>; dataStart: number } {
  if (f.size < 8) throw new CheckpointError(f.path, "header", `file is ${f.size} bytes, too short for a safetensors header`);
  const n = new DataView(f.bytes(0, 8).slice().buffer).getBigUint64(0, true);
  if (n > BigInt(f.size - 8) || n > BigInt(MAX_HEADER)) {
    throw new CheckpointError(f.path, "header length", `header length ${n} is larger than the file allows (${f.size - 8} bytes follow)`);
  }
  const len = Number(n);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(f.bytes(8, len)));
  } catch (e) {
    throw new CheckpointError(f.path, "header", `invalid JSON: ${(e as Error).message}`);
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new CheckpointError(f.path, "header", "header is not a JSON object");
  }
  return { json: json as Record<string, unknown>, dataStart: 8 + len };
}

function validEntry(f: MappedFile, name: string, e: unknown): HeaderEntry {
  const field = `tensor ${name}`;
  const o = e as Partial<HeaderEntry> | null;
  if (!o || typeof o !== "object" || typeof o.dtype !== "string" || !Array.isArray(o.shape) || !Array.isArray(o.data_offsets)
    || o.data_offsets.length !== 2 || !o.shape.every((d) => Number.isInteger(d) && d >= 0)
    || !o.data_offsets.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new CheckpointError(f.path, field, `malformed entry ${JSON.stringify(e)} (needs dtype, shape, data_offsets)`);
  }
  return o as HeaderEntry;
}

function toTensorInfo(f: MappedFile, dataStart: number, name: string, e: HeaderEntry): TensorInfo {
  const field = `tensor ${name}`;
  const dt = DTYPES[e.dtype];
  if (!dt) throw new CheckpointError(f.path, field, `dtype ${e.dtype} is not supported (supported: ${Object.keys(DTYPES).join(", ")})`);
  const [begin, end] = e.data_offsets;
  if (end < begin || dataStart + end > f.size) {
    throw new CheckpointError(f.path, field, `data_offsets [${begin}, ${end}] lie outside the data section (${f.size - dataStart} bytes)`);
  }
  const expected = e.shape.reduce((a, b) => a * b, 1) * dt.size;
  if (end - begin !== expected) {
    throw new CheckpointError(f.path, field, `holds ${end - begin} bytes but ${e.dtype} [${e.shape.join(", ")}] needs ${expected}`);
  }
  return { name, dtype: dt.type, shape: [...e.shape], file: f.path, data: () => f.bytes(dataStart + begin, end - begin) };
}

/** Parses one .safetensors file into `into` (names must be unique across shards). */
function loadFile(path: string, into: Map<string, TensorInfo>, files: MappedFile[]): Record<string, string> {
  const f = openMappedFile(path);
  files.push(f);
  const { json, dataStart } = readHeader(f);
  let meta: Record<string, string> = {};
  for (const [name, e] of Object.entries(json)) {
    if (name === "__metadata__") { meta = (e ?? {}) as Record<string, string>; continue; }
    if (into.has(name)) throw new CheckpointError(path, `tensor ${name}`, "duplicate tensor name (also in another shard)");
    into.set(name, toTensorInfo(f, dataStart, name, validEntry(f, name, e)));
  }
  return meta;
}

function makeCheckpoint(path: string, shardPaths: string[]): Checkpoint {
  const tensors = new Map<string, TensorInfo>();
  const files: MappedFile[] = [];
  const close = (): void => { for (const f of files) f.close(); };
  try {
    for (const p of shardPaths) loadFile(p, tensors, files);
  } catch (e) {
    close();
    throw e;
  }
  return { format: "safetensors", path, metadata: new Map(), tensors, close };
}

/** Opens one .safetensors file. */
export function openSafetensorsFile(path: string): Checkpoint {
  return makeCheckpoint(path, [path]);
}

/** Shard file names listed by an index's weight_map, in first-seen order. */
function shardsFromIndex(dir: string, indexPath: string): string[] {
  let idx: { weight_map?: Record<string, string> };
  try {
    idx = JSON.parse(readFileSync(indexPath, "utf8")) as typeof idx;
  } catch (e) {
    throw new CheckpointError(indexPath, "index", `cannot read: ${(e as Error).message}`);
  }
  if (!idx.weight_map || typeof idx.weight_map !== "object") throw new CheckpointError(indexPath, "weight_map", "missing or not an object");
  const shards = [...new Set(Object.values(idx.weight_map))];
  for (const s of shards) {
    if (typeof s !== "string" || s.includes("..") || s.startsWith("/")) throw new CheckpointError(indexPath, "weight_map", `bad shard name ${JSON.stringify(s)}`);
    if (!existsSync(join(dir, s))) throw new CheckpointError(join(dir, s), "weight_map", `shard listed in ${indexPath} does not exist`);
  }
  return shards.map((s) => join(dir, s));
}

/** Opens an HF directory: model.safetensors.index.json (sharded), model.safetensors, or a lone *.safetensors. */
export function openSafetensorsDir(dir: string): Checkpoint {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new CheckpointError(dir, "directory", "does not exist or is not a directory");
  const index = join(dir, "model.safetensors.index.json");
  if (existsSync(index)) {
    const ckpt = makeCheckpoint(dir, shardsFromIndex(dir, index));
    const wm = (JSON.parse(readFileSync(index, "utf8")) as { weight_map: Record<string, string> }).weight_map;
    for (const name of Object.keys(wm)) {
      if (!ckpt.tensors.has(name)) { ckpt.close(); throw new CheckpointError(index, `tensor ${name}`, `listed in weight_map but not in shard ${wm[name]}`); }
    }
    return ckpt;
  }
  if (existsSync(join(dir, "model.safetensors"))) return makeCheckpoint(dir, [join(dir, "model.safetensors")]);
  const lone = readdirSync(dir).filter((n) => n.endsWith(".safetensors")).sort();
  if (lone.length === 1) return makeCheckpoint(dir, [join(dir, lone[0]!)]);
  throw new CheckpointError(dir, "model.safetensors",
    lone.length === 0 ? "no *.safetensors file in the directory" : `several *.safetensors files (${lone.join(", ")}) but no model.safetensors.index.json`);
}

export interface SafetensorsTensorToWrite {
  readonly name: string;
  /** safetensors dtype name: F32, F16, BF16 (also I32, I64, I8, U8) */
  readonly dtype: string;
  readonly shape: readonly number[];
  /** raw little-endian bytes, or a function producing them when the writer reaches this tensor */
  readonly data: Uint8Array | (() => Uint8Array);
}

/** Writes a .safetensors file (header padded with spaces to 8 bytes, as the reference writer does);
 *  tensors are streamed one at a time, through a temporary file renamed into place. */
export function writeSafetensors(path: string, tensors: readonly SafetensorsTensorToWrite[], metadata?: Record<string, string>): void {
  const header: Record<string, unknown> = {};
  if (metadata) header["__metadata__"] = metadata;
  let off = 0;
  for (const t of tensors) {
    const size = WRITE_DTYPES[t.dtype];
    if (size === undefined) throw new ValidationError(`tensor ${t.name}.dtype`, t.dtype, `not one of ${Object.keys(WRITE_DTYPES).join(", ")}`);
    if (t.name in header) throw new ValidationError("tensor name", t.name, "duplicate tensor name");
    const n = t.shape.reduce((a, b) => a * b, 1) * size;
    header[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [off, off + n] };
    off += n;
  }
  const raw = new TextEncoder().encode(JSON.stringify(header));
  const hb = new Uint8Array(Math.ceil(raw.length / 8) * 8).fill(0x20); // pad with spaces to 8 bytes
  hb.set(raw);
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(hb.length), true);
  const tmp = `${path}.tmp-${process.pid}`;
  let fd: number | null = openSync(tmp, "w");
  try {
    const put = (b: Uint8Array): void => {
      let done = 0;
      while (done < b.length) done += writeSync(fd!, b, done, b.length - done);
    };
    put(prefix);
    put(hb);
    for (const t of tensors) {
      const b = typeof t.data === "function" ? t.data() : t.data;
      const [begin, end] = (header[t.name] as HeaderEntry).data_offsets;
      if (b.length !== end - begin) throw new ValidationError(`tensor ${t.name}.data`, b.length, `expected ${end - begin} bytes for ${t.dtype} [${t.shape.join(", ")}]`);
      put(b);
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

// GGUF reader (src/checkpoint/gguf.ts) against files from our writer (src/checkpoint/gguf-writer.ts):
// a round trip of every metadata type and a few tensor types, then one corruption per error path,
// each checked for the error class, the file and the field it names.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GgmlType, rowBytes } from "../../src/backends/dtypes.js";
import { CheckpointError } from "../../src/errors.js";
import { openGguf, readGgufMetadata } from "../../src/checkpoint/gguf.js";
import { inferKvType, writeGguf, type GgufKv, type GgufTensorToWrite } from "../../src/checkpoint/gguf-writer.js";

const dir = mkdtempSync(join(tmpdir(), "tllm-gguf-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Deterministic bytes (a simple LCG) so that each tensor's contents differ. */
function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) { x = (Math.imul(x, 1664525) + 1013904223) >>> 0; b[i] = x >>> 24; }
  return b;
}

const META: GgufKv[] = [
  ["general.architecture", "string", "llama"],
  ["t.u8", "u8", 250], ["t.i8", "i8", -7], ["t.u16", "u16", 65000], ["t.i16", "i16", -300],
  ["t.u32", "u32", 4000000000], ["t.i32", "i32", -2000000000], ["t.f32", "f32", 0.5], ["t.f64", "f64", Math.PI],
  ["t.bool", "bool", true], ["t.str", "string", "héllo ✓"], ["t.u64", "u64", 2n ** 40n], ["t.i64", "i64", -(2n ** 40n)],
  ["t.u64big", "u64", 2n ** 63n],
  ["t.arr_s", { array: "string" }, ["a", "", "ccc"]], ["t.arr_f", { array: "f32" }, [1.5, -2.25]],
  ["t.arr_i", { array: "i32" }, [1, -2, 3]], ["t.arr_empty", { array: "u32" }, []],
];

function tensors(): GgufTensorToWrite[] {
  return [
    { name: "a.f32", dtype: GgmlType.F32, shape: [3, 5], data: bytes(3 * 5 * 4, 1) },
    { name: "b.f16", dtype: GgmlType.F16, shape: [7], data: bytes(14, 2) },
    { name: "c.q8", dtype: GgmlType.Q8_0, shape: [2, 64], data: () => bytes(2 * rowBytes(GgmlType.Q8_0, 64), 3) },
    { name: "d.q4k", dtype: GgmlType.Q4_K, shape: [1, 2, 256], data: bytes(2 * rowBytes(GgmlType.Q4_K, 256), 4) },
  ];
}

function write(name: string, opts: { alignment?: number; version?: 2 | 3 } = {}): string {
  const p = join(dir, name);
  writeGguf(p, { metadata: META, tensors: tensors(), ...opts });
  return p;
}

/** Asserts a CheckpointError naming `file` and `field`, whose message matches `reason`. */
function assertCkptError(fn: () => unknown, file: string, field: string, reason: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CheckpointError, `expected CheckpointError, got ${String(e)}`);
    assert.equal(e.file, file);
    assert.equal(e.field, field);
    assert.ok(e.message.includes(file), `message names the file: ${e.message}`);
    assert.ok(e.message.includes(field), `message names the field: ${e.message}`);
    assert.match(e.message, reason);
    return true;
  });
}

function patch(path: string, offset: number, b: Uint8Array): void {
  const buf = readFileSync(path);
  buf.set(b, offset);
  writeFileSync(path, buf);
}

const u32le = (v: number) => { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, v, true); return b; };
const u64le = (v: bigint) => { const b = new Uint8Array(8); new DataView(b.buffer).setBigUint64(0, v, true); return b; };

/** Byte offset just past the first occurrence of `s` (UTF-8) in the file. */
function endOf(path: string, s: string): number {
  const i = readFileSync(path).indexOf(Buffer.from(s, "utf8"));
  assert.ok(i >= 0, `${s} not found in ${path}`);
  return i + Buffer.byteLength(s);
}

for (const opts of [{}, { alignment: 64, version: 2 as const }]) {
  test(`round trip: metadata and tensor bytes read back (${JSON.stringify(opts)})`, () => {
    const p = write(`rt-${opts.alignment ?? 32}.gguf`, opts);
    const c = openGguf(p);
    try {
      for (const [k, , v] of META) assert.deepEqual(c.metadata.get(k), typeof v === "bigint" && v < 2n ** 53n ? Number(v) : v, k);
      if (opts.alignment) assert.equal(c.metadata.get("general.alignment"), 64);
      const want = tensors();
      assert.deepEqual([...c.tensors.keys()], want.map((t) => t.name));
      for (const t of want) {
        const got = c.tensors.get(t.name)!;
        assert.equal(got.dtype, t.dtype);
        assert.deepEqual(got.shape, t.shape);
        assert.equal(got.file, p);
        const data = typeof t.data === "function" ? t.data() : t.data;
        assert.deepEqual(got.data(), data);
      }
    } finally {
      c.close();
    }
    assert.equal(readFileSync(p).readUInt32LE(4), opts.version ?? 3);
  });
}

test("readGgufMetadata reads the key/values of a real llama.cpp vocabulary and they re-type as llama.cpp needs", () => {
  const md = readGgufMetadata("test/fixtures/vocab/ggml-vocab-llama-spm.gguf");
  assert.equal((md.get("tokenizer.ggml.tokens") as string[]).length, 32000);
  assert.deepEqual(inferKvType("tokenizer.ggml.scores", md.get("tokenizer.ggml.scores")!), { array: "f32" });
  assert.deepEqual(inferKvType("tokenizer.ggml.token_type", md.get("tokenizer.ggml.token_type")!), { array: "i32" });
  assert.equal(inferKvType("tokenizer.ggml.bos_token_id", md.get("tokenizer.ggml.bos_token_id")!), "u32");
  assert.equal(inferKvType("tokenizer.ggml.add_bos_token", md.get("tokenizer.ggml.add_bos_token")!), "bool");
});

test("missing file: CheckpointError naming the file", () => {
  const p = join(dir, "nope.gguf");
  assertCkptError(() => openGguf(p), p, "file", /cannot open/);
});

test("bad magic", () => {
  const p = write("magic.gguf");
  patch(p, 0, Buffer.from("GGML"));
  assertCkptError(() => openGguf(p), p, "magic", /bad magic/);
});

test("bad version", () => {
  const p = write("version.gguf");
  patch(p, 4, u32le(7));
  assertCkptError(() => openGguf(p), p, "version", /version 7 is not supported/);
});

test("truncated file: tensor data past the end names the tensor", () => {
  const p = write("trunc.gguf");
  const c = openGguf(p);
  const size = readFileSync(p).length;
  c.close();
  truncateSync(p, size - 100); // the last tensor (d.q4k, 288 bytes) now runs past the end
  assertCkptError(() => openGguf(p), p, "tensor d.q4k", /truncated/);
});

test("file shorter than a header", () => {
  const p = join(dir, "tiny.gguf");
  writeFileSync(p, Buffer.from("GGUF\x03\x00\x00\x00"));
  assertCkptError(() => openGguf(p), p, "header", /too short/);
});

test("header larger than the file: a string length past the end names the key", () => {
  const p = write("strlen.gguf");
  const valueLenAt = endOf(p, "t.str") + 4; // key bytes, then u32 value type, then u64 string length
  patch(p, valueLenAt, u64le(10n ** 12n));
  assertCkptError(() => openGguf(p), p, "t.str", /string length .* larger than the file allows/);
});

test("header cut inside the tensor infos", () => {
  const p = write("cut.gguf");
  truncateSync(p, endOf(p, "c.q8") + 2); // inside c.q8's n_dims
  assertCkptError(() => openGguf(p), p, "tensor c.q8", /header runs past the end of the file/);
});

test("unknown tensor type names the tensor", () => {
  const p = write("type.gguf");
  const typeAt = endOf(p, "b.f16") + 4 + 8; // n_dims (1), one u64 dim, then the u32 type
  patch(p, typeAt, u32le(99));
  assertCkptError(() => openGguf(p), p, "tensor b.f16", /unknown tensor type 99/);
});

test("unknown metadata value type names the key", () => {
  const p = write("vtype.gguf");
  patch(p, endOf(p, "t.bool"), u32le(42));
  assertCkptError(() => openGguf(p), p, "t.bool", /unknown metadata value type 42/);
});

test("misaligned tensor offset names the tensor", () => {
  const p = write("align.gguf");
  const offAt = endOf(p, "b.f16") + 4 + 8 + 4; // n_dims, dim, type, then u64 offset
  patch(p, offAt, u64le(3n));
  assertCkptError(() => openGguf(p), p, "tensor b.f16", /not aligned to 32/);
});

test("tensor count larger than the file allows", () => {
  const p = write("count.gguf");
  patch(p, 8, u64le(1n << 40n));
  assertCkptError(() => openGguf(p), p, "tensor_count", /larger than the file allows/);
});

test("writer: wrong data length, duplicate names and unaligned rows are ValidationErrors naming the tensor", () => {
  const p = join(dir, "bad.gguf");
  assert.throws(() => writeGguf(p, { metadata: [], tensors: [{ name: "x", dtype: GgmlType.F32, shape: [4], data: new Uint8Array(15) }] }),
    { name: "ValidationError", message: /tensor x\.data=15: expected 16 bytes/ });
  const t = { name: "x", dtype: GgmlType.F32, shape: [1], data: new Uint8Array(4) };
  assert.throws(() => writeGguf(p, { metadata: [], tensors: [t, t] }), { name: "ValidationError", message: /duplicate tensor name/ });
  assert.throws(() => writeGguf(p, { metadata: [], tensors: [{ name: "q", dtype: GgmlType.Q8_0, shape: [2, 48], data: new Uint8Array(0) }] }),
    { name: "ValidationError", message: /tensor q\.shape.*not a multiple of 32/ });
  assert.throws(() => writeGguf(p, { metadata: [["k", "u32", -1.5]], tensors: [] }), { name: "ValidationError", message: /invalid k=/ });
});

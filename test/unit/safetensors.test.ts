// safetensors reader/writer (src/checkpoint/safetensors.ts): round trip, directory layouts
// (single file, lone *.safetensors, sharded index) and every validation error.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GgmlType } from "../../src/backends/dtypes.js";
import { CheckpointError } from "../../src/errors.js";
import { openSafetensorsDir, openSafetensorsFile, writeSafetensors, type SafetensorsTensorToWrite } from "../../src/checkpoint/safetensors.js";
import { generationDefaults, isHfDir, readGenerationConfig, readHfConfig } from "../../src/checkpoint/hf-dir.js";

const root = mkdtempSync(join(tmpdir(), "tllm-st-"));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => { const d = join(root, `d${n++}`); mkdirSync(d); return d; };

function f32(...v: number[]): Uint8Array { return new Uint8Array(new Float32Array(v).buffer); }
function u16(...v: number[]): Uint8Array { return new Uint8Array(new Uint16Array(v).buffer); }

const TENSORS: SafetensorsTensorToWrite[] = [
  { name: "model.embed_tokens.weight", dtype: "F32", shape: [2, 3], data: f32(1, 2, 3, 4, 5, -6) },
  { name: "model.norm.weight", dtype: "F16", shape: [3], data: u16(0x3c00, 0x4000, 0xbc00) },
  { name: "lm_head.weight", dtype: "BF16", shape: [1, 2], data: () => u16(0x3f80, 0xc000) },
  { name: "scalar", dtype: "F32", shape: [], data: f32(7) },
];
const DTYPE = { F32: GgmlType.F32, F16: GgmlType.F16, BF16: GgmlType.BF16 } as Record<string, GgmlType>;

function assertCkptError(fn: () => unknown, file: string, field: string, reason: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CheckpointError, `expected CheckpointError, got ${String(e)}`);
    assert.equal(e.file, file);
    assert.equal(e.field, field);
    assert.ok(e.message.includes(file) && e.message.includes(field), e.message);
    assert.match(e.message, reason);
    return true;
  });
}

/** A file with a hand-written header (for malformed inputs the writer refuses to produce). */
function rawFile(path: string, header: unknown, dataBytes: number): string {
  const h = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  writeFileSync(path, Buffer.concat([len, h, Buffer.alloc(dataBytes)]));
  return path;
}

test("round trip: dtypes, shapes and bytes; header is JSON padded to 8 bytes with __metadata__", () => {
  const p = join(fresh(), "model.safetensors");
  writeSafetensors(p, TENSORS, { format: "pt" });
  const buf = readFileSync(p);
  const hlen = Number(buf.readBigUInt64LE(0));
  assert.equal(hlen % 8, 0);
  const header = JSON.parse(buf.subarray(8, 8 + hlen).toString("utf8"));
  assert.deepEqual(header.__metadata__, { format: "pt" });
  assert.deepEqual(header["model.norm.weight"], { dtype: "F16", shape: [3], data_offsets: [24, 30] });
  const c = openSafetensorsFile(p);
  try {
    assert.equal(c.format, "safetensors");
    assert.deepEqual([...c.tensors.keys()].sort(), TENSORS.map((t) => t.name).sort());
    for (const t of TENSORS) {
      const got = c.tensors.get(t.name)!;
      assert.equal(got.dtype, DTYPE[t.dtype]);
      assert.deepEqual(got.shape, t.shape);
      assert.deepEqual(got.data(), typeof t.data === "function" ? t.data() : t.data);
    }
  } finally {
    c.close();
  }
});

test("directory: model.safetensors, or a lone *.safetensors", () => {
  const d1 = fresh();
  writeSafetensors(join(d1, "model.safetensors"), TENSORS.slice(0, 1));
  const c1 = openSafetensorsDir(d1);
  assert.deepEqual([...c1.tensors.keys()], ["model.embed_tokens.weight"]);
  assert.equal(c1.path, d1);
  c1.close();
  const d2 = fresh();
  writeSafetensors(join(d2, "weights.safetensors"), TENSORS.slice(1, 2));
  const c2 = openSafetensorsDir(d2);
  assert.deepEqual([...c2.tensors.keys()], ["model.norm.weight"]);
  assert.equal(c2.tensors.get("model.norm.weight")!.file, join(d2, "weights.safetensors"));
  c2.close();
});

function sharded(): string {
  const d = fresh();
  writeSafetensors(join(d, "model-00001-of-00002.safetensors"), TENSORS.slice(0, 2));
  writeSafetensors(join(d, "model-00002-of-00002.safetensors"), TENSORS.slice(2));
  const weight_map: Record<string, string> = {};
  TENSORS.forEach((t, i) => { weight_map[t.name] = `model-0000${i < 2 ? 1 : 2}-of-00002.safetensors`; });
  writeFileSync(join(d, "model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map }));
  return d;
}

test("sharded directory through model.safetensors.index.json", () => {
  const d = sharded();
  const c = openSafetensorsDir(d);
  try {
    assert.equal(c.tensors.size, TENSORS.length);
    assert.equal(c.tensors.get("lm_head.weight")!.file, join(d, "model-00002-of-00002.safetensors"));
    assert.deepEqual(c.tensors.get("model.embed_tokens.weight")!.data(), TENSORS[0]!.data);
    assert.deepEqual(c.tensors.get("scalar")!.data(), TENSORS[3]!.data);
  } finally {
    c.close();
  }
});

test("sharded: a missing shard names the shard", () => {
  const d = sharded();
  rmSync(join(d, "model-00002-of-00002.safetensors"));
  assertCkptError(() => openSafetensorsDir(d), join(d, "model-00002-of-00002.safetensors"), "weight_map", /does not exist/);
});

test("sharded: a tensor in weight_map but in no shard", () => {
  const d = sharded();
  const idx = join(d, "model.safetensors.index.json");
  const j = JSON.parse(readFileSync(idx, "utf8"));
  j.weight_map["ghost.weight"] = "model-00001-of-00002.safetensors";
  writeFileSync(idx, JSON.stringify(j));
  assertCkptError(() => openSafetensorsDir(d), idx, "tensor ghost.weight", /not in shard/);
});

test("directory errors: none, several without index, not a directory", () => {
  const d = fresh();
  assertCkptError(() => openSafetensorsDir(d), d, "model.safetensors", /no \*\.safetensors/);
  writeSafetensors(join(d, "a.safetensors"), TENSORS.slice(0, 1));
  writeSafetensors(join(d, "b.safetensors"), TENSORS.slice(1, 2));
  assertCkptError(() => openSafetensorsDir(d), d, "model.safetensors", /several/);
  assertCkptError(() => openSafetensorsDir(join(d, "zz")), join(d, "zz"), "directory", /does not exist/);
});

test("header length larger than the file", () => {
  const p = join(fresh(), "big.safetensors");
  writeSafetensors(p, TENSORS);
  const buf = readFileSync(p);
  buf.writeBigUInt64LE(BigInt(buf.length), 0);
  writeFileSync(p, buf);
  assertCkptError(() => openSafetensorsFile(p), p, "header length", /larger than the file allows/);
});

test("file shorter than 8 bytes, invalid JSON, non-object header", () => {
  const d = fresh();
  const tiny = join(d, "tiny.safetensors");
  writeFileSync(tiny, Buffer.from([1, 2, 3]));
  assertCkptError(() => openSafetensorsFile(tiny), tiny, "header", /too short/);
  const bad = join(d, "bad.safetensors");
  const h = Buffer.from("{not json");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  writeFileSync(bad, Buffer.concat([len, h]));
  assertCkptError(() => openSafetensorsFile(bad), bad, "header", /invalid JSON/);
  assertCkptError(() => openSafetensorsFile(rawFile(join(d, "arr.safetensors"), [1, 2], 0)), join(d, "arr.safetensors"), "header", /not a JSON object/);
});

test("unsupported dtype names the tensor and the dtype", () => {
  const p = join(fresh(), "i32.safetensors");
  writeSafetensors(p, [{ name: "ids", dtype: "I32", shape: [2], data: new Uint8Array(8) }]);
  assertCkptError(() => openSafetensorsFile(p), p, "tensor ids", /dtype I32 is not supported/);
});

test("offsets outside the data section, length that disagrees with the shape, malformed entry", () => {
  const d = fresh();
  const out = rawFile(join(d, "out.safetensors"), { w: { dtype: "F32", shape: [4], data_offsets: [0, 16] } }, 12);
  assertCkptError(() => openSafetensorsFile(out), out, "tensor w", /outside the data section/);
  const rev = rawFile(join(d, "rev.safetensors"), { w: { dtype: "F32", shape: [1], data_offsets: [8, 4] } }, 16);
  assertCkptError(() => openSafetensorsFile(rev), rev, "tensor w", /outside the data section/);
  const len = rawFile(join(d, "len.safetensors"), { w: { dtype: "F16", shape: [3], data_offsets: [0, 8] } }, 8);
  assertCkptError(() => openSafetensorsFile(len), len, "tensor w", /holds 8 bytes but F16 \[3\] needs 6/);
  const mal = rawFile(join(d, "mal.safetensors"), { w: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }, 4);
  assertCkptError(() => openSafetensorsFile(mal), mal, "tensor w", /malformed entry/);
});

test("writer: wrong data length, unknown dtype and duplicate names are ValidationErrors naming the tensor", () => {
  const p = join(fresh(), "w.safetensors");
  assert.throws(() => writeSafetensors(p, [{ name: "x", dtype: "F32", shape: [2], data: new Uint8Array(4) }]),
    { name: "ValidationError", message: /tensor x\.data=4: expected 8 bytes/ });
  assert.throws(() => writeSafetensors(p, [{ name: "x", dtype: "F8", shape: [2], data: new Uint8Array(2) }]),
    { name: "ValidationError", message: /tensor x\.dtype="F8"/ });
  const t = TENSORS[0]!;
  assert.throws(() => writeSafetensors(p, [t, t]), { name: "ValidationError", message: /duplicate tensor name/ });
});

test("hf-dir: config.json required, generation_config.json optional, defaults from both", () => {
  const d = fresh();
  assert.equal(isHfDir(d), false);
  assertCkptError(() => readHfConfig(d), d, "config.json", /missing/);
  writeFileSync(join(d, "config.json"), "{oops");
  assertCkptError(() => readHfConfig(d), join(d, "config.json"), "json", /invalid JSON/);
  writeFileSync(join(d, "config.json"), JSON.stringify({ bos_token_id: 1, eos_token_id: 2 }));
  assert.equal(isHfDir(d), true);
  assert.equal(readGenerationConfig(d), undefined);
  assert.deepEqual(generationDefaults(d), { eosTokenIds: [2], bosTokenId: 1 });
  // generation_config.json wins; sampling fields count only with do_sample (as in transformers)
  writeFileSync(join(d, "generation_config.json"), JSON.stringify({ eos_token_id: [2, 32000], temperature: 0.6, top_p: 0.9, max_new_tokens: 64 }));
  assert.deepEqual(generationDefaults(d), { eosTokenIds: [2, 32000], bosTokenId: 1, maxNewTokens: 64 });
  writeFileSync(join(d, "generation_config.json"), JSON.stringify({ do_sample: true, temperature: 0.6, top_p: 0.9, top_k: 20, repetition_penalty: 1.1 }));
  assert.deepEqual(generationDefaults(d), { eosTokenIds: [2], bosTokenId: 1, temperature: 0.6, topP: 0.9, topK: 20, repetitionPenalty: 1.1 });
  writeFileSync(join(d, "generation_config.json"), JSON.stringify({ eos_token_id: [2, -1] }));
  assertCkptError(() => generationDefaults(d), join(d, "generation_config.json"), "eos_token_id", /bad token id -1/);
  writeFileSync(join(d, "generation_config.json"), JSON.stringify({}));
  writeFileSync(join(d, "config.json"), JSON.stringify({ eos_token_id: "x" }));
  assertCkptError(() => generationDefaults(d), join(d, "config.json"), "eos_token_id", /bad token id "x"/);
  writeFileSync(join(d, "config.json"), JSON.stringify({ eos_token_id: 2 }));
  writeFileSync(join(d, "generation_config.json"), JSON.stringify({ do_sample: true, temperature: "hot" }));
  assertCkptError(() => generationDefaults(d), join(d, "generation_config.json"), "temperature", /expected a number/);
});

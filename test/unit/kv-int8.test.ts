// int8 KV cache rows: the quantization rule (ggml's q8_0 rule over one head's row: d = max|x| / 127,
// q = roundf(x / d), halves away from zero, NaN -> 0), the block layout (quants, then one f32 scale
// per row, inside each block), the pool's size and copy-on-write of a block with its scales, and the
// config checks. Expected values are worked out by hand from the rule, with power-of-two scales so
// that every product is exact.
import { test } from "node:test";
import assert from "node:assert/strict";
import { allocKvData, kvBlockElements, type KvLayer } from "../../src/backends/backend.js";
import { i8RowOffsets, i8Scale, writeI8Row } from "../../src/backends/reference/kv-int8.js";
import { KvPool } from "../../src/engine/kv-pool.js";
import { kvBytesPerToken } from "../../src/kvcache/sizing.js";
import { parseLlmArgs } from "../../src/api/llm-args.js";
import { llmArgsFromFlags } from "../../src/cli/serve.js";
import { ValidationError } from "../../src/errors.js";
import { rng } from "./test-rng.js";

function layer(numBlocks: number, nkv: number, tpb: number, hd: number): KvLayer {
  return { dtype: "int8", numBlocks, tokensPerBlock: tpb, numKvHeads: nkv, headDim: hd, data: allocKvData("int8", numBlocks, nkv, tpb, hd) };
}

function readRow(kv: KvLayer, block: number, which: 0 | 1, head: number, off: number): { q: number[]; scale: number } {
  const at = i8RowOffsets(kv, block, which, head, off);
  return { q: Array.from(kv.data.subarray(at.row, at.row + kv.headDim)), scale: i8Scale(kv, at.scale) };
}

test("int8 rows: offsets of quants and scales inside a block", () => {
  // H=2, tpb=4, hd=8: a block is 2*2*4 = 16 rows of 8 bytes (128), then 16 f32 scales (64) = 192 bytes
  const kv = layer(3, 2, 4, 8);
  assert.equal(kvBlockElements("int8", 2, 4, 8), 192);
  assert.equal(kv.data.length, 3 * 192);
  // block 1, V (which 1), head 1, offset 2: row r = (1*2 + 1)*4 + 2 = 14
  assert.deepEqual(i8RowOffsets(kv, 1, 1, 1, 2), { row: 192 + 14 * 8, scale: 192 + 128 + 14 * 4 });
  assert.deepEqual(i8RowOffsets(kv, 0, 0, 0, 0), { row: 0, scale: 128 });
});

test("int8 rows: quantization rule, exact values", () => {
  const kv = layer(2, 1, 4, 8);
  // max |x| = 127: d = 1, q = roundf(x), halves away from zero
  writeI8Row(kv, Float32Array.from([127, -63.5, 0.5, -0.5, 1.49, -1.5, 0, 3]), 0, 1, 0, 0, 2);
  assert.deepEqual(readRow(kv, 1, 0, 0, 2), { q: [127, -64, 1, -1, 1, -2, 0, 3], scale: 1 });
  // max |x| = 254: d = 2; NaN stores 0 and does not count toward the max
  writeI8Row(kv, Float32Array.from([NaN, 254, -3, 5, -254, 1, -1, 0.5]), 0, 1, 1, 0, 3);
  assert.deepEqual(readRow(kv, 1, 1, 0, 3), { q: [0, 127, -2, 3, -127, 1, -1, 0], scale: 2 });
  // an all-zero row: d = 0, all quants 0 (reads back as exact zeros)
  writeI8Row(kv, new Float32Array(8), 0, 1, 0, 0, 0);
  assert.deepEqual(readRow(kv, 1, 0, 0, 0), { q: [0, 0, 0, 0, 0, 0, 0, 0], scale: 0 });
  // the source offset is honoured and nothing else in the block was written
  const x = Float32Array.from({ length: 16 }, (_, i) => (i < 8 ? 1000 : (i - 8) * 127 / 7));
  writeI8Row(kv, x, 8, 1, 0, 0, 1);
  assert.deepEqual(readRow(kv, 1, 0, 0, 1).q, [0, 18, 36, 54, 73, 91, 109, 127]);
  assert.deepEqual(readRow(kv, 0, 0, 0, 1), { q: [0, 0, 0, 0, 0, 0, 0, 0], scale: 0 });
});

test("int8 rows: read-back error is at most half a step (d / 2) per element", () => {
  const r = rng(99), hd = 64;
  const kv = layer(2, 1, 8, hd);
  for (let t = 0; t < 8; t++) {
    const mag = 10 ** (4 * r() - 2);
    const x = Float32Array.from({ length: hd }, () => (2 * r() - 1) * mag);
    writeI8Row(kv, x, 0, 1, 0, 0, t);
    const { q, scale } = readRow(kv, 1, 0, 0, t);
    const amax = Math.max(...Array.from(x, Math.abs));
    assert.ok(Math.abs(scale - amax / 127) <= amax * 1e-7, `scale ${scale} vs ${amax / 127}`);
    for (let d = 0; d < hd; d++) {
      const err = Math.abs(Math.fround(q[d]! * scale) - x[d]!);
      assert.ok(err <= scale / 2 * (1 + 1e-6), `row ${t} elem ${d}: |${q[d]! * scale} - ${x[d]}| > d/2`);
    }
  }
});

test("int8 KvPool: bytes match kvBytesPerToken, copyBlock carries the scales", () => {
  const shape = { numLayers: 3, numKvHeads: 2, headDim: 16, tokensPerBlock: 4, dtype: "int8" as const };
  const p = new KvPool(shape, 6);
  assert.equal(p.bytes, 6 * 4 * kvBytesPerToken(3, 2, 16, "int8"));
  // vs f16: (16 + 4) / (2 * 16) of its bytes
  assert.equal(p.bytes / new KvPool({ ...shape, dtype: "f16" }, 6).bytes, 20 / 32);
  const l0 = p.layers[0]!;
  writeI8Row(l0, Float32Array.from({ length: 16 }, (_, i) => i - 8), 0, 2, 1, 1, 3);
  p.copyBlock(2, 5);
  assert.deepEqual(readRow(l0, 5, 1, 1, 3), readRow(l0, 2, 1, 1, 3));
  assert.equal(readRow(l0, 5, 1, 1, 3).scale, Math.fround(8 / 127));
});

test("int8 KV config: accepted by LlmArgs, bad values and shapes rejected naming the field", () => {
  assert.equal(parseLlmArgs({ model: "m", kvCacheConfig: { dtype: "int8" } }).kvCacheConfig.dtype, "int8");
  assert.throws(() => parseLlmArgs({ model: "m", kvCacheConfig: { dtype: "int4" as never } }),
    (e: unknown) => e instanceof ValidationError && /kvCacheConfig\.dtype/.test(e.message) && /int4/.test(e.message));
  assert.throws(() => new KvPool({ numLayers: 1, numKvHeads: 1, headDim: 6, tokensPerBlock: 4, dtype: "int8" }, 3),
    (e: unknown) => e instanceof ValidationError && /kvCacheConfig\.dtype/.test(e.message) && /headDim % 4/.test(e.message));
  // serve / chat: --kv-cache-dtype, with the other kv flags
  const a = llmArgsFromFlags("m", { "kv-cache-dtype": "int8", "no-enable-block-reuse": true });
  assert.deepEqual([a.kvCacheConfig?.dtype, a.kvCacheConfig?.enableBlockReuse], ["int8", false]);
  assert.throws(() => llmArgsFromFlags("m", { "kv-cache-dtype": "q4" }),
    (e: unknown) => e instanceof ValidationError && /kvCacheConfig\.dtype/.test(e.message) && /q4/.test(e.message));
});

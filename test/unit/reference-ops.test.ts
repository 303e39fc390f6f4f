// Reference backend ops against tiny cases computed by hand.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ReferenceBackend, kvIndex } from "../../src/backends/reference/index.js";
import { activationQuant, quantizeActivations } from "../../src/backends/reference/act-quant.js";
import { GgmlType, rowBytes } from "../../src/backends/dtypes.js";
import { dequantize, quantizeRow } from "../../src/backends/reference/quant.js";
import type { KvLayer, WeightTensor } from "../../src/backends/backend.js";
import { f32ToF16 } from "../../src/backends/reference/f16.js";
import { ValidationError } from "../../src/errors.js";

const be = new ReferenceBackend();

function close(actual: ArrayLike<number>, expected: number[], tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tol, `${what}[${i}]: ${actual[i]} vs ${expected[i]} (tol ${tol})`);
  }
}

function f32Weight(name: string, rows: number, cols: number, vals: number[]): WeightTensor {
  return { name, dtype: GgmlType.F32, rows, cols, data: new Uint8Array(Float32Array.from(vals).buffer) };
}

function f16Weight(name: string, rows: number, cols: number, vals: number[]): WeightTensor {
  const u = Uint16Array.from(vals, (v) => f32ToF16(v));
  return { name, dtype: GgmlType.F16, rows, cols, data: new Uint8Array(u.buffer) };
}

function kvLayer(dtype: "f32" | "f16", numBlocks: number, tpb: number, nkv: number, hd: number): KvLayer {
  const n = numBlocks * 2 * nkv * tpb * hd;
  return { dtype, numBlocks, tokensPerBlock: tpb, numKvHeads: nkv, headDim: hd, data: dtype === "f32" ? new Float32Array(n) : new Uint16Array(n) };
}

test("rmsNorm: [1, 7] has rms 5; eps is added to the mean square", () => {
  const out = new Float32Array(6);
  // rows of 2: mean(1, 49) = 25 -> divide by 5, then times weight [1, 2]
  be.rmsNorm(out, Float32Array.from([1, 7, -1, 7]), Float32Array.from([1, 2]), 2, 2, 0);
  close(out.subarray(0, 4), [0.2, 2.8, -0.2, 2.8], 1e-6, "n=2");
  // mean(4, 16, 16, 36) = 18, + eps 7 = 25 -> divide by 5
  const o4 = new Float32Array(4);
  be.rmsNorm(o4, Float32Array.from([2, 4, 4, 6]), Float32Array.from([1, 1, 1, 1]), 1, 4, 7);
  close(o4, [0.4, 0.8, 0.8, 1.2], 1e-6, "eps");
});

test("rmsNorm may run in place", () => {
  const x = Float32Array.from([3, 4, 0, 0]); // mean square 6.25 -> rms 2.5
  be.rmsNorm(x, x, Float32Array.from([1, 1, 1, 1]), 1, 4, 0);
  close(x, [1.2, 1.6, 0, 0], 1e-6, "in place");
});

test("siluMul: silu(ln 3) = 0.75 ln 3, silu(0) = 0; rows are [gate | up]", () => {
  const out = new Float32Array(4);
  const gu = Float32Array.from([0, Math.log(3), 5, 2, /* row 1 */ -Math.log(3), 0, 4, 9]);
  be.siluMul(out, gu, 2, 2);
  close(out, [0, 0.75 * Math.log(3) * 2, (-Math.log(3) * 0.25) * 4, 0], 1e-6, "siluMul");
});

test("add and addBias", () => {
  const a = Float32Array.from([1, 2, 3]);
  be.add(a, a, Float32Array.from([10, 20, 30]), 3);
  assert.deepEqual([...a], [11, 22, 33]);
  const m = Float32Array.from([1, 2, 3, 4]);
  be.addBias(m, Float32Array.from([10, 100]), 2, 2);
  assert.deepEqual([...m], [11, 102, 13, 104]);
});

test("matmul: out = x · wᵀ for F32 and F16 weights", () => {
  const vals = [1, 2, 3, 4, 5, 6]; // w [2, 3]
  const x = Float32Array.from([1, 0, -1, 2, 1, 0]); // x [2, 3]
  for (const w of [f32Weight("w", 2, 3, vals), f16Weight("w", 2, 3, vals)]) {
    const out = new Float32Array(4);
    be.matmul(out, x, 2, w);
    assert.deepEqual([...out], [-2, -2, 4, 13], `dtype ${w.dtype}`);
  }
});

test("matmul rejects a too-short weight buffer", () => {
  const w: WeightTensor = { name: "bad", dtype: GgmlType.F32, rows: 2, cols: 3, data: new Uint8Array(20) };
  assert.throws(() => be.matmul(new Float32Array(2), new Float32Array(3), 1, w), ValidationError);
});

test("embedding copies rows by id and rejects out-of-range ids", () => {
  const table = f32Weight("emb", 3, 2, [0, 1, 10, 11, 20, 21]);
  const out = new Float32Array(6);
  be.embedding(out, table, Int32Array.from([2, 0, 2]));
  assert.deepEqual([...out], [20, 21, 0, 1, 20, 21]);
  assert.throws(() => be.embedding(out, table, Int32Array.from([3])), (e: unknown) => e instanceof ValidationError && /token id=3/.test(e.message));
});

test("rope: norm rotates (2i, 2i+1), neox rotates (i, i+d/2); mscale scales; dims past ropeDim untouched", () => {
  const invFreq = Float32Array.from([Math.PI / 2, Math.PI]); // position 1: angles 90° and 180°
  const x1 = Float32Array.from([1, 2, 3, 4]);
  be.rope(x1, 1, 1, Int32Array.from([1]), { style: "norm", headDim: 4, ropeDim: 4, invFreq, mscale: 1 });
  close(x1, [-2, 1, -3, -4], 1e-6, "norm");
  const x2 = Float32Array.from([1, 2, 3, 4]);
  be.rope(x2, 1, 1, Int32Array.from([1]), { style: "neox", headDim: 4, ropeDim: 4, invFreq, mscale: 2 });
  close(x2, [-6, -4, 2, -8], 1e-5, "neox, mscale 2");
  // two heads of headDim 6 with ropeDim 4 at position 0 (identity) and row 2 at position 1
  const x3 = Float32Array.from([1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6]);
  be.rope(x3, 1, 2, Int32Array.from([1]), { style: "norm", headDim: 6, ropeDim: 4, invFreq, mscale: 1 });
  close(x3, [-2, 1, -3, -4, 5, 6, -2, 1, -3, -4, 5, 6], 1e-6, "partial, 2 heads");
});

test("writeKv places K and V by slot in [block, 2, head, token, dim]", () => {
  const kv = kvLayer("f32", 3, 2, 2, 2);
  // one token, kv heads 0 and 1, to slot 5 = block 2, offset 1
  be.writeKv(kv, Float32Array.from([1, 2, 3, 4]), Float32Array.from([5, 6, 7, 8]), Int32Array.from([5]));
  // K of head 1: ((2*2 + 0)*2 + 1)*2 + 1 = 19 tokens in -> element 38
  assert.equal(kvIndex(kv, 5, 0, 1), 38);
  assert.deepEqual([...kv.data.subarray(38, 40)], [3, 4]);
  assert.deepEqual([...kv.data.subarray(kvIndex(kv, 5, 1, 0), kvIndex(kv, 5, 1, 0) + 2)], [5, 6]);
  const written = [...kv.data].filter((v) => v !== 0).length;
  assert.equal(written, 8);
  assert.throws(() => be.writeKv(kv, new Float32Array(4), new Float32Array(4), Int32Array.from([6])), ValidationError);
});

/** 3 tokens, 1 head, headDim 2, paged as blocks [3, 1] of 2 tokens: scores q·k = [0, ln 2, 0]. */
function threeTokenCache(dtype: "f32" | "f16"): { kv: KvLayer; bt: Int32Array } {
  const kv = kvLayer(dtype, 4, 2, 1, 2);
  const k = Float32Array.from([0, 0, Math.LN2, 0, 0, 0]);
  const v = Float32Array.from([4, 0, 0, 4, 8, 8]);
  be.writeKv(kv, k, v, Int32Array.from([6, 7, 2]));
  return { kv, bt: Int32Array.from([3, 1]) };
}

test("attention: causal softmax over 3 paged tokens, computed by hand", () => {
  const { kv, bt } = threeTokenCache("f32");
  const q = Float32Array.from([2, 0, 2, 0, 2, 0]); // scale 0.5 -> effective q = [1, 0]
  const out = new Float32Array(6);
  be.attention(out, q, kv, [{ qStart: 0, qLen: 3, kvLen: 3, blockTable: bt }],
    { numHeads: 1, numKvHeads: 1, headDim: 2, scale: 0.5, slidingWindow: null });
  // pos 0: only v0; pos 1: weights [1, 2]/3; pos 2: weights [1, 2, 1]/4
  close(out, [4, 0, 4 / 3, 8 / 3, 3, 4], 1e-6, "causal");
});

test("attention: decode query (qLen 1) sees the whole prefix; sliding window 2 drops position 0", () => {
  const { kv, bt } = threeTokenCache("f32");
  const out = new Float32Array(2);
  const p = { numHeads: 1, numKvHeads: 1, headDim: 2, scale: 1, slidingWindow: null };
  be.attention(out, Float32Array.from([1, 0]), kv, [{ qStart: 0, qLen: 1, kvLen: 3, blockTable: bt }], p);
  close(out, [3, 4], 1e-6, "decode");
  be.attention(out, Float32Array.from([1, 0]), kv, [{ qStart: 0, qLen: 1, kvLen: 3, blockTable: bt }], { ...p, slidingWindow: 2 });
  // weights [2, 1]/3 over v1 = [0, 4], v2 = [8, 8]
  close(out, [8 / 3, 16 / 3], 1e-6, "window 2");
});

test("attention: GQA maps query head h to kv head floor(h / (numHeads / numKvHeads))", () => {
  const kv = kvLayer("f32", 2, 4, 2, 2);
  // one token; kv head 0 has V = [1, 1], kv head 1 has V = [2, 2]
  be.writeKv(kv, Float32Array.from([1, 0, 0, 1]), Float32Array.from([1, 1, 2, 2]), Int32Array.from([4]));
  const out = new Float32Array(8);
  be.attention(out, Float32Array.from([1, 0, 0, 1, 1, 1, 0, 0]), kv, [{ qStart: 0, qLen: 1, kvLen: 1, blockTable: Int32Array.from([1]) }],
    { numHeads: 4, numKvHeads: 2, headDim: 2, scale: 1, slidingWindow: null });
  assert.deepEqual([...out], [1, 1, 1, 1, 2, 2, 2, 2]);
});

test("attention: two sequences packed in one call use their own block tables and lengths", () => {
  const { kv, bt } = threeTokenCache("f32");
  // second sequence: one token in block 2 with V = [7, 9]
  be.writeKv(kv, Float32Array.from([0, 0]), Float32Array.from([7, 9]), Int32Array.from([4]));
  const out = new Float32Array(4);
  be.attention(out, Float32Array.from([1, 0, 1, 0]), kv, [
    { qStart: 0, qLen: 1, kvLen: 3, blockTable: bt },
    { qStart: 1, qLen: 1, kvLen: 1, blockTable: Int32Array.from([2]) },
  ], { numHeads: 1, numKvHeads: 1, headDim: 2, scale: 1, slidingWindow: null });
  close(out, [3, 4, 7, 9], 1e-6, "packed");
});

test("attention with f16 KV: values round to the nearest half (1/3 -> 1365/4096)", () => {
  const kv = kvLayer("f16", 2, 2, 1, 2);
  be.writeKv(kv, Float32Array.from([0.1, 0]), Float32Array.from([1 / 3, -2.5]), Int32Array.from([2]));
  const out = new Float32Array(2);
  be.attention(out, Float32Array.from([1, 1]), kv, [{ qStart: 0, qLen: 1, kvLen: 1, blockTable: Int32Array.from([1]) }],
    { numHeads: 1, numKvHeads: 1, headDim: 2, scale: 1, slidingWindow: null });
  assert.deepEqual([...out], [1365 / 4096, -2.5]);
  // the stored K bits: 0.1 -> 0x2E66
  assert.equal(kv.data[kvIndex(kv, 2, 0, 0)], 0x2e66);
});

test("attention rejects a block table shorter than kvLen", () => {
  const { kv } = threeTokenCache("f32");
  assert.throws(() => be.attention(new Float32Array(2), new Float32Array(2), kv, [{ qStart: 0, qLen: 1, kvLen: 3, blockTable: Int32Array.from([3]) }],
    { numHeads: 1, numKvHeads: 1, headDim: 2, scale: 1, slidingWindow: null }), ValidationError);
});

test("matmul on quantized weights equals matmul on their dequantized F32 rows (chunked decode, 3 chunks)", () => {
  const k = 256, n = 150, m = 3; // 16384 / 256 = 64 rows per decode call -> chunks of 64, 64, 22
  let s = 3;
  const r = () => ((s = (s * 69069 + 1) >>> 0) / 2 ** 32) - 0.5;
  const wf = Float32Array.from({ length: n * k }, r), x = Float32Array.from({ length: m * k }, r);
  for (const t of [GgmlType.Q8_0, GgmlType.Q4_K, GgmlType.F16]) {
    const data = new Uint8Array(n * rowBytes(t, k));
    for (let j = 0; j < n; j++) data.set(quantizeRow(t, wf.subarray(j * k, (j + 1) * k), k), j * rowBytes(t, k));
    const deq = dequantize(t, data, n * k);
    const got = new Float32Array(m * n), want = new Float32Array(m * n);
    be.matmul(got, x, m, { name: "q", dtype: t, rows: n, cols: k, data });
    // ggml rounds the activations to the weight type's vec_dot type first (act-quant.ts)
    const xq = new Float32Array(m * k);
    quantizeActivations(activationQuant(t), x, m, k, xq);
    be.matmul(want, xq, m, f32Weight("d", n, k, [...deq]));
    if (t === GgmlType.F16) {
      // F16 and F32 weights share ggml's f32 tinyBLAS summation order: bit-identical
      assert.deepEqual([...got], [...want], `type ${t}`);
    } else {
      // quantized: f64 sum vs the F32 path's f32 order; both within a few f32 ulps of the sum
      for (let i = 0; i < m * n; i++) assert.ok(Math.abs(got[i]! - want[i]!) <= 1e-5, `type ${t} [${i}]: ${got[i]} vs ${want[i]}`);
    }
  }
});

test("matmul reads F32 weights at an unaligned byte offset", () => {
  const vals = Float32Array.from([1, 2, 3, 4, 5, 6]);
  const buf = new Uint8Array(25);
  buf.set(new Uint8Array(vals.buffer), 1);
  const w: WeightTensor = { name: "u", dtype: GgmlType.F32, rows: 2, cols: 3, data: buf.subarray(1) };
  const out = new Float32Array(2);
  be.matmul(out, Float32Array.from([1, 0, -1]), 1, w);
  assert.deepEqual([...out], [-2, -2]);
});

// Native writeKv + paged attention against the reference: f32, f16 and int8 pools, GQA, several
// sequences in one packed batch (prefill chunks and decode rows), scattered block tables,
// sliding windows; both kernel paths.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ReferenceBackend } from "../../src/backends/reference/index.js";
import { NativeBackend } from "../../src/backends/native/index.js";
import { allocKvData, type AttentionParams, type AttnSeq, type KvDtype, type KvLayer } from "../../src/backends/backend.js";
import { ValidationError } from "../../src/errors.js";
import { SEED, SKIP_REASON, paths, randArray, rng, withPath } from "./native-helpers.js";

const ref = new ReferenceBackend();

function makeKv(dtype: KvDtype, numBlocks: number, tpb: number, nkv: number, hd: number): KvLayer {
  return { dtype, numBlocks, tokensPerBlock: tpb, numKvHeads: nkv, headDim: hd, data: allocKvData(dtype, numBlocks, nkv, tpb, hd) };
}

/** A shuffled list of the block ids 1..numBlocks-1 (block 0 is the null block). */
function shuffledBlocks(r: () => number, numBlocks: number): number[] {
  const ids = Array.from({ length: numBlocks - 1 }, (_, i) => i + 1);
  for (let i = ids.length - 1; i > 0; i--) { const j = Math.floor(r() * (i + 1)); [ids[i], ids[j]] = [ids[j]!, ids[i]!]; }
  return ids;
}

interface Case { nh: number; nkv: number; hd: number; tpb: number; window: number | null; lens: Array<[number, number]> }

function runCase(nb: NativeBackend, r: () => number, dtype: KvDtype, c: Case, tag: string): void {
  const numBlocks = 1 + c.lens.reduce((s, [, kvLen]) => s + Math.ceil(kvLen / c.tpb), 0);
  const kvRef = makeKv(dtype, numBlocks, c.tpb, c.nkv, c.hd), kvNat = makeKv(dtype, numBlocks, c.tpb, c.nkv, c.hd);
  const free = shuffledBlocks(r, numBlocks);
  const seqs: AttnSeq[] = [];
  let qStart = 0;
  for (const [qLen, kvLen] of c.lens) {
    const blockTable = Int32Array.from(free.splice(0, Math.ceil(kvLen / c.tpb)));
    // fill all kvLen positions through writeKv (both backends), in two calls
    const slots = Int32Array.from({ length: kvLen }, (_, p) => blockTable[Math.floor(p / c.tpb)]! * c.tpb + (p % c.tpb));
    const k = randArray(r, kvLen * c.nkv * c.hd), v = randArray(r, kvLen * c.nkv * c.hd);
    const half = Math.floor(kvLen / 2), row = c.nkv * c.hd;
    for (const [a, b] of [[0, half], [half, kvLen]]) {
      const ks = k.subarray(a * row, b * row), vs = v.subarray(a * row, b * row), ss = slots.subarray(a, b);
      ref.writeKv(kvRef, ks, vs, ss);
      nb.writeKv(kvNat, ks, vs, ss);
    }
    seqs.push({ qStart, qLen, kvLen, blockTable });
    qStart += qLen;
  }
  // f32 pools: exact copies; f16: both round to nearest even; int8: the same quants and f32 scale bytes
  assert.deepEqual(kvNat.data, kvRef.data, `writeKv ${tag}`);
  const p: AttentionParams = { numHeads: c.nh, numKvHeads: c.nkv, headDim: c.hd, scale: 1 / Math.sqrt(c.hd), slidingWindow: c.window };
  const q = randArray(r, qStart * c.nh * c.hd, 2);
  const e = new Float32Array(q.length), g = new Float32Array(q.length).fill(NaN);
  ref.attention(e, q, kvRef, seqs, p);
  nb.attention(g, q, kvNat, seqs, p);
  // Both follow llama.cpp's order (see ops-attention.ts), so the outputs are the same f32 values.
  // One known exception: with an f16 pool, one query row and hd % 32 != 0, ggml's vec_dot_f16 adds
  // the hd % 32 tail in f64 and stores the dot as f32 before scaling; the reference scales the f64
  // sum directly (one rounding fewer), a 1-ulp score difference now and then. Those cases keep a
  // bound: outputs are convex combinations of V rows (|v| <= 1), and a 1-ulp score change moves
  // them by far less than 2e-5.
  // int8 pools take the f32 path on rows dequantized the same way (f32(q * scale)): always exact.
  const exact = c.hd % 32 === 0 || dtype !== "f16" || (qStart >= 2 && c.hd % 8 === 0);
  for (let i = 0; i < e.length; i++) {
    const ok = exact ? Object.is(g[i], e[i]) : Math.abs(g[i]! - e[i]!) <= 2e-5;
    assert.ok(ok, `attention ${tag} seed=${SEED} (${exact ? "bit-exact" : "2e-5"}): out[${i}] = ${g[i]} vs ${e[i]}`);
  }
}

const CASES: Case[] = [
  { nh: 1, nkv: 1, hd: 8, tpb: 4, window: null, lens: [[1, 1]] },                   // one token
  { nh: 4, nkv: 4, hd: 16, tpb: 8, window: null, lens: [[13, 13]] },                // prefill from empty
  { nh: 8, nkv: 2, hd: 64, tpb: 16, window: null, lens: [[1, 40], [5, 21], [1, 1]] }, // GQA, decode + chunk
  { nh: 6, nkv: 3, hd: 32, tpb: 5, window: 7, lens: [[9, 30], [1, 12]] },           // sliding window
  { nh: 32, nkv: 4, hd: 64, tpb: 16, window: null, lens: [[3, 300], [64, 64]] },    // large: parallel split
  // one long decode row: few (row, kv head) pairs, so positions are split across threads and merged
  { nh: 8, nkv: 2, hd: 64, tpb: 16, window: null, lens: [[1, 700]] },
  { nh: 4, nkv: 1, hd: 40, tpb: 8, window: 300, lens: [[2, 900]] },
  { nh: 2, nkv: 1, hd: 36, tpb: 3, window: null, lens: [[1, 17], [4, 9]] },       // hd % 8 != 0: scalar tails
];

test("writeKv and attention match the reference (f32, f16 and int8 pools)", { skip: SKIP_REASON }, () => {
  const nb = new NativeBackend();
  const r = rng(SEED);
  for (const path of paths()) withPath(path, () => {
    for (const dtype of ["f32", "f16", "int8"] as const) {
      CASES.forEach((c, i) => runCase(nb, r, dtype, c, `${path} ${dtype} case ${i}`));
    }
  });
});

test("attention and writeKv reject out-of-range slots and block ids", { skip: SKIP_REASON }, () => {
  const nb = new NativeBackend();
  const kv = makeKv("f32", 3, 4, 1, 8);
  const k = new Float32Array(8), v = new Float32Array(8);
  assert.throws(() => nb.writeKv(kv, k, v, Int32Array.from([12])), ValidationError);
  const p: AttentionParams = { numHeads: 1, numKvHeads: 1, headDim: 8, scale: 1, slidingWindow: null };
  const seq: AttnSeq = { qStart: 0, qLen: 1, kvLen: 5, blockTable: Int32Array.from([1, 3]) };
  assert.throws(() => nb.attention(new Float32Array(8), new Float32Array(8), kv, [seq], p), /blockTable/);
  const short: AttnSeq = { qStart: 0, qLen: 1, kvLen: 5, blockTable: Int32Array.from([1]) };
  assert.throws(() => nb.attention(new Float32Array(8), new Float32Array(8), kv, [short], p), /blockTable/);
});

// Reference paged attention. Pool layout per layer: [numBlocks, 2 (K,V), numKvHeads, tokensPerBlock, headDim];
// slot s = block * tokensPerBlock + offset.
// Numerics mirror llama.cpp's non-flash attention graph on ggml-cpu (llama-graph.cpp build_attn_mha:
// kq = mul_mat(k, q); soft_max_ext(kq, mask, scale); kqv = mul_mat(v, kq)), all in f32:
// - scores: ggml_vec_dot_f32 over headDim (q is a permuted view, so never tinyBLAS); f16 pools
//   round q to f16 first, into a contiguous buffer, so tinyBLAS for >= 2 rows, vec_dot_f16 for one;
// - softmax: ggml_compute_forward_soft_max_f32: s = f32(dot * scale) (masked: -inf), exp via
//   ggml_v_expf over groups of 8 positions, group sums hsum'd in f32 and added in f64,
//   p = f32(e * f32(1 / sum));
// - weighted sum: tinyBLAS (8-lane fma over positions) when the batch has >= 2 query rows,
//   ggml_vec_dot_f32 (32 lanes) for a single row; f16 pools round p to f16 first.
// Masked positions contribute exact zeros, so llama.cpp's padded KV length does not matter.
// int8 pools (kv-int8.ts) take the f32 path on rows dequantized to f32(q * scale).
import type { AttentionParams, AttnSeq, KvLayer } from "../backend.js";
import { ValidationError } from "../../errors.js";
import { f16ToF32, f32ToF16 } from "./f16.js";
import { dot32Tiny, dot32Vec } from "./ops-linear.js";
import { ggmlExpf } from "./ops-elementwise.js";
import { i8RowOffsets, i8Scale, writeI8Row } from "./kv-int8.js";

const fr = Math.fround;

/** Element index of (slot, kv 0=K/1=V, head, dim 0) in the pool (int8: byte offset of the row's quants). */
export function kvIndex(kv: KvLayer, slot: number, which: 0 | 1, head: number): number {
  const block = Math.floor(slot / kv.tokensPerBlock), off = slot % kv.tokensPerBlock;
  if (kv.dtype === "int8") return i8RowOffsets(kv, block, which, head, off).row;
  return (((block * 2 + which) * kv.numKvHeads + head) * kv.tokensPerBlock + off) * kv.headDim;
}

/** k, v [T, numKvHeads * headDim] -> pool at slots[T]; f16 pools round to nearest even. */
export function writeKv(kv: KvLayer, k: Float32Array, v: Float32Array, slots: Int32Array): void {
  const hd = kv.headDim, cap = kv.numBlocks * kv.tokensPerBlock;
  for (let t = 0; t < slots.length; t++) {
    const s = slots[t]!;
    if (s < 0 || s >= cap) throw new ValidationError("kv slot", s, `out of range [0, ${cap})`);
    for (let h = 0; h < kv.numKvHeads; h++) {
      const src = (t * kv.numKvHeads + h) * hd;
      if (kv.dtype === "int8") {
        const block = Math.floor(s / kv.tokensPerBlock), off = s % kv.tokensPerBlock;
        writeI8Row(kv, k, src, block, 0, h, off);
        writeI8Row(kv, v, src, block, 1, h, off);
        continue;
      }
      const ki = kvIndex(kv, s, 0, h), vi = kvIndex(kv, s, 1, h);
      for (let d = 0; d < hd; d++) {
        if (kv.dtype === "f32") {
          kv.data[ki + d] = k[src + d]!;
          kv.data[vi + d] = v[src + d]!;
        } else {
          kv.data[ki + d] = f32ToF16(k[src + d]!);
          kv.data[vi + d] = f32ToF16(v[src + d]!);
        }
      }
    }
  }
}

/** Row (slot, which, head) as f32 into out[o, o + headDim): int8 rows read their scale once. */
function readKvRow(kv: KvLayer, slot: number, which: 0 | 1, head: number, out: Float32Array, o: number): void {
  const hd = kv.headDim;
  if (kv.dtype === "int8") {
    const block = Math.floor(slot / kv.tokensPerBlock), at = i8RowOffsets(kv, block, which, head, slot % kv.tokensPerBlock);
    const scale = i8Scale(kv, at.scale);
    for (let d = 0; d < hd; d++) out[o + d] = fr(kv.data[at.row + d]! * scale);
    return;
  }
  const i = kvIndex(kv, slot, which, head);
  for (let d = 0; d < hd; d++) out[o + d] = kv.dtype === "f32" ? kv.data[i + d]! : f16ToF32(kv.data[i + d]!);
}

/** Causal (+ sliding window) GQA attention. q, out: [T, numHeads * headDim] packed over seqs.
 *  Query i of a sequence sits at position kvLen - qLen + i and sees positions
 *  [max(0, pos - window + 1), pos]. Query head h reads kv head floor(h / (numHeads / numKvHeads)). */
export function attention(out: Float32Array, q: Float32Array, kv: KvLayer, seqs: readonly AttnSeq[], p: AttentionParams): void {
  if (p.numHeads % p.numKvHeads !== 0) throw new ValidationError("numHeads", p.numHeads, `not a multiple of numKvHeads ${p.numKvHeads}`);
  if (kv.numKvHeads !== p.numKvHeads || kv.headDim !== p.headDim) {
    throw new ValidationError("kv layer", `${kv.numKvHeads}x${kv.headDim}`, `does not match ${p.numKvHeads}x${p.headDim}`);
  }
  const maxKv = Math.max(1, ...seqs.map((s) => s.kvLen));
  const padded = Math.ceil(maxKv / 32) * 32;
  const ws: Work = { probs: new Float32Array(padded), vcol: new Float32Array(padded), vrows: new Float32Array(padded * p.headDim), kvec: new Float32Array(p.headDim),
    qvec: new Float32Array(p.headDim), scale: ggmlScale(p.scale, p.headDim), rows: seqs.reduce((a, s) => a + s.qLen, 0) };
  for (const s of seqs) {
    if (s.qLen > s.kvLen) throw new ValidationError("seq.qLen", s.qLen, `exceeds kvLen ${s.kvLen}`);
    if (s.blockTable.length * kv.tokensPerBlock < s.kvLen) {
      throw new ValidationError("seq.blockTable", s.blockTable.length, `too short for kvLen ${s.kvLen}`);
    }
    for (let i = 0; i < s.qLen; i++) {
      const pos = s.kvLen - s.qLen + i;
      const lo = p.slidingWindow === null ? 0 : Math.max(0, pos - p.slidingWindow + 1);
      for (let h = 0; h < p.numHeads; h++) {
        const row = ((s.qStart + i) * p.numHeads + h) * p.headDim;
        attendOne(out, row, q, kv, s.blockTable, lo, pos, Math.floor(h / (p.numHeads / p.numKvHeads)), ws);
      }
    }
  }
}

/** vrows: V rows [padded, headDim] of the positions one query attends to, read once per query */
interface Work { probs: Float32Array; vcol: Float32Array; vrows: Float32Array; kvec: Float32Array; qvec: Float32Array; scale: number; rows: number }

/** llama.cpp's kq_scale = 1.0f / sqrtf(float(n_embd_head)) when p.scale is that value, else f32(p.scale). */
function ggmlScale(scale: number, headDim: number): number {
  const g = fr(1 / fr(Math.sqrt(headDim)));
  return Math.abs(scale - g) <= 1e-7 * g ? g : fr(scale);
}

function slotOf(blockTable: Int32Array, tpb: number, j: number): number {
  return blockTable[Math.floor(j / tpb)]! * tpb + (j % tpb);
}

/** One query head over positions [lo, hi] of one kv head; writes out[row .. row + headDim). */
function attendOne(out: Float32Array, row: number, q: Float32Array, kv: KvLayer, bt: Int32Array,
  lo: number, hi: number, kvh: number, ws: Work): void {
  const hd = kv.headDim, f16 = kv.dtype === "f16", pr = ws.probs;
  for (let d = 0; d < hd; d++) ws.qvec[d] = f16 ? f16ToF32(f32ToF16(q[row + d]!)) : q[row + d]!;
  let max = -Infinity;
  const n = Math.ceil((hi + 1) / 8) * 8; // positions [0, n) in groups of 8; outside [lo, hi] masked
  for (let j = 0; j < n; j++) {
    if (j < lo || j > hi) { pr[j] = -Infinity; continue; }
    const slot = slotOf(bt, kv.tokensPerBlock, j);
    readKvRow(kv, slot, 0, kvh, ws.kvec, 0);
    // f16 K: q is converted to f16 into a contiguous buffer, so ggml takes tinyBLAS for >= 2 rows
    const dot = f16 && ws.rows >= 2 && hd % 8 === 0 ? dot32Tiny(ws.qvec, 0, ws.kvec, 0, hd) : dot32Vec(ws.qvec, 0, ws.kvec, 0, hd, f16);
    pr[j] = fr(fr(dot) * ws.scale); // ggml stores K·q as f32, then scales it
    if (pr[j]! > max) max = pr[j]!;
  }
  let sum = 0;
  for (let j0 = 0; j0 < n; j0 += 8) {
    for (let j = j0; j < j0 + 8; j++) pr[j] = ggmlExpf(fr(pr[j]! - max));
    const t0 = fr(pr[j0]! + pr[j0 + 4]!), t1 = fr(pr[j0 + 1]! + pr[j0 + 5]!);
    const t2 = fr(pr[j0 + 2]! + pr[j0 + 6]!), t3 = fr(pr[j0 + 3]! + pr[j0 + 7]!);
    sum += fr(fr(t0 + t2) + fr(t1 + t3));
  }
  const inv = fr(1 / sum);
  for (let j = 0; j < n; j++) pr[j] = f16 ? f16ToF32(f32ToF16(fr(pr[j]! * inv))) : fr(pr[j]! * inv);
  const n32 = Math.ceil(n / 32) * 32;
  pr.fill(0, n, n32);
  ws.vcol.fill(0, 0, n32);
  for (let j = lo; j <= hi; j++) readKvRow(kv, slotOf(bt, kv.tokensPerBlock, j), 1, kvh, ws.vrows, j * hd);
  for (let d = 0; d < hd; d++) {
    for (let j = lo; j <= hi; j++) ws.vcol[j] = ws.vrows[j * hd + d]!;
    out[row + d] = ws.rows >= 2 ? dot32Tiny(ws.vcol, 0, pr, 0, n) : dot32Vec(ws.vcol, 0, pr, 0, n32, f16);
  }
}

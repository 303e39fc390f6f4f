// Reference paged attention. Pool layout per layer: [numBlocks, 2 (K,V), numKvHeads, tokensPerBlock, headDim];
// slot s = block * tokensPerBlock + offset. Scores, softmax and the weighted sum run in f64.
import type { AttentionParams, AttnSeq, KvLayer } from "../backend.js";
import { ValidationError } from "../../errors.js";
import { f16ToF32, f32ToF16 } from "./f16.js";

/** Element index of (slot, kv 0=K/1=V, head, dim 0) in the pool. */
export function kvIndex(kv: KvLayer, slot: number, which: 0 | 1, head: number): number {
  const block = Math.floor(slot / kv.tokensPerBlock), off = slot % kv.tokensPerBlock;
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

function readKv(kv: KvLayer, idx: number): number {
  return kv.dtype === "f32" ? kv.data[idx]! : f16ToF32(kv.data[idx]!);
}

/** Causal (+ sliding window) GQA attention. q, out: [T, numHeads * headDim] packed over seqs.
 *  Query i of a sequence sits at position kvLen - qLen + i and sees positions
 *  [max(0, pos - window + 1), pos]. Query head h reads kv head floor(h / (numHeads / numKvHeads)). */
export function attention(out: Float32Array, q: Float32Array, kv: KvLayer, seqs: readonly AttnSeq[], p: AttentionParams): void {
  if (p.numHeads % p.numKvHeads !== 0) throw new ValidationError("numHeads", p.numHeads, `not a multiple of numKvHeads ${p.numKvHeads}`);
  if (kv.numKvHeads !== p.numKvHeads || kv.headDim !== p.headDim) {
    throw new ValidationError("kv layer", `${kv.numKvHeads}x${kv.headDim}`, `does not match ${p.numKvHeads}x${p.headDim}`);
  }
  const scores = new Float64Array(Math.max(1, ...seqs.map((s) => s.kvLen)));
  const acc = new Float64Array(p.headDim);
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
        attendOne(out, row, q, kv, s.blockTable, lo, pos, Math.floor(h / (p.numHeads / p.numKvHeads)), p.scale, scores, acc);
      }
    }
  }
}

function slotOf(blockTable: Int32Array, tpb: number, j: number): number {
  return blockTable[Math.floor(j / tpb)]! * tpb + (j % tpb);
}

/** One query head over positions [lo, hi] of one kv head; writes out[row .. row + headDim). */
function attendOne(out: Float32Array, row: number, q: Float32Array, kv: KvLayer, bt: Int32Array,
  lo: number, hi: number, kvh: number, scale: number, scores: Float64Array, acc: Float64Array): void {
  const hd = kv.headDim;
  let max = -Infinity;
  for (let j = lo; j <= hi; j++) {
    const ki = kvIndex(kv, slotOf(bt, kv.tokensPerBlock, j), 0, kvh);
    let dot = 0;
    for (let d = 0; d < hd; d++) dot += q[row + d]! * readKv(kv, ki + d);
    scores[j] = dot * scale;
    if (scores[j]! > max) max = scores[j]!;
  }
  let sum = 0;
  for (let j = lo; j <= hi; j++) { scores[j] = Math.exp(scores[j]! - max); sum += scores[j]!; }
  acc.fill(0);
  for (let j = lo; j <= hi; j++) {
    const vi = kvIndex(kv, slotOf(bt, kv.tokensPerBlock, j), 1, kvh);
    const w = scores[j]! / sum;
    for (let d = 0; d < hd; d++) acc[d] = acc[d]! + w * readKv(kv, vi + d);
  }
  for (let d = 0; d < hd; d++) out[row + d] = acc[d]!;
}

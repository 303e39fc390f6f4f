// int8 KV rows (reference). A pool block is [2, numKvHeads, tokensPerBlock, headDim] int8 quants
// followed by [2, numKvHeads, tokensPerBlock] f32 scales; one scale per (token, K/V, head) row.
// Quantization is ggml's q8_0 rule over the whole row, in f32: d = max|x| / 127,
// q = roundf(x * f32(1 / d)) (half away from zero; NaN stores 0), and a row reads back as
// f32(q * d). Mirrors native/kern/ops.inc (kv_quant_row), bit for bit.
import type { KvLayer } from "../backend.js";

const fr = Math.fround;

/** Byte offset of row (block, which 0=K/1=V, head, off) in an int8 layer, and of its f32 scale. */
export function i8RowOffsets(kv: KvLayer, block: number, which: 0 | 1, head: number, off: number): { row: number; scale: number } {
  const perBlockRows = 2 * kv.numKvHeads * kv.tokensPerBlock;
  const r = (which * kv.numKvHeads + head) * kv.tokensPerBlock + off;
  const base = block * perBlockRows * (kv.headDim + 4);
  return { row: base + r * kv.headDim, scale: base + perBlockRows * kv.headDim + 4 * r };
}

/** The f32 scale stored at byte offset `at` of an int8 layer's data (little-endian, as the addon on x86-64 reads it). */
export function i8Scale(kv: KvLayer, at: number): number {
  return new DataView(kv.data.buffer, kv.data.byteOffset).getFloat32(at, true);
}

/** roundf: to nearest, halves away from zero (Math.round rounds -2.5 to -2) */
function roundf(x: number): number {
  return x < 0 ? -Math.floor(-x + 0.5) : Math.floor(x + 0.5);
}

/** Quantizes x[src, src + headDim) into row (block, which, head, off). */
export function writeI8Row(kv: KvLayer, x: Float32Array, src: number, block: number, which: 0 | 1, head: number, off: number): void {
  const hd = kv.headDim, q = kv.data as Int8Array, at = i8RowOffsets(kv, block, which, head, off);
  let amax = 0;
  for (let d = 0; d < hd; d++) {
    const a = Math.abs(x[src + d]!);
    if (a > amax) amax = a; // NaN never wins, as fmaxf
  }
  const scale = fr(amax / 127), inv = scale !== 0 ? fr(1 / scale) : 0;
  for (let d = 0; d < hd; d++) {
    const r = roundf(fr(x[src + d]! * inv));
    q[at.row + d] = Number.isNaN(r) ? 0 : r;
  }
  new DataView(kv.data.buffer, kv.data.byteOffset).setFloat32(at.scale, scale, true);
}

// Fast Q4_K / Q6_K quantizers for random-weight fixtures. The reference quantizers
// (src/backends/reference/quant.ts, bit-exact with ggml's *_ref) search for the best scales and run
// at ~1 µs per weight; a 20M-parameter Q4_K model took over 10 s. These pick scales directly from
// each sub-block's range (no search): ~3x the reference error, which is irrelevant for random
// weights, and the bytes are valid blocks that any Q4_K/Q6_K dequantizer (ours, ggml's) reads.
// The HF twin is made from their dequantized values, so twins stay exact.
import { GgmlType, rowBytes } from "../backends/dtypes.js";
import { F16_TO_F32_TABLE, f32ToF16 } from "../backends/reference/f16.js";
import { packScalesK4 } from "../backends/reference/quant-k.js";

const QK_K = 256;

/** Stores x as f16 at b[p..p+2) and returns the stored value as f32. */
function putF16(b: Uint8Array, p: number, x: number): number {
  const h = f32ToF16(x);
  b[p] = h & 0xff;
  b[p + 1] = h >>> 8;
  return F16_TO_F32_TABLE[h]!;
}

const ls = new Uint8Array(8), lm = new Uint8Array(8), L = new Uint8Array(QK_K);
const sc = new Float32Array(16), mn = new Float32Array(8);

/** Q4_K block (144 B) of x[xo..xo+256) at dst[p..): per 32 a (scale, min) from min/max, 6-bit each. */
function blockQ4K(x: Float32Array, xo: number, dst: Uint8Array, p: number): void {
  let maxSc = 0, maxMn = 0;
  for (let j = 0; j < 8; j++) {
    let lo = 0, hi = -Infinity; // the min is clamped to <= 0, as in ggml (x = d*q - m with m >= 0)
    for (let l = 0; l < 32; l++) { const v = x[xo + 32 * j + l]!; if (v < lo) lo = v; if (v > hi) hi = v; }
    sc[j] = (hi - lo) / 15;
    mn[j] = -lo;
    maxSc = Math.max(maxSc, sc[j]!);
    maxMn = Math.max(maxMn, mn[j]!);
  }
  const d = putF16(dst, p, maxSc / 63), dmin = putF16(dst, p + 2, maxMn / 63);
  for (let j = 0; j < 8; j++) {
    ls[j] = d > 0 ? Math.min(63, Math.round(sc[j]! / d)) : 0;
    lm[j] = dmin > 0 ? Math.min(63, Math.round(mn[j]! / dmin)) : 0;
    const s = d * ls[j]!, m = dmin * lm[j]!;
    for (let l = 0; l < 32; l++) {
      const q = s > 0 ? Math.round((x[xo + 32 * j + l]! + m) / s) : 0;
      L[32 * j + l] = q < 0 ? 0 : q > 15 ? 15 : q;
    }
  }
  packScalesK4(dst, p + 4, ls, lm);
  for (let c = 0; c < 4; c++) {
    for (let l = 0; l < 32; l++) dst[p + 16 + 32 * c + l] = L[64 * c + l]! | (L[64 * c + 32 + l]! << 4);
  }
}

/** Q6_K block (210 B): per 16 a symmetric scale amax/31, int8 scales against d = max/127. */
function blockQ6K(x: Float32Array, xo: number, dst: Uint8Array, p: number): void {
  let maxSc = 0;
  for (let ib = 0; ib < 16; ib++) {
    let amax = 0;
    for (let l = 0; l < 16; l++) amax = Math.max(amax, Math.abs(x[xo + 16 * ib + l]!));
    sc[ib] = amax / 31;
    maxSc = Math.max(maxSc, sc[ib]!);
  }
  const d = putF16(dst, p + 208, maxSc / 127);
  for (let ib = 0; ib < 16; ib++) {
    const li = d > 0 ? Math.min(127, Math.round(sc[ib]! / d)) : 0;
    dst[p + 192 + ib] = li; // int8, non-negative here
    const s = d * li;
    for (let l = 0; l < 16; l++) {
      const q = s > 0 ? Math.round(x[xo + 16 * ib + l]! / s) : 0;
      L[16 * ib + l] = (q < -32 ? -32 : q > 31 ? 31 : q) + 32;
    }
  }
  // ggml's packing: per half h, low nibbles in ql[64h..], high 2-bit pairs in qh[128 + 32h..]
  for (let h = 0; h < 2; h++) {
    const j = 128 * h, ql = p + 64 * h, qh = p + 128 + 32 * h;
    for (let l = 0; l < 32; l++) {
      const a = L[j + l]!, b = L[j + l + 32]!, c = L[j + l + 64]!, e = L[j + l + 96]!;
      dst[ql + l] = (a & 15) | ((c & 15) << 4);
      dst[ql + l + 32] = (b & 15) | ((e & 15) << 4);
      dst[qh + l] = (a >>> 4) | ((b >>> 4) << 2) | ((c >>> 4) << 4) | ((e >>> 4) << 6);
    }
  }
}

/** Fast quantization of `rows` rows of `cols` (cols a multiple of 256) for Q4_K and Q6_K; undefined
 *  for other types (the caller uses the reference quantizer). */
export function fastQuantize(type: GgmlType, x: Float32Array, rows: number, cols: number): Uint8Array | undefined {
  const block = type === GgmlType.Q4_K ? blockQ4K : type === GgmlType.Q6_K ? blockQ6K : undefined;
  if (!block) return undefined;
  const tb = rowBytes(type, QK_K);
  const nb = (rows * cols) / QK_K; // rows are whole blocks, so blocks run straight through the matrix
  const out = new Uint8Array(rowBytes(type, cols) * rows);
  for (let i = 0; i < nb; i++) block(x, i * QK_K, out, i * tb);
  return out;
}

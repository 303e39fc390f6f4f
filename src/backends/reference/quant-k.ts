// The 256-element super-block ("K") formats Q4_K, Q5_K, Q6_K (ggml-common.h), little-endian:
//   Q4_K (144 B): d f16 @0, dmin f16 @2, scales[12] @4, qs[128] @16
//   Q5_K (176 B): d @0, dmin @2, scales[12] @4, qh[32] @16, qs[128] @48
//   Q6_K (210 B): ql[128] @0, qh[64] @128, scales[16] int8 @192, d f16 @208
// Q4_K/Q5_K: 8 sub-blocks of 32, each with a 6-bit scale sc and 6-bit min m packed in `scales`
// (get_scale_min_k4); x = (d*sc) * q - (dmin*m). Q6_K: 16 sub-blocks of 16 with int8 scales;
// x = (d*sc) * (q - 32).
// Dequantizers are bit-exact with ggml's dequantize_row_*: d*sc and (d*sc)*q are exact in f32
// (<= 11+7+5 significant bits), leaving one rounding (the subtraction) done on store.
// Quantizers follow quantize_row_q{4,5,6}_K_ref (make_qkx2_quants / make_qx_quants) with every
// float operation rounded to f32 in C's order, so they write the same bytes as ggml's reference
// quantizer (checked against it compiled without FMA in test/unit/quant-oracle.test.ts).

import { F16_TO_F32_TABLE as F16, f32ToF16 } from "./f16.js";
import { makeQkx2Quants, makeQxQuants, nearestInt } from "./quant-k-search.js";

const fr = Math.fround;
const QK_K = 256;

function rdF16(b: Uint8Array, p: number): number {
  return F16[b[p]! | (b[p + 1]! << 8)]!;
}

function wrF16(b: Uint8Array, p: number, x: number): number {
  const h = f32ToF16(x);
  b[p] = h & 0xff;
  b[p + 1] = h >>> 8;
  return F16[h]!;
}

/** 6-bit scale of sub-block j (0..7) from the 12 packed bytes at b[s..s+12) (get_scale_min_k4). */
export function scaleK4(b: Uint8Array, s: number, j: number): number {
  return j < 4 ? b[s + j]! & 63 : (b[s + j + 4]! & 15) | ((b[s + j - 4]! >>> 6) << 4);
}

/** 6-bit min of sub-block j (0..7) from the 12 packed bytes at b[s..s+12) (get_scale_min_k4). */
export function minK4(b: Uint8Array, s: number, j: number): number {
  return j < 4 ? b[s + j + 4]! & 63 : (b[s + j + 4]! >>> 4) | ((b[s + j]! >>> 6) << 4);
}

/** Inverse of scaleK4/minK4: packs 8 (scale, min) pairs of 6 bits each into b[s..s+12). */
export function packScalesK4(b: Uint8Array, s: number, ls: Uint8Array, lm: Uint8Array): void {
  for (let j = 0; j < 4; j++) {
    b[s + j] = (ls[j]! & 63) | ((ls[j + 4]! >>> 4) << 6);
    b[s + j + 4] = (lm[j]! & 63) | ((lm[j + 4]! >>> 4) << 6);
    b[s + j + 8] = (ls[j + 4]! & 15) | ((lm[j + 4]! & 15) << 4);
  }
}

/** Q4_K: element 64c + l (l < 32) is the low nibble of qs[32c + l], 64c + 32 + l its high nibble. */
export function dequantQ4_K(src: Uint8Array, nb: number, out: Float32Array, o: number): void {
  for (let i = 0, p = 0; i < nb; i++, p += 144) {
    const d = rdF16(src, p);
    const dmin = rdF16(src, p + 2);
    for (let c = 0; c < 4; c++, o += 64) {
      const d1 = d * scaleK4(src, p + 4, 2 * c);
      const m1 = dmin * minK4(src, p + 4, 2 * c);
      const d2 = d * scaleK4(src, p + 4, 2 * c + 1);
      const m2 = dmin * minK4(src, p + 4, 2 * c + 1);
      const q = p + 16 + 32 * c;
      for (let l = 0; l < 32; l++) {
        const b = src[q + l]!;
        out[o + l] = d1 * (b & 15) - m1;
        out[o + 32 + l] = d2 * (b >>> 4) - m2;
      }
    }
  }
}

/** Q5_K: as Q4_K, plus the 5th bit of element 64c + l in bit 2c of qh[l] (64c + 32 + l: bit 2c+1). */
export function dequantQ5_K(src: Uint8Array, nb: number, out: Float32Array, o: number): void {
  for (let i = 0, p = 0; i < nb; i++, p += 176) {
    const d = rdF16(src, p);
    const dmin = rdF16(src, p + 2);
    for (let c = 0; c < 4; c++, o += 64) {
      const d1 = d * scaleK4(src, p + 4, 2 * c);
      const m1 = dmin * minK4(src, p + 4, 2 * c);
      const d2 = d * scaleK4(src, p + 4, 2 * c + 1);
      const m2 = dmin * minK4(src, p + 4, 2 * c + 1);
      const q = p + 48 + 32 * c;
      for (let l = 0; l < 32; l++) {
        const b = src[q + l]!;
        const h = src[p + 16 + l]! >>> (2 * c);
        out[o + l] = d1 * ((b & 15) | ((h & 1) << 4)) - m1;
        out[o + 32 + l] = d2 * ((b >>> 4) | ((h & 2) << 3)) - m2;
      }
    }
  }
}

/**
 * Q6_K: per half h (128 elements; ql at 64h, qh at 128 + 32h, scales at 192 + 8h), for l < 32:
 * element 128h + 32k + l takes its low 4 bits from ql[l + 32*(k&1)] (low nibble for k < 2, high for
 * k >= 2) and its high 2 bits from bits 2k..2k+1 of qh[l]; its scale is scales[8h + 2k + l/16].
 */
export function dequantQ6_K(src: Uint8Array, nb: number, out: Float32Array, o: number): void {
  for (let i = 0, p = 0; i < nb; i++, p += 210) {
    const d = rdF16(src, p + 208);
    for (let h = 0; h < 2; h++, o += 128) {
      const ql = p + 64 * h;
      const qh = p + 128 + 32 * h;
      const sc = p + 192 + 8 * h;
      for (let l = 0; l < 32; l++) {
        const is = l >>> 4;
        const a = src[ql + l]!;
        const b = src[ql + l + 32]!;
        const hb = src[qh + l]!;
        out[o + l] = d * ((src[sc + is]! << 24) >> 24) * (((a & 15) | ((hb & 3) << 4)) - 32);
        out[o + l + 32] = d * ((src[sc + is + 2]! << 24) >> 24) * (((b & 15) | ((hb & 12) << 2)) - 32);
        out[o + l + 64] = d * ((src[sc + is + 4]! << 24) >> 24) * (((a >>> 4) | (hb & 48)) - 32);
        out[o + l + 96] = d * ((src[sc + is + 6]! << 24) >> 24) * (((b >>> 4) | ((hb & 192) >>> 2)) - 32);
      }
    }
  }
}

/** Scratch buffers shared by the K quantizers (single-threaded JS: no reentrancy). */
const L = new Uint8Array(QK_K);
const Laux = new Uint8Array(32);
const weights = new Float32Array(32);
const scales = new Float32Array(16);
const mins = new Float32Array(8);
const ls = new Uint8Array(8);
const lm = new Uint8Array(8);

/**
 * Shared by Q4_K and Q5_K (quantize_row_q{4,5}_K_ref): per sub-block a weighted (scale, min) fit
 * with levels 0..nmax, then 6-bit quantized scales/mins against the block maxima, written at s.
 * Fills L (levels, 0..nmax) for the block at x[xo..xo+256). Returns nothing; writes d, dmin, scales.
 */
function quantScalesK(x: Float32Array, xo: number, nmax: number, rmin: number, nstep: number,
  dst: Uint8Array, p: number): void {
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    const so = xo + 32 * j;
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) sumX2 = fr(sumX2 + fr(x[so + l]! * x[so + l]!));
    const avX = fr(Math.sqrt(fr(sumX2 / 32)));
    for (let l = 0; l < 32; l++) weights[l] = avX + Math.abs(x[so + l]!);
    const r = makeQkx2Quants(32, nmax, x, so, weights, L, 32 * j, Laux, rmin, 0.1, nstep);
    scales[j] = r.scale;
    mins[j] = r.min;
    if (scales[j]! > maxScale) maxScale = scales[j]!;
    if (mins[j]! > maxMin) maxMin = mins[j]!;
  }
  const invScale = maxScale > 0 ? fr(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? fr(63 / maxMin) : 0;
  for (let j = 0; j < 8; j++) {
    ls[j] = Math.min(63, nearestInt(fr(invScale * scales[j]!)));
    lm[j] = Math.min(63, nearestInt(fr(invMin * mins[j]!)));
  }
  packScalesK4(dst, p + 4, ls, lm);
  const d = wrF16(dst, p, fr(maxScale / 63));
  const dmin = wrF16(dst, p + 2, fr(maxMin / 63));
  // Re-derive the levels against the scales as stored (rounded to f16 and 6 bits).
  for (let j = 0; j < 8; j++) {
    const dj = fr(d * ls[j]!);
    if (!dj) continue;
    const dm = fr(dmin * lm[j]!);
    for (let l = 0; l < 32; l++) {
      const q = nearestInt(fr(fr(x[xo + 32 * j + l]! + dm) / dj));
      L[32 * j + l] = Math.max(0, Math.min(nmax, q));
    }
  }
}

export function quantQ4_K(x: Float32Array, nb: number, dst: Uint8Array): void {
  for (let i = 0, p = 0; i < nb; i++, p += 144) {
    quantScalesK(x, i * QK_K, 15, -1, 20, dst, p);
    for (let c = 0; c < 4; c++) {
      for (let l = 0; l < 32; l++) dst[p + 16 + 32 * c + l] = L[64 * c + l]! | (L[64 * c + 32 + l]! << 4);
    }
  }
}

export function quantQ5_K(x: Float32Array, nb: number, dst: Uint8Array): void {
  for (let i = 0, p = 0; i < nb; i++, p += 176) {
    quantScalesK(x, i * QK_K, 31, -0.5, 15, dst, p);
    dst.fill(0, p + 16, p + 48);
    for (let c = 0; c < 4; c++) {
      for (let l = 0; l < 32; l++) {
        const l1 = L[64 * c + l]!;
        const l2 = L[64 * c + 32 + l]!;
        dst[p + 16 + l] |= ((l1 >>> 4) << (2 * c)) | ((l2 >>> 4) << (2 * c + 1));
        dst[p + 48 + 32 * c + l] = (l1 & 15) | ((l2 & 15) << 4);
      }
    }
  }
}

const L6 = new Int8Array(QK_K);

/** quantize_row_q6_K_ref: per 16 a make_qx_quants fit, int8 scales against the block's abs-max scale. */
export function quantQ6_K(x: Float32Array, nb: number, dst: Uint8Array): void {
  for (let i = 0, p = 0; i < nb; i++, p += 210) {
    const xo = i * QK_K;
    let maxScale = 0;
    let maxAbsScale = 0;
    for (let ib = 0; ib < 16; ib++) {
      const s = makeQxQuants(16, 32, x, xo + 16 * ib, L6, 16 * ib);
      scales[ib] = s;
      if (Math.abs(s) > maxAbsScale) {
        maxAbsScale = Math.abs(s);
        maxScale = s;
      }
    }
    dst.fill(0, p, p + 210);
    if (maxAbsScale < 1e-15) continue; // all (near) zero: d = 0, every value 0
    const iscale = fr(-128 / maxScale);
    const d = wrF16(dst, p + 208, fr(1 / iscale));
    for (let ib = 0; ib < 16; ib++) {
      const sc = Math.min(127, nearestInt(fr(iscale * scales[ib]!)));
      dst[p + 192 + ib] = sc & 0xff;
      const dj = fr(d * sc);
      if (!dj) continue;
      for (let l = 0; l < 16; l++) {
        const q = nearestInt(fr(x[xo + 16 * ib + l]! / dj));
        L6[16 * ib + l] = Math.max(-32, Math.min(31, q)) + 32;
      }
    }
    packQ6(dst, p);
  }
}

/** Writes L6 (levels 0..63) of one block into ql/qh at block offset p (inverse of dequantQ6_K). */
function packQ6(dst: Uint8Array, p: number): void {
  for (let h = 0; h < 2; h++) {
    const ql = p + 64 * h;
    const qh = p + 128 + 32 * h;
    const o = 128 * h;
    for (let l = 0; l < 32; l++) {
      const q1 = L6[o + l]!;
      const q2 = L6[o + l + 32]!;
      const q3 = L6[o + l + 64]!;
      const q4 = L6[o + l + 96]!;
      dst[ql + l] = (q1 & 15) | ((q3 & 15) << 4);
      dst[ql + l + 32] = (q2 & 15) | ((q4 & 15) << 4);
      dst[qh + l] = (q1 >>> 4) | ((q2 >>> 4) << 2) | ((q3 >>> 4) << 4) | ((q4 >>> 4) << 6);
    }
  }
}

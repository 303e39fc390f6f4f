// The 32-element block formats Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 (ggml-common.h), little-endian, d and m f16.
// Dequantizers are bit-exact with ggml's dequantize_row_*: every product q*d below is exact in f32
// (q has <= 5 significant bits, d 11), and the one rounding step (+ m) is done in double then
// rounded to f32 on store, which equals f32 arithmetic (double has > 2*24+2 bits).
// Quantizers follow quantize_row_*_ref step by step, with Math.fround where C rounds to float,
// so they produce the same bytes as ggml for finite inputs.
// In every function: src/dst byte offsets start at 0, `nb` is the number of blocks, `o` the first
// output (or input) element.

import { F16_TO_F32_TABLE as F16, f32ToF16 } from "./f16.js";

const fr = Math.fround;

function rdF16(b: Uint8Array, p: number): number {
  return F16[b[p]! | (b[p + 1]! << 8)]!;
}

function wrF16(b: Uint8Array, p: number, x: number): void {
  const h = f32ToF16(x);
  b[p] = h & 0xff;
  b[p + 1] = h >>> 8;
}

function rdU32(b: Uint8Array, p: number): number {
  return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;
}

/** Q4_0 block (18 B): d, qs[16]. x[j] = (nib(j) - 8) * d; j < 16 low nibbles, j >= 16 high nibbles. */
export function dequantQ4_0(src: Uint8Array, nb: number, out: Float32Array, o: number): void {
  for (let i = 0, p = 0; i < nb; i++, p += 18, o += 32) {
    const d = rdF16(src, p);
    for (let j = 0; j < 16; j++) {
      const q = src[p + 2 + j]!;
      out[o + j] = ((q & 15) - 8) * d;
      out[o + j + 16] = ((q >>> 4) - 8) * d;
    }
  }
}

/** Q4_1 block (20 B): d, m, qs[16]. x[j] = nib(j) * d + m. */
export function dequantQ4_1(src: Uint8Array, nb: number, out: Float32Array, o: number): void {
  for (let i = 0, p = 0; i < nb; i++, p += 20, o += 32) {
    const d = rdF16(src, p);
    const m = rdF16(src, p + 2);
    for (let j = 0; j < 16; j++) {
      const q = src[p + 4 + j]!;
      out[o + j] = (q & 15) * d + m;
      out[o + j + 16] = (q >>> 4) * d + m;
    }
  }
}

/** Q5_0 block (22 B): d, qh (u32), qs[16]. 5th bit of element j is bit j of qh; x = (q - 16) * d. */
export function dequantQ5_0(src: Uint8Array, nb: number, out: Float32Array, o: number): void {
  for (let i = 0, p = 0; i < nb; i++, p += 22, o += 32) {
    const d = rdF16(src, p);
    const qh = rdU32(src, p + 2);
    for (let j = 0; j < 16; j++) {
      const q = src[p + 6 + j]!;
      out[o + j] = (((q & 15) | (((qh >>> j) & 1) << 4)) - 16) * d;
      out[o + j + 16] = (((q >>> 4) | (((qh >>> (j + 16)) & 1) << 4)) - 16) * d;
    }
  }
}

/** Q5_1 block (24 B): d, m, qh (u32), qs[16]. x = q * d + m. */
export function dequantQ5_1(src: Uint8Array, nb: number, out: Float32Array, o: number): void {
  for (let i = 0, p = 0; i < nb; i++, p += 24, o += 32) {
    const d = rdF16(src, p);
    const m = rdF16(src, p + 2);
    const qh = rdU32(src, p + 4);
    for (let j = 0; j < 16; j++) {
      const q = src[p + 8 + j]!;
      out[o + j] = ((q & 15) | (((qh >>> j) & 1) << 4)) * d + m;
      out[o + j + 16] = ((q >>> 4) | (((qh >>> (j + 16)) & 1) << 4)) * d + m;
    }
  }
}

/** Q8_0 block (34 B): d, qs[32] int8. x = q * d. */
export function dequantQ8_0(src: Uint8Array, nb: number, out: Float32Array, o: number): void {
  for (let i = 0, p = 0; i < nb; i++, p += 34, o += 32) {
    const d = rdF16(src, p);
    for (let j = 0; j < 32; j++) out[o + j] = ((src[p + 2 + j]! << 24) >> 24) * d;
  }
}

/** C's roundf: round half away from zero. */
function roundAway(x: number): number {
  return x >= 0 ? Math.floor(x + 0.5) : -Math.floor(0.5 - x);
}

/** Signed value with the largest magnitude in x[o..o+32) (first one on ties), 0 if all zero. */
function signedAbsMax(x: Float32Array, o: number): number {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < 32; j++) {
    const v = x[o + j]!;
    if (amax < Math.abs(v)) {
      amax = Math.abs(v);
      max = v;
    }
  }
  return max;
}

/** [min, max] of x[o..o+32). */
function minMax(x: Float32Array, o: number): [number, number] {
  let min = Infinity;
  let max = -Infinity;
  for (let j = 0; j < 32; j++) {
    const v = x[o + j]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return [min, max];
}

/** quantize_row_q8_0_ref: d = amax / 127, q = roundf(x / d). */
export function quantQ8_0(x: Float32Array, nb: number, dst: Uint8Array): void {
  for (let i = 0, p = 0, o = 0; i < nb; i++, p += 34, o += 32) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[o + j]!));
    const d = fr(amax / 127);
    const id = d ? fr(1 / d) : 0;
    wrF16(dst, p, d);
    for (let j = 0; j < 32; j++) dst[p + 2 + j] = roundAway(fr(x[o + j]! * id)) & 0xff;
  }
}

/** quantize_row_q4_0_ref: d = max / -8 (max = signed abs-max), q = min(15, trunc(x / d + 8.5)). */
export function quantQ4_0(x: Float32Array, nb: number, dst: Uint8Array): void {
  for (let i = 0, p = 0, o = 0; i < nb; i++, p += 18, o += 32) {
    const d = fr(signedAbsMax(x, o) / -8);
    const id = d ? fr(1 / d) : 0;
    wrF16(dst, p, d);
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(15, Math.trunc(fr(fr(x[o + j]! * id) + 8.5)));
      const q1 = Math.min(15, Math.trunc(fr(fr(x[o + j + 16]! * id) + 8.5)));
      dst[p + 2 + j] = q0 | (q1 << 4);
    }
  }
}

/** quantize_row_q4_1_ref: d = (max - min) / 15, m = min, q = min(15, trunc((x - min) / d + 0.5)). */
export function quantQ4_1(x: Float32Array, nb: number, dst: Uint8Array): void {
  for (let i = 0, p = 0, o = 0; i < nb; i++, p += 20, o += 32) {
    const [min, max] = minMax(x, o);
    const d = fr((max - min) / 15);
    const id = d ? fr(1 / d) : 0;
    wrF16(dst, p, d);
    wrF16(dst, p + 2, min);
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(15, Math.trunc(fr(fr(fr(x[o + j]! - min) * id) + 0.5)));
      const q1 = Math.min(15, Math.trunc(fr(fr(fr(x[o + j + 16]! - min) * id) + 0.5)));
      dst[p + 4 + j] = q0 | (q1 << 4);
    }
  }
}

/** Packs 32 5-bit values: low nibbles into qs (at `qsAt`), 5th bits into the u32 qh (at `qhAt`). */
function pack5(q: Uint8Array, dst: Uint8Array, qhAt: number, qsAt: number): void {
  let qh = 0;
  for (let j = 0; j < 16; j++) {
    dst[qsAt + j] = (q[j]! & 15) | ((q[j + 16]! & 15) << 4);
    qh |= ((q[j]! >>> 4) & 1) << j;
    qh |= ((q[j + 16]! >>> 4) & 1) << (j + 16);
  }
  dst[qhAt] = qh & 0xff;
  dst[qhAt + 1] = (qh >>> 8) & 0xff;
  dst[qhAt + 2] = (qh >>> 16) & 0xff;
  dst[qhAt + 3] = (qh >>> 24) & 0xff;
}

/** quantize_row_q5_0_ref: d = max / -16, q = min(31, trunc(x / d + 16.5)). */
export function quantQ5_0(x: Float32Array, nb: number, dst: Uint8Array): void {
  const q = new Uint8Array(32);
  for (let i = 0, p = 0, o = 0; i < nb; i++, p += 22, o += 32) {
    const d = fr(signedAbsMax(x, o) / -16);
    const id = d ? fr(1 / d) : 0;
    wrF16(dst, p, d);
    for (let j = 0; j < 32; j++) q[j] = Math.min(31, Math.trunc(fr(fr(x[o + j]! * id) + 16.5)));
    pack5(q, dst, p + 2, p + 6);
  }
}

/** quantize_row_q5_1_ref: d = (max - min) / 31, m = min, q = trunc((x - min) / d + 0.5). */
export function quantQ5_1(x: Float32Array, nb: number, dst: Uint8Array): void {
  const q = new Uint8Array(32);
  for (let i = 0, p = 0, o = 0; i < nb; i++, p += 24, o += 32) {
    const [min, max] = minMax(x, o);
    const d = fr((max - min) / 31);
    const id = d ? fr(1 / d) : 0;
    wrF16(dst, p, d);
    wrF16(dst, p + 2, min);
    // ggml has no clamp here; min(31) only guards against a rounding overshoot and never fires
    // for finite data where ggml itself stays in range.
    for (let j = 0; j < 32; j++) q[j] = Math.min(31, Math.trunc(fr(fr(fr(x[o + j]! - min) * id) + 0.5)));
    pack5(q, dst, p + 4, p + 8);
  }
}

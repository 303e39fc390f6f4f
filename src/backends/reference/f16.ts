// IEEE half (f16) and bfloat16 (bf16) <-> f32 conversions, bit-exact with ggml:
//   f16 -> f32 and bf16 -> f32 are exact widenings;
//   f32 -> f16 rounds to nearest, ties to even (GGML_FP32_TO_FP16, F16C's vcvtps2ph, numpy astype);
//   f32 -> bf16 rounds to nearest, ties to even (GGML_FP32_TO_BF16).
// Inputs of the f32 -> * functions are JS numbers; they are first rounded to f32, as C does
// when a double is stored into a float, so f32ToF16(x) === f32ToF16(Math.fround(x)).
// NaN handling follows ggml: f32 -> f16 gives the quiet NaN 0x7e00 (sign kept, payload dropped);
// f32 -> bf16 keeps the top payload bits and forces the quiet bit (0x0040).

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** f32 bits of x (after rounding x to f32). */
function f32Bits(x: number): number {
  scratchF32[0] = x;
  return scratchU32[0]!;
}

/** Exact value of the f16 with bits h (0..65535). */
function f16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24; // zero / subnormal: mant * 2^-24
  if (exp === 31) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1024 + mant) * 2 ** (exp - 25); // (1 + mant/1024) * 2^(exp-15)
}

/** f16 bits -> f32 value, for all 65536 bit patterns. 256 KiB, built once on first import. */
export const F16_TO_F32_TABLE: Float32Array = (() => {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) t[h] = f16BitsToNumber(h);
  return t;
})();

/** f16 bits -> value. */
export function f16ToF32(h: number): number {
  return F16_TO_F32_TABLE[h & 0xffff]!;
}

/** Round x (as f32) to f16 bits, round-to-nearest-even; overflow gives +-inf. */
export function f32ToF16(x: number): number {
  const w = f32Bits(x);
  const sign = (w >>> 16) & 0x8000;
  const a = w & 0x7fffffff; // |x| bits
  if (a >= 0x7f800000) return sign | (a > 0x7f800000 ? 0x7e00 : 0x7c00); // nan / inf
  if (a >= 0x477ff000) return sign | 0x7c00; // |x| >= 65520 rounds to inf
  if (a >= 0x38800000) {
    // normal f16 (|x| >= 2^-14): rebias exponent 127 -> 15, drop 13 mantissa bits with RNE.
    // A carry out of the mantissa correctly bumps the exponent.
    const m = a - 0x38000000;
    return sign | ((m + 0xfff + ((m >>> 13) & 1)) >>> 13);
  }
  // subnormal f16 or zero: count units of 2^-24 (exact in double), RNE to an integer <= 1024;
  // 1024 is 0x0400, the smallest normal, which is the right answer for that carry.
  scratchU32[0] = a;
  const units = scratchF32[0]! * 16777216;
  let q = Math.floor(units);
  const frac = units - q;
  if (frac > 0.5 || (frac === 0.5 && (q & 1) === 1)) q++;
  return sign | q;
}

/** bf16 bits -> value (exact: the bf16 bits are the high half of the f32 bits). */
export function bf16ToF32(h: number): number {
  scratchU32[0] = (h & 0xffff) << 16;
  return scratchF32[0]!;
}

/** Round x (as f32) to bf16 bits, round-to-nearest-even, as ggml_compute_fp32_to_bf16. */
export function f32ToBf16(x: number): number {
  const w = f32Bits(x);
  if ((w & 0x7fffffff) > 0x7f800000) return ((w >>> 16) | 64) & 0xffff; // nan: force quiet
  return (w + 0x7fff + ((w >>> 16) & 1)) >>> 16; // no 2^32 overflow: w < 0xff800001 here
}

/** dst[i] = value of f16 bits src[i], for i < src.length. */
export function f16ArrayToF32(src: Uint16Array, dst: Float32Array, dstOffset = 0): void {
  const t = F16_TO_F32_TABLE;
  for (let i = 0; i < src.length; i++) dst[dstOffset + i] = t[src[i]!]!;
}

/** dst[i] = f16 bits of src[i], for i < src.length. */
export function f32ArrayToF16(src: Float32Array, dst: Uint16Array, dstOffset = 0): void {
  for (let i = 0; i < src.length; i++) dst[dstOffset + i] = f32ToF16(src[i]!);
}

/** dst[i] = value of bf16 bits src[i], for i < src.length. */
export function bf16ArrayToF32(src: Uint16Array, dst: Float32Array, dstOffset = 0): void {
  const u = new Uint32Array(dst.buffer, dst.byteOffset + dstOffset * 4, src.length);
  for (let i = 0; i < src.length; i++) u[i] = src[i]! << 16;
}

/** dst[i] = bf16 bits of src[i], for i < src.length. */
export function f32ArrayToBf16(src: Float32Array, dst: Uint16Array, dstOffset = 0): void {
  for (let i = 0; i < src.length; i++) dst[dstOffset + i] = f32ToBf16(src[i]!);
}

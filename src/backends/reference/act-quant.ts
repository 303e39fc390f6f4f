// What a GGML matmul does to its activations before the dot product. llama.cpp computes
// x·wᵀ for a weight of type T by converting x to T's "vec_dot type" first (ggml-cpu's type
// traits): F16 weights see f16-rounded activations, BF16 bf16, Q4_0/Q5_0/Q8_0 see Q8_0 blocks,
// Q4_1/Q5_1 Q8_1 blocks, the K-quants Q8_K blocks (256 values, f32 scale). A GGUF model's output
// is defined by that arithmetic, so both of our backends follow it: matmul(x, W) =
// Σ deq(W) · deq(q(x)). The result then does not depend on batch shape or on whether a kernel
// uses integer dots (GEMV) or dequantize-then-FMA (GEMM).
import { GgmlType } from "../dtypes.js";
import { f16ToF32, f32ToF16, bf16ToF32, f32ToBf16 } from "./f16.js";

export type ActQuant = "none" | "f16" | "bf16" | "q8_0" | "q8_K";

export function activationQuant(t: GgmlType): ActQuant {
  switch (t) {
    case GgmlType.F16: return "f16";
    case GgmlType.BF16: return "bf16";
    case GgmlType.Q4_0: case GgmlType.Q5_0: case GgmlType.Q8_0:
    case GgmlType.Q4_1: case GgmlType.Q5_1: return "q8_0"; // Q8_1 holds the same values as Q8_0
    case GgmlType.Q4_K: case GgmlType.Q5_K: case GgmlType.Q6_K: return "q8_K";
    default: return "none";
  }
}

/** Q8_0 block of 32 as ggml-cpu's x86 quantize_row_q8_0 computes it (the path llama.cpp takes on
 *  this CPU; ggml_quantize_mat_q8_0_4x8 of the repack path is the same arithmetic): d = amax / 127
 *  stored as f16, id = 127 / amax, q = round-half-even(x * id) in f32; value = q * f16(d). (The
 *  portable _ref variant uses 1/d and roundf: it differs in the last ulp of id, which flips a
 *  rounding now and then and moves logits by ~1e-2.) Writes q to qs[qo..qo+32), returns f16(d). */
export function q8_0Ints(x: Float32Array, off: number, qs: Int8Array, qo: number): number {
  let amax = 0;
  for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[off + j]!));
  const d = Math.fround(amax / 127);
  const id = amax !== 0 ? Math.fround(127 / amax) : 0;
  for (let j = 0; j < 32; j++) qs[qo + j] = roundEven(Math.fround(x[off + j]! * id));
  return f16ToF32(f32ToF16(d));
}

const q8Scratch = new Int8Array(256);
function q8_0Block(x: Float32Array, off: number, out: Float32Array): void {
  const dh = q8_0Ints(x, off, q8Scratch, 0);
  for (let j = 0; j < 32; j++) out[off + j] = q8Scratch[j]! * dh;
}

/** Q8_K block of 256 (quantize_row_q8_K_ref, which x86 uses as is): the value of largest magnitude
 *  maps to -127, iscale = -127 / max, q = min(127, nearest_int(iscale * x)) (ties to even),
 *  d = 1 / iscale (f32). Writes the ints to qs[qo..qo+256) and returns d. */
export function q8KInts(x: Float32Array, off: number, qs: Int8Array, qo: number): number {
  let amax = 0, max = 0;
  for (let j = 0; j < 256; j++) {
    const ax = Math.abs(x[off + j]!);
    if (ax > amax) { amax = ax; max = x[off + j]!; }
  }
  if (amax === 0) { qs.fill(0, qo, qo + 256); return 0; }
  const iscale = Math.fround(-127 / max);
  for (let j = 0; j < 256; j++) qs[qo + j] = Math.min(127, roundEven(Math.fround(iscale * x[off + j]!)));
  return Math.fround(1 / iscale);
}

function q8_KBlock(x: Float32Array, off: number, out: Float32Array): void {
  const d = q8KInts(x, off, q8Scratch, 0);
  for (let j = 0; j < 256; j++) out[off + j] = Math.fround(q8Scratch[j]! * d);
}

function roundEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** out[m, k] = deq(q(x[m, k])) for the activation type `a`; k is a multiple of the block size. */
export function quantizeActivations(a: ActQuant, x: Float32Array, m: number, k: number, out: Float32Array): void {
  const n = m * k;
  switch (a) {
    case "none": out.set(x.subarray(0, n)); return;
    case "f16": for (let i = 0; i < n; i++) out[i] = f16ToF32(f32ToF16(x[i]!)); return;
    case "bf16": for (let i = 0; i < n; i++) out[i] = bf16ToF32(f32ToBf16(x[i]!)); return;
    case "q8_0": for (let o = 0; o < n; o += 32) q8_0Block(x, o, out); return;
    case "q8_K": for (let o = 0; o < n; o += 256) q8_KBlock(x, o, out); return;
  }
}

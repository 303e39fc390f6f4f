// Shared by the native kernel tests: seeded random inputs (a fresh seed per run, printed on
// failure), weights quantized with the reference quantizer, and the two kernel paths to test.
import { GgmlType, rowBytes } from "../../src/backends/dtypes.js";
import type { WeightTensor } from "../../src/backends/backend.js";
import { quantizeRow } from "../../src/backends/reference/quant.js";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "../../src/backends/reference/f16.js";
import { isNativeAvailable, nativeInfo, setForceScalar } from "../../src/backends/native/index.js";

export const SEED = Number(process.env.TLLM_TEST_SEED ?? Math.floor(Math.random() * 2 ** 31));

export { rng } from "../unit/test-rng.js";

/** uniform in [-scale, scale) */
export function randArray(r: () => number, n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() * 2 - 1) * scale;
  return a;
}

/** A random weight [rows, cols] quantized by the reference quantizer. Its bytes sit at byte
 *  offset `misalign` of a larger buffer, as tensors in a mapped file do (no alignment promised). */
export function randWeight(r: () => number, dtype: GgmlType, rows: number, cols: number, misalign = 1): WeightTensor {
  const rb = rowBytes(dtype, cols);
  const buf = new Uint8Array(rows * rb + misalign);
  for (let i = 0; i < rows; i++) buf.set(quantizeRow(dtype, randArray(r, cols), cols), misalign + i * rb);
  return { name: "w", dtype, rows, cols, data: buf.subarray(misalign) };
}

/** The kernel paths this machine can run: "scalar" always, "avx2" where supported. */
export function paths(): Array<"avx2" | "scalar"> {
  if (!isNativeAvailable()) return [];
  return nativeInfo().avx2Supported ? ["avx2", "scalar"] : ["scalar"];
}

/** Runs fn with the given kernel path selected, restoring the default afterwards. */
export function withPath<T>(path: "avx2" | "scalar", fn: () => T): T {
  setForceScalar(path === "scalar");
  try {
    return fn();
  } finally {
    setForceScalar(process.env.TLLM_FORCE_SCALAR === "1");
  }
}

/** max over i of |a[i] - b[i]| / tol[i]; <= 1 means within tolerance. Also returns the worst index. */
export function worstRatio(a: Float32Array, b: Float32Array, tol: (i: number) => number, n = a.length): { ratio: number; at: number } {
  let ratio = 0, at = -1;
  for (let i = 0; i < n; i++) {
    const r = Math.abs(a[i]! - b[i]!) / tol(i);
    if (!(r <= ratio)) { ratio = r; at = i; }  // NaN counts as worst
  }
  return { ratio, at };
}

export const SKIP_REASON = isNativeAvailable() ? false : "native addon not built (npm install builds it)";

/**
 * x[m, k] rounded the way GGML rounds activations for a weight type before its dot products
 * (ggml-cpu's vec_dot types, x86 paths): f16 for F16, bf16 for BF16, Q8_0 blocks for the 32-blocks
 * (d = amax/127 stored as f16, q = round-half-even(x * 127/amax)), Q8_K blocks for K-quants
 * (iscale = -127/max, q = min(127, round-half-even(iscale * x)), d = 1/iscale), returned as values.
 * The native kernels implement exactly this; the matmul test uses it for its tight oracle.
 */
export function ggmlActs(t: GgmlType, x: Float32Array, m: number, k: number): Float32Array {
  const out = new Float32Array(m * k);
  const n = m * k;
  if (t === GgmlType.F16) { for (let i = 0; i < n; i++) out[i] = f16ToF32(f32ToF16(x[i]!)); return out; }
  if (t === GgmlType.BF16) { for (let i = 0; i < n; i++) out[i] = bf16ToF32(f32ToBf16(x[i]!)); return out; }
  if (t === GgmlType.F32) { out.set(x.subarray(0, n)); return out; }
  const kq = t === GgmlType.Q4_K || t === GgmlType.Q5_K || t === GgmlType.Q6_K;
  const bs = kq ? 256 : 32;
  for (let o = 0; o < n; o += bs) {
    let amax = 0, max = 0;
    for (let j = o; j < o + bs; j++) if (Math.abs(x[j]!) > amax) { amax = Math.abs(x[j]!); max = x[j]!; }
    if (amax === 0) continue;
    if (kq) {
      const iscale = Math.fround(-127 / max), d = Math.fround(1 / iscale);
      for (let j = o; j < o + bs; j++) out[j] = Math.fround(Math.min(127, roundEven(Math.fround(iscale * x[j]!))) * d);
    } else {
      const id = Math.fround(127 / amax), dh = f16ToF32(f32ToF16(Math.fround(amax / 127)));
      for (let j = o; j < o + bs; j++) out[j] = roundEven(Math.fround(x[j]! * id)) * dh;
    }
  }
  return out;
}

function roundEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

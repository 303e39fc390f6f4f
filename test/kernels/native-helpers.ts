// Shared by the native kernel tests: seeded random inputs (a fresh seed per run, printed on
// failure), weights quantized with the reference quantizer, and the two kernel paths to test.
import { GgmlType, rowBytes } from "../../src/backends/dtypes.js";
import type { WeightTensor } from "../../src/backends/backend.js";
import { quantizeRow } from "../../src/backends/reference/quant.js";
import { isNativeAvailable, nativeInfo, setForceScalar } from "../../src/backends/native/index.js";

export const SEED = Number(process.env.TLLM_TEST_SEED ?? Math.floor(Math.random() * 2 ** 31));

/** mulberry32: small, fast, good enough for test data. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

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

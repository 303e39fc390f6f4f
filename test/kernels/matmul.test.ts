// Native matmul (GEMV path for small m with 8-bit activations, tiled GEMM for larger m) against the
// reference backend, for every weight type, awkward shapes, both kernel paths (avx2 and scalar).
import { test } from "node:test";
import assert from "node:assert/strict";
import { GgmlType, typeName } from "../../src/backends/dtypes.js";
import { ReferenceBackend } from "../../src/backends/reference/index.js";
import { dequantize } from "../../src/backends/reference/quant.js";
import { NativeBackend } from "../../src/backends/native/index.js";
import type { WeightTensor } from "../../src/backends/backend.js";
import { SEED, SKIP_REASON, paths, randArray, randWeight, rng, withPath, worstRatio } from "./native-helpers.js";

const LEGACY = [GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q8_0];
const KQ = [GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K];
const FLOAT = [GgmlType.F32, GgmlType.F16, GgmlType.BF16];

// cols: not a multiple of 256 where the block size (1 or 32) allows, to hit the tail of a KC slice
function colsFor(t: GgmlType): number[] {
  if (KQ.includes(t)) return [256, 768];
  if (LEGACY.includes(t)) return [32, 288];
  return [7, 300];
}

/**
 * Tolerance per output element (i, j). Both backends round the activations the way GGML does for
 * the weight type (f16 for F16, bf16 for BF16, Q8_0 blocks for the 32-blocks, Q8_K for K-quants;
 * see reference/act-quant.ts), so that rounding is not an error between them. What remains: f32
 * accumulation in 8-lane partial sums (GEMM: 256-long K slices) against the reference's f64, and
 * f32 products of scales (d_w * d_x once per block in the integer dots, d * sc in K-quant
 * dequantization) rounded differently: a few ulps of each |x||w| term. 2e-5 * sum |x||w| bounds
 * that with a wide margin (sqrt(768) * 2^-24 ≈ 1.7e-6 typical, 768 * 2^-24 ≈ 4.6e-5 worst case
 * would need every rounding to line up). A wrong block layout or scale gives errors of order 1.
 */
function tolerance(x: Float32Array, m: number, w: WeightTensor, wf: Float32Array): (idx: number) => number {
  const k = w.cols;
  const tol = new Float64Array(m * w.rows);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < w.rows; j++) {
      let mag = 0;
      for (let c = 0; c < k; c++) mag += Math.abs(wf[j * k + c]!) * Math.abs(x[i * k + c]!);
      tol[i * w.rows + j] = 2e-5 * mag + 1e-30;
    }
  }
  return (idx) => tol[idx]!;
}

const ref = new ReferenceBackend();

function checkOne(nb: NativeBackend, r: () => number, t: GgmlType, rows: number, cols: number, m: number, path: string): void {
  const w = randWeight(r, t, rows, cols, 1 + (rows % 3));
  const x = randArray(r, m * cols);
  const expect = new Float32Array(m * rows), got = new Float32Array(m * rows).fill(NaN);
  ref.matmul(expect, x, m, w);
  nb.matmul(got, x, m, w);
  const wf = dequantize(t, w.data, rows * cols);
  const { ratio, at } = worstRatio(got, expect, tolerance(x, m, w, wf));
  assert.ok(ratio <= 1, `${path} ${typeName(t)} rows=${rows} cols=${cols} m=${m} seed=${SEED}: ` +
    `out[${at}] = ${got[at]} vs reference ${expect[at]} (${ratio.toFixed(2)}x the tolerance)`);
}

test("matmul matches the reference for every weight type, shape and m", { skip: SKIP_REASON }, () => {
  const nb = new NativeBackend();
  const r = rng(SEED);
  for (const path of paths()) {
    withPath(path, () => {
      for (const t of [...FLOAT, ...LEGACY, ...KQ]) {
        for (const cols of colsFor(t)) {
          for (const rows of [1, 17, 33]) {
            for (const m of [1, 2, 3, 17, 64]) checkOne(nb, r, t, rows, cols, m, path);
          }
        }
      }
    });
  }
});

test("matmul splits large problems across the pool and still matches", { skip: SKIP_REASON }, () => {
  const nb = new NativeBackend();
  const r = rng(SEED + 1);
  for (const path of paths()) {
    withPath(path, () => {
      for (const t of [GgmlType.Q4_0, GgmlType.Q8_0, GgmlType.F16, GgmlType.Q4_K, GgmlType.Q6_K]) {
        for (const m of [1, 5, 16, 40]) checkOne(nb, r, t, 301, 1024, m, path);
      }
    });
  }
});

test("matmul rejects bad shapes with a typed error naming the field", { skip: SKIP_REASON }, () => {
  const nb = new NativeBackend();
  const w = randWeight(rng(SEED), GgmlType.Q4_0, 4, 64);
  const x = new Float32Array(64), out = new Float32Array(4);
  assert.throws(() => nb.matmul(out, x, 2, w), /matmul\.x/);
  assert.throws(() => nb.matmul(new Float32Array(3), x, 1, w), /matmul\.out/);
  assert.throws(() => nb.matmul(out, x, 1, { ...w, data: w.data.subarray(0, 10) }), /w\.data/);
  assert.throws(() => nb.matmul(out, x, 1, { ...w, cols: 48 }), /w\.cols/);
});

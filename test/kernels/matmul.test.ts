// Native matmul (GEMV path for small m with 8-bit activations, tiled GEMM for larger m) against the
// reference backend, for every weight type, awkward shapes, both kernel paths (avx2 and scalar).
import { test } from "node:test";
import assert from "node:assert/strict";
import { GgmlType, typeName } from "../../src/backends/dtypes.js";
import { ReferenceBackend } from "../../src/backends/reference/index.js";
import { dequantize } from "../../src/backends/reference/quant.js";
import { NativeBackend } from "../../src/backends/native/index.js";
import type { WeightTensor } from "../../src/backends/backend.js";
import { SEED, SKIP_REASON, ggmlActs, paths, randArray, randWeight, rng, withPath, worstRatio } from "./native-helpers.js";

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
 * Two oracles per output element (i, j), both from the reference backend's code:
 * 1. tight: sum_c deq(w)[j, c] * a[i, c] in f64, with deq from reference/quant.ts and a = x rounded
 *    as GGML rounds activations for the weight type (ggmlActs: f16, bf16, Q8_0 or Q8_K blocks),
 *    which is what the native kernels compute, on the GEMV (integer dots) and GEMM paths alike.
 *    What remains is f32 arithmetic: 8-lane partial sums (GEMM: 256-long K slices) against f64,
 *    and scale products (d_w * d_x per block, d * sc in K-quants) rounded in f32, a few ulps of
 *    each |a||w| term: 2e-5 * sum |a||w| bounds it with a wide margin (sqrt(768) * 2^-24 ≈ 1.7e-6
 *    typical). A wrong block layout, scale or rounding rule gives errors of order 1e-3..1.
 * 2. ReferenceBackend.matmul itself, which rounds activations the same way (act-quant.ts) or, in
 *    older versions, not at all: allowed to differ by the rounding's own effect,
 *    sum_c |deq(w)[j, c]| * |x - a|[i, c], on top of twice the tight bound.
 */
function oracle(x: Float32Array, m: number, w: WeightTensor): { exact: Float64Array; tight: Float64Array; roundEffect: Float64Array } {
  const k = w.cols, n = w.rows;
  const wf = dequantize(w.dtype, w.data, n * k), a = ggmlActs(w.dtype, x, m, k);
  const exact = new Float64Array(m * n), tight = new Float64Array(m * n), roundEffect = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0, mag = 0, eff = 0;
      for (let c = 0; c < k; c++) {
        const wv = wf[j * k + c]!, av = a[i * k + c]!;
        s += wv * av;
        mag += Math.abs(wv * av);
        eff += Math.abs(wv) * Math.abs(x[i * k + c]! - av);
      }
      exact[i * n + j] = s;
      tight[i * n + j] = 2e-5 * mag + 1e-30;
      roundEffect[i * n + j] = eff;
    }
  }
  return { exact, tight, roundEffect };
}

const ref = new ReferenceBackend();

function checkOne(nb: NativeBackend, r: () => number, t: GgmlType, rows: number, cols: number, m: number, path: string): void {
  const w = randWeight(r, t, rows, cols, 1 + (rows % 3));
  const x = randArray(r, m * cols);
  const refOut = new Float32Array(m * rows), got = new Float32Array(m * rows).fill(NaN);
  ref.matmul(refOut, x, m, w);
  nb.matmul(got, x, m, w);
  const { exact, tight, roundEffect } = oracle(x, m, w);
  const tag = `${path} ${typeName(t)} rows=${rows} cols=${cols} m=${m} seed=${SEED}`;
  const e1 = worstRatio(got, Float32Array.from(exact), (i) => tight[i]!);
  assert.ok(e1.ratio <= 1, `${tag}: out[${e1.at}] = ${got[e1.at]} vs ${exact[e1.at]} (${e1.ratio.toFixed(2)}x the tolerance)`);
  const e2 = worstRatio(got, refOut, (i) => roundEffect[i]! * 1.001 + 2 * tight[i]!);
  assert.ok(e2.ratio <= 1, `${tag}: out[${e2.at}] = ${got[e2.at]} vs ReferenceBackend ${refOut[e2.at]}`);
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
      // rows % 8 == 0: the repack kernels (Q4_0 GEMV up to m = 6, GEMM above; Q4_K GEMM from m = 4)
      for (const t of [GgmlType.Q4_0, GgmlType.Q4_K]) {
        for (const m of [1, 6, 7, 40]) checkOne(nb, r, t, 304, 1024, m, path);
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

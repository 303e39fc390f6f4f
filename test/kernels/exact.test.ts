// Native kernels against the reference backend, bit for bit. The reference mirrors ggml-cpu's
// arithmetic (activation rounding, summation lanes and orders, ggml_v_expf, rms_norm, the f32 rope
// cache with glibc's sinf/cosf) and is bit-identical to llama.cpp on the model fixtures; the
// native AVX2 and scalar paths follow the same recipe, so every output element must be the same
// f32 value (no tolerance: a different summation order shows up in the last bits of most elements).
import { test } from "node:test";
import assert from "node:assert/strict";
import { GgmlType, typeName } from "../../src/backends/dtypes.js";
import { ReferenceBackend } from "../../src/backends/reference/index.js";
import { NativeBackend } from "../../src/backends/native/index.js";
import type { RopeParams } from "../../src/backends/backend.js";
import { SEED, SKIP_REASON, paths, randArray, randWeight, rng, withPath } from "./native-helpers.js";

const ref = new ReferenceBackend();

/** number of elements whose f32 bits differ (NaN never equal), and the first one */
function mismatches(a: Float32Array, b: Float32Array): { count: number; first: number } {
  let count = 0, first = -1;
  for (let i = 0; i < a.length; i++) {
    if (!Object.is(a[i], b[i])) { count++; if (first < 0) first = i; }
  }
  return { count, first };
}

function same(got: Float32Array, want: Float32Array, tag: string): void {
  const { count, first } = mismatches(got, want);
  assert.equal(count, 0, `${tag} seed=${SEED}: ${count}/${got.length} differ, first out[${first}] = ${got[first]} vs ${want[first]}`);
}

// the types whose ggml kernels the reference mirrors, shapes hitting each branch: rows % 8 (Q4_0,
// Q4_K repack), m = 1 (vec_dot), m >= 2 (tinyBLAS / repack GEMM, with m % 4 tails), cols % 32 (F32/F16 tails)
const TYPES: Array<[GgmlType, number[]]> = [
  [GgmlType.F32, [40, 256, 300]], [GgmlType.F16, [40, 256, 300]], [GgmlType.Q4_0, [64, 288]],
  [GgmlType.Q8_0, [64, 288]], [GgmlType.Q4_K, [256, 768]], [GgmlType.Q6_K, [256, 768]],
];

test("matmul: native = reference bit for bit (F32, F16, Q4_0, Q8_0, Q4_K, Q6_K)", { skip: SKIP_REASON }, () => {
  const nb = new NativeBackend();
  const r = rng(SEED);
  for (const [t, colsList] of TYPES) {
    for (const cols of colsList) {
      for (const rows of [8, 17, 48]) {
        const w = randWeight(r, t, rows, cols, 1 + (rows % 3));
        for (const m of [1, 2, 3, 5, 8, 13, 33]) {
          const x = randArray(r, m * cols);
          const want = new Float32Array(m * rows);
          ref.matmul(want, x, m, w);
          for (const path of paths()) withPath(path, () => {
            const got = new Float32Array(m * rows).fill(NaN);
            nb.matmul(got, x, m, w);
            same(got, want, `${path} ${typeName(t)} rows=${rows} cols=${cols} m=${m}`);
          });
        }
      }
    }
  }
});

// Repack kernels (rows % 8 == 0): Q4_0 switches at m = 6 | 7 (GEMV | GEMM), tiles K by 64 blocks
// (cols = 2080: 65 blocks, one past a tile and 1 past a multiple of 8) and activations by 64 rows;
// Q4_K GEMM (m >= 4) tiles K by 8 super-blocks (cols = 2304: 9) and mixes gemm/gemv rows (m % 4);
// Q8_0 GEMM: row pairs (odd last row), 64-row activation chunks; F16 GEMM: 12-row tiles, 4 x 3 blocks
test("matmul GEMM/GEMV kernels: boundaries, K tiles, activation chunks bit for bit", { skip: SKIP_REASON }, () => {
  const nb = new NativeBackend();
  const r = rng(SEED + 3);
  const cases = [[GgmlType.Q4_0, 16, 2080], [GgmlType.Q4_0, 24, 96], [GgmlType.Q4_K, 16, 2304], [GgmlType.Q8_0, 17, 96],
    [GgmlType.F16, 25, 48]] as const;
  for (const [t, rows, cols] of cases) {
    const w = randWeight(r, t, rows, cols, 2);
    for (const m of [1, 4, 6, 7, 70]) {
      const x = randArray(r, m * cols);
      const want = new Float32Array(m * rows);
      ref.matmul(want, x, m, w);
      for (const path of paths()) withPath(path, () => {
        const got = new Float32Array(m * rows).fill(NaN);
        nb.matmul(got, x, m, w);
        same(got, want, `${path} ${typeName(t)} rows=${rows} cols=${cols} m=${m}`);
      });
    }
  }
});

test("rmsNorm and siluMul: native = reference bit for bit", { skip: SKIP_REASON }, () => {
  const nb = new NativeBackend();
  const r = rng(SEED + 1);
  for (const [m, n] of [[1, 256], [3, 300], [5, 1056], [2, 13]] as const) {
    const x = randArray(r, m * n, 3), w = randArray(r, n), gu = randArray(r, 2 * m * n, 6);
    const want = new Float32Array(m * n), wantS = new Float32Array(m * n);
    ref.rmsNorm(want, x, w, m, n, 1e-5);
    ref.siluMul(wantS, gu, m, n);
    for (const path of paths()) withPath(path, () => {
      const got = new Float32Array(m * n), gotS = new Float32Array(m * n);
      nb.rmsNorm(got, x, w, m, n, 1e-5);
      nb.siluMul(gotS, gu, m, n);
      same(got, want, `${path} rmsNorm m=${m} n=${n}`);
      same(gotS, wantS, `${path} siluMul m=${m} n=${n}`);
    });
  }
});

test("rope with ggml's f32 cache: native = reference bit for bit", { skip: SKIP_REASON }, () => {
  const nb = new NativeBackend();
  const r = rng(SEED + 2);
  for (const style of ["norm", "neox"] as const) {
    for (const [hd, ropeDim, base, ff] of [[64, 64, 10000, false], [128, 128, 1e6, true], [64, 32, 500000, false]] as const) {
      const half = ropeDim / 2;
      const thetaScale = Math.fround(Math.pow(base, -2 / ropeDim));
      const invFreq = Float32Array.from({ length: half }, (_, i) => Math.pow(base, -2 * i / ropeDim));
      const freqFactors = ff ? Float32Array.from({ length: half }, (_, i) => 1 + (i % 5)) : null;
      const p: RopeParams = { style, headDim: hd, ropeDim, invFreq, mscale: 1, ggml: { thetaScale, freqScale: 1, freqFactors } };
      const m = 7, nh = 3;
      const positions = Int32Array.from({ length: m }, (_, i) => i * 17 % 119);
      const x = randArray(r, m * nh * hd, 2);
      const want = x.slice();
      ref.rope(want, m, nh, positions, p);
      for (const path of paths()) withPath(path, () => {
        const got = x.slice();
        nb.rope(got, m, nh, positions, p);
        same(got, want, `${path} rope ${style} hd=${hd} ropeDim=${ropeDim}`);
      });
    }
  }
});

// Native elementwise / row ops against the reference backend (or, for softmax and argmax which the
// reference does not have, against direct f64 formulas), on both kernel paths.
import { test } from "node:test";
import assert from "node:assert/strict";
import { GgmlType, typeName } from "../../src/backends/dtypes.js";
import { ReferenceBackend } from "../../src/backends/reference/index.js";
import { NativeBackend } from "../../src/backends/native/index.js";
import type { RopeParams } from "../../src/backends/backend.js";
import { ValidationError } from "../../src/errors.js";
import { SEED, SKIP_REASON, paths, randArray, randWeight, rng, withPath, worstRatio } from "./native-helpers.js";

const ref = new ReferenceBackend();
const SIZES: Array<[number, number]> = [[1, 1], [1, 7], [3, 64], [17, 100], [64, 2048]];

/** relative tolerance `rel` of |expected| plus an absolute floor `abs` */
function relTol(expect: Float32Array, rel: number, abs: number): (i: number) => number {
  return (i) => rel * Math.abs(expect[i]!) + abs;
}

function assertClose(got: Float32Array, expect: Float32Array, rel: number, abs: number, what: string): void {
  const { ratio, at } = worstRatio(got, expect, relTol(expect, rel, abs));
  assert.ok(ratio <= 1, `${what} seed=${SEED}: [${at}] = ${got[at]} vs ${expect[at]}`);
}

test("rmsNorm, siluMul, add, addBias match the reference", { skip: SKIP_REASON }, () => {
  const nb = new NativeBackend();
  const r = rng(SEED);
  for (const path of paths()) withPath(path, () => {
    for (const [m, n] of SIZES) {
      const tag = `${path} m=${m} n=${n}`;
      const x = randArray(r, m * n, 3), w = randArray(r, n), gu = randArray(r, 2 * m * n, 6), b = randArray(r, n);
      // f32 sum of squares over n <= 2048 terms vs f64: relative error well under 1e-5; a few ulps on the rest
      const e1 = new Float32Array(m * n), g1 = new Float32Array(m * n);
      ref.rmsNorm(e1, x, w, m, n, 1e-5);
      nb.rmsNorm(g1, x, w, m, n, 1e-5);
      assertClose(g1, e1, 1e-5, 1e-6, `rmsNorm ${tag}`);
      const g1alias = Float32Array.from(x);
      nb.rmsNorm(g1alias, g1alias, w, m, n, 1e-5);
      assertClose(g1alias, e1, 1e-5, 1e-6, `rmsNorm in place ${tag}`);
      // expf vs Math.exp: a few ulps
      const e2 = new Float32Array(m * n), g2 = new Float32Array(m * n);
      ref.siluMul(e2, gu, m, n);
      nb.siluMul(g2, gu, m, n);
      assertClose(g2, e2, 2e-6, 1e-7, `siluMul ${tag}`);
      // add / addBias: one f32 rounding, same as the reference: exact
      const e3 = new Float32Array(m * n), g3 = new Float32Array(m * n);
      ref.add(e3, x, g1, m * n);
      nb.add(g3, x, g1, m * n);
      assert.deepEqual(g3, e3, `add ${tag}`);
      ref.addBias(e3, b, m, n);
      nb.addBias(g3, b, m, n);
      assert.deepEqual(g3, e3, `addBias ${tag}`);
    }
  });
});

test("rope matches the reference for norm and neox styles, partial rotary dims and mscale", { skip: SKIP_REASON }, () => {
  const nb = new NativeBackend();
  const r = rng(SEED + 1);
  for (const path of paths()) withPath(path, () => {
    for (const style of ["norm", "neox"] as const) {
      for (const [headDim, ropeDim, mscale] of [[64, 64, 1], [128, 96, 1.2], [6, 2, 1]] as const) {
        const m = 5, nh = 3;
        const invFreq = new Float32Array(ropeDim / 2).map((_, i) => Math.pow(10000, (-2 * i) / ropeDim));
        const p: RopeParams = { style, headDim, ropeDim, invFreq, mscale };
        const positions = Int32Array.from([0, 1, 17, 1000, 32767]);
        const x = randArray(r, m * nh * headDim), e = Float32Array.from(x), g = Float32Array.from(x);
        ref.rope(e, m, nh, positions, p);
        nb.rope(g, m, nh, positions, p);
        // both compute angles and cos/sin in f64; the native side rounds cos/sin to f32 first: ~2 ulps
        assertClose(g, e, 1e-6, 1e-6, `rope ${path} ${style} hd=${headDim} rd=${ropeDim}`);
        for (let i = 0; i < m * nh; i++) {
          for (let d = ropeDim; d < headDim; d++) assert.equal(g[i * headDim + d], x[i * headDim + d], "dims past ropeDim untouched");
        }
      }
    }
  });
});

test("softmax and argmax match f64 formulas", { skip: SKIP_REASON }, () => {
  const nb = new NativeBackend();
  const r = rng(SEED + 2);
  for (const path of paths()) withPath(path, () => {
    for (const [m, n] of [[1, 1], [2, 5], [3, 32001]] as Array<[number, number]>) {
      const x = randArray(r, m * n, 20), got = new Float32Array(m * n), idx = new Int32Array(m);
      nb.softmax(got, x, m, n);
      nb.argmax(idx, x, m, n);
      for (let i = 0; i < m; i++) {
        let mx = -Infinity, best = 0, sum = 0;
        for (let j = 0; j < n; j++) if (x[i * n + j]! > mx) { mx = x[i * n + j]!; best = j; }
        for (let j = 0; j < n; j++) sum += Math.exp(x[i * n + j]! - mx);
        assert.equal(idx[i], best, `argmax row ${i} ${path}`);
        for (let j = 0; j < n; j++) {
          const e = Math.exp(x[i * n + j]! - mx) / sum;
          // expf a few ulps, sum in f64, one f32 division: 1e-6 relative
          assert.ok(Math.abs(got[i * n + j]! - e) <= 1e-6 * e + 1e-12, `softmax ${path} [${i},${j}] ${got[i * n + j]} vs ${e}`);
        }
      }
    }
    // ties: the first maximum wins
    const ties = Float32Array.from([1, 5, 5, 2]), out = new Int32Array(1);
    nb.argmax(out, ties, 1, 4);
    assert.equal(out[0], 1);
  });
});

test("embedding gathers dequantized rows exactly as the reference, for every table type", { skip: SKIP_REASON }, () => {
  const nb = new NativeBackend();
  const r = rng(SEED + 3);
  const types = [GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0,
    GgmlType.Q5_1, GgmlType.Q8_0, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K];
  for (const path of paths()) withPath(path, () => {
    for (const t of types) {
      const cols = t >= GgmlType.Q4_K && t <= GgmlType.Q6_K ? 512 : 96;
      const table = randWeight(r, t, 37, cols, 3);
      const ids = Int32Array.from([36, 0, 5, 5, 20]);
      const e = new Float32Array(ids.length * cols), g = new Float32Array(ids.length * cols);
      ref.embedding(e, table, ids);
      nb.embedding(g, table, ids);
      // same block formulas in f32; K-quant scale products may round differently by an ulp
      assertClose(g, e, 1e-6, 1e-7, `embedding ${path} ${typeName(t)}`);
    }
  });
  const table = randWeight(r, GgmlType.Q8_0, 4, 32);
  assert.throws(() => nb.embedding(new Float32Array(32), table, Int32Array.from([4])), ValidationError);
});

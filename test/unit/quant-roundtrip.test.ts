// quantize -> dequantize round trips on random data of several lengths and distributions, with
// per-element error bounds derived from each format (comments give the derivation). 2^-11 is the
// relative rounding error of storing a scale as f16.
import { test } from "node:test";
import assert from "node:assert/strict";
import { GgmlType, TYPE_TRAITS, rowBytes } from "../../src/backends/dtypes.js";
import { dequantize, quantizeRow } from "../../src/backends/reference/quant.js";
import { rng } from "./test-rng.js";

const U = 2 ** -11;

/** Deterministic PRNG (mulberry32). */

type Dist = (i: number, r: () => number) => number;
const gauss = (r: () => number) => Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
const DISTS: Record<string, Dist> = {
  gauss: (_, r) => gauss(r),
  uniform: (_, r) => r() * 2 - 1,
  positive: (_, r) => 1 + 5 * r(),
  negative: (_, r) => -2 - r(),
  heavyTail: (_, r) => gauss(r) / (r() + 0.05),
  mixedScales: (i, r) => gauss(r) * 10 ** (((i >> 5) % 7) - 3), // 32-blocks from 1e-3 to 1e3
  outliers: (i, r) => (i % 97 === 0 ? 50 : 0.1 * gauss(r)),
  zerosAndConst: (i) => ((i >> 8) % 2 ? 0 : 0.75),
};

function sample(dist: Dist, n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, (_, i) => dist(i, r));
}

/** Stats of x[o..o+len). */
function stats(x: Float32Array, o: number, len: number): { min: number; max: number; amax: number } {
  let min = Infinity, max = -Infinity;
  for (let i = o; i < o + len; i++) {
    min = Math.min(min, x[i]!);
    max = Math.max(max, x[i]!);
  }
  return { min, max, amax: Math.max(Math.abs(min), Math.abs(max)) };
}

/**
 * Max allowed |error| for the elements of the group x[o..o+group) (group = 32, or 256 for K types).
 * The small relative slack (1e-5) covers f32 rounding of x * (1/d) and of the dequantized sum.
 */
const BOUND: Record<string, { group: number; bound: (s: ReturnType<typeof stats>) => number }> = {
  // d = amax/127, q = round(x/d): |x - q d| <= d/2; storing d as f16 adds |q| d 2^-11 <= 127 d U.
  Q8_0: { group: 32, bound: ({ amax }) => (amax / 127) * (0.5 + 127 * U + 1e-5) },
  // |d| = amax/8, levels -8..7: the abs-max maps to -8 exactly, the opposite extreme (x/d up to +8)
  // is clamped to 7, so the error reaches one step |d|; f16 d adds 8 |d| U.
  Q4_0: { group: 32, bound: ({ amax }) => (amax / 8) * (1 + 8 * U + 1e-5) },
  Q5_0: { group: 32, bound: ({ amax }) => (amax / 16) * (1 + 16 * U + 1e-5) },
  // d = (max-min)/nmax, x = q d + min: rounding d/2, f16 d adds nmax d U, f16 min adds |min| U.
  Q4_1: { group: 32, bound: ({ min, max }) => ((max - min) / 15) * (0.5 + 15 * U + 1e-5) + Math.abs(min) * U + 1e-6 * Math.abs(max) },
  Q5_1: { group: 32, bound: ({ min, max }) => ((max - min) / 31) * (0.5 + 31 * U + 1e-5) + Math.abs(min) * U + 1e-6 * Math.abs(max) },
  // K with mins, per 256: levels 0..nmax over [min(x,0), max], step = range/nmax. Level rounding
  // costs step/2; the 6-bit sub-block scale (relative to the block's largest) can shrink the covered
  // range by up to step/2 at its ends; the 6-bit sub-block min (relative to the largest, <= |min|)
  // is off by up to |min|/126, doubled here for the f16 rounding of dmin and the fit's clipping.
  Q4_K: { group: 256, bound: ({ min, max }) => (max - Math.min(min, 0)) / 15 + Math.abs(Math.min(min, 0)) / 63 },
  Q5_K: { group: 256, bound: ({ min, max }) => (max - Math.min(min, 0)) / 31 + Math.abs(Math.min(min, 0)) / 63 },
  // Q6_K, per 256: levels -32..31 of a scale ~ amax/32: rounding step/2; 8-bit sub-block scales
  // (relative to the largest, 128 levels) add up to 32 levels * step/256 = step/8; + 1/8 slack.
  Q6_K: { group: 256, bound: ({ amax }) => (amax / 32) * 0.75 },
};

for (const [name, { group, bound }] of Object.entries(BOUND)) {
  test(`${name} round trip stays within its derived error bound`, () => {
    const type = GgmlType[name as keyof typeof GgmlType];
    const { blockSize } = TYPE_TRAITS.get(type)!;
    let seed = 1;
    for (const [dname, dist] of Object.entries(DISTS)) {
      for (const blocks of [1, 3, 8]) {
        const n = blocks * Math.max(blockSize, 256);
        const x = sample(dist, n, seed++);
        const q = quantizeRow(type, x, n);
        assert.equal(q.length, rowBytes(type, n));
        const y = dequantize(type, q, n);
        for (let o = 0; o < n; o += group) {
          const lim = bound(stats(x, o, group));
          for (let i = o; i < o + group; i++) {
            const err = Math.abs(y[i]! - x[i]!);
            if (!(err <= lim)) assert.fail(`${name} ${dname} n=${n} [${i}]: x=${x[i]} y=${y[i]} err=${err} > ${lim}`);
          }
        }
      }
    }
  });
}

test("F32 round trip is exact; F16 / BF16 are within half an ulp", () => {
  const x = sample(DISTS.mixedScales!, 4096, 77);
  assert.deepEqual(dequantize(GgmlType.F32, quantizeRow(GgmlType.F32, x, x.length), x.length), x);
  const h = dequantize(GgmlType.F16, quantizeRow(GgmlType.F16, x, x.length), x.length);
  const b = dequantize(GgmlType.BF16, quantizeRow(GgmlType.BF16, x, x.length), x.length);
  for (let i = 0; i < x.length; i++) {
    // f16: 11 significant bits (half ulp = |x| 2^-11) down to 2^-14, then a fixed 2^-25
    assert.ok(Math.abs(h[i]! - x[i]!) <= Math.max(Math.abs(x[i]!) * 2 ** -11, 2 ** -25), `F16 [${i}]`);
    // bf16: 8 significant bits
    assert.ok(Math.abs(b[i]! - x[i]!) <= Math.abs(x[i]!) * 2 ** -8, `BF16 [${i}]`);
  }
});

/** Root-mean-square of a - b. */
function rms(a: Float32Array, b?: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - (b ? b[i]! : 0)) ** 2;
  return Math.sqrt(s / a.length);
}

test("K types' rms error on gaussian data is at most 1.1x uniform-grid noise (step / sqrt 12)", () => {
  const n = 256 * 64;
  const x = sample(DISTS.gauss!, n, 5);
  // model: a uniform grid of nmax steps over each sub-block's range (Q4_K/Q5_K: 32 elements,
  // [min(x,0), max]) or levels of amax/32 (Q6_K: 16 elements); quantization noise is step/sqrt(12).
  for (const [type, sub, stepOf] of [
    [GgmlType.Q4_K, 32, (s: ReturnType<typeof stats>) => (s.max - Math.min(s.min, 0)) / 15],
    [GgmlType.Q5_K, 32, (s: ReturnType<typeof stats>) => (s.max - Math.min(s.min, 0)) / 31],
    [GgmlType.Q6_K, 16, (s: ReturnType<typeof stats>) => s.amax / 32],
  ] as const) {
    let noise2 = 0;
    for (let o = 0; o < n; o += sub) noise2 += (stepOf(stats(x, o, sub)) ** 2 / 12) * sub;
    const model = Math.sqrt(noise2 / n);
    const got = rms(dequantize(type, quantizeRow(type, x, n), n), x);
    assert.ok(got <= 1.1 * model, `${GgmlType[type]}: rms ${got} vs model ${model}`);
  }
});

test("all-zero rows round-trip to exact zeros for every type", () => {
  for (const type of [GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_1,
    GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K]) {
    const y = dequantize(type, quantizeRow(type, new Float32Array(512), 512), 512);
    assert.ok(y.every((v) => v === 0), GgmlType[type]);
  }
});

test("Q8_0, Q4_0, Q5_0, F16 and BF16 are idempotent: re-quantizing dequantized data gives the same bytes", () => {
  const x = sample(DISTS.gauss!, 1024, 11);
  for (const type of [GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q5_0, GgmlType.F16, GgmlType.BF16]) {
    const q = quantizeRow(type, x, x.length);
    assert.deepEqual(quantizeRow(type, dequantize(type, q, x.length), x.length), q, GgmlType[type]);
  }
});

test("K quantizers keep sub-block structure: a block with one large sub-block still codes the rest", () => {
  // sub-block 0 spans +-8, the others +-1: with 6-bit relative scales the small ones get scale ~8
  // of 63 levels, so their error must stay well below their own range (here: < 0.25).
  const x = sample(DISTS.uniform!, 256, 3).map((v, i) => (i < 32 ? 8 * v : v));
  for (const type of [GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K]) {
    const y = dequantize(type, quantizeRow(type, x, 256), 256);
    for (let i = 32; i < 256; i++) assert.ok(Math.abs(y[i]! - x[i]!) < 0.25, `${GgmlType[type]} [${i}]`);
  }
});

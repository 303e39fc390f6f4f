// The ggml-mirroring numerics of the reference backend, on hand-computed cases: activation
// rounding (act-quant.ts), ggml's f32 summation orders (ops-linear.ts) and ggml_v_expf
// (ops-elementwise.ts). Each expectation is derived in the comment next to it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { GgmlType } from "../../src/backends/dtypes.js";
import { activationQuant, q8KInts, quantizeActivations } from "../../src/backends/reference/act-quant.js";
import { dot32Tiny, dot32Vec } from "../../src/backends/reference/ops-linear.js";
import { ggmlExpf } from "../../src/backends/reference/ops-elementwise.js";

test("activationQuant follows ggml-cpu's vec_dot types", () => {
  assert.equal(activationQuant(GgmlType.F32), "none");
  assert.equal(activationQuant(GgmlType.F16), "f16");
  assert.equal(activationQuant(GgmlType.Q4_0), "q8_0");
  assert.equal(activationQuant(GgmlType.Q8_0), "q8_0");
  assert.equal(activationQuant(GgmlType.Q4_K), "q8_K");
  assert.equal(activationQuant(GgmlType.Q6_K), "q8_K");
});

test("f16 activations round to nearest, ties to even", () => {
  // 1 + 2^-11 is halfway between 1 and 1 + 2^-10 -> 1 (even); 1 + 3*2^-11 -> 1 + 2^-9 (even)
  const x = Float32Array.from([1 + 2 ** -11, 1 + 3 * 2 ** -11, 65504, -2.5]);
  const out = new Float32Array(4);
  quantizeActivations("f16", x, 1, 4, out);
  assert.deepEqual([...out], [1, 1 + 2 ** -9, 65504, -2.5]);
});

test("Q8_0 activations: d = amax/127 in f16, q = x * (127/amax) rounded half to even", () => {
  // amax = 127 -> id = 1, d = 1: q = x rounded, ties to even (63.5 -> 64, 2.5 -> 2, -0.5 -> 0: an int8)
  const x = new Float32Array(32);
  x.set([127, 63.5, 2.5, -0.5, 1.49, -127]);
  const out = new Float32Array(32);
  quantizeActivations("q8_0", x, 1, 32, out);
  assert.deepEqual([...out.subarray(0, 6)], [127, 64, 2, 0, 1, -127]);
  assert.ok(out.subarray(6).every((v) => v === 0));
});

test("Q8_K activations: the largest-magnitude value maps to -127, d = 1/iscale in f32", () => {
  // max = -10 (largest magnitude, negative): iscale = f32(-127 / -10) = f32(12.7); q(-10) = -127,
  // q(5) = round(f32(f32(12.7) * 5)) = round(63.5) = 64 (tie to even), q(0.1) = round(1.27) = 1
  const x = new Float32Array(256);
  x.set([-10, 5, 0.1]);
  const qs = new Int8Array(256);
  const d = q8KInts(x, 0, qs, 0);
  assert.deepEqual([...qs.subarray(0, 3)], [-127, 64, 1]);
  assert.equal(d, Math.fround(1 / Math.fround(12.7)));
  // positive maximum: iscale = -127/10, so q(10) = -127 and d < 0
  x[0] = 10;
  const d2 = q8KInts(x, 0, qs, 0);
  assert.equal(qs[0], -127);
  assert.ok(d2 < 0);
  // dequantized values are q * d
  const out = new Float32Array(256);
  quantizeActivations("q8_K", x, 1, 256, out);
  assert.equal(out[0], Math.fround(-127 * d2));
});

test("dot32Tiny sums 8 f32 lanes then (t0 + t2) + (t1 + t3), t_i = lane_i + lane_{i+4}", () => {
  // lanes: [2^24, 0, 0, 0, 1, 0, 0, 0]: t0 = f32(2^24 + 1) = 2^24 (tie to even); the f64 sum is 2^24 + 1
  const x = new Float32Array(8).fill(1), w = new Float32Array(8);
  w[0] = 2 ** 24; w[4] = 1;
  assert.equal(dot32Tiny(x, 0, w, 0, 8), 2 ** 24);
  // lane accumulation: 16 elements, lane 0 gets w[0] and w[8] by fma: 2^24 + 1 -> 2^24, then + 1 -> 2^24
  const w2 = new Float32Array(16); w2[0] = 2 ** 24; w2[8] = 1;
  assert.equal(dot32Tiny(new Float32Array(16).fill(1), 0, w2, 0, 16), 2 ** 24);
});

test("dot32Vec: 4x8 accumulators reduced as GGML_F32x8_REDUCE, tail after", () => {
  // acc[0] = 2^24, acc[16] = 1, acc[8] = 1, acc[24] = 1:
  // acc[0] += acc[16] -> 2^24 (tie to even), acc[8] += acc[24] -> 2, acc[0] += acc[8] -> 2^24 + 2
  const x = new Float32Array(33).fill(1), w = new Float32Array(33);
  w[0] = 2 ** 24; w[16] = 1; w[8] = 1; w[24] = 1;
  assert.equal(dot32Vec(x, 0, w, 0, 32, false), 2 ** 24 + 2);
  // k = 33: the tail element is added after the reduction; f32 tail: 2^24 + 2 + 1 -> 2^24 + 4 (tie to even)
  w[32] = 1;
  assert.equal(dot32Vec(x, 0, w, 0, 33, false), 2 ** 24 + 4);
  // vec_dot_f16 adds its tail in f64: 2^24 + 3 exactly (the caller stores it to f32 later)
  assert.equal(dot32Vec(x, 0, w, 0, 33, true), 2 ** 24 + 3);
});

test("ggmlExpf: within 2 f32 ulp of exp, exact at 0, flushes far below", () => {
  assert.equal(ggmlExpf(0), 1);
  assert.equal(ggmlExpf(-Infinity), 0);
  assert.equal(ggmlExpf(-200), 0);
  for (let v = -80; v <= 80; v += 0.37) {
    const x = Math.fround(v), got = ggmlExpf(x), want = Math.exp(x);
    const ulp = 2 ** (Math.floor(Math.log2(want)) - 23);
    assert.ok(Math.abs(got - want) <= 2 * ulp, `exp(${x}): ${got} vs ${want}`);
    assert.equal(got, Math.fround(got), "an f32 value");
  }
});

test("glibcSinCosf reproduces glibc's sinf/cosf where f32(Math.sin/cos) does not", async () => {
  const { glibcSinCosf } = await import("../../src/backends/reference/ops-rope.js");
  // values printed by this machine's glibc (printf("%a", sinf(x))) for two rope angles
  // (theta_0 = 1, 2 times 500000^(-2i/128) for i = 3, 4); f32(Math.sin) is 1 ulp off on the first,
  // f32(Math.cos) on the second
  const hx = (m: string, e: number): number => parseInt(m, 16) * 2 ** (e - 24);
  const t1 = hx("114c708", -1), t2 = hx("1c2ef74", -1);
  assert.equal(glibcSinCosf(t1, false), hx("1077e22", -1));
  assert.equal(glibcSinCosf(t2, true), hx("145ee98", -1));
  assert.notEqual(Math.fround(Math.sin(t1)), hx("1077e22", -1));
  // tiny and quadrant-reduced arguments stay within 1 ulp of the true values
  assert.equal(glibcSinCosf(2 ** -13, true), 1);
  assert.equal(glibcSinCosf(2 ** -13, false), 2 ** -13);
  for (const x of [0.7, 1, 2.5, -3, 10.25, 57.3, -119]) {
    const f = Math.fround(x);
    for (const [got, want] of [[glibcSinCosf(f, false), Math.sin(f)], [glibcSinCosf(f, true), Math.cos(f)]] as const) {
      assert.ok(Math.abs(got - want) <= 2 ** (Math.floor(Math.log2(Math.abs(want))) - 23), `${x}: ${got} vs ${want}`);
    }
  }
});

// Hand-built blocks with known bytes -> expected values worked out from the block layouts in
// ggml-common.h (not from the code under test). f16 constants: 0x3c00 = 1, 0x3800 = 0.5,
// 0x3400 = 0.25, 0xbc00 = -1, 0xb800 = -0.5, 0xc000 = -2.
import { test } from "node:test";
import assert from "node:assert/strict";
import { GgmlType } from "../../src/backends/dtypes.js";
import { ValidationError } from "../../src/errors.js";
import { dequantize, dequantizeRow, quantizeRow } from "../../src/backends/reference/quant.js";
import { minK4, packScalesK4, scaleK4 } from "../../src/backends/reference/quant-k.js";

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const f16le = (h: number) => [h & 0xff, h >>> 8];

test("Q4_0: low nibbles are elements 0..15, high nibbles 16..31, x = (q - 8) * d", () => {
  // block 0: d = 0.5, qs[j] = j | (15 - j) << 4; block 1: d = -2 (negative scale), qs all 0x1f
  const b0 = [...f16le(0x3800), ...range(16).map((j) => j | ((15 - j) << 4))];
  const b1 = [...f16le(0xc000), ...range(16).map(() => 0x1f)];
  const x = dequantize(GgmlType.Q4_0, new Uint8Array([...b0, ...b1]), 64);
  assert.deepEqual([...x.subarray(0, 16)], range(16).map((j) => (j - 8) * 0.5)); // -4 .. 3.5
  assert.deepEqual([...x.subarray(16, 32)], range(16).map((j) => (7 - j) * 0.5)); // 3.5 .. -4
  assert.deepEqual([...x.subarray(32, 48)], range(16).map(() => -14)); // (15 - 8) * -2
  assert.deepEqual([...x.subarray(48, 64)], range(16).map(() => 14)); // (1 - 8) * -2
});

test("Q4_1: x = q * d + m with the min term", () => {
  const b = [...f16le(0x3400), ...f16le(0xbc00), ...range(16).map((j) => j | ((15 - j) << 4))];
  const x = dequantize(GgmlType.Q4_1, new Uint8Array(b), 32);
  assert.equal(x[0], -1); // 0 * 0.25 - 1
  assert.equal(x[15], 2.75); // 15 * 0.25 - 1
  assert.equal(x[16], 2.75);
  assert.equal(x[31], -1);
  assert.deepEqual([...x.subarray(0, 16)], range(16).map((j) => j * 0.25 - 1));
});

test("Q5_0: bit j of qh is the 5th bit of element j, x = (q - 16) * d", () => {
  // qh = 0x80000001: elements 0 and 31 have the 5th bit. qs[15] = 0xf0: element 31's low bits = 15.
  const qs = range(16).map((j) => (j === 15 ? 0xf0 : 0x00));
  const b = [...f16le(0x3c00), 0x01, 0x00, 0x00, 0x80, ...qs];
  const x = dequantize(GgmlType.Q5_0, new Uint8Array(b), 32);
  const expected = range(32).map(() => -16);
  expected[0] = 0; // (0 | 16) - 16
  expected[31] = 15; // (15 | 16) - 16
  assert.deepEqual([...x], expected);
  // negative scale, all 5th bits set, nibbles j: x[j] = ((j | 16) - 16) * -0.5 = -j / 2
  const b2 = [...f16le(0xb800), 0xff, 0xff, 0xff, 0xff, ...range(16).map((j) => j | (j << 4))];
  const x2 = dequantize(GgmlType.Q5_0, new Uint8Array(b2), 32);
  assert.deepEqual([...x2], range(32).map((i) => (i % 16) * -0.5)); // includes -0 for q = 16
});

test("Q5_1: x = q * d + m, q up to 31", () => {
  // d = 0.5, m = 0.25, qh = 0x0000ffff (elements 0..15 get the 5th bit), qs[j] = j | (15 - j) << 4
  const b = [...f16le(0x3800), ...f16le(0x3400), 0xff, 0xff, 0x00, 0x00, ...range(16).map((j) => j | ((15 - j) << 4))];
  const x = dequantize(GgmlType.Q5_1, new Uint8Array(b), 32);
  assert.deepEqual([...x.subarray(0, 16)], range(16).map((j) => (16 + j) * 0.5 + 0.25)); // 8.25 .. 15.75
  assert.deepEqual([...x.subarray(16)], range(16).map((j) => (15 - j) * 0.5 + 0.25)); // 7.75 .. 0.25
});

test("Q8_0: int8 quants times d (negative d, -128 and 127)", () => {
  const qs = [0x80, 0x7f, 0x00, 0x01, 0xff, ...range(27).map((j) => j)];
  const x = dequantize(GgmlType.Q8_0, new Uint8Array([...f16le(0xb800), ...qs]), 32);
  assert.deepEqual([...x.subarray(0, 5)], [64, -63.5, -0, -0.5, 0.5]);
  assert.ok(Object.is(x[2], -0)); // 0 * -0.5
  assert.deepEqual([...x.subarray(5)], range(27).map((j) => j * -0.5));
});

// Sub-block scales / mins for the K tests (6 bits each) and their packed bytes, worked out by hand:
// bytes 0-3: sc[j] | (sc[j+4] >> 4) << 6; bytes 4-7: m[j] | (m[j+4] >> 4) << 6;
// bytes 8-11: (sc[j+4] & 15) | (m[j+4] & 15) << 4.
const SC = [1, 2, 3, 63, 17, 33, 48, 5];
const MN = [0, 1, 62, 4, 16, 32, 63, 7];
const PACKED = [0x41, 0x82, 0xc3, 0x3f, 0x40, 0x81, 0xfe, 0x04, 0x01, 0x01, 0xf0, 0x75];

test("K-quant 6-bit scale/min packing (get_scale_min_k4) decodes and encodes the hand-packed bytes", () => {
  const b = new Uint8Array(PACKED);
  assert.deepEqual(range(8).map((j) => scaleK4(b, 0, j)), SC);
  assert.deepEqual(range(8).map((j) => minK4(b, 0, j)), MN);
  const out = new Uint8Array(13);
  packScalesK4(out, 1, new Uint8Array(SC), new Uint8Array(MN));
  assert.deepEqual([...out.subarray(1)], PACKED);
});

test("Q4_K: 8 sub-blocks, x = d * sc * q - dmin * m, nibble order per 64", () => {
  // d = 0.5, dmin = 0.25; qs[32c + l] = (l & 15) | ((l + c) & 15) << 4
  const qs = range(128).map((i) => ((i % 32) & 15) | ((((i % 32) + (i >> 5)) & 15) << 4));
  const b = new Uint8Array([...f16le(0x3800), ...f16le(0x3400), ...PACKED, ...qs]);
  const x = dequantize(GgmlType.Q4_K, b, 256);
  assert.equal(x[101], 188); // c = 1, high nibble -> sub-block 3: 0.5 * 63 * 6 - 0.25 * 4
  assert.equal(x[0], 0); // sub-block 0: 0.5 * 1 * 0 - 0.25 * 0
  assert.equal(x[32 + 1], 0.5 * 2 * 1 - 0.25 * 1); // sub-block 1, q = 1
  const expected = range(256).map((i) => {
    const c = i >> 6, hi = (i >> 5) & 1, l = i & 31, sb = 2 * c + hi;
    const q = hi ? (l + c) & 15 : l & 15;
    return 0.5 * SC[sb]! * q - 0.25 * MN[sb]!;
  });
  assert.deepEqual([...x], expected);
});

test("Q5_K: as Q4_K plus qh bit 2c (low half) / 2c+1 (high half) of qh[l]", () => {
  const qh = range(32).map((l) => (l * 7) & 0xff);
  const qs = range(128).map((i) => ((i % 32) & 15) | (((i >> 5) * 3) << 4));
  const b = new Uint8Array([...f16le(0x3c00), ...f16le(0x3800), ...PACKED, ...qh, ...qs]);
  const x = dequantize(GgmlType.Q5_K, b, 256);
  // element 64 * 2 + 32 + 9 = 169: c = 2, high half -> sub-block 5 (sc 33, m 32); nibble 2 * 3 = 6;
  // qh[9] = 63 = 0b111111, bit 2c+1 = 5 set -> q = 22; x = 1 * 33 * 22 - 0.5 * 32 = 710
  assert.equal(x[169], 710);
  const expected = range(256).map((i) => {
    const c = i >> 6, hi = (i >> 5) & 1, l = i & 31, sb = 2 * c + hi;
    const q = (hi ? c * 3 : l & 15) | (((qh[l]! >> (2 * c + hi)) & 1) << 4);
    return 1 * SC[sb]! * q - 0.5 * MN[sb]!;
  });
  assert.deepEqual([...x], expected);
});

test("Q6_K: ql/qh split layout, int8 scales (negative), x = d * sc * (q - 32)", () => {
  const ql = range(128).map((i) => (i * 37) & 0xff);
  const qh = range(64).map((i) => (i * 91 + 5) & 0xff);
  const sc = range(16).map((i) => (i % 2 ? -(i + 1) : i + 1));
  const b = new Uint8Array([...ql, ...qh, ...sc.map((s) => s & 0xff), ...f16le(0x3800)]);
  const x = dequantize(GgmlType.Q6_K, b, 256);
  // element 0: low 4 = ql[0] & 15 = 0, high 2 = qh[0] & 3 = 1 -> q = 16 - 32 = -16; sc[0] = 1: -8
  assert.equal(x[0], -8);
  // element 255: half 1, k = 3, l = 31: ql[127] = 91 -> high nibble 5; qh[63] = 106 -> bits 6-7 = 1;
  // q = 21 - 32 = -11; sc[15] = -16: 0.5 * -16 * -11 = 88
  assert.equal(x[255], 88);
  const expected = range(256).map((i) => {
    const h = i >> 7, k = (i >> 5) & 3, l = i & 31;
    const byte = ql[64 * h + l + 32 * (k & 1)]!;
    const q = (k < 2 ? byte & 15 : byte >> 4) | (((qh[32 * h + l]! >> (2 * k)) & 3) << 4);
    return 0.5 * sc[i >> 4]! * (q - 32);
  });
  assert.deepEqual([...x], expected);
});

test("F32 / F16 / BF16 rows decode from any byte offset (no alignment assumed)", () => {
  const vals = [1, -2.5, 0.25, 65504, -0];
  const f32 = new Uint8Array(new Float32Array(vals).buffer);
  const f16 = new Uint8Array([0x00, 0x3c, 0x00, 0xc1, 0x00, 0x34, 0xff, 0x7b, 0x00, 0x80]);
  const bf16 = new Uint8Array([0x80, 0x3f, 0x20, 0xc0, 0x80, 0x3e, 0x80, 0x47, 0x00, 0x80]);
  for (const [type, bytes, want] of [
    [GgmlType.F32, f32, vals], [GgmlType.F16, f16, vals], [GgmlType.BF16, bf16, [1, -2.5, 0.25, 65536, -0]],
  ] as const) {
    for (const shift of [0, 1, 3]) {
      const buf = new Uint8Array(bytes.length + shift + 2);
      buf.set(bytes, shift);
      const out = new Float32Array(8).fill(9);
      dequantizeRow(type, buf.subarray(shift), vals.length, out, 2);
      assert.deepEqual([...out], [9, 9, ...want, 9], `${GgmlType[type]} at byte offset ${shift}`);
    }
  }
});

test("block types decode the same from an odd byte offset", () => {
  const x = Float32Array.from(range(512), (i) => Math.sin(i * 0.7) * 3);
  for (const t of [GgmlType.Q8_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q4_K, GgmlType.Q6_K]) {
    const q = quantizeRow(t, x, 512);
    const buf = new Uint8Array(q.length + 5);
    buf.set(q, 5);
    assert.deepEqual(dequantize(t, buf.subarray(5), 512), dequantize(t, q, 512), GgmlType[t]);
  }
});

test("bad input gets a ValidationError naming the field and value", () => {
  const src = new Uint8Array(1000);
  const out = new Float32Array(256);
  assert.throws(() => dequantizeRow(GgmlType.Q2_K, src, 256, out), (e: unknown) =>
    e instanceof ValidationError && e.field === "type" && /Q2_K/.test(e.message));
  assert.throws(() => dequantizeRow(99 as GgmlType, src, 32, out), (e: unknown) =>
    e instanceof ValidationError && /type#99/.test(e.message));
  assert.throws(() => dequantizeRow(GgmlType.Q4_0, src, 33, out), (e: unknown) =>
    e instanceof ValidationError && e.field === "n" && e.value === 33);
  assert.throws(() => dequantizeRow(GgmlType.Q6_K, src.subarray(0, 209), 256, out), (e: unknown) =>
    e instanceof ValidationError && e.field === "src.length" && e.value === 209);
  assert.throws(() => dequantizeRow(GgmlType.Q8_0, src, 64, out, 200), (e: unknown) =>
    e instanceof ValidationError && e.field === "outOffset" && e.value === 200);
  assert.throws(() => quantizeRow(GgmlType.Q4_K, new Float32Array(300), 300), (e: unknown) =>
    e instanceof ValidationError && e.field === "n" && e.value === 300);
  assert.throws(() => quantizeRow(GgmlType.I8, new Float32Array(4), 4), (e: unknown) =>
    e instanceof ValidationError && e.field === "type" && /I8/.test(e.message));
  assert.throws(() => quantizeRow(GgmlType.Q8_0, new Float32Array(31), 32), (e: unknown) =>
    e instanceof ValidationError && e.field === "src.length" && e.value === 31);
});

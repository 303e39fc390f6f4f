// f16 / bf16 conversions on edge values. Expected bit patterns are written from the IEEE formats:
// f16 = 1 sign, 5 exponent (bias 15), 10 mantissa bits; bf16 = the top 16 bits of an f32.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  bf16ArrayToF32, bf16ToF32, f16ArrayToF32, f16ToF32, f32ArrayToBf16, f32ArrayToF16, f32ToBf16, f32ToF16,
} from "../../src/backends/reference/f16.js";

test("f16ToF32 decodes zeros, subnormals, normals, max, inf and nan", () => {
  assert.ok(Object.is(f16ToF32(0x0000), 0));
  assert.ok(Object.is(f16ToF32(0x8000), -0));
  assert.equal(f16ToF32(0x0001), 2 ** -24); // smallest subnormal
  assert.equal(f16ToF32(0x03ff), 1023 * 2 ** -24); // largest subnormal
  assert.equal(f16ToF32(0x0400), 2 ** -14); // smallest normal
  assert.equal(f16ToF32(0x3c00), 1);
  assert.equal(f16ToF32(0xc000), -2);
  assert.equal(f16ToF32(0x3555), (1024 + 0x155) / 4096); // exponent 13 -> 2^-2, mantissa 0x155
  assert.equal(f16ToF32(0x7bff), 65504);
  assert.equal(f16ToF32(0x7c00), Infinity);
  assert.equal(f16ToF32(0xfc00), -Infinity);
  assert.ok(Number.isNaN(f16ToF32(0x7e00)));
  assert.ok(Number.isNaN(f16ToF32(0xfc01)));
});

test("f32ToF16 rounds to nearest even, with subnormals, overflow, inf and nan", () => {
  assert.equal(f32ToF16(0), 0x0000);
  assert.equal(f32ToF16(-0), 0x8000);
  assert.equal(f32ToF16(1), 0x3c00);
  assert.equal(f32ToF16(-1.5), 0xbe00);
  assert.equal(f32ToF16(65504), 0x7bff);
  assert.equal(f32ToF16(65519), 0x7bff); // below the 65520 midpoint
  assert.equal(f32ToF16(65520), 0x7c00); // midpoint ties to even = inf
  assert.equal(f32ToF16(1e6), 0x7c00);
  assert.equal(f32ToF16(-1e6), 0xfc00);
  assert.equal(f32ToF16(Infinity), 0x7c00);
  assert.equal(f32ToF16(-Infinity), 0xfc00);
  assert.equal(f32ToF16(NaN), 0x7e00);
  // subnormals: units of 2^-24
  assert.equal(f32ToF16(2 ** -24), 0x0001);
  assert.equal(f32ToF16(2 ** -25), 0x0000); // tie between 0 and 1 unit -> 0 (even)
  assert.equal(f32ToF16(1.5 * 2 ** -25), 0x0001);
  assert.equal(f32ToF16(3 * 2 ** -25), 0x0002); // tie between 1 and 2 units -> 2
  assert.equal(f32ToF16(-5 * 2 ** -25), 0x8002); // tie between 2 and 3 units -> 2
  assert.equal(f32ToF16(1023 * 2 ** -24), 0x03ff);
  assert.equal(f32ToF16(1023.5 * 2 ** -24), 0x0400); // tie between 1023 units and 2^-14 -> 0x400 (even)
  assert.equal(f32ToF16(1e-10), 0x0000);
  // normal ties: 1 + 2^-11 is halfway between 1 and 1 + 2^-10
  assert.equal(f32ToF16(1 + 2 ** -11), 0x3c00);
  assert.equal(f32ToF16(1 + 3 * 2 ** -11), 0x3c02);
  assert.equal(f32ToF16(1 + 2 ** -11 + 2 ** -20), 0x3c01);
  assert.equal(f32ToF16(2049), 0x6800); // 2048..2050 tie -> 2048
  assert.equal(f32ToF16(2051), 0x6802); // 2050..2052 tie -> 2052
  assert.equal(f32ToF16(2 - 2 ** -12), 0x4000); // tie at the top of a binade carries into the exponent
});

test("f16 -> f32 -> f16 is the identity for every non-nan f16", () => {
  for (let h = 0; h < 65536; h++) {
    if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) continue;
    if (f32ToF16(f16ToF32(h)) !== h) assert.fail(`0x${h.toString(16)} -> ${f16ToF32(h)} -> 0x${f32ToF16(f16ToF32(h)).toString(16)}`);
  }
});

/** Next f32 above / below a positive f32 value. */
function f32Step(x: number, dir: 1 | -1): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer);
  u[0] = u[0]! + dir;
  return f[0]!;
}

test("every midpoint between consecutive positive f16 values rounds to the even one", () => {
  for (let h = 0; h < 0x7bff; h++) {
    const a = f16ToF32(h);
    const b = f16ToF32(h + 1);
    const mid = (a + b) / 2; // exact in f32: at most 12 significant bits
    const even = h % 2 === 0 ? h : h + 1;
    if (f32ToF16(mid) !== even) assert.fail(`midpoint of 0x${h.toString(16)}: got 0x${f32ToF16(mid).toString(16)}`);
    if (f32ToF16(f32Step(mid, 1)) !== h + 1) assert.fail(`above midpoint of 0x${h.toString(16)}`);
    if (f32ToF16(f32Step(mid, -1)) !== h) assert.fail(`below midpoint of 0x${h.toString(16)}`);
    if (f32ToF16(-mid) !== (even | 0x8000)) assert.fail(`negative midpoint of 0x${h.toString(16)}`);
  }
});

test("bf16ToF32 / f32ToBf16 on edge values, ties to even, nan made quiet", () => {
  assert.equal(bf16ToF32(0x3f80), 1);
  assert.ok(Object.is(bf16ToF32(0x8000), -0));
  assert.equal(bf16ToF32(0xc040), -3);
  assert.equal(bf16ToF32(0x0001), 2 ** -133); // smallest subnormal: 2^-149 * 2^16
  assert.equal(bf16ToF32(0x7f80), Infinity);
  assert.equal(bf16ToF32(0xff80), -Infinity);
  assert.equal(bf16ToF32(0x7f7f), (2 - 2 ** -7) * 2 ** 127); // largest finite bf16
  assert.ok(Number.isNaN(bf16ToF32(0x7fc0)));
  assert.equal(f32ToBf16(0), 0x0000);
  assert.equal(f32ToBf16(-0), 0x8000);
  assert.equal(f32ToBf16(1), 0x3f80);
  assert.equal(f32ToBf16(1 + 2 ** -8), 0x3f80); // tie -> even mantissa (...0)
  assert.equal(f32ToBf16(1 + 3 * 2 ** -8), 0x3f82); // tie -> even mantissa (...2)
  assert.equal(f32ToBf16(1 + 2 ** -8 + 2 ** -20), 0x3f81); // above the tie
  assert.equal(f32ToBf16(2 ** -130), 0x0008); // f32 subnormal 0x00080000 keeps its top bits
  assert.equal(f32ToBf16(2 ** -140), 0x0000); // f32 subnormal 0x00000200 rounds to +0
  assert.equal(f32ToBf16(3.4028234663852886e38), 0x7f80); // f32 max rounds up to inf
  assert.equal(f32ToBf16(Infinity), 0x7f80);
  assert.equal(f32ToBf16(-Infinity), 0xff80);
  assert.equal(f32ToBf16(NaN), 0x7fc0);
});

test("bulk converters agree with the scalar ones and honour dstOffset", () => {
  const bits = new Uint16Array([0x0000, 0x8000, 0x0001, 0x3c00, 0xc000, 0x7bff, 0x7c00, 0x3555]);
  const out = new Float32Array(bits.length + 3).fill(7);
  f16ArrayToF32(bits, out, 3);
  assert.deepEqual([...out.subarray(0, 3)], [7, 7, 7]);
  assert.deepEqual([...out.subarray(3)], [...bits].map(f16ToF32));
  bf16ArrayToF32(bits, out, 2);
  assert.deepEqual([...out.subarray(2, 2 + bits.length)], [...bits].map(bf16ToF32));
  const xs = new Float32Array([0, -0, 1.5, -2.25, 1e-7, 70000, 3.14159]);
  const h = new Uint16Array(xs.length + 1);
  f32ArrayToF16(xs, h, 1);
  assert.deepEqual([...h.subarray(1)], [...xs].map(f32ToF16));
  f32ArrayToBf16(xs, h, 1);
  assert.deepEqual([...h.subarray(1)], [...xs].map(f32ToBf16));
});

// glibc's expf (sysdeps/ieee754/flt-32/e_expf.c, the __expf_fma variant x86-64 glibc selects on CPUs
// with FMA), reproduced to the bit. ggml calls libm expf in a few scalar tails (ggml_silu_f32 for the
// n % 8 elements of SwiGLU); glibc's expf is not correctly rounded (<= 0.502 ulp), so near a tie it
// can round the other way from fround(Math.exp(x)), and the reference must follow glibc, not the
// exact value. Algorithm: x·32/ln2 = k + r (k by adding 1.5·2^52), exp(x) = 2^(k/32) · p(r) with a
// 32-entry 2^(i/32) table and a cubic in r, all in f64, three fused multiply-adds, one f32 rounding.

const N = 32;
const INV_LN2_N = 0x171547652b82fe / 2 ** 52 * N; // 0x1.71547652b82fep+0 * N
const SHIFT = 1.5 * 2 ** 52;
const C0 = 0x1c6af84b912394 / 2 ** 52 / 2 ** 5 / N / N / N; // 0x1.c6af84b912394p-5 / N^3
const C1 = 0x1ebfce50fac4f3 / 2 ** 52 / 2 ** 3 / N / N; // 0x1.ebfce50fac4f3p-3 / N^2
const C2 = 0x162e42ff0c52d6 / 2 ** 52 / 2 / N; // 0x1.62e42ff0c52d6p-1 / N
/** asuint64(2^(i/32)) - (i << 52) / 32 (glibc's __exp2f_data.tab) */
const TAB = [
  0x3ff0000000000000n, 0x3fefd9b0d3158574n, 0x3fefb5586cf9890fn, 0x3fef9301d0125b51n,
  0x3fef72b83c7d517bn, 0x3fef54873168b9aan, 0x3fef387a6e756238n, 0x3fef1e9df51fdee1n,
  0x3fef06fe0a31b715n, 0x3feef1a7373aa9cbn, 0x3feedea64c123422n, 0x3feece086061892dn,
  0x3feebfdad5362a27n, 0x3feeb42b569d4f82n, 0x3feeab07dd485429n, 0x3feea47eb03a5585n,
  0x3feea09e667f3bcdn, 0x3fee9f75e8ec5f74n, 0x3feea11473eb0187n, 0x3feea589994cce13n,
  0x3feeace5422aa0dbn, 0x3feeb737b0cdc5e5n, 0x3feec49182a3f090n, 0x3feed503b23e255dn,
  0x3feee89f995ad3adn, 0x3feeff76f2fb5e47n, 0x3fef199bdd85529cn, 0x3fef3720dcef9069n,
  0x3fef5818dcfba487n, 0x3fef7c97337b9b5fn, 0x3fefa4afa2a490dan, 0x3fefd0765b6e4540n,
];
const OVERFLOW = 88.72283172607422; // 0x1.62e42ep6: above it expf overflows
const UNDERFLOW = -103.97207641601562; // -0x1.9fe368p6: below it expf is 0

const f64 = new Float64Array(1), u64 = new BigUint64Array(f64.buffer);

/** one f64 value as mantissa · 2^exp with an integer mantissa (exact) */
function split(x: number): [bigint, number] {
  if (x === 0) return [0n, 0];
  f64[0] = x;
  const bits = u64[0]!;
  const e = Number((bits >> 52n) & 0x7ffn);
  let m = bits & 0xfffffffffffffn;
  if (e !== 0) m |= 1n << 52n;
  const sign = bits >> 63n ? -1n : 1n;
  return [sign * m, (e === 0 ? 1 : e) - 1075];
}

/** fma(a, b, c) in f64: a·b + c rounded once (exact integer arithmetic; finite, moderate inputs) */
export function fma64(a: number, b: number, c: number): number {
  const [ma, ea] = split(a), [mb, eb] = split(b), [mc, ec] = split(c);
  const ep = ea + eb, e = Math.min(ep, ec);
  const s = ((ma * mb) << BigInt(ep - e)) + (mc << BigInt(ec - e));
  return Number(s) * 2 ** e; // Number(bigint) rounds to nearest even; the power of two is exact here
}

/** glibc expf(x) for an f32 x, as an f32 value (same bits as __expf_fma) */
export function glibcExpf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x > OVERFLOW) return Infinity;
  if (x < UNDERFLOW) return 0;
  const z = INV_LN2_N * x;
  const kd = z + SHIFT - SHIFT; // round to the nearest integer, ties to even
  const r = z - kd;
  const k = BigInt(kd);
  f64[0] = 0;
  u64[0] = BigInt.asUintN(64, TAB[Number(k & 31n)]! + (k << 47n));
  const s = f64[0];
  const p = fma64(C0, r, C1);
  const y = fma64(p, r * r, fma64(C2, r, 1));
  return Math.fround(y * s);
}

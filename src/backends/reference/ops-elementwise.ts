// Reference elementwise ops: RMSNorm, SwiGLU, add, bias. All in f32 exactly as ggml-cpu computes
// them (ggml-cpu/ops.cpp, vec.h on AVX2): a GGUF model's output is defined by ggml's arithmetic,
// and the f16/q8 rounding of the next matmul's activations turns a 1-ulp difference here into a
// visible one downstream (see act-quant.ts).

import { glibcExpf } from "./libm.js";

const fr = Math.fround;
const fma = (a: number, b: number, c: number): number => fr(a * b + c); // a*b exact in f64 (f32 inputs)

/** out[m, n] = x / sqrt(mean(x²) + eps) * weight, per row; out may alias x.
 *  ggml_compute_forward_rms_norm_f32 + ggml_mul: sum of f32 squares in f64, mean = f32(sum / n),
 *  scale = 1.0f / sqrtf(mean + eps) in f32, y = f32(f32(x * scale) * w). */
export function rmsNorm(out: Float32Array, x: Float32Array, weight: Float32Array, m: number, n: number, eps: number): void {
  const epsF = fr(eps);
  for (let i = 0; i < m; i++) {
    const o = i * n;
    let ss = 0;
    for (let c = 0; c < n; c++) ss += fr(x[o + c]! * x[o + c]!);
    const mean = fr(ss / n);
    const scale = fr(1 / fr(Math.sqrt(fr(mean + epsF))));
    for (let c = 0; c < n; c++) out[o + c] = fr(x[o + c]! * scale) * weight[c]!;
  }
}

// ggml_v_expf constants (hex float literals of vec.h), exact in f32
const hexf = (mant: string, exp: number): number => (parseInt(mant, 16) / 2 ** (4 * (mant.length - 1))) * 2 ** exp;
const LOG2E = hexf("1715476", 0), LN2_HI = hexf("162e4", -1), LN2_LO = hexf("17f7d1c", -20);
const P0 = hexf("10e4020", -7), P1 = hexf("1573e2e", -5), P2 = hexf("1555e66", -3), P3 = hexf("1fffdb6", -2), P4 = hexf("1ffffec", -1);
const SHIFT = 12582912; // 0x1.8p23
const bitsF = new Float32Array(1), bitsU = new Uint32Array(bitsF.buffer);
const toBits = (f: number): number => { bitsF[0] = f; return bitsU[0]!; };
const fromBits = (u: number): number => { bitsU[0] = u >>> 0; return bitsF[0]!; };
const ONE_BITS = 0x3f800000;

/** ggml_v_expf (vec.h, AVX2+FMA), one lane: exp(x) in f32, max error ~1.5 ulp, the same bits as ggml. */
export function ggmlExpf(x: number): number {
  const z = fma(x, LOG2E, SHIFT);
  const n = fr(z - SHIFT);
  const b = fr(fr(x - n * LN2_HI) - n * LN2_LO); // fnmadd(n, LN2_LO, fnmadd(n, LN2_HI, x))
  const e = (toBits(z) << 23) >>> 0;
  const k = fromBits(e + ONE_BITS);
  const u = fr(b * b);
  const j = fma(fma(fma(P0, b, P1), u, fma(P2, b, P3)), u, fr(P4 * b));
  if (!(Math.abs(n) > 126)) return fma(j, k, k);
  const g = n <= 0 ? 0x82000000 : 0;
  const s1 = fromBits(g + 0x7f000000);
  if (Math.abs(n) > 192) return fr(s1 * s1);
  const s2 = fromBits(e - g);
  return fr(fma(s2, j, s2) * s1);
}

/** out[m, n] = silu(gate) * up, gateUp [m, 2n] = per row [gate(n) | up(n)].
 *  ggml_vec_swiglu_f32 per row: groups of 8 use ggml_v_silu = x / (1 + ggml_v_expf(-x)) in f32;
 *  the n % 8 tail uses ggml_silu_f32 = x / (1.0f + expf(-x)) (glibc's expf, bit for bit: libm.ts). */
export function siluMul(out: Float32Array, gateUp: Float32Array, m: number, n: number): void {
  const vec = n - (n % 8);
  for (let i = 0; i < m; i++) {
    const g0 = i * 2 * n, u0 = g0 + n, o = i * n;
    for (let c = 0; c < n; c++) {
      const g = gateUp[g0 + c]!;
      const e = c < vec ? ggmlExpf(-g) : glibcExpf(-g);
      out[o + c] = fr(g / fr(1 + e)) * gateUp[u0 + c]!;
    }
  }
}

/** out[i] = a[i] + b[i], i < n (f32); out may alias a */
export function add(out: Float32Array, a: Float32Array, b: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) out[i] = a[i]! + b[i]!;
}

/** out[m, n] += bias[n] (f32) */
export function addBias(out: Float32Array, bias: Float32Array, m: number, n: number): void {
  for (let i = 0; i < m; i++) {
    const o = i * n;
    for (let c = 0; c < n; c++) out[o + c] = out[o + c]! + bias[c]!;
  }
}

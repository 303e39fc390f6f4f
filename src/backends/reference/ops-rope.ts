// Reference rotary embedding. "norm" rotates pairs (2i, 2i+1) (GGUF llama, Q/K rows permuted by the
// converter); "neox" rotates pairs (i, i + ropeDim/2) (HF rotate_half). Pair i uses angle pos*invFreq[i],
// or, when p.ggml is given, ggml-cpu's own f32 angles (see angles()).
import type { RopeParams } from "../backend.js";
import { ValidationError } from "../../errors.js";

const fr = Math.fround;

// --- cosf/sinf exactly as glibc computes them (sysdeps/ieee754/flt-32 s_sinf.c / s_cosf.c,
// sincosf_poly.h; the x86-64 FMA ifunc variant, so a + b*c is one fused operation), which is what
// ggml's rope cache calls on this machine. Math.cos rounded to f32 differs in ~1.5% of angles.
/** hex float: "1.xxxxxxxxxxxxx" (13 hex digits after the point) * 2^exp, exact */
const hexd = (m: string, exp: number): number => parseInt(m.replace(".", ""), 16) * 2 ** (exp - 4 * (m.length - 2));
const HPI_INV = hexd("1.45F306DC9C883", 23), HPI = hexd("1.921FB54442D18", 0);
const COS = [1, -hexd("1.ffffffd0c621c", -2), hexd("1.55553e1068f19", -5), -hexd("1.6c087e89a359d", -10), hexd("1.99343027bf8c3", -16)];
const SIN = [-hexd("1.555545995a603", -3), hexd("1.1107605230bc4", -7), -hexd("1.994eb3774cf24", -13)];
const SPLIT = 134217729; // 2^27 + 1 (Veltkamp split)

/** f64 fused multiply-add a*b + c: exact product (Dekker), one final rounding but for rare ties */
function fma64(a: number, b: number, c: number): number {
  const p = a * b;
  let t = SPLIT * a; const ah = t - (t - a), al = a - ah;
  t = SPLIT * b; const bh = t - (t - b), bl = b - bh;
  const e = ((ah * bh - p) + ah * bl + al * bh) + al * bl;
  const s = p + c, v = s - p, err = (p - (s - v)) + (c - v);
  return s + (err + e);
}

/** sinf_poly: sine polynomial for even n, cosine (negated in the 2nd table: neg = -1) for odd n */
function sinfPoly(x: number, x2: number, neg: number, n: number): number {
  if ((n & 1) === 0) {
    const x3 = x * x2, s1 = fma64(x2, SIN[2]!, SIN[1]!), x7 = x3 * x2, s = fma64(x3, SIN[0]!, x);
    return fr(fma64(x7, s1, s));
  }
  const x4 = x2 * x2, c2 = fma64(x2, neg * COS[4]!, neg * COS[3]!), c1 = fma64(x2, neg * COS[1]!, neg * COS[0]!);
  const x6 = x4 * x2, c = fma64(x4, neg * COS[2]!, c1);
  return fr(fma64(x6, c2, c));
}

const topBits = new Float32Array(1), topU = new Uint32Array(topBits.buffer);
function abstop12(y: number): number { topBits[0] = y; return (topU[0]! >>> 20) & 0x7ff; }

/** glibc sinf (cos = false) / cosf (cos = true) of an f32 angle; |y| >= 120 falls back to f32(Math.sin/cos). */
export function glibcSinCosf(y: number, cos: boolean): number {
  const top = abstop12(y);
  if (top < 0x3f4) { // |y| < pi/4
    if (top < 0x398) return cos ? 1 : y; // |y| < 2^-12
    return sinfPoly(y, y * y, 1, cos ? 1 : 0);
  }
  if (top >= 0x42f) return fr(cos ? Math.cos(y) : Math.sin(y)); // |y| >= 120: glibc's reduce_large, not mirrored
  const n = (((y * HPI_INV) | 0) + 0x800000) >> 24; // reduce_fast without TOINT_INTRINSICS
  const r = fma64(-n, HPI, y);
  const sign = (n & 3) === 1 || (n & 3) === 2 ? -1 : 1; // sign[] = { 1, -1, -1, 1 }
  return sinfPoly(r * sign, r * r, n & 2 ? -1 : 1, cos ? n ^ 1 : n);
}

/** cos/sin [half] for one position into cs[2*half] (cos, sin interleaved).
 *  p.ggml: ggml_rope_cache_init + rope_yarn with ext_factor 0, all in f32: theta starts at pos and
 *  is multiplied by thetaScale per pair; cos = cosf(freqScale * theta / ff) * mscale with glibc's cosf/sinf.
 *  Otherwise angles in f64: pos * invFreq[i]. */
function angles(pos: number, p: RopeParams, half: number, cs: Float64Array): void {
  const g = p.ggml;
  if (!g) {
    for (let i = 0; i < half; i++) {
      const theta = pos * p.invFreq[i]!;
      cs[2 * i] = Math.cos(theta) * p.mscale; cs[2 * i + 1] = Math.sin(theta) * p.mscale;
    }
    return;
  }
  const ms = fr(p.mscale);
  let theta = fr(pos);
  for (let i = 0; i < half; i++) {
    const ext = g.freqFactors ? fr(theta / g.freqFactors[i]!) : theta;
    const t = fr(g.freqScale * ext);
    cs[2 * i] = fr(glibcSinCosf(t, true) * ms); cs[2 * i + 1] = fr(glibcSinCosf(t, false) * ms);
    theta = fr(theta * g.thetaScale);
  }
}

/** x[m, numHeads * headDim] rotated in place; row r at positions[r]. With p.ggml the rotation is
 *  ggml's rotate_pairs in f32 as GCC compiles it (the x0 product contracted into an fma):
 *  x0' = fma(x0, cos, -f32(x1*sin)), x1' = fma(x0, sin, f32(x1*cos)) (measured: bit-identical to
 *  llama.cpp's rope output; the other contraction choices are not). */
export function rope(x: Float32Array, m: number, numHeads: number, positions: Int32Array, p: RopeParams): void {
  const half = p.ropeDim / 2;
  if (p.ropeDim % 2 !== 0 || p.ropeDim > p.headDim) throw new ValidationError("rope.ropeDim", p.ropeDim, `must be even and <= headDim ${p.headDim}`);
  if (p.invFreq.length < half) throw new ValidationError("rope.invFreq", p.invFreq.length, `needs ${half} entries`);
  if (p.ggml?.freqFactors && p.ggml.freqFactors.length < half) throw new ValidationError("rope.ggml.freqFactors", p.ggml.freqFactors.length, `needs ${half} entries`);
  if (positions.length < m) throw new ValidationError("rope.positions", positions.length, `needs ${m} entries`);
  const rowLen = numHeads * p.headDim;
  const cs = new Float64Array(2 * half);
  const f32 = p.ggml !== undefined;
  for (let r = 0; r < m; r++) {
    angles(positions[r]!, p, half, cs);
    for (let i = 0; i < half; i++) {
      const cos = cs[2 * i]!, sin = cs[2 * i + 1]!;
      for (let h = 0; h < numHeads; h++) {
        const base = r * rowLen + h * p.headDim;
        const a = p.style === "norm" ? base + 2 * i : base + i;
        const b = p.style === "norm" ? a + 1 : a + half;
        const x0 = x[a]!, x1 = x[b]!;
        x[a] = f32 ? fr(x0 * cos - fr(x1 * sin)) : x0 * cos - x1 * sin;
        x[b] = f32 ? fr(x0 * sin + fr(x1 * cos)) : x0 * sin + x1 * cos;
      }
    }
  }
}

// Reference rotary embedding. "norm" rotates pairs (2i, 2i+1) (GGUF llama, Q/K rows permuted by the
// converter); "neox" rotates pairs (i, i + ropeDim/2) (HF rotate_half). Pair i uses angle pos*invFreq[i],
// or, when p.ggml is given, ggml-cpu's own f32 angles (see angles()).
import type { RopeParams } from "../backend.js";
import { ValidationError } from "../../errors.js";

const fr = Math.fround;

/** cos/sin [half] for one position into cs[2*half] (cos, sin interleaved).
 *  p.ggml: ggml_rope_cache_init + rope_yarn with ext_factor 0, all in f32: theta starts at pos and
 *  is multiplied by thetaScale per pair; cos = cosf(freqScale * theta / ff) * mscale (cosf/sinf are
 *  correctly rounded f32 results of the f64 Math functions but for rare ties).
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
    cs[2 * i] = fr(fr(Math.cos(t)) * ms); cs[2 * i + 1] = fr(fr(Math.sin(t)) * ms);
    theta = fr(theta * g.thetaScale);
  }
}

/** x[m, numHeads * headDim] rotated in place; row r at positions[r]. With p.ggml the rotation is
 *  ggml's rotate_pairs in f32 as GCC compiles it (the x0 product contracted into an fma):
 *  x0' = fma(x0, cos, -f32(x1*sin)), x1' = fma(x0, sin, f32(x1*cos)); measured against llama.cpp's
 *  rope output: 99% of elements bit-identical (the rest 1 ulp, from libm cosf/sinf). */
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

// Reference rotary embedding. "norm" rotates pairs (2i, 2i+1) (GGUF llama, Q/K rows permuted by the
// converter); "neox" rotates pairs (i, i + ropeDim/2) (HF rotate_half). Pair i uses invFreq[i].
import type { RopeParams } from "../backend.js";
import { ValidationError } from "../../errors.js";

/** x[m, numHeads * headDim] rotated in place; row r at positions[r]. Angles in f64. */
export function rope(x: Float32Array, m: number, numHeads: number, positions: Int32Array, p: RopeParams): void {
  const half = p.ropeDim / 2;
  if (p.ropeDim % 2 !== 0 || p.ropeDim > p.headDim) throw new ValidationError("rope.ropeDim", p.ropeDim, `must be even and <= headDim ${p.headDim}`);
  if (p.invFreq.length < half) throw new ValidationError("rope.invFreq", p.invFreq.length, `needs ${half} entries`);
  if (positions.length < m) throw new ValidationError("rope.positions", positions.length, `needs ${m} entries`);
  const rowLen = numHeads * p.headDim;
  for (let r = 0; r < m; r++) {
    const pos = positions[r]!;
    for (let i = 0; i < half; i++) {
      const theta = pos * p.invFreq[i]!;
      const cos = Math.cos(theta) * p.mscale, sin = Math.sin(theta) * p.mscale;
      for (let h = 0; h < numHeads; h++) {
        const base = r * rowLen + h * p.headDim;
        const a = p.style === "norm" ? base + 2 * i : base + i;
        const b = p.style === "norm" ? a + 1 : a + half;
        const x0 = x[a]!, x1 = x[b]!;
        x[a] = x0 * cos - x1 * sin;
        x[b] = x0 * sin + x1 * cos;
      }
    }
  }
}

// Reference matmul and embedding: dequantize each weight row once per call into scratch and dot it
// (f64 accumulation) with every activation row, so quantized weights cost one decode per call.
import { GgmlType, rowBytes } from "../dtypes.js";
import type { WeightTensor } from "../backend.js";
import { ValidationError } from "../../errors.js";
import { dequantizeRow } from "./quant.js";

let scratch = new Float32Array(0);
function scratchRow(n: number): Float32Array {
  if (scratch.length < n) scratch = new Float32Array(n);
  return scratch;
}

function checkWeight(w: WeightTensor): number {
  const rb = rowBytes(w.dtype, w.cols);
  if (w.data.byteLength < rb * w.rows) {
    throw new ValidationError(`${w.name}.data`, w.data.byteLength, `needs ${rb * w.rows} bytes for [${w.rows}, ${w.cols}]`);
  }
  return rb;
}

/** Rows decoded per dequantizeRow call: a run of whole rows is itself a valid row of r*cols
 *  elements (cols is a multiple of the block size), so decoding ~16K elements at a time keeps the
 *  per-call overhead off the hot loop. F32 weights at a 4-byte-aligned offset are read in place. */
const CHUNK_ELEMS = 16384;

/** out[m, w.rows] = x[m, w.cols] · wᵀ */
export function matmul(out: Float32Array, x: Float32Array, m: number, w: WeightTensor): void {
  const rb = checkWeight(w);
  const k = w.cols, n = w.rows;
  if (x.length < m * k) throw new ValidationError("matmul.x", x.length, `shorter than m*k = ${m}*${k}`);
  if (out.length < m * n) throw new ValidationError("matmul.out", out.length, `shorter than m*n = ${m}*${n}`);
  if (m === 0 || n === 0) return;
  if (w.dtype === GgmlType.F32 && w.data.byteOffset % 4 === 0) {
    dotRows(out, x, m, k, n, new Float32Array(w.data.buffer, w.data.byteOffset, n * k), 0, n);
    return;
  }
  const chunk = Math.max(1, Math.min(n, Math.floor(CHUNK_ELEMS / k)));
  const rows = scratchRow(chunk * k);
  for (let j0 = 0; j0 < n; j0 += chunk) {
    const r = Math.min(chunk, n - j0);
    dequantizeRow(w.dtype, w.data.subarray(j0 * rb, (j0 + r) * rb), r * k, rows, 0);
    dotRows(out, x, m, k, n, rows, j0, r);
  }
}

/** out[i, j0 + j] = Σ_c x[i, c] · w[j, c] for j < r, with w rows [r, k] (f64 accumulation). */
function dotRows(out: Float32Array, x: Float32Array, m: number, k: number, n: number, w: Float32Array, j0: number, r: number): void {
  for (let j = 0; j < r; j++) {
    const wo = j * k;
    for (let i = 0; i < m; i++) {
      // four partial sums (f64) let the JIT pipeline the loop; the tail is summed last
      let a0 = 0, a1 = 0, a2 = 0, a3 = 0, c = 0;
      const xo = i * k;
      for (; c + 3 < k; c += 4) {
        a0 += x[xo + c]! * w[wo + c]!;
        a1 += x[xo + c + 1]! * w[wo + c + 1]!;
        a2 += x[xo + c + 2]! * w[wo + c + 2]!;
        a3 += x[xo + c + 3]! * w[wo + c + 3]!;
      }
      for (; c < k; c++) a0 += x[xo + c]! * w[wo + c]!;
      out[i * n + j0 + j] = a0 + a1 + a2 + a3;
    }
  }
}

/** out[i, :] = dequantized row ids[i] of table [vocab, hidden] */
export function embedding(out: Float32Array, table: WeightTensor, ids: Int32Array): void {
  const rb = checkWeight(table);
  const h = table.cols;
  if (out.length < ids.length * h) throw new ValidationError("embedding.out", out.length, `shorter than ${ids.length}*${h}`);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (id < 0 || id >= table.rows) throw new ValidationError("token id", id, `out of range [0, ${table.rows})`);
    dequantizeRow(table.dtype, table.data.subarray(id * rb, (id + 1) * rb), h, out, i * h);
  }
}

// Reference matmul and embedding: dequantize each weight row once per call into a scratch row and
// dot it (f64 accumulation) with every activation row, so quantized weights cost one decode per call.
import { rowBytes } from "../dtypes.js";
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

/** out[m, w.rows] = x[m, w.cols] · wᵀ */
export function matmul(out: Float32Array, x: Float32Array, m: number, w: WeightTensor): void {
  const rb = checkWeight(w);
  const k = w.cols, n = w.rows;
  if (x.length < m * k) throw new ValidationError("matmul.x", x.length, `shorter than m*k = ${m}*${k}`);
  if (out.length < m * n) throw new ValidationError("matmul.out", out.length, `shorter than m*n = ${m}*${n}`);
  if (m === 0) return;
  const row = scratchRow(k);
  for (let j = 0; j < n; j++) {
    dequantizeRow(w.dtype, w.data.subarray(j * rb, (j + 1) * rb), k, row, 0);
    for (let i = 0; i < m; i++) {
      let acc = 0;
      const xo = i * k;
      for (let c = 0; c < k; c++) acc += x[xo + c]! * row[c]!;
      out[i * n + j] = acc;
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

// The reference backend: plain TypeScript, f32 storage, f64 accumulation. It is the oracle that
// native kernels are tested against, and the fallback when the addon is absent.
import type { AttentionParams, AttnSeq, Backend, KvLayer, RopeParams, WeightTensor } from "../backend.js";
import { embedding, matmul } from "./ops-linear.js";
import { add, addBias, rmsNorm, siluMul } from "./ops-elementwise.js";
import { rope } from "./ops-rope.js";
import { attention, writeKv } from "./ops-attention.js";

export { kvIndex } from "./ops-attention.js";

export class ReferenceBackend implements Backend {
  readonly name = "reference";
  matmul(out: Float32Array, x: Float32Array, m: number, w: WeightTensor): void { matmul(out, x, m, w); }
  embedding(out: Float32Array, table: WeightTensor, ids: Int32Array): void { embedding(out, table, ids); }
  rmsNorm(out: Float32Array, x: Float32Array, weight: Float32Array, m: number, n: number, eps: number): void {
    rmsNorm(out, x, weight, m, n, eps);
  }
  rope(x: Float32Array, m: number, numHeads: number, positions: Int32Array, p: RopeParams): void {
    rope(x, m, numHeads, positions, p);
  }
  siluMul(out: Float32Array, gateUp: Float32Array, m: number, n: number): void { siluMul(out, gateUp, m, n); }
  add(out: Float32Array, a: Float32Array, b: Float32Array, n: number): void { add(out, a, b, n); }
  addBias(out: Float32Array, bias: Float32Array, m: number, n: number): void { addBias(out, bias, m, n); }
  writeKv(kv: KvLayer, k: Float32Array, v: Float32Array, slots: Int32Array): void { writeKv(kv, k, v, slots); }
  attention(out: Float32Array, q: Float32Array, kv: KvLayer, seqs: readonly AttnSeq[], p: AttentionParams): void {
    attention(out, q, kv, seqs, p);
  }
}

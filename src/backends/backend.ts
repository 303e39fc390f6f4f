// The set of ops the models need. `reference/` implements them in plain TypeScript (the oracle);
// `native/` implements them in the C++ addon. All activations are f32, row-major; shapes are
// given as [rows, cols]. Ops write into caller-owned outputs (no allocation on the hot path).
import type { GgmlType } from "./dtypes.js";
import { ValidationError } from "../errors.js";

/** A weight matrix [rows = out features, cols = in features] in its stored type; rows contiguous,
 *  each row quantized in blocks along cols (GGUF and safetensors both store it this way). */
export interface WeightTensor {
  readonly name: string;
  readonly dtype: GgmlType;
  readonly rows: number;
  readonly cols: number;
  /** raw bytes: rows * rowBytes(dtype, cols); usually a view into the mapped file */
  readonly data: Uint8Array;
}

/** KV cache element type: f32, f16 (IEEE half bits) or int8 (symmetric, one f32 scale per token and head). */
export type KvDtype = "f32" | "f16" | "int8";

/** KV cache of one layer: a pool of blocks laid out [numBlocks, 2 (K,V), numKvHeads, tokensPerBlock, headDim].
 *  Block 0 is the permanent null block. A token's slot is block * tokensPerBlock + offset.
 *  int8: each block is [2, numKvHeads, tokensPerBlock, headDim] int8 followed by [2, numKvHeads,
 *  tokensPerBlock] f32 scales (x ~ f32(q * scale)), so a block carries its own scales (copying a
 *  block copies them). */
export interface KvLayer {
  readonly dtype: KvDtype;
  readonly numBlocks: number;
  readonly tokensPerBlock: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  /** f32: Float32Array; f16: Uint16Array of IEEE half bits; int8: Int8Array (quants and scale bytes) */
  readonly data: Float32Array | Uint16Array | Int8Array;
}

/** Elements of one block of one layer's data array (int8: bytes, including the scales). */
export function kvBlockElements(dtype: KvDtype, numKvHeads: number, tokensPerBlock: number, headDim: number): number {
  return 2 * numKvHeads * tokensPerBlock * (headDim + (dtype === "int8" ? 4 : 0));
}

/** A zeroed data array for one layer of numBlocks blocks. */
export function allocKvData(dtype: KvDtype, numBlocks: number, numKvHeads: number, tokensPerBlock: number, headDim: number): KvLayer["data"] {
  const n = numBlocks * kvBlockElements(dtype, numKvHeads, tokensPerBlock, headDim);
  return dtype === "f32" ? new Float32Array(n) : dtype === "f16" ? new Uint16Array(n) : new Int8Array(n);
}

/** Throws unless kv.data has kv.dtype's array type and the pool's length (int8: headDim % 4 == 0 and
 *  a 4-byte aligned array, as the f32 scales are read in place). */
export function checkKvLayer(kv: KvLayer): void {
  const ok = kv.dtype === "f32" ? kv.data instanceof Float32Array : kv.dtype === "f16" ? kv.data instanceof Uint16Array : kv.data instanceof Int8Array;
  if (!ok) throw new ValidationError("kv.dtype", kv.dtype, "does not match the data array type");
  if (kv.dtype === "int8" && (kv.headDim % 4 !== 0 || kv.data.byteOffset % 4 !== 0)) {
    throw new ValidationError("kv.headDim", kv.headDim, "int8 KV needs headDim % 4 == 0 and a 4-byte aligned array");
  }
  const need = kv.numBlocks * kvBlockElements(kv.dtype, kv.numKvHeads, kv.tokensPerBlock, kv.headDim);
  if (kv.data.length < need) throw new ValidationError("kv.data", kv.data.length, `needs at least ${need} elements`);
}

/** One sequence inside a packed batch, for attention. */
export interface AttnSeq {
  /** first row of this sequence's queries in the packed q/out arrays */
  readonly qStart: number;
  /** number of query tokens this step (prefill chunk length, or 1 in decode) */
  readonly qLen: number;
  /** KV length after this step's tokens are written (= position of the last query + 1) */
  readonly kvLen: number;
  /** block ids covering positions [0, kvLen): position p lives in blockTable[p / tokensPerBlock] */
  readonly blockTable: Int32Array;
}

export interface AttentionParams {
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  /** softmax scale, usually 1/sqrt(headDim) */
  readonly scale: number;
  /** attend only to the last `slidingWindow` positions (query included); null = all */
  readonly slidingWindow: number | null;
}

export interface RopeParams {
  readonly style: "norm" | "neox";
  readonly headDim: number;
  /** rotary dims (<= headDim); pairs beyond are untouched */
  readonly ropeDim: number;
  /** [ropeDim / 2] inverse frequencies, scaling already folded in (linear, llama3, yarn) */
  readonly invFreq: Float32Array;
  /** multiply cos/sin by this (yarn's attention factor; 1 otherwise) */
  readonly mscale: number;
  /** optional: compute angles exactly as ggml-cpu's rope cache does (ggml_rope_cache_init, f32):
   *  theta_0 = pos, theta_{i+1} = theta_i * thetaScale; angle_i = freqScale * (theta_i / freqFactors[i]).
   *  Backends that honour it reproduce llama.cpp bit for bit; invFreq is then only informative. */
  readonly ggml?: {
    /** powf(freq_base, -2 / ropeDim) in f32 */
    readonly thetaScale: number;
    /** 1 / linear scaling factor (1 when unscaled) */
    readonly freqScale: number;
    /** [ropeDim / 2] GGUF rope_freqs divisors, or null */
    readonly freqFactors: Float32Array | null;
  };
}

export interface Backend {
  readonly name: string;
  /** out[m, w.rows] = x[m, w.cols] · wᵀ */
  matmul(out: Float32Array, x: Float32Array, m: number, w: WeightTensor): void;
  /** out[i, :] = dequantized row ids[i] of table [vocab, hidden] */
  embedding(out: Float32Array, table: WeightTensor, ids: Int32Array): void;
  /** out[m, n] = x / rms(x) * weight, per row; out may alias x */
  rmsNorm(out: Float32Array, x: Float32Array, weight: Float32Array, m: number, n: number, eps: number): void;
  /** rotary embedding in place on x[m, numHeads * headDim], row i at positions[i] */
  rope(x: Float32Array, m: number, numHeads: number, positions: Int32Array, p: RopeParams): void;
  /** out[m, n] = silu(gate) * up, where gateUp is [m, 2n] (gate first, then up, per row) */
  siluMul(out: Float32Array, gateUp: Float32Array, m: number, n: number): void;
  /** out[i] = a[i] + b[i] for i < n; out may alias a */
  add(out: Float32Array, a: Float32Array, b: Float32Array, n: number): void;
  /** out[m, n] += bias[n] */
  addBias(out: Float32Array, bias: Float32Array, m: number, n: number): void;
  /** write k, v [T, numKvHeads * headDim] into the pool at slots[T] */
  writeKv(kv: KvLayer, k: Float32Array, v: Float32Array, slots: Int32Array): void;
  /** causal (and optionally sliding-window) GQA attention over the paged cache.
   *  q, out: [T, numHeads * headDim] packed over seqs */
  attention(out: Float32Array, q: Float32Array, kv: KvLayer, seqs: readonly AttnSeq[], p: AttentionParams): void;
}

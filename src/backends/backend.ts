// The set of ops the models need. `reference/` implements them in plain TypeScript (the oracle);
// `native/` implements them in the C++ addon. All activations are f32, row-major; shapes are
// given as [rows, cols]. Ops write into caller-owned outputs (no allocation on the hot path).
import type { GgmlType } from "./dtypes.js";

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

/** KV cache of one layer: a pool of blocks laid out [numBlocks, 2 (K,V), numKvHeads, tokensPerBlock, headDim].
 *  Block 0 is the permanent null block. A token's slot is block * tokensPerBlock + offset. */
export interface KvLayer {
  readonly dtype: "f32" | "f16";
  readonly numBlocks: number;
  readonly tokensPerBlock: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  /** f32: Float32Array; f16: Uint16Array of IEEE half bits */
  readonly data: Float32Array | Uint16Array;
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

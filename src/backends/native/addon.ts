// The native addon (build/Release/tllm.node, built from native/ by node-gyp at npm install) and the
// one typed declaration of everything it exports. Array arguments are typed-array views: the addon
// reads their buffer at byteOffset, so views into a memory-mapped file work at any alignment.
// All functions throw TypeError / RangeError on bad arguments before touching memory.
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

export interface NativeInfo {
  /** kernel copy in use: "avx2" (AVX2+FMA+F16C) or "scalar" (portable) */
  readonly path: "avx2" | "scalar";
  /** threads taking part in a parallel op (the calling thread included) */
  readonly threads: number;
  readonly physicalCores: number;
  /** whether this CPU (and build) can run the avx2 copy */
  readonly avx2Supported: boolean;
}

export interface TllmAddon {
  info(): NativeInfo;
  /** resize the worker pool (n >= 1, caller included) */
  setThreads(n: number): void;
  /** switch to the scalar kernels (true) or back to the best the CPU allows (false); for tests */
  setForceScalar(force: boolean): void;
  /** read-only private mapping of a whole (non-empty) file as an external ArrayBuffer */
  mmap(path: string): ArrayBuffer;
  /** unmap now; the buffer is detached (its views become empty) */
  munmap(buffer: ArrayBuffer): void;

  /** out[m, rows] = x[m, cols] · wᵀ; w: rows * rowBytes(dtype, cols) raw GGML bytes */
  matmul(out: Float32Array, x: Float32Array, m: number, w: Uint8Array, dtype: number, rows: number, cols: number): void;
  /** the n = rows.length (1..4) weights back to back in w, against the same x: out holds the n results
   *  [m, rows[i]] back to back, bit-identical to n matmul calls (the graph's q/k/v and gate/up) */
  matmulMulti?(out: Float32Array, x: Float32Array, m: number, w: Uint8Array, dtype: number, rows: Int32Array, cols: number): void;
  /** out[i, :] = dequantized row ids[i] of table [rows, cols] */
  embedding(out: Float32Array, table: Uint8Array, dtype: number, rows: number, cols: number, ids: Int32Array): void;
  rmsNorm(out: Float32Array, x: Float32Array, weight: Float32Array, m: number, n: number, eps: number): void;
  /** neox: 1 = pairs (i, i + ropeDim/2), 0 = pairs (2i, 2i+1) */
  rope(x: Float32Array, m: number, numHeads: number, positions: Int32Array, neox: 0 | 1, headDim: number,
    ropeDim: number, invFreq: Float32Array, mscale: number,
    /** optional: ggml's f32 rope cache (RopeParams.ggml) */
    thetaScale?: number, freqScale?: number, freqFactors?: Float32Array | null): void;
  siluMul(out: Float32Array, gateUp: Float32Array, m: number, n: number): void;
  add(out: Float32Array, a: Float32Array, b: Float32Array, n: number): void;
  addBias(out: Float32Array, bias: Float32Array, m: number, n: number): void;
  /** row-wise softmax of x[m, n] */
  softmax(out: Float32Array, x: Float32Array, m: number, n: number): void;
  /** out[i] = first index of the maximum of row i of x[m, n] */
  argmax(out: Int32Array, x: Float32Array, m: number, n: number): void;
  /** kv pool data: Float32Array (f32), Uint16Array (f16 bits) or Int8Array (int8 + per-row scales); see KvLayer */
  writeKv(kv: Float32Array | Uint16Array | Int8Array, numBlocks: number, tokensPerBlock: number, numKvHeads: number,
    headDim: number, k: Float32Array, v: Float32Array, slots: Int32Array): void;
  /** seqInfo: [nseq * 4] of (qStart, qLen, kvLen, offset of the seq's block table in `tables`);
   *  window <= 0: no sliding window */
  attention(out: Float32Array, q: Float32Array, kv: Float32Array | Uint16Array | Int8Array, numBlocks: number,
    tokensPerBlock: number, numKvHeads: number, headDim: number, seqInfo: Int32Array, tables: Int32Array,
    numHeads: number, scale: number, window: number): void;
  /** a Llama decoder's whole forward step as one native call (graph.cc; spec: LlamaGraphSpec in graph.ts) */
  createLlamaGraph(spec: object): GraphHandle;
  /** runs the step; seqInfo / tables as attention's; kvLayers: one pool array per layer */
  graphForward(graph: GraphHandle, tokens: Int32Array, positions: Int32Array, slots: Int32Array, seqInfo: Int32Array,
    tables: Int32Array, logitRows: Int32Array, kvLayers: ReadonlyArray<Float32Array | Uint16Array | Int8Array>, numBlocks: number,
    tokensPerBlock: number, logits: Float32Array): void;
  /** per-op times of graph steps since the last call ({op: [wall ms, calls, calling thread's CPU ms]}), then
   *  reset; `on` turns timing on/off */
  graphProfile(on?: boolean): Record<string, [number, number, number]>;
  /** sampling.cc: the whole-vocabulary passes of src/sampling/select.ts (same weights and bins, bit for bit) */
  sampleSetExpTable?(frac: Float64Array): void;
  sampleRowMax?(row: Float32Array, vocab: number): number;
  sampleArgmax?(row: Float32Array, vocab: number): number;
  /** select.ts splitByBin over a list of numKeep entries; counts = [kept, candidates] */
  sampleSplitByBin?(row: Float32Array, b: number, idx: Int32Array, w: Float64Array, bin: Int32Array, numKeep: number,
    cid: Int32Array, cx: Float32Array, counts: Int32Array): void;
  /** the k largest (NaN / -Infinity never) sorted (value desc, id asc) into outIdx/outVal; returns how many */
  sampleTopK?(row: Float32Array, vocab: number, k: number, outIdx: Int32Array, outVal: Float32Array): number;
  sampleSumBlocks?(row: Float32Array, vocab: number, xmax: number, floor: number, invT: number, blockSums: Float64Array): number;
  sampleScanBlocks?(row: Float32Array, vocab: number, xmax: number, floor: number, invT: number, blockSums: Float64Array, t: number): number;
  sampleSumGather?(row: Float32Array, vocab: number, xmax: number, floor: number, invT: number, xlist: number,
    idx: Int32Array, w: Float64Array, bin: Int32Array, sub: Float64Array, count: Int32Array): number;
  sampleGatherUpTo?(row: Float32Array, vocab: number, xmax: number, xlo: number, invT: number, bmax: number,
    idx: Int32Array, w: Float64Array, bin: Int32Array, bins: Float64Array): number;
  /** out = [log Σ exp(row), 1 + #(row > x0)]; x0 a float32 value */
  sampleLseRank?(row: Float32Array, vocab: number, x0: number, out: Float64Array): void;
  /** guided/mask.ts applyTokenBitmask: the allowed count */
  sampleApplyMask?(row: Float32Array, vocab: number, mask: Int32Array): number;
  /** native/sampling_batch.inc: all rows of a step in one call (layout: src/sampling/batch.ts) */
  sampleBatch?(
    logits: Float32Array, vocab: number, n: number, plan: Float64Array, masks: readonly (Int32Array | undefined)[], out: Float64Array,
    cap: number, idx: Int32Array, val: Float32Array, lpCap: number, lpIdx: Int32Array, lpVal: Float32Array,
  ): void;
}

/** Opaque native graph (an External); kept alive by its JS owner. */
export type GraphHandle = { readonly __tllmGraph: unique symbol };

/** build/Release/tllm.node from the repo (or package) root; the same relative path from src/ and dist/.
 *  TLLM_ADDON=<path> loads another build instead (A/B benchmarks of two builds on one machine). */
export const ADDON_PATH = process.env.TLLM_ADDON || fileURLToPath(new URL("../../../build/Release/tllm.node", import.meta.url));

let cached: TllmAddon | null | undefined;
let loadError: Error | null = null;

/** The addon, or null when it is not built or fails to load (see addonLoadError()). */
export function loadAddon(): TllmAddon | null {
  if (cached !== undefined) return cached;
  try {
    if (!existsSync(ADDON_PATH)) throw new Error(`native addon not built: ${ADDON_PATH} is missing (run npm install)`);
    const require = createRequire(import.meta.url);
    cached = require(ADDON_PATH) as TllmAddon;
  } catch (e) {
    loadError = e as Error;
    cached = null;
  }
  return cached;
}

export function addonLoadError(): Error | null {
  return loadError;
}

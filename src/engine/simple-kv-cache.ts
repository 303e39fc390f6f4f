// A simple KV cache for the core engine and tests (the paged manager with prefix reuse lives in
// src/kvcache). One pool per layer, [numBlocks, 2, numKvHeads, tokensPerBlock, headDim]; block 0
// is the permanent null block; each sequence gets a contiguous run of blocks, first-fit.
import { allocKvData, type KvDtype, type KvLayer } from "../backends/backend.js";
import { ValidationError } from "../errors.js";

export interface SimpleKvCacheOptions {
  numLayers: number;
  numKvHeads: number;
  headDim: number;
  /** total blocks per layer including the null block 0 */
  numBlocks: number;
  tokensPerBlock: number;
  dtype: KvDtype;
}

interface SeqAlloc { first: number; count: number; maxTokens: number }

export class SimpleKvCache {
  readonly layers: KvLayer[];
  readonly tokensPerBlock: number;
  private readonly used: Uint8Array;
  private readonly seqs = new Map<number, SeqAlloc>();

  constructor(o: SimpleKvCacheOptions) {
    for (const k of ["numLayers", "numKvHeads", "headDim", "numBlocks", "tokensPerBlock"] as const) {
      if (!Number.isInteger(o[k]) || o[k] < 1) throw new ValidationError(k, o[k], "must be a positive integer");
    }
    if (o.numBlocks < 2) throw new ValidationError("numBlocks", o.numBlocks, "needs at least 2 (block 0 is reserved)");
    if (o.dtype !== "f32" && o.dtype !== "f16" && o.dtype !== "int8") throw new ValidationError("dtype", o.dtype, "must be f32, f16 or int8");
    this.tokensPerBlock = o.tokensPerBlock;
    this.layers = [];
    for (let l = 0; l < o.numLayers; l++) {
      const data = allocKvData(o.dtype, o.numBlocks, o.numKvHeads, o.tokensPerBlock, o.headDim);
      this.layers.push({ dtype: o.dtype, numBlocks: o.numBlocks, tokensPerBlock: o.tokensPerBlock, numKvHeads: o.numKvHeads, headDim: o.headDim, data });
    }
    this.used = new Uint8Array(o.numBlocks);
    this.used[0] = 1;
  }

  /** free blocks (excluding the null block) */
  get freeBlocks(): number {
    let n = 0;
    for (const u of this.used) if (!u) n++;
    return n;
  }

  /** Reserves ceil(maxTokens / tokensPerBlock) contiguous blocks for a new sequence. */
  allocSeq(seqId: number, maxTokens: number): void {
    if (this.seqs.has(seqId)) throw new ValidationError("seqId", seqId, "already allocated");
    if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new ValidationError("maxTokens", maxTokens, "must be a positive integer");
    const count = Math.ceil(maxTokens / this.tokensPerBlock);
    let run = 0;
    for (let b = 1; b < this.used.length; b++) {
      run = this.used[b] ? 0 : run + 1;
      if (run === count) {
        const first = b - count + 1;
        this.used.fill(1, first, b + 1);
        this.seqs.set(seqId, { first, count, maxTokens });
        return;
      }
    }
    throw new ValidationError("maxTokens", maxTokens, `no run of ${count} free contiguous blocks (${this.freeBlocks} free)`);
  }

  freeSeq(seqId: number): void {
    const a = this.get(seqId);
    this.used.fill(0, a.first, a.first + a.count);
    this.seqs.delete(seqId);
  }

  /** block ids covering the sequence's reserved positions */
  blockTable(seqId: number): Int32Array {
    const a = this.get(seqId);
    return Int32Array.from({ length: a.count }, (_, i) => a.first + i);
  }

  /** slots of positions [start, start + count) */
  slotsFor(seqId: number, start: number, count: number): Int32Array {
    const a = this.get(seqId);
    if (!Number.isInteger(start) || start < 0 || !Number.isInteger(count) || count < 0 || start + count > a.maxTokens) {
      throw new ValidationError("positions", `[${start}, ${start + count})`, `outside the sequence's reserved [0, ${a.maxTokens})`);
    }
    return Int32Array.from({ length: count }, (_, i) => a.first * this.tokensPerBlock + start + i);
  }

  private get(seqId: number): SeqAlloc {
    const a = this.seqs.get(seqId);
    if (!a) throw new ValidationError("seqId", seqId, "not allocated");
    return a;
  }
}

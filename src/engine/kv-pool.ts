// The KV pool: one KvLayer per model layer, laid out [numBlocks, 2 (K,V), numKvHeads, tokensPerBlock,
// headDim] in f32, f16 (Uint16Array of half bits) or int8 (Int8Array; each block ends with its f32
// scales, one per token, K/V and head: see KvLayer). Sized by kvPoolBlocks (src/kvcache/sizing.ts)
// from a token cap and/or a fraction of the available memory (os.freemem() by default), as
// TensorRT-LLM sizes its pool from max_tokens / free_gpu_memory_fraction; the smaller wins.
import { freemem } from "node:os";
import { allocKvData, kvBlockElements, type KvDtype, type KvLayer } from "../backends/backend.js";
import { ValidationError } from "../errors.js";
import { kvBytesPerToken, kvPoolBlocks } from "../kvcache/sizing.js";

export interface KvPoolShape {
  numLayers: number;
  numKvHeads: number;
  headDim: number;
  tokensPerBlock: number;
  dtype: KvDtype;
}

export interface KvPoolOptions extends KvPoolShape {
  /** cap in tokens (null: none) */
  maxTokens: number | null;
  /** fraction of availableBytes, in (0, 1] */
  freeMemoryFraction: number;
  /** memory the pool may draw from, in bytes; default os.freemem() (weights are mapped, not copied) */
  availableBytes?: number;
  /** tokens that can ever be in use at once (maxBatchSize * maxSeqLen): the memory-based size is
   *  capped there, as a bigger pool would only hold more evictable prefix-cache blocks */
  maxUsefulTokens?: number;
}

const KV_DTYPES: readonly KvDtype[] = ["f32", "f16", "int8"];

/** Largest typed array V8 allocates in one piece (elements); a layer larger than this is refused. */
const MAX_TYPED_ARRAY_ELEMENTS = 2 ** 32 - 1;

export class KvPool {
  readonly layers: KvLayer[];
  /** elements of one block in one layer: 2 * numKvHeads * tokensPerBlock * headDim (int8: + 4 per row, its scale) */
  readonly blockElements: number;

  constructor(readonly shape: KvPoolShape, readonly numBlocks: number) {
    for (const k of ["numLayers", "numKvHeads", "headDim", "tokensPerBlock"] as const) {
      if (!Number.isInteger(shape[k]) || shape[k] < 1) throw new ValidationError(k, shape[k], "must be an integer >= 1");
    }
    if (!KV_DTYPES.includes(shape.dtype)) throw new ValidationError("kvCacheConfig.dtype", shape.dtype, `must be one of ${KV_DTYPES.join(", ")}`);
    if (shape.dtype === "int8" && shape.headDim % 4 !== 0) {
      throw new ValidationError("kvCacheConfig.dtype", shape.dtype, `int8 needs headDim % 4 == 0 (the f32 scales sit after the quants); headDim is ${shape.headDim}`);
    }
    if (!Number.isInteger(numBlocks) || numBlocks < 2) throw new ValidationError("numBlocks", numBlocks, "must be an integer >= 2");
    this.blockElements = kvBlockElements(shape.dtype, shape.numKvHeads, shape.tokensPerBlock, shape.headDim);
    const n = numBlocks * this.blockElements;
    if (n > MAX_TYPED_ARRAY_ELEMENTS) {
      throw new ValidationError("numBlocks", numBlocks, `one layer would need ${n} elements (> ${MAX_TYPED_ARRAY_ELEMENTS}); lower kvCacheConfig.maxTokens`);
    }
    this.layers = [];
    for (let l = 0; l < shape.numLayers; l++) {
      const { numKvHeads, tokensPerBlock, headDim, dtype } = shape;
      const data = allocKvData(dtype, numBlocks, numKvHeads, tokensPerBlock, headDim);
      this.layers.push({ dtype, numBlocks, tokensPerBlock, numKvHeads, headDim, data });
    }
  }

  /** bytes of the whole pool (all layers) */
  get bytes(): number {
    return this.numBlocks * this.blockElements * this.layers[0]!.data.BYTES_PER_ELEMENT * this.shape.numLayers;
  }

  /** copies block src to block dst in every layer (copy-on-write of a shared block; int8 scales included) */
  copyBlock(src: number, dst: number): void {
    const e = this.blockElements;
    for (const l of this.layers) l.data.copyWithin(dst * e, src * e, (src + 1) * e);
  }
}

/** Sizes and allocates the pool; `reason` is the log line saying what decided its size. */
export function createKvPool(o: KvPoolOptions): { pool: KvPool; reason: string } {
  const perToken = kvBytesPerToken(o.numLayers, o.numKvHeads, o.headDim, o.dtype);
  const useful = o.maxUsefulTokens;
  const capByUse = useful !== undefined && (o.maxTokens === null || useful < o.maxTokens);
  const sized = kvPoolBlocks({
    maxTokens: capByUse ? useful : o.maxTokens, freeMemoryFraction: o.freeMemoryFraction, availableBytes: o.availableBytes ?? freemem(),
    bytesPerBlock: perToken * o.tokensPerBlock, tokensPerBlock: o.tokensPerBlock,
  });
  let { numBlocks, reason } = sized;
  if (capByUse) reason = reason.replace(`maxTokens=${useful}`, `maxBatchSize x maxSeqLen=${useful}`);
  const perLayerCap = Math.floor(MAX_TYPED_ARRAY_ELEMENTS / kvBlockElements(o.dtype, o.numKvHeads, o.tokensPerBlock, o.headDim));
  if (numBlocks > perLayerCap) {
    numBlocks = perLayerCap;
    reason += `; capped at ${perLayerCap} blocks (largest typed array per layer)`;
  }
  return { pool: new KvPool(o, numBlocks), reason: `${reason} (${o.dtype})` };
}

// KV pool sizing: bytes per token for a model and KV dtype, and the number of blocks to allocate
// from a token cap and/or a fraction of available memory (the smaller wins, as in TensorRT-LLM).

import { ValidationError } from "../errors.js";

export type KvCacheDtype = "f32" | "f16" | "bf16" | "int8";

/** bytes of one element of K or V per dtype */
const ELEM_BYTES: Record<KvCacheDtype, number> = { f32: 4, f16: 2, bf16: 2, int8: 1 };

/**
 * Bytes of KV cache per token across all layers: K and V, numKvHeads * headDim each.
 * int8 adds one f32 scale per (layer, K/V, kv head, token).
 */
export function kvBytesPerToken(numLayers: number, numKvHeads: number, headDim: number, dtype: KvCacheDtype): number {
  posInt("numLayers", numLayers);
  posInt("numKvHeads", numKvHeads);
  posInt("headDim", headDim);
  const elem = ELEM_BYTES[dtype];
  if (elem === undefined) throw new ValidationError("dtype", dtype, `must be one of ${Object.keys(ELEM_BYTES).join(", ")}`);
  const scales = dtype === "int8" ? 4 : 0;
  return 2 * numLayers * numKvHeads * (headDim * elem + scales);
}

export interface KvPoolSizing {
  /** cap in tokens; null/undefined: no cap */
  maxTokens?: number | null | undefined;
  /** fraction of availableBytes the pool may take, in (0, 1]; default 0.9 */
  freeMemoryFraction?: number | undefined;
  /** memory left after weights and buffers, in bytes; null/undefined: unknown */
  availableBytes?: number | null | undefined;
  /** bytes of one block across all layers (kvBytesPerToken * tokensPerBlock) */
  bytesPerBlock: number;
  tokensPerBlock: number;
}

/**
 * Number of blocks for the pool, including the null block 0, and a line saying what decided it.
 * From maxTokens: ceil(maxTokens / tokensPerBlock) + 1. From memory: floor(fraction * available /
 * bytesPerBlock). The smaller wins; at least one of the two must be given; the result is >= 2.
 */
export function kvPoolBlocks(s: KvPoolSizing): { numBlocks: number; reason: string } {
  posInt("bytesPerBlock", s.bytesPerBlock);
  posInt("tokensPerBlock", s.tokensPerBlock);
  const fraction = s.freeMemoryFraction ?? 0.9;
  if (!(fraction > 0 && fraction <= 1)) throw new ValidationError("freeMemoryFraction", fraction, "must be in (0, 1]");
  const hasTokens = s.maxTokens !== null && s.maxTokens !== undefined;
  const hasMem = s.availableBytes !== null && s.availableBytes !== undefined;
  if (hasTokens) posInt("maxTokens", s.maxTokens);
  if (hasMem && !(Number.isFinite(s.availableBytes) && s.availableBytes! >= 0)) {
    throw new ValidationError("availableBytes", s.availableBytes, "must be a finite number >= 0");
  }
  if (!hasTokens && !hasMem) throw new ValidationError("maxTokens", s.maxTokens, "give maxTokens or availableBytes");
  const byTokens = hasTokens ? Math.ceil(s.maxTokens! / s.tokensPerBlock) + 1 : Infinity;
  const byMem = hasMem ? Math.floor((fraction * s.availableBytes!) / s.bytesPerBlock) : Infinity;
  const numBlocks = Math.min(byTokens, byMem);
  const mib = (b: number) => (b / 2 ** 20).toFixed(1);
  const memText = hasMem ? `${fraction} x ${mib(s.availableBytes!)} MiB available -> ${byMem} blocks` : "";
  const tokText = hasTokens ? `maxTokens=${s.maxTokens} -> ${byTokens} blocks` : "";
  if (numBlocks < 2) {
    throw new ValidationError(byMem <= byTokens ? "availableBytes" : "maxTokens", byMem <= byTokens ? s.availableBytes : s.maxTokens,
      `leaves ${numBlocks} KV blocks (${memText || tokText}); need at least 2 (block 0 is the null block)`);
  }
  const chosen = byTokens <= byMem ? `${tokText}${hasMem ? ` (smaller than ${memText})` : ""}` : `${memText}${hasTokens ? ` (smaller than ${tokText})` : ""}`;
  const reason = `KV cache: ${numBlocks} blocks x ${s.tokensPerBlock} tokens = ${(numBlocks - 1) * s.tokensPerBlock} usable tokens, ` +
    `${mib(numBlocks * s.bytesPerBlock)} MiB; from ${chosen}`;
  return { numBlocks, reason };
}

function posInt(field: string, v: unknown): void {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) throw new ValidationError(field, v, "must be an integer >= 1");
}

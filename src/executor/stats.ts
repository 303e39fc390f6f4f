// Iteration statistics, with TensorRT-LLM's field names (executor IterationStats, KvCacheStats,
// InflightBatchingStats) in camelCase. One record per step of the worker loop.
import type { KvCacheStats } from "../kvcache/kv-cache-manager.js";

export interface KvCacheIterStats {
  /** usable blocks (the null block excluded) */
  maxNumBlocks: number;
  freeNumBlocks: number;
  usedNumBlocks: number;
  tokensPerBlock: number;
  /** fresh blocks handed out since start */
  allocTotalBlocks: number;
  /** fresh blocks handed out in this iteration */
  allocNewBlocks: number;
  /** prompt blocks served from the prefix cache since start */
  reusedBlocks: number;
  /** full prompt blocks looked up without a hit since start */
  missedBlocks: number;
  /** reusedBlocks / (reusedBlocks + missedBlocks); 0 before any lookup */
  cacheHitRate: number;
}

export interface InflightBatchingStats {
  numScheduledRequests: number;
  numContextRequests: number;
  numGenRequests: number;
  /** preempted this step (MAX_UTILIZATION) */
  numPausedRequests: number;
  /** prompt tokens computed this step */
  numCtxTokens: number;
  /** generation tokens computed this step */
  numGenTokens: number;
  /** always 0: no pipeline parallelism */
  microBatchId: number;
  /** tokens decoded per generation request this step (1 without speculative decoding) */
  avgNumDecodedTokensPerIter: number;
}

export interface IterationStats {
  iter: number;
  /** wall-clock ms since the epoch at the end of the step */
  timestamp: number;
  /** duration of the step (schedule + forward + sample + update), ms */
  iterLatencyMS: number;
  /** sequences holding KV blocks (running) after the step */
  numActiveRequests: number;
  /** sequences waiting for admission (new or preempted) after the step */
  numQueuedRequests: number;
  /** client requests completed this step */
  numCompletedRequests: number;
  /** maxBatchSize */
  maxNumActiveRequests: number;
  maxBatchSizeStatic: number;
  maxNumTokensStatic: number;
  /** the worker's V8 heap in use, bytes */
  cpuMemUsage: number;
  kvCacheStats: KvCacheIterStats;
  inflightBatchingStats: InflightBatchingStats;
}

/** A point-in-time view of the executor (not tied to a step). */
export interface ExecutorSnapshot {
  numActiveRequests: number;
  numQueuedRequests: number;
  /** client requests accepted and not yet finished */
  numInflightRequests: number;
  kvCacheStats: KvCacheIterStats;
  /** the worker's V8 heap in use after a GC when exposed, bytes */
  heapUsedBytes: number;
  /** the process's resident set, bytes */
  rssBytes: number;
  iterations: number;
}

/** The KV manager's counters in TensorRT-LLM's KvCacheStats shape. */
export function kvIterStats(s: KvCacheStats, tokensPerBlock: number, lastAllocated: number): KvCacheIterStats {
  return {
    maxNumBlocks: s.numBlocks - 1, freeNumBlocks: s.numFreeBlocks, usedNumBlocks: s.numUsedBlocks,
    tokensPerBlock, allocTotalBlocks: s.allocated, allocNewBlocks: s.allocated - lastAllocated,
    reusedBlocks: s.reused, missedBlocks: s.missed, cacheHitRate: s.hitRate,
  };
}

/** One step's batch composition: `list` = the scheduled sequences (ctx: a prompt chunk). */
export function batchingStats(list: readonly { numTokens: number; ctx: boolean }[], numPaused: number): InflightBatchingStats {
  const ctx = list.filter((s) => s.ctx), gen = list.filter((s) => !s.ctx);
  const numGenTokens = gen.reduce((a, s) => a + s.numTokens, 0);
  return {
    numScheduledRequests: list.length, numContextRequests: ctx.length, numGenRequests: gen.length,
    numPausedRequests: numPaused, numCtxTokens: ctx.reduce((a, s) => a + s.numTokens, 0),
    numGenTokens, microBatchId: 0, avgNumDecodedTokensPerIter: gen.length > 0 ? numGenTokens / gen.length : 0,
  };
}

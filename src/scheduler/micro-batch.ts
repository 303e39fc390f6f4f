// Micro-batch scheduler: splits the fitting requests into this step's generation and context work
// under maxBatchSize and maxNumTokens (TensorRT-LLM's MicroBatchScheduler). Generation requests
// come first in the token budget. Without chunked prefill a context request takes its whole
// remainder and scheduling stops at the first that exceeds the budget. With chunked prefill, when
// the context requests do not all fit, chunk sizes are assigned in multiples of chunkUnit (tokens
// per block) by FIRST_COME_FIRST_SERVED (fill the budget in order) or EQUAL_PROGRESS (one unit per
// request, round-robin). A chunk that finishes its request may be shorter than a unit.

import { isContextPhase } from "./request-state.js";
import type { Candidate, ContextChunkingPolicy } from "./types.js";

export interface MicroBatchOptions {
  maxBatchSize: number;
  maxNumTokens: number;
  enableChunkedPrefill: boolean;
  contextChunkingPolicy: ContextChunkingPolicy;
  /** chunk granularity in tokens (= tokensPerBlock) */
  chunkUnit: number;
}

export interface MicroBatchItem {
  cand: Candidate;
  numTokens: number;
}

export interface MicroBatchResult {
  context: MicroBatchItem[];
  generation: MicroBatchItem[];
}

export class MicroBatchScheduler {
  constructor(readonly opts: MicroBatchOptions) {}

  schedule(fitting: readonly Candidate[]): MicroBatchResult {
    const { maxBatchSize, maxNumTokens } = this.opts;
    const generation: MicroBatchItem[] = [];
    let budget = maxNumTokens;
    for (const c of fitting) {
      if (isContextPhase(c.req.state)) continue;
      const cost = c.req.numTokens - c.numComputed; // 1 + draft tokens
      if (cost <= 0) continue;
      if (generation.length >= maxBatchSize || cost > budget) break;
      generation.push({ cand: c, numTokens: cost });
      budget -= cost;
    }
    const slots = maxBatchSize - generation.length;
    const ctx = fitting.filter((c) => isContextPhase(c.req.state) && c.req.numTokens > c.numComputed);
    const context = this.opts.enableChunkedPrefill ? this.chunked(ctx.slice(0, slots), budget) : this.whole(ctx, slots, budget);
    return { context, generation };
  }

  /** no chunking: whole remainders in order, stop at the first that exceeds the budget */
  private whole(ctx: readonly Candidate[], slots: number, budget: number): MicroBatchItem[] {
    const out: MicroBatchItem[] = [];
    for (const c of ctx) {
      const remaining = c.req.numTokens - c.numComputed;
      if (out.length >= slots || remaining > budget) break;
      out.push({ cand: c, numTokens: remaining });
      budget -= remaining;
    }
    return out;
  }

  private chunked(ctx: readonly Candidate[], budget: number): MicroBatchItem[] {
    const remaining = ctx.map((c) => c.req.numTokens - c.numComputed);
    const total = remaining.reduce((a, b) => a + b, 0);
    const chunks =
      total <= budget ? remaining
      : this.opts.contextChunkingPolicy === "EQUAL_PROGRESS" ? equalProgress(remaining, budget, this.opts.chunkUnit)
      : firstComeFirstServed(remaining, budget, this.opts.chunkUnit);
    const out: MicroBatchItem[] = [];
    ctx.forEach((c, i) => {
      if (chunks[i]! > 0) out.push({ cand: c, numTokens: chunks[i]! });
    });
    return out;
  }
}

/** in order: each takes min(remaining, budget left), truncated to a unit multiple unless it finishes */
export function firstComeFirstServed(remaining: readonly number[], budget: number, unit: number): number[] {
  return remaining.map((rem) => {
    let chunk = Math.min(rem, budget);
    if (chunk < rem) chunk = Math.floor(chunk / unit) * unit;
    budget -= chunk;
    return chunk;
  });
}

/** round-robin: every request grows by one unit (or its last partial unit) per pass while budget lasts */
export function equalProgress(remaining: readonly number[], budget: number, unit: number): number[] {
  const chunks = remaining.map(() => 0);
  let progressed = true;
  while (progressed) {
    progressed = false;
    for (let i = 0; i < remaining.length; i++) {
      const inc = Math.min(unit, remaining[i]! - chunks[i]!);
      if (inc <= 0 || inc > budget) continue;
      chunks[i]! += inc;
      budget -= inc;
      progressed = true;
    }
  }
  return chunks;
}

// Capacity scheduler: which requests fit in KV memory this step (TensorRT-LLM's CapacityScheduler).
//   GUARANTEED_NO_EVICT  running requests reserve blocks to completion; waiting requests are admitted
//                        in queue order while their completion need fits; the first that does not
//                        fit blocks the ones behind it (head-of-line). Never preempts.
//   STATIC_BATCH         as above, but admits only when nothing is running (the batch has drained).
//   MAX_UTILIZATION      books only the next step. When a running request does not fit, the most
//                        recently admitted running request (the tail of `running`) is paused: its
//                        blocks are freed and it will be recomputed. No admission in a step that paused.
// Counts only: blocks are allocated afterwards by the Scheduler, for the tokens actually scheduled.

import { RequestState, isSchedulable } from "./request-state.js";
import type { Candidate, CapacitySchedulerPolicy, KvCacheResource, SchedRequest } from "./types.js";

export interface CapacityResult {
  /** running requests first (in order), then admitted waiting ones (in queue order) */
  fitting: Candidate[];
  paused: SchedRequest[];
}

export class CapacityScheduler {
  constructor(
    readonly policy: CapacitySchedulerPolicy,
    readonly maxBatchSize: number,
    private readonly kv: KvCacheResource,
  ) {}

  /**
   * @param running requests holding blocks, oldest admission first
   * @param waiting requests holding none, already in waiting-queue order
   */
  schedule(running: readonly SchedRequest[], waiting: readonly SchedRequest[]): CapacityResult {
    return this.policy === "MAX_UTILIZATION"
      ? this.maxUtilization(running, waiting)
      : this.noEvict(running, waiting, this.policy === "STATIC_BATCH");
  }

  /** tokens a request may reach: prompt + max new tokens (or more if drafts already exceed it) */
  private completionTokens(r: SchedRequest): number {
    return Math.max(r.numTokens, r.promptLen + r.maxTokens);
  }

  private noEvict(running: readonly SchedRequest[], waiting: readonly SchedRequest[], staticBatch: boolean): CapacityResult {
    const fitting: Candidate[] = [];
    let reserved = 0;
    for (const r of running) {
      if (!isSchedulable(r.state)) continue;
      reserved += this.kv.neededBlocks(r, this.completionTokens(r)); // even if over the batch cap
      if (fitting.length < this.maxBatchSize) fitting.push({ req: r, numComputed: r.numComputedTokens, fromWaiting: false });
    }
    if (staticBatch && running.length > 0) return { fitting, paused: [] };
    let available = this.kv.numFreeBlocks - reserved;
    for (const w of waiting) {
      if (!isSchedulable(w.state)) continue;
      if (fitting.length >= this.maxBatchSize) break;
      const need = this.kv.neededBlocks(w, this.completionTokens(w));
      if (need > available) break; // head-of-line blocking: later requests wait behind this one
      available -= need;
      fitting.push(this.waitingCandidate(w));
    }
    return { fitting, paused: [] };
  }

  private maxUtilization(running: readonly SchedRequest[], waiting: readonly SchedRequest[]): CapacityResult {
    const active = running.filter((r) => isSchedulable(r.state));
    const fitting: Candidate[] = [];
    const paused: SchedRequest[] = [];
    let booked = 0; // blocks promised to fitting requests this step
    for (let i = 0; i < active.length && fitting.length < this.maxBatchSize; i++) {
      const r = active[i]!;
      const need = this.kv.neededBlocks(r, r.numTokens);
      while (need > this.kv.numFreeBlocks - booked && active.length > i) {
        this.pause(active.pop()!, paused);
      }
      if (active.length <= i) break; // r itself was paused
      booked += need;
      fitting.push({ req: r, numComputed: r.numComputedTokens, fromWaiting: false });
    }
    if (paused.length > 0) return { fitting, paused };
    for (const w of waiting) {
      if (!isSchedulable(w.state)) continue;
      if (fitting.length >= this.maxBatchSize) break;
      const need = this.kv.neededBlocks(w, w.numTokens);
      if (need > this.kv.numFreeBlocks - booked) break;
      booked += need;
      fitting.push(this.waitingCandidate(w));
    }
    return { fitting, paused };
  }

  /** preempt: free all blocks, forget computed tokens (recompute later), mark PAUSED */
  private pause(r: SchedRequest, paused: SchedRequest[]): void {
    this.kv.free(r);
    r.numComputedTokens = 0;
    r.state = RequestState.PAUSED;
    paused.push(r);
  }

  private waitingCandidate(w: SchedRequest): Candidate {
    const hits = this.kv.findCachedPrefix(w).length;
    return { req: w, numComputed: hits * this.kv.tokensPerBlock, fromWaiting: true };
  }
}

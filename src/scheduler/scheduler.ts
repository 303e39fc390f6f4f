// The two-level scheduler: capacity (what fits in KV memory) then micro-batch (what fits in this
// step's token budget), then KV allocation for exactly the tokens scheduled. Stateless between
// steps: the executor owns the running and waiting lists and applies the output:
//   admittedRequests -> append to running;  pausedRequests -> remove from running, add to waiting.
// After the forward pass the executor advances numComputedTokens by each numTokens and calls
// kv.cacheFullBlocks(req) so newly full blocks become reusable.

import { ValidationError } from "../errors.js";
import { CapacityScheduler } from "./capacity.js";
import { MicroBatchScheduler, type MicroBatchItem } from "./micro-batch.js";
import type { KvCacheResource, SchedRequest, ScheduledRequest, SchedulerOptions, SchedulerOutput, WaitingQueuePolicy } from "./types.js";

const CAPACITY = ["GUARANTEED_NO_EVICT", "MAX_UTILIZATION", "STATIC_BATCH"] as const;
const CHUNKING = ["FIRST_COME_FIRST_SERVED", "EQUAL_PROGRESS"] as const;
const QUEUE = ["fcfs", "priority"] as const;

export class Scheduler {
  readonly capacity: CapacityScheduler;
  readonly microBatch: MicroBatchScheduler;
  readonly waitingQueuePolicy: WaitingQueuePolicy;

  constructor(opts: SchedulerOptions, private readonly kv: KvCacheResource) {
    const policy = oneOf("capacitySchedulerPolicy", opts.capacitySchedulerPolicy ?? "GUARANTEED_NO_EVICT", CAPACITY);
    const chunking = oneOf("contextChunkingPolicy", opts.contextChunkingPolicy ?? "FIRST_COME_FIRST_SERVED", CHUNKING);
    this.waitingQueuePolicy = oneOf("waitingQueuePolicy", opts.waitingQueuePolicy ?? "fcfs", QUEUE);
    posInt("maxBatchSize", opts.maxBatchSize);
    posInt("maxNumTokens", opts.maxNumTokens);
    const enableChunkedPrefill = opts.enableChunkedPrefill ?? false;
    if (enableChunkedPrefill && opts.maxNumTokens < kv.tokensPerBlock) {
      throw new ValidationError("maxNumTokens", opts.maxNumTokens, `must be >= tokensPerBlock (${kv.tokensPerBlock}) with chunked prefill`);
    }
    this.capacity = new CapacityScheduler(policy, opts.maxBatchSize, kv);
    this.microBatch = new MicroBatchScheduler({
      maxBatchSize: opts.maxBatchSize,
      maxNumTokens: opts.maxNumTokens,
      enableChunkedPrefill,
      contextChunkingPolicy: chunking,
      chunkUnit: kv.tokensPerBlock,
    });
  }

  /**
   * One step's decision. Mutates requests only where documented on SchedRequest: admitted requests
   * get numComputedTokens = their prefix-cache hits; paused ones get 0 and state PAUSED.
   * @param running requests holding KV blocks, in admission order (oldest first)
   * @param waiting requests holding none (new, or paused), any order: sorted here by the queue policy
   */
  schedule(running: readonly SchedRequest[], waiting: readonly SchedRequest[]): SchedulerOutput {
    const cap = this.capacity.schedule(running, this.orderWaiting(waiting));
    const mb = this.microBatch.schedule(cap.fitting);
    // attach prefix hits before any fresh allocation can evict the cached blocks they predicted
    const attached = mb.context.filter((i) => i.cand.fromWaiting).map((i) => i.cand.req);
    const context = mb.context.map((i) => this.admit(i));
    const generationRequests = this.allocate(mb.generation.map((i) => ({ req: i.cand.req, numTokens: i.numTokens })));
    const contextRequests = this.allocate(context.filter((s) => s.numTokens > 0));
    const scheduled = new Set(contextRequests.map((s) => s.req));
    for (const r of attached) {
      if (scheduled.has(r)) continue;
      this.kv.free(r); // defensive: its allocation failed, it stays waiting and holds nothing
      r.numComputedTokens = 0;
    }
    return {
      contextRequests,
      generationRequests,
      pausedRequests: cap.paused,
      admittedRequests: attached.filter((r) => scheduled.has(r)),
      numFittingRequests: cap.fitting.length,
    };
  }

  /** waiting requests in service order: fcfs by arrival; priority: higher first, then arrival */
  orderWaiting(waiting: readonly SchedRequest[]): SchedRequest[] {
    const byArrival = (a: SchedRequest, b: SchedRequest) => a.arrival - b.arrival;
    if (this.waitingQueuePolicy === "fcfs") return [...waiting].sort(byArrival);
    for (const w of waiting) {
      if (!(w.priority >= 0 && w.priority <= 1)) throw new ValidationError("priority", w.priority, `must be in [0, 1] (request ${String(w.id)})`);
    }
    return [...waiting].sort((a, b) => b.priority - a.priority || byArrival(a, b));
  }

  /** a context item: attach prefix hits for waiting requests; the chunk never overruns numTokens */
  private admit(item: MicroBatchItem): ScheduledRequest {
    const r = item.cand.req;
    if (!item.cand.fromWaiting) return { req: r, numTokens: item.numTokens };
    r.numComputedTokens = this.kv.allocatePrompt(r);
    return { req: r, numTokens: Math.min(item.numTokens, r.numTokens - r.numComputedTokens) };
  }

  /** allocate blocks for each scheduled request; drops (defensively) any that do not fit */
  private allocate(items: ScheduledRequest[]): ScheduledRequest[] {
    return items.filter((s) => this.kv.allocateSlots(s.req, s.numTokens));
  }
}

function oneOf<T extends string>(field: string, v: T, allowed: readonly T[]): T {
  if (!allowed.includes(v)) throw new ValidationError(field, v, `must be one of ${allowed.join(", ")}`);
  return v;
}

function posInt(field: string, v: unknown): void {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) throw new ValidationError(field, v, "must be an integer >= 1");
}

// Scheduler interfaces: the request view it reads, the KV resource it books against, its options and
// its output (mirrors TensorRT-LLM's SchedulerOutput).

import type { KvRequest, RequestId } from "../kvcache/index.js";
import type { RequestState } from "./request-state.js";

export type CapacitySchedulerPolicy = "GUARANTEED_NO_EVICT" | "MAX_UTILIZATION" | "STATIC_BATCH";
export type ContextChunkingPolicy = "FIRST_COME_FIRST_SERVED" | "EQUAL_PROGRESS";
export type WaitingQueuePolicy = "fcfs" | "priority";

/**
 * What the scheduler reads from a request (the executor's Request implements it). One rule covers
 * every phase: a step assigns tokens so that numComputedTokens catches up with numTokens.
 */
export interface SchedRequest extends KvRequest {
  readonly id: RequestId;
  /** in [0, 1]; higher is served first under the "priority" waiting policy */
  readonly priority: number;
  /** arrival order (monotonic counter or time); FCFS order and priority tie-break */
  readonly arrival: number;
  /** set by the executor; the scheduler sets PAUSED on preemption */
  state: RequestState;
  /** prompt tokens */
  readonly promptLen: number;
  /** prompt + output + draft tokens */
  readonly numTokens: number;
  /** tokens whose KV exists; the scheduler sets it on admission (prefix hits) and on pause (0) */
  numComputedTokens: number;
  /** max new tokens: GUARANTEED_NO_EVICT reserves blocks for promptLen + maxTokens */
  readonly maxTokens: number;
}

/** The part of the KV cache manager the scheduler books against (KVCacheManager implements it). */
export interface KvCacheResource {
  readonly tokensPerBlock: number;
  readonly numFreeBlocks: number;
  findCachedPrefix(req: KvRequest): number[];
  neededBlocks(req: KvRequest, totalTokens: number): number;
  allocatePrompt(req: KvRequest): number;
  allocateSlots(req: KvRequest, numNewTokens: number): boolean;
  free(req: KvRequest): number;
}

export interface SchedulerOptions {
  /** default GUARANTEED_NO_EVICT */
  capacitySchedulerPolicy?: CapacitySchedulerPolicy;
  /** default FIRST_COME_FIRST_SERVED; used only with enableChunkedPrefill */
  contextChunkingPolicy?: ContextChunkingPolicy;
  /** default fcfs */
  waitingQueuePolicy?: WaitingQueuePolicy;
  /** requests per step */
  maxBatchSize: number;
  /** packed tokens per step */
  maxNumTokens: number;
  /** split long prompts over steps; default false */
  enableChunkedPrefill?: boolean;
}

/** tokens given to one request this step */
export interface ScheduledRequest {
  req: SchedRequest;
  numTokens: number;
}

export interface SchedulerOutput {
  /** prefill chunks, in batch order (packed before generation tokens) */
  contextRequests: ScheduledRequest[];
  /** decode steps: 1 + draft tokens each */
  generationRequests: ScheduledRequest[];
  /** preempted this step (MAX_UTILIZATION): blocks freed, state PAUSED; move them back to waiting */
  pausedRequests: SchedRequest[];
  /** waiting requests admitted this step (now hold blocks); move them to running */
  admittedRequests: SchedRequest[];
  /** requests the capacity scheduler found room for (before the token budget) */
  numFittingRequests: number;
}

/** A request that fits in KV memory, with the computed count it will start from this step. */
export interface Candidate {
  req: SchedRequest;
  /** req.numComputedTokens for running requests; predicted prefix hits for waiting ones */
  numComputed: number;
  /** comes from the waiting queue (not yet holding blocks) */
  fromWaiting: boolean;
}

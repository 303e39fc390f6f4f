// Two-level scheduler (capacity policy, then micro-batch token budget): pure integer bookkeeping.
export { RequestState, isContextPhase, isSchedulable } from "./request-state.js";
export { CapacityScheduler, type CapacityResult } from "./capacity.js";
export { MicroBatchScheduler, equalProgress, firstComeFirstServed, type MicroBatchOptions, type MicroBatchResult } from "./micro-batch.js";
export { Scheduler } from "./scheduler.js";
export type {
  Candidate, CapacitySchedulerPolicy, ContextChunkingPolicy, KvCacheResource, SchedRequest, ScheduledRequest,
  SchedulerOptions, SchedulerOutput, WaitingQueuePolicy,
} from "./types.js";

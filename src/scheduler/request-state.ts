// Request states, after TensorRT-LLM's LlmRequestState. The executor owns Request objects and moves
// them between states; the scheduler reads the state and changes it in one case only (preemption
// under MAX_UTILIZATION sets PAUSED).
//
//   CONTEXT_INIT ──(last context chunk computed, first token sampled)──► GENERATION_IN_PROGRESS
//   GENERATION_IN_PROGRESS ──(stop / length / abort)──► GENERATION_TO_COMPLETE ──► GENERATION_COMPLETE
//   GENERATION_IN_PROGRESS or CONTEXT_INIT ──(preempted, blocks freed)──► PAUSED ──(readmitted)──► CONTEXT_INIT
//
// A PAUSED request is scheduled like a context request over all its tokens (prompt + outputs so far),
// starting from its prefix-cache hits: that is the "recompute" of preemption.

export enum RequestState {
  /** waiting for admission, or prefilling (possibly over several chunks) */
  CONTEXT_INIT = "CONTEXT_INIT",
  /** decoding: one token (plus draft tokens) per step */
  GENERATION_IN_PROGRESS = "GENERATION_IN_PROGRESS",
  /** finished this step; the response is still being sent */
  GENERATION_TO_COMPLETE = "GENERATION_TO_COMPLETE",
  /** finished and reported (stop, length or abort); its KV blocks are freed */
  GENERATION_COMPLETE = "GENERATION_COMPLETE",
  /** preempted under MAX_UTILIZATION: holds no blocks, back in the waiting queue, recomputed later */
  PAUSED = "PAUSED",
}

/** states the scheduler may give tokens to */
export function isSchedulable(s: RequestState): boolean {
  return s === RequestState.CONTEXT_INIT || s === RequestState.GENERATION_IN_PROGRESS || s === RequestState.PAUSED;
}

/** context phase: all remaining tokens are known and computed as a (chunked) prefill */
export function isContextPhase(s: RequestState): boolean {
  return s === RequestState.CONTEXT_INIT || s === RequestState.PAUSED;
}

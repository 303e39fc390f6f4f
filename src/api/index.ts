// Public surface of the API layer.
export { LLM, GenerationStream, type GenerateOptions, type PromptInput, type PromptsInput, type StreamEvent } from "./llm.js";
export {
  parseLlmArgs, resolveConfig, DEFAULT_KV_CACHE_CONFIG, DEFAULT_SCHEDULER_CONFIG,
  type LlmArgs, type LlmArgsInput, type KvCacheConfig, type SchedulerConfig, type ResolvedConfig, type ResolveContext,
  type BackendChoice, type CapacitySchedulerPolicy, type ContextChunkingPolicy, type WaitingQueuePolicy,
} from "./llm-args.js";
export {
  createSamplingParams, validateSamplingParamsForVocab, SAMPLING_PARAMS_KEYS,
  type SamplingParams, type SamplingParamsInput,
} from "./sampling-params.js";
export { completionLength, type CompletionOutput, type FinishReason, type Logprob, type RequestOutput, type TokenLogprobs } from "./request-output.js";

// The generation executor: proxy (caller's thread) + worker (model, KV cache, step loop).
export { WorkerExecutor, ExecutorError, type GenerationExecutor, type GenerateAsyncOptions, type PromptInput } from "./executor.js";
export { GenerationResult, type StreamCompletion, type StreamOutput } from "./result.js";
export type { ExecutorConfig, EngineInfo, ExecutorKvCacheConfig, ExecutorSchedulerConfig } from "./config.js";
export type { FinalOutput, RequestMetrics } from "./messages.js";
export type { ExecutorSnapshot, IterationStats, KvCacheIterStats, InflightBatchingStats } from "./stats.js";
export { ExecutorCore, type Submission, type StepOutput } from "./step-loop.js";
export { Request, RequestState } from "./request.js";
export { executorConfigFromResolved } from "./from-llm-config.js";

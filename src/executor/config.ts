// Executor configuration: plain data (it crosses into the worker as workerData). Field names follow
// LlmArgs / ResolvedConfig (src/api/llm-args.ts) so that LLM can pass its resolved config through;
// every field but `model` is optional and defaults as LlmArgs does.
import type { SamplingParamsInput } from "../api/sampling-params.js";
import type { CapacitySchedulerPolicy, ContextChunkingPolicy, WaitingQueuePolicy } from "../scheduler/types.js";
import { ValidationError } from "../errors.js";

export interface ExecutorKvCacheConfig {
  enableBlockReuse: boolean;
  tokensPerBlock: number;
  freeMemoryFraction: number;
  /** null: size from memory only */
  maxTokens: number | null;
  /** auto: f16 on the native backend, f32 on the reference backend; int8: per-row f32 scales */
  dtype: "auto" | "f32" | "f16" | "int8";
}

export interface ExecutorSchedulerConfig {
  capacitySchedulerPolicy: CapacitySchedulerPolicy;
  contextChunkingPolicy: ContextChunkingPolicy;
  waitingQueuePolicy: WaitingQueuePolicy;
}

export interface ExecutorConfig {
  /** a local .gguf file or HF model directory (already resolved: no hub ids here) */
  model: string;
  /** HF tokenizer directory when it differs from the model */
  tokenizer?: string | null;
  backend?: "auto" | "native" | "reference";
  /** native kernel threads; default: the addon's default */
  threads?: number | null;
  maxBatchSize?: number;
  maxNumTokens?: number;
  /** default: the model's max position embeddings */
  maxSeqLen?: number | null;
  /** default: maxSeqLen - 1, capped to maxNumTokens without chunked prefill */
  maxInputLen?: number | null;
  enableChunkedPrefill?: boolean;
  kvCacheConfig?: Partial<ExecutorKvCacheConfig>;
  schedulerConfig?: Partial<ExecutorSchedulerConfig>;
  /** sampling defaults (generation_config.json), below each request's own params */
  generationDefaults?: SamplingParamsInput;
  /** accept the `crash` test message */
  enableTestHooks?: boolean;
  /** log lines (KV pool size, backend) on stderr; default: TLLM_LOG_LEVEL info/debug */
  log?: boolean;
}

/** What the worker reports once loaded. */
export interface EngineInfo {
  backend: "native" | "reference";
  vocabSize: number;
  maxSeqLen: number;
  maxInputLen: number;
  maxNumTokens: number;
  maxBatchSize: number;
  numKvBlocks: number;
  tokensPerBlock: number;
  kvDtype: "f32" | "f16" | "int8";
  /** the KV pool sizing line */
  kvReason: string;
  eosTokenIds: number[];
}

export const EXECUTOR_DEFAULTS = {
  maxBatchSize: 2048,
  maxNumTokens: 8192,
  enableChunkedPrefill: false,
  kvCacheConfig: { enableBlockReuse: true, tokensPerBlock: 32, freeMemoryFraction: 0.9, maxTokens: null, dtype: "auto" } as ExecutorKvCacheConfig,
  schedulerConfig: {
    capacitySchedulerPolicy: "GUARANTEED_NO_EVICT", contextChunkingPolicy: "FIRST_COME_FIRST_SERVED", waitingQueuePolicy: "fcfs",
  } as ExecutorSchedulerConfig,
};

/** Checks what can be checked before the model is loaded (the worker re-checks against the model). */
export function checkExecutorConfig(c: ExecutorConfig): void {
  if (typeof c.model !== "string" || c.model.length === 0) throw new ValidationError("model", c.model, "must be a path to a .gguf file or model directory");
  for (const k of ["maxBatchSize", "maxNumTokens", "maxSeqLen", "maxInputLen", "threads"] as const) {
    const v = c[k];
    if (v !== undefined && v !== null && (!Number.isInteger(v) || v < 1)) throw new ValidationError(k, v, "must be an integer >= 1");
  }
  if (c.backend !== undefined && !["auto", "native", "reference"].includes(c.backend)) {
    throw new ValidationError("backend", c.backend, "must be auto, native or reference");
  }
  const dt = c.kvCacheConfig?.dtype;
  if (dt !== undefined && !["auto", "f32", "f16", "int8"].includes(dt)) throw new ValidationError("kvCacheConfig.dtype", dt, "must be auto, f32, f16 or int8");
}

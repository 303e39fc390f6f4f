// The bridge from the LLM API's resolved configuration to the executor's: LLM resolves the model
// source (hub, demo, local) and every "auto", then starts the worker with
//   WorkerExecutor.create(executorConfigFromResolved(config, source.path, generationDefaults)).
import type { ResolvedConfig } from "../api/llm-args.js";
import type { SamplingParamsInput } from "../api/sampling-params.js";
import type { ExecutorConfig } from "./config.js";

export function executorConfigFromResolved(c: ResolvedConfig, modelPath: string, generationDefaults?: SamplingParamsInput, log?: boolean): ExecutorConfig {
  const cfg: ExecutorConfig = {
    model: modelPath, tokenizer: c.tokenizer, backend: c.backend, threads: c.threads,
    maxBatchSize: c.maxBatchSize, maxNumTokens: c.maxNumTokens, maxSeqLen: c.maxSeqLen, maxInputLen: c.maxInputLen,
    enableChunkedPrefill: c.enableChunkedPrefill,
    kvCacheConfig: {
      enableBlockReuse: c.kvCacheConfig.enableBlockReuse, tokensPerBlock: c.kvCacheConfig.tokensPerBlock,
      freeMemoryFraction: c.kvCacheConfig.freeMemoryFraction, maxTokens: c.kvCacheConfig.maxTokens, dtype: c.kvCacheConfig.dtype,
    },
    schedulerConfig: { ...c.schedulerConfig },
  };
  if (generationDefaults) cfg.generationDefaults = generationDefaults;
  if (log !== undefined) cfg.log = log;
  return cfg;
}

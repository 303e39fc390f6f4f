// Package entry: `import { LLM } from "tllm"`.
export * from "./api/index.js";
export {
  TllmError, ValidationError, UnknownOptionError, CheckpointError, UnsupportedArchitectureError, ShapeMismatchError,
} from "./errors.js";
export { Tokenizer, IncrementalDetokenizer, applyChatTemplate, type ChatMessage } from "./tokenizer/index.js";
export { resolveModel, ensureDemoModel, DEMO_MODEL, type ResolvedModel, type ResolveModelOptions } from "./checkpoint/resolve-model.js";
export { downloadFromHub, hubCacheDir, type HubDownloadOptions, type HubModel } from "./checkpoint/hub.js";
export type { ModelConfig } from "./config/model-config.js";

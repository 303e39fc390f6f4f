// Public surface of the eval harness: one namespace per task, each with `run(model, opts)`.
export type { ChatMessage, EvalModel, GenerateParams, LoglikelihoodResult, PositionLogprobs } from "./model.js";
export * as perplexity from "./perplexity.js";
export * as mmlu from "./mmlu.js";
export * as gsm8k from "./gsm8k.js";
export * as jsonMode from "./json-mode.js";
export * as stats from "./stats.js";
export { readKldFile, writeKldFile, type KldHeader, type KldPosition } from "./kld-file.js";
export { validateJsonSchema, type Schema, type SchemaError } from "./json-schema.js";
export { parseCsv, parseJsonl, TaskFileError } from "./files.js";
export { createOpenAiEvalModel, type OpenAiEvalModelOptions } from "./openai-model.js";

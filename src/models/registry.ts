// Which architectures the engine runs, keyed by HF `architectures` names and GGUF
// `general.architecture`. All supported families are Llama-style decoders (src/models/llama.ts);
// the family key becomes ModelConfig.architecture.
import type { Backend } from "../backends/backend.js";
import type { ModelConfig } from "../config/model-config.js";
import { UnsupportedArchitectureError } from "../errors.js";
import { LlamaModel } from "./llama.js";
import type { LlamaWeights } from "./weights.js";

export type Family = "llama" | "mistral" | "qwen2" | "qwen3";

export const HF_ARCHITECTURES: ReadonlyMap<string, Family> = new Map<string, Family>([
  ["LlamaForCausalLM", "llama"],
  ["MistralForCausalLM", "mistral"],
  ["Qwen2ForCausalLM", "qwen2"],
  ["Qwen3ForCausalLM", "qwen3"],
]);

/** llama.cpp writes Mistral checkpoints as `llama`; `mistral` is accepted for other writers. */
export const GGUF_ARCHITECTURES: ReadonlyMap<string, Family> = new Map<string, Family>([
  ["llama", "llama"],
  ["mistral", "mistral"],
  ["qwen2", "qwen2"],
  ["qwen3", "qwen3"],
]);

export function familyFromHf(architectures: unknown, file: string): Family {
  const names = Array.isArray(architectures) ? architectures.map(String) : [String(architectures)];
  for (const n of names) {
    const f = HF_ARCHITECTURES.get(n);
    if (f) return f;
  }
  throw new UnsupportedArchitectureError(file, names.join(",") || "(none)", [...HF_ARCHITECTURES.keys()]);
}

export function familyFromGguf(arch: unknown, file: string): Family {
  const f = GGUF_ARCHITECTURES.get(String(arch));
  if (!f) throw new UnsupportedArchitectureError(file, String(arch), [...GGUF_ARCHITECTURES.keys()]);
  return f;
}

const FAMILIES: readonly Family[] = ["llama", "mistral", "qwen2", "qwen3"];

/** Builds the model for config.architecture (a Family key); every family is a LlamaModel. */
export function createModel(config: ModelConfig, weights: LlamaWeights, backend: Backend, file = "(config)"): LlamaModel {
  if (!(FAMILIES as readonly string[]).includes(config.architecture)) {
    throw new UnsupportedArchitectureError(file, config.architecture, FAMILIES);
  }
  return new LlamaModel(config, weights, backend);
}

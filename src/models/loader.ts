// Opens a model: a .gguf file (config from its metadata) or an HF directory (config.json +
// safetensors), maps its weights and builds the model over a backend.
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Backend } from "../backends/backend.js";
import { openGguf } from "../checkpoint/gguf.js";
import { openSafetensorsDir } from "../checkpoint/safetensors.js";
import type { Checkpoint } from "../checkpoint/types.js";
import type { ModelConfig } from "../config/model-config.js";
import { CheckpointError } from "../errors.js";
import { configFromGguf } from "./config-from-gguf.js";
import { configFromHf } from "./config-from-hf.js";
import type { LlamaModel } from "./llama.js";
import { createModel } from "./registry.js";
import { loadLlamaWeights, type LlamaWeights } from "./weights.js";

export interface LoadedModel {
  config: ModelConfig;
  model: LlamaModel;
  checkpoint: Checkpoint;
  weights: LlamaWeights;
}

function readHfConfig(dir: string): Record<string, unknown> {
  const file = join(dir, "config.json");
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new CheckpointError(file, "file", `cannot read: ${(e as Error).message}`);
  }
  try {
    const j: unknown = JSON.parse(text);
    if (typeof j !== "object" || j === null || Array.isArray(j)) throw new Error("not a JSON object");
    return j as Record<string, unknown>;
  } catch (e) {
    throw new CheckpointError(file, "json", (e as Error).message);
  }
}

/** `path`: a .gguf file or an HF model directory. The caller closes `checkpoint` when done. */
export function loadModel(path: string, backend: Backend): LoadedModel {
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch (e) {
    throw new CheckpointError(path, "path", `cannot stat: ${(e as Error).message}`);
  }
  let config: ModelConfig;
  let checkpoint: Checkpoint;
  if (isDir) {
    config = configFromHf(readHfConfig(path), join(path, "config.json"));
    checkpoint = openSafetensorsDir(path);
  } else {
    checkpoint = openGguf(path);
    try {
      config = configFromGguf(checkpoint.metadata, path, checkpoint.tensors);
    } catch (e) {
      checkpoint.close();
      throw e;
    }
  }
  try {
    const weights = loadLlamaWeights(checkpoint, config);
    return { config, model: createModel(config, weights, backend, path), checkpoint, weights };
  } catch (e) {
    checkpoint.close();
    throw e;
  }
}

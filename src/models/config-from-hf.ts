// ModelConfig from an HF config.json object (LlamaForCausalLM, MistralForCausalLM,
// Qwen2ForCausalLM, Qwen3ForCausalLM). Defaults follow the transformers config classes.
import type { ModelConfig, RopeScaling } from "../config/model-config.js";
import { CheckpointError } from "../errors.js";
import { familyFromHf } from "./registry.js";

type Json = Record<string, unknown>;

function num(j: Json, key: string, file: string, dflt?: number): number {
  const v = j[key];
  if (v === undefined || v === null) {
    if (dflt !== undefined) return dflt;
    throw new CheckpointError(file, key, "missing");
  }
  if (typeof v !== "number" || !Number.isFinite(v)) throw new CheckpointError(file, key, `expected a number, got ${JSON.stringify(v)}`);
  return v;
}

function posInt(j: Json, key: string, file: string, dflt?: number): number {
  const v = num(j, key, file, dflt);
  if (!Number.isInteger(v) || v < 1) throw new CheckpointError(file, key, `expected a positive integer, got ${v}`);
  return v;
}

function tokenIds(v: unknown, file: string, key: string): number[] {
  if (v === undefined || v === null) return [];
  const arr = Array.isArray(v) ? v : [v];
  for (const x of arr) if (!Number.isInteger(x) || (x as number) < 0) throw new CheckpointError(file, key, `bad token id ${JSON.stringify(x)}`);
  return arr as number[];
}

/** rope_scaling {rope_type|type: linear|dynamic|llama3|yarn|default, ...}; null -> none. */
export function ropeScalingFromHf(rs: unknown, maxPos: number, file: string): RopeScaling {
  if (rs === undefined || rs === null) return { type: "none" };
  if (typeof rs !== "object") throw new CheckpointError(file, "rope_scaling", `expected an object, got ${JSON.stringify(rs)}`);
  const j = rs as Json;
  const type = String(j["rope_type"] ?? j["type"] ?? "");
  const f = `rope_scaling`;
  const factor = () => num(j, "factor", `${file}: ${f}`);
  const orig = () => posInt(j, "original_max_position_embeddings", `${file}: ${f}`, maxPos);
  switch (type) {
    case "default": return { type: "none" };
    case "linear": return { type: "linear", factor: factor() };
    case "dynamic": return { type: "dynamic", factor: factor(), originalMaxPositions: orig() };
    case "llama3":
      return {
        type: "llama3", factor: factor(), originalMaxPositions: orig(),
        lowFreqFactor: num(j, "low_freq_factor", `${file}: ${f}`), highFreqFactor: num(j, "high_freq_factor", `${file}: ${f}`),
      };
    case "yarn": {
      const out: RopeScaling = {
        type: "yarn", factor: factor(), originalMaxPositions: orig(),
        betaFast: num(j, "beta_fast", file, 32), betaSlow: num(j, "beta_slow", file, 1),
      };
      if (typeof j["mscale"] === "number") out.mscale = j["mscale"];
      if (typeof j["mscale_all_dim"] === "number") out.mscaleAllDim = j["mscale_all_dim"];
      if (typeof j["attention_factor"] === "number") out.attnFactor = j["attention_factor"];
      return out;
    }
    default:
      throw new CheckpointError(file, "rope_scaling.rope_type", `unsupported '${type}' (supported: default, linear, dynamic, llama3, yarn)`);
  }
}

/** Mistral: sliding_window when set; Qwen2: only with use_sliding_window (HF then applies it to
 *  layers >= max_window_layers; released Qwen2/2.5 configs all have it off, so we apply it to all). */
function slidingWindowFromHf(cfg: Json, family: string, file: string): number | null {
  const sw = cfg["sliding_window"];
  const applies = family === "mistral" || (family === "qwen2" && cfg["use_sliding_window"] === true);
  return applies && sw !== null && sw !== undefined ? posInt(cfg, "sliding_window", file) : null;
}

/** `file` names config.json in errors. */
export function configFromHf(cfg: Json, file: string): ModelConfig {
  const family = familyFromHf(cfg["architectures"], file);
  const hidden = posInt(cfg, "hidden_size", file);
  const heads = posInt(cfg, "num_attention_heads", file);
  const headDim = posInt(cfg, "head_dim", file, Math.floor(hidden / heads));
  const kvHeads = posInt(cfg, "num_key_value_heads", file, heads);
  if (heads % kvHeads !== 0) throw new CheckpointError(file, "num_key_value_heads", `${kvHeads} does not divide num_attention_heads ${heads}`);
  const maxPos = posInt(cfg, "max_position_embeddings", file, 2048);
  const prf = num(cfg, "partial_rotary_factor", file, 1);
  return {
    architecture: family,
    hiddenSize: hidden,
    numLayers: posInt(cfg, "num_hidden_layers", file),
    numHeads: heads,
    numKvHeads: kvHeads,
    headDim,
    intermediateSize: posInt(cfg, "intermediate_size", file),
    vocabSize: posInt(cfg, "vocab_size", file),
    maxPositionEmbeddings: maxPos,
    rmsNormEps: num(cfg, "rms_norm_eps", file, 1e-6),
    ropeTheta: num(cfg, "rope_theta", file, 10000),
    ropeScaling: ropeScalingFromHf(cfg["rope_scaling"], maxPos, file),
    ropeStyle: "neox",
    ropeDim: Math.floor(headDim * prf),
    tieWordEmbeddings: cfg["tie_word_embeddings"] === true,
    attentionBias: family === "qwen2" || cfg["attention_bias"] === true,
    qkNorm: family === "qwen3",
    slidingWindow: slidingWindowFromHf(cfg, family, file),
    bosTokenId: tokenIds(cfg["bos_token_id"], file, "bos_token_id")[0] ?? null,
    eosTokenIds: tokenIds(cfg["eos_token_id"], file, "eos_token_id"),
  };
}

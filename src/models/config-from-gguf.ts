// ModelConfig from GGUF metadata (llama.cpp key names). Rope style follows llama.cpp's
// llama_model_rope_type: "norm" for llama (the converter permuted Q/K rows), "neox" for qwen2/qwen3.
import type { MetadataValue, TensorInfo } from "../checkpoint/types.js";
import type { ModelConfig, RopeScaling } from "../config/model-config.js";
import { CheckpointError } from "../errors.js";
import { familyFromGguf, type Family } from "./registry.js";

type Md = ReadonlyMap<string, MetadataValue>;

function getNum(md: Md, key: string, file: string, dflt?: number): number {
  const v = md.get(key);
  if (v === undefined) {
    if (dflt !== undefined) return dflt;
    throw new CheckpointError(file, key, "missing");
  }
  const n = typeof v === "bigint" ? Number(v) : v;
  if (typeof n !== "number" || !Number.isFinite(n)) throw new CheckpointError(file, key, `expected a number, got ${String(v)}`);
  return n;
}

function getPosInt(md: Md, key: string, file: string, dflt?: number): number {
  const n = getNum(md, key, file, dflt);
  if (!Number.isInteger(n) || n < 1) throw new CheckpointError(file, key, `expected a positive integer, got ${n}`);
  return n;
}

function ropeScalingFromGguf(md: Md, a: string, file: string, maxPos: number): RopeScaling {
  const t = md.get(`${a}.rope.scaling.type`);
  const factorKey = `${a}.rope.scaling.factor`;
  if (t === undefined || t === "none") {
    // older files carry only a linear factor
    const f = getNum(md, factorKey, file, 0);
    return f > 1 ? { type: "linear", factor: f } : { type: "none" };
  }
  const factor = getNum(md, factorKey, file);
  const orig = getPosInt(md, `${a}.rope.scaling.original_context_length`, file, maxPos);
  if (t === "linear") return { type: "linear", factor };
  if (t === "yarn") {
    // llama.cpp: mscale = attn_factor * (1 + 0.1 ln factor); fold both into attnFactor
    const attn = getNum(md, `${a}.rope.scaling.attn_factor`, file, 1);
    return {
      type: "yarn", factor, originalMaxPositions: orig,
      betaFast: getNum(md, `${a}.rope.scaling.yarn_beta_fast`, file, 32),
      betaSlow: getNum(md, `${a}.rope.scaling.yarn_beta_slow`, file, 1),
      attnFactor: attn * (factor > 1 ? 1 + 0.1 * Math.log(factor) : 1),
    };
  }
  throw new CheckpointError(file, `${a}.rope.scaling.type`, `unsupported '${String(t)}' (supported: none, linear, yarn)`);
}

function tokenId(md: Md, key: string, file: string): number | null {
  return md.has(key) ? getNum(md, key, file) : null;
}

function vocabSize(md: Md, file: string, tensors?: ReadonlyMap<string, TensorInfo>): number {
  const toks = md.get("tokenizer.ggml.tokens");
  if (Array.isArray(toks) && toks.length > 0) return toks.length;
  const emb = tensors?.get("token_embd.weight");
  if (emb) return emb.shape[0]!;
  throw new CheckpointError(file, "tokenizer.ggml.tokens", "missing, and no token_embd.weight to take the vocab size from");
}

/** `tensors`, when given, settles vocab size (no tokenizer) and tied embeddings (no output.weight). */
export function configFromGguf(md: Md, file: string, tensors?: ReadonlyMap<string, TensorInfo>): ModelConfig {
  const family: Family = familyFromGguf(md.get("general.architecture"), file);
  const a = String(md.get("general.architecture"));
  const hidden = getPosInt(md, `${a}.embedding_length`, file);
  const heads = getPosInt(md, `${a}.attention.head_count`, file);
  const kvHeads = getPosInt(md, `${a}.attention.head_count_kv`, file, heads);
  if (heads % kvHeads !== 0) throw new CheckpointError(file, `${a}.attention.head_count_kv`, `${kvHeads} does not divide head_count ${heads}`);
  const headDim = getPosInt(md, `${a}.attention.key_length`, file, Math.floor(hidden / heads));
  const maxPos = getPosInt(md, `${a}.context_length`, file, 2048);
  const sw = md.has(`${a}.attention.sliding_window`) ? getPosInt(md, `${a}.attention.sliding_window`, file) : null;
  const eos = tokenId(md, "tokenizer.ggml.eos_token_id", file);
  return {
    architecture: family,
    hiddenSize: hidden,
    numLayers: getPosInt(md, `${a}.block_count`, file),
    numHeads: heads,
    numKvHeads: kvHeads,
    headDim,
    intermediateSize: getPosInt(md, `${a}.feed_forward_length`, file),
    vocabSize: vocabSize(md, file, tensors),
    maxPositionEmbeddings: maxPos,
    rmsNormEps: getNum(md, `${a}.attention.layer_norm_rms_epsilon`, file, 1e-5),
    ropeTheta: getNum(md, `${a}.rope.freq_base`, file, 10000),
    ropeScaling: ropeScalingFromGguf(md, a, file, maxPos),
    ropeStyle: family === "llama" || family === "mistral" ? "norm" : "neox",
    ropeDim: getPosInt(md, `${a}.rope.dimension_count`, file, headDim),
    tieWordEmbeddings: tensors ? !tensors.has("output.weight") : false,
    attentionBias: tensors ? tensors.has("blk.0.attn_q.bias") : family === "qwen2",
    qkNorm: tensors ? tensors.has("blk.0.attn_q_norm.weight") : family === "qwen3",
    slidingWindow: sw,
    bosTokenId: tokenId(md, "tokenizer.ggml.bos_token_id", file),
    eosTokenIds: eos === null ? [] : [eos],
  };
}

// configFromHf on sample config.json objects of each family, and configFromGguf on GGUF metadata.
import { test } from "node:test";
import assert from "node:assert/strict";
import { configFromHf } from "../../src/models/config-from-hf.js";
import { configFromGguf } from "../../src/models/config-from-gguf.js";
import { CheckpointError, UnsupportedArchitectureError } from "../../src/errors.js";
import type { MetadataValue, TensorInfo } from "../../src/checkpoint/types.js";
import { GgmlType } from "../../src/backends/dtypes.js";

// Values as published in each model's config.json (trimmed to the fields we read).
const LLAMA32_1B = {
  architectures: ["LlamaForCausalLM"], hidden_size: 2048, intermediate_size: 8192, num_attention_heads: 32,
  num_key_value_heads: 8, num_hidden_layers: 16, head_dim: 64, max_position_embeddings: 131072, rms_norm_eps: 1e-5,
  rope_theta: 500000, vocab_size: 128256, tie_word_embeddings: true, bos_token_id: 128000,
  eos_token_id: [128001, 128008, 128009], attention_bias: false,
  rope_scaling: { factor: 32, high_freq_factor: 4, low_freq_factor: 1, original_max_position_embeddings: 8192, rope_type: "llama3" },
};
const MISTRAL_7B_V01 = {
  architectures: ["MistralForCausalLM"], hidden_size: 4096, intermediate_size: 14336, num_attention_heads: 32,
  num_key_value_heads: 8, num_hidden_layers: 32, max_position_embeddings: 32768, rms_norm_eps: 1e-5, rope_theta: 10000,
  sliding_window: 4096, vocab_size: 32000, tie_word_embeddings: false, bos_token_id: 1, eos_token_id: 2,
};
const QWEN25_05B = {
  architectures: ["Qwen2ForCausalLM"], hidden_size: 896, intermediate_size: 4864, num_attention_heads: 14,
  num_key_value_heads: 2, num_hidden_layers: 24, max_position_embeddings: 32768, rms_norm_eps: 1e-6, rope_theta: 1000000,
  sliding_window: 32768, use_sliding_window: false, max_window_layers: 21, vocab_size: 151936, tie_word_embeddings: true,
  bos_token_id: 151643, eos_token_id: 151643,
};
const QWEN3_06B = {
  architectures: ["Qwen3ForCausalLM"], hidden_size: 1024, intermediate_size: 3072, num_attention_heads: 16,
  num_key_value_heads: 8, head_dim: 128, num_hidden_layers: 28, max_position_embeddings: 40960, rms_norm_eps: 1e-6,
  rope_theta: 1000000, rope_scaling: null, sliding_window: null, use_sliding_window: false, attention_bias: false,
  vocab_size: 151936, tie_word_embeddings: true, bos_token_id: 151643, eos_token_id: 151645,
};
const TINYLLAMA = {
  architectures: ["LlamaForCausalLM"], hidden_size: 2048, intermediate_size: 5632, num_attention_heads: 32,
  num_key_value_heads: 4, num_hidden_layers: 22, max_position_embeddings: 2048, rms_norm_eps: 1e-5,
  vocab_size: 32000, tie_word_embeddings: false, bos_token_id: 1, eos_token_id: 2, rope_scaling: null,
};
const SMOLLM_135M = {
  architectures: ["LlamaForCausalLM"], hidden_size: 576, intermediate_size: 1536, num_attention_heads: 9,
  num_key_value_heads: 3, num_hidden_layers: 30, max_position_embeddings: 2048, rms_norm_eps: 1e-5, rope_theta: 10000,
  vocab_size: 49152, tie_word_embeddings: true, bos_token_id: 0, eos_token_id: 0,
};

test("Llama 3.2 1B: llama3 rope scaling, GQA, tied, eos list", () => {
  const c = configFromHf(LLAMA32_1B, "config.json");
  assert.equal(c.architecture, "llama");
  assert.deepEqual([c.hiddenSize, c.numLayers, c.numHeads, c.numKvHeads, c.headDim, c.intermediateSize, c.vocabSize], [2048, 16, 32, 8, 64, 8192, 128256]);
  assert.deepEqual(c.ropeScaling, { type: "llama3", factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 });
  assert.equal(c.ropeTheta, 500000);
  assert.equal(c.ropeStyle, "neox");
  assert.equal(c.ropeDim, 64);
  assert.equal(c.tieWordEmbeddings, true);
  assert.equal(c.bosTokenId, 128000);
  assert.deepEqual(c.eosTokenIds, [128001, 128008, 128009]);
  assert.equal(c.attentionBias, false);
  assert.equal(c.qkNorm, false);
  assert.equal(c.slidingWindow, null);
  assert.equal(c.rmsNormEps, 1e-5);
});

test("Mistral 7B v0.1: sliding window 4096, head_dim = hidden / heads", () => {
  const c = configFromHf(MISTRAL_7B_V01, "config.json");
  assert.equal(c.architecture, "mistral");
  assert.equal(c.slidingWindow, 4096);
  assert.equal(c.headDim, 128);
  assert.deepEqual(c.eosTokenIds, [2]);
  assert.equal(c.tieWordEmbeddings, false);
  assert.equal(configFromHf({ ...MISTRAL_7B_V01, sliding_window: null }, "config.json").slidingWindow, null);
});

test("Qwen2.5 0.5B: qkv bias always, sliding window only with use_sliding_window", () => {
  const c = configFromHf(QWEN25_05B, "config.json");
  assert.equal(c.architecture, "qwen2");
  assert.equal(c.attentionBias, true);
  assert.equal(c.slidingWindow, null);
  assert.equal(c.headDim, 64);
  assert.equal(c.numKvHeads, 2);
  assert.equal(c.ropeTheta, 1e6);
  assert.equal(configFromHf({ ...QWEN25_05B, use_sliding_window: true }, "config.json").slidingWindow, 32768);
});

test("Qwen3 0.6B: q/k norm, explicit head_dim 128 != hidden/heads", () => {
  const c = configFromHf(QWEN3_06B, "config.json");
  assert.equal(c.architecture, "qwen3");
  assert.equal(c.qkNorm, true);
  assert.equal(c.headDim, 128);
  assert.equal(c.ropeDim, 128);
  assert.equal(c.attentionBias, false);
  assert.deepEqual(c.ropeScaling, { type: "none" });
  assert.deepEqual(c.eosTokenIds, [151645]);
});

test("TinyLlama: rope_theta defaults to 10000, untied", () => {
  const c = configFromHf(TINYLLAMA, "config.json");
  assert.equal(c.ropeTheta, 10000);
  assert.equal(c.numKvHeads, 4);
  assert.equal(c.tieWordEmbeddings, false);
  assert.equal(c.maxPositionEmbeddings, 2048);
});

test("SmolLM 135M: tied embeddings, 9 heads of 64, bos/eos 0", () => {
  const c = configFromHf(SMOLLM_135M, "config.json");
  assert.equal(c.tieWordEmbeddings, true);
  assert.equal(c.headDim, 64);
  assert.equal(c.bosTokenId, 0);
  assert.deepEqual(c.eosTokenIds, [0]);
});

test("num_key_value_heads defaults to num_attention_heads", () => {
  const { num_key_value_heads: _, ...noKv } = TINYLLAMA;
  assert.equal(configFromHf(noKv, "config.json").numKvHeads, 32);
});

test("rope_scaling variants: linear, dynamic, yarn (old `type` key too)", () => {
  const with_ = (rs: unknown) => configFromHf({ ...TINYLLAMA, rope_scaling: rs }, "config.json").ropeScaling;
  assert.deepEqual(with_({ type: "linear", factor: 2 }), { type: "linear", factor: 2 });
  assert.deepEqual(with_({ rope_type: "dynamic", factor: 2 }), { type: "dynamic", factor: 2, originalMaxPositions: 2048 });
  assert.deepEqual(with_({ rope_type: "yarn", factor: 4, original_max_position_embeddings: 32768 }),
    { type: "yarn", factor: 4, originalMaxPositions: 32768, betaFast: 32, betaSlow: 1 });
  assert.deepEqual(with_({ rope_type: "default" }), { type: "none" });
  assert.throws(() => with_({ rope_type: "longrope", factor: 2 }), (e: unknown) => e instanceof CheckpointError && /longrope/.test(e.message));
});

test("unknown architecture lists the supported ones; bad fields are named", () => {
  assert.throws(() => configFromHf({ ...TINYLLAMA, architectures: ["GPT2LMHeadModel"] }, "x/config.json"),
    (e: unknown) => e instanceof UnsupportedArchitectureError && /GPT2LMHeadModel/.test(e.message) && /Qwen3ForCausalLM/.test(e.message));
  const { hidden_size: _, ...noHidden } = TINYLLAMA;
  assert.throws(() => configFromHf(noHidden, "x/config.json"), (e: unknown) => e instanceof CheckpointError && e.field === "hidden_size");
  assert.throws(() => configFromHf({ ...TINYLLAMA, num_key_value_heads: 5 }, "x/config.json"),
    (e: unknown) => e instanceof CheckpointError && e.field === "num_key_value_heads");
  assert.throws(() => configFromHf({ ...TINYLLAMA, hidden_size: "big" }, "x/config.json"),
    (e: unknown) => e instanceof CheckpointError && e.field === "hidden_size");
});

function md(arch: string, extra: Record<string, MetadataValue> = {}): Map<string, MetadataValue> {
  return new Map<string, MetadataValue>(Object.entries({
    "general.architecture": arch, [`${arch}.embedding_length`]: 256, [`${arch}.block_count`]: 4,
    [`${arch}.attention.head_count`]: 8, [`${arch}.attention.head_count_kv`]: 2, [`${arch}.feed_forward_length`]: 640,
    [`${arch}.context_length`]: 4096n, [`${arch}.attention.layer_norm_rms_epsilon`]: 1e-5, [`${arch}.rope.freq_base`]: 500000,
    "tokenizer.ggml.tokens": ["a", "b", "c", "d"], "tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2,
    ...extra,
  }));
}

function fakeTensor(name: string, shape: number[]): TensorInfo {
  return { name, dtype: GgmlType.F32, shape, file: "m.gguf", data: () => new Uint8Array(0) };
}

test("GGUF llama: dims from <arch>.* keys, norm rope, bigint context length, vocab from tokens", () => {
  const c = configFromGguf(md("llama"), "m.gguf");
  assert.equal(c.architecture, "llama");
  assert.deepEqual([c.hiddenSize, c.numLayers, c.numHeads, c.numKvHeads, c.headDim, c.intermediateSize, c.vocabSize], [256, 4, 8, 2, 32, 640, 4]);
  assert.equal(c.maxPositionEmbeddings, 4096);
  assert.equal(c.ropeStyle, "norm");
  assert.equal(c.ropeTheta, 500000);
  assert.equal(c.rmsNormEps, 1e-5);
  assert.equal(c.bosTokenId, 1);
  assert.deepEqual(c.eosTokenIds, [2]);
  assert.deepEqual(c.ropeScaling, { type: "none" });
});

test("GGUF qwen2/qwen3 use neox rope; tensors decide bias, q/k norm, tying and vocab", () => {
  assert.equal(configFromGguf(md("qwen2"), "m.gguf").ropeStyle, "neox");
  const tensors = new Map([
    ["token_embd.weight", fakeTensor("token_embd.weight", [1000, 256])],
    ["blk.0.attn_q_norm.weight", fakeTensor("blk.0.attn_q_norm.weight", [32])],
  ]);
  const m = md("qwen3", { "qwen3.attention.key_length": 64 });
  m.delete("tokenizer.ggml.tokens");
  const c = configFromGguf(m, "m.gguf", tensors);
  assert.equal(c.ropeStyle, "neox");
  assert.equal(c.headDim, 64);
  assert.equal(c.ropeDim, 64);
  assert.equal(c.vocabSize, 1000);
  assert.equal(c.qkNorm, true);
  assert.equal(c.attentionBias, false);
  assert.equal(c.tieWordEmbeddings, true);
});

test("GGUF rope scaling (linear, yarn) and sliding window keys", () => {
  const lin = configFromGguf(md("llama", { "llama.rope.scaling.type": "linear", "llama.rope.scaling.factor": 4 }), "m.gguf");
  assert.deepEqual(lin.ropeScaling, { type: "linear", factor: 4 });
  const yarn = configFromGguf(md("qwen2", {
    "qwen2.rope.scaling.type": "yarn", "qwen2.rope.scaling.factor": 4, "qwen2.rope.scaling.original_context_length": 32768,
  }), "m.gguf");
  assert.deepEqual(yarn.ropeScaling, { type: "yarn", factor: 4, originalMaxPositions: 32768, betaFast: 32, betaSlow: 1, attnFactor: 1 + 0.1 * Math.log(4) });
  assert.equal(configFromGguf(md("llama", { "llama.attention.sliding_window": 4096 }), "m.gguf").slidingWindow, 4096);
});

test("GGUF: unknown architecture and missing keys are typed errors", () => {
  assert.throws(() => configFromGguf(md("gpt2"), "m.gguf"),
    (e: unknown) => e instanceof UnsupportedArchitectureError && /gpt2/.test(e.message) && /qwen3/.test(e.message));
  const m = md("llama");
  m.delete("llama.block_count");
  assert.throws(() => configFromGguf(m, "m.gguf"), (e: unknown) => e instanceof CheckpointError && e.field === "llama.block_count");
  const noVocab = md("llama");
  noVocab.delete("tokenizer.ggml.tokens");
  assert.throws(() => configFromGguf(noVocab, "m.gguf"), (e: unknown) => e instanceof CheckpointError && e.field === "tokenizer.ggml.tokens");
});

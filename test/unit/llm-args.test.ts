// LlmArgs validation: defaults, unknown keys (top-level and nested), wrong types and ranges with the
// exact error class and field, cross-field rules, and resolveConfig's settling of every "auto".
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseLlmArgs, resolveConfig } from "../../src/api/llm-args.js";
import { UnknownOptionError, ValidationError } from "../../src/errors.js";
import type { ModelConfig } from "../../src/config/model-config.js";

function expectError(fn: () => unknown, cls: typeof ValidationError | typeof UnknownOptionError, field: string): Error {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
    assert.equal((e as ValidationError).field, field);
    return e as Error;
  }
  assert.fail(`expected ${cls.name} for field ${field}, nothing was thrown`);
}

const MODEL: ModelConfig = {
  architecture: "llama", hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 16,
  intermediateSize: 128, vocabSize: 1000, maxPositionEmbeddings: 512, rmsNormEps: 1e-5, ropeTheta: 10000,
  ropeScaling: { type: "none" }, ropeStyle: "norm", ropeDim: 16, tieWordEmbeddings: false, attentionBias: false,
  qkNorm: false, slidingWindow: null, bosTokenId: 1, eosTokenIds: [2],
};

test("defaults follow TensorRT-LLM's", () => {
  const a = parseLlmArgs({ model: "demo" });
  assert.equal(a.model, "demo");
  assert.equal(a.maxBatchSize, 2048);
  assert.equal(a.maxNumTokens, 8192);
  assert.equal(a.maxSeqLen, null);
  assert.equal(a.backend, "auto");
  assert.equal(a.kvCacheConfig.tokensPerBlock, 32);
  assert.equal(a.kvCacheConfig.freeMemoryFraction, 0.9);
  assert.equal(a.kvCacheConfig.enableBlockReuse, true);
  assert.equal(a.schedulerConfig.capacitySchedulerPolicy, "GUARANTEED_NO_EVICT");
  assert.equal(a.schedulerConfig.waitingQueuePolicy, "fcfs");
  assert.equal(a.enableChunkedPrefill, false);
  assert.equal(a.revision, "main");
});

test("given values are kept, nested partials merge over defaults", () => {
  const a = parseLlmArgs({ model: "m", maxBatchSize: 8, kvCacheConfig: { tokensPerBlock: 16 }, threads: 3 });
  assert.equal(a.maxBatchSize, 8);
  assert.equal(a.threads, 3);
  assert.equal(a.kvCacheConfig.tokensPerBlock, 16);
  assert.equal(a.kvCacheConfig.enableBlockReuse, true);
});

test("unknown keys are rejected with the key named, nested too", () => {
  const e1 = expectError(() => parseLlmArgs({ model: "m", maxBatchSizes: 4 }), UnknownOptionError, "maxBatchSizes");
  assert.match(e1.message, /maxBatchSizes/);
  const e2 = expectError(() => parseLlmArgs({ model: "m", kvCacheConfig: { blockSize: 4 } }), UnknownOptionError,
    "kvCacheConfig.blockSize");
  assert.match(e2.message, /kvCacheConfig\.blockSize/);
  expectError(() => parseLlmArgs({ model: "m", schedulerConfig: { policy: "x" } }), UnknownOptionError,
    "schedulerConfig.policy");
});

test("snake_case keys get a camelCase hint", () => {
  const e = expectError(() => parseLlmArgs({ model: "m", max_batch_size: 4 }), UnknownOptionError, "max_batch_size");
  assert.match(e.message, /did you mean 'maxBatchSize'/);
});

test("wrong types and ranges name the field and the value", () => {
  expectError(() => parseLlmArgs({}), ValidationError, "model");
  expectError(() => parseLlmArgs({ model: "" }), ValidationError, "model");
  expectError(() => parseLlmArgs(null), ValidationError, "args");
  expectError(() => parseLlmArgs({ model: "m", maxBatchSize: 0 }), ValidationError, "maxBatchSize");
  expectError(() => parseLlmArgs({ model: "m", maxBatchSize: 1.5 }), ValidationError, "maxBatchSize");
  expectError(() => parseLlmArgs({ model: "m", maxNumTokens: "8192" }), ValidationError, "maxNumTokens");
  expectError(() => parseLlmArgs({ model: "m", backend: "cuda" }), ValidationError, "backend");
  expectError(() => parseLlmArgs({ model: "m", threads: 0 }), ValidationError, "threads");
  expectError(() => parseLlmArgs({ model: "m", enableChunkedPrefill: "yes" }), ValidationError, "enableChunkedPrefill");
  expectError(() => parseLlmArgs({ model: "m", maxBeamWidth: 0 }), ValidationError, "maxBeamWidth");
  assert.equal(parseLlmArgs({ model: "m", maxBeamWidth: 4 }).maxBeamWidth, 4);
  assert.equal(parseLlmArgs({ model: "m" }).maxBeamWidth, 1);
  expectError(() => parseLlmArgs({ model: "m", kvCacheConfig: 3 }), ValidationError, "kvCacheConfig");
  const e = expectError(() => parseLlmArgs({ model: "m", kvCacheConfig: { tokensPerBlock: 24 } }), ValidationError,
    "kvCacheConfig.tokensPerBlock");
  assert.equal((e as ValidationError).value, 24);
  assert.match(e.message, /power of two/);
  expectError(() => parseLlmArgs({ model: "m", kvCacheConfig: { freeMemoryFraction: 0 } }), ValidationError,
    "kvCacheConfig.freeMemoryFraction");
  expectError(() => parseLlmArgs({ model: "m", kvCacheConfig: { freeMemoryFraction: 1.2 } }), ValidationError,
    "kvCacheConfig.freeMemoryFraction");
  expectError(() => parseLlmArgs({ model: "m", kvCacheConfig: { dtype: "fp8" } }), ValidationError,
    "kvCacheConfig.dtype");
  expectError(() => parseLlmArgs({ model: "m", schedulerConfig: { capacitySchedulerPolicy: "guaranteed" } }),
    ValidationError, "schedulerConfig.capacitySchedulerPolicy");
});

test("cross-field rules", () => {
  expectError(() => parseLlmArgs({ model: "m", maxSeqLen: 100, maxInputLen: 100 }), ValidationError, "maxInputLen");
  expectError(() => parseLlmArgs({ model: "m", maxNumTokens: 64, maxInputLen: 65 }), ValidationError, "maxInputLen");
  // with chunked prefill a prompt may exceed the per-step token budget
  assert.equal(parseLlmArgs({ model: "m", maxNumTokens: 64, maxInputLen: 65, enableChunkedPrefill: true }).maxInputLen, 65);
});

test("resolveConfig settles every auto and logs its choices", () => {
  const { config, log } = resolveConfig(parseLlmArgs({ model: "m" }), {
    model: MODEL, nativeAvailable: false, cpuCount: 6, env: {},
  });
  assert.equal(config.backend, "reference");
  assert.equal(config.threads, 6);
  assert.equal(config.dtype, "float32");
  assert.equal(config.maxSeqLen, 512);
  assert.equal(config.maxInputLen, 511);
  assert.equal(config.kvCacheConfig.dtype, "f32");
  assert.equal(config.offline, false);
  assert.equal(config.hfToken, null);
  assert.match(log, /backend=reference \(auto\)/);
  assert.match(log, /threads=6 \(auto\)/);
  assert.match(log, /maxSeqLen=512/);

  const n = resolveConfig(parseLlmArgs({ model: "m", maxNumTokens: 100 }), {
    model: MODEL, nativeAvailable: true, cpuCount: 2, env: { HF_HUB_OFFLINE: "1", HF_TOKEN: "hf_x" },
  }).config;
  assert.equal(n.backend, "native");
  assert.equal(n.kvCacheConfig.dtype, "f16");
  assert.equal(n.maxInputLen, 100, "without chunked prefill the prompt limit is capped by maxNumTokens");
  assert.equal(n.offline, true);
  assert.equal(n.hfToken, "hf_x");
});

test("resolveConfig rejects choices the host or model cannot honour", () => {
  const ctx = { model: MODEL, nativeAvailable: false, env: {} };
  expectError(() => resolveConfig(parseLlmArgs({ model: "m", backend: "native" }), ctx), ValidationError, "backend");
  expectError(() => resolveConfig(parseLlmArgs({ model: "m", maxSeqLen: 513 }), ctx), ValidationError, "maxSeqLen");
  expectError(() => resolveConfig(parseLlmArgs({ model: "m", dtype: "float16" }), ctx), ValidationError, "dtype");
  expectError(() => resolveConfig(parseLlmArgs({ model: "m", maxInputLen: 600 }), ctx), ValidationError, "maxInputLen");
});

// Executor configuration: the bridge from LLM's resolved config, and the pre-load checks.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { parseLlmArgs, resolveConfig } from "../../src/api/llm-args.js";
import type { ModelConfig } from "../../src/config/model-config.js";
import { ValidationError } from "../../src/errors.js";
import { checkExecutorConfig } from "../../src/executor/config.js";
import { executorConfigFromResolved } from "../../src/executor/from-llm-config.js";

describe("executor config", () => {
  test("executorConfigFromResolved carries every engine setting of the resolved LLM config", () => {
    const args = parseLlmArgs({
      model: "org/name", maxBatchSize: 7, maxNumTokens: 300, enableChunkedPrefill: true, threads: 3, backend: "reference",
      kvCacheConfig: { maxTokens: 4096, tokensPerBlock: 16, enableBlockReuse: false, freeMemoryFraction: 0.5 },
      schedulerConfig: { capacitySchedulerPolicy: "MAX_UTILIZATION", waitingQueuePolicy: "priority" },
    });
    const { config } = resolveConfig(args, { model: { maxPositionEmbeddings: 512 } as ModelConfig, nativeAvailable: false, env: {} });
    const ex = executorConfigFromResolved(config, "/models/x.gguf", { temperature: 0.5 }, false);
    assert.equal(ex.model, "/models/x.gguf");
    assert.equal(ex.backend, "reference");
    assert.equal(ex.threads, 3);
    assert.equal(ex.maxBatchSize, 7);
    assert.equal(ex.maxNumTokens, 300);
    assert.equal(ex.maxSeqLen, 512);
    assert.equal(ex.maxInputLen, 511); // chunked prefill: maxSeqLen - 1
    assert.equal(ex.enableChunkedPrefill, true);
    assert.deepEqual(ex.kvCacheConfig, { enableBlockReuse: false, tokensPerBlock: 16, freeMemoryFraction: 0.5, maxTokens: 4096, dtype: "f32" });
    assert.equal(ex.schedulerConfig?.capacitySchedulerPolicy, "MAX_UTILIZATION");
    assert.equal(ex.schedulerConfig?.waitingQueuePolicy, "priority");
    assert.deepEqual(ex.generationDefaults, { temperature: 0.5 });
    assert.equal(ex.log, false);
    assert.deepEqual(structuredClone(ex), ex, "plain data: it crosses into the worker");
  });

  test("checkExecutorConfig names the bad field", () => {
    const field = (f: string) => (e: unknown) => e instanceof ValidationError && e.field === f;
    assert.throws(() => checkExecutorConfig({ model: "" }), field("model"));
    assert.throws(() => checkExecutorConfig({ model: "m", maxBatchSize: 0 }), field("maxBatchSize"));
    assert.throws(() => checkExecutorConfig({ model: "m", maxNumTokens: 1.5 }), field("maxNumTokens"));
    assert.throws(() => checkExecutorConfig({ model: "m", backend: "gpu" as "native" }), field("backend"));
    assert.throws(() => checkExecutorConfig({ model: "m", kvCacheConfig: { dtype: "int4" as "f16" } }), field("kvCacheConfig.dtype"));
    checkExecutorConfig({ model: "m", maxSeqLen: null, threads: 2 });
  });
});

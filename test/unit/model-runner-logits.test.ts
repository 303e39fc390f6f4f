// ModelRunner hands the model one logits buffer that it reuses across steps (no per-step
// allocation of rows x vocab floats): each run's logits are a view of it, valid until the next run.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { KvLayer } from "../../src/backends/backend.js";
import { KvPool } from "../../src/engine/kv-pool.js";
import { ModelRunner } from "../../src/engine/model-runner.js";
import type { ForwardBatch } from "../../src/engine/types.js";

test("ModelRunner reuses one logits buffer across steps; each step's rows are its own", () => {
  const pool = new KvPool({ numLayers: 1, numKvHeads: 1, headDim: 2, tokensPerBlock: 2, dtype: "f32" }, 8);
  const V = 4;
  const given: Array<Float32Array | undefined> = [];
  const model = {
    config: { vocabSize: V },
    forward(batch: ForwardBatch, _kv: readonly KvLayer[], out?: Float32Array<ArrayBuffer>) {
      given.push(out);
      const n = batch.logitRows.length * V;
      const logits = out ? out.subarray(0, n) : new Float32Array(n);
      batch.logitRows.forEach((row, r) => logits.set([batch.tokens[row]!, batch.positions[row]!, r, 9], r * V));
      return logits;
    },
  };
  const runner = new ModelRunner(model, pool);
  const a = runner.run([{ tokens: [5, 6], start: 0, numTokens: 2, blockTable: Int32Array.of(1), wantLogits: true }]);
  assert.deepEqual([...a.logits], [6, 1, 0, 9]);
  const b = runner.run([
    { tokens: [5, 6, 7], start: 2, numTokens: 1, blockTable: Int32Array.of(1, 2), wantLogits: true },
    { tokens: [3], start: 0, numTokens: 1, blockTable: Int32Array.of(3), wantLogits: true },
  ]);
  assert.deepEqual([...b.logits], [7, 2, 0, 9, 3, 0, 1, 9]);
  const c = runner.run([{ tokens: [5, 6, 7, 8], start: 3, numTokens: 1, blockTable: Int32Array.of(1, 2), wantLogits: true }]);
  assert.deepEqual([...c.logits], [8, 3, 0, 9]);
  assert.ok(given.every((o) => o instanceof Float32Array), "the runner passes a buffer every step");
  assert.equal(given[2], given[1], "the same buffer once it is large enough");
  assert.equal(c.logits.buffer, b.logits.buffer);
});

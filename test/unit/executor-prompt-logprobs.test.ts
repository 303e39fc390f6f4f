// Prompt logprobs in the step loop (ExecutorCore in-process) over a fake model whose logits row at
// a position depends only on that position and its token, so the expected prompt logprobs are
// written out here independently. Checks the per-step row cap (maxPromptLogitRows): a 30-token
// prompt is computed in chunks of at most 8 tokens, with every entry filled exactly once.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { KvLayer } from "../../src/backends/backend.js";
import { createSamplingParams } from "../../src/api/sampling-params.js";
import { KvPool } from "../../src/engine/kv-pool.js";
import { ModelRunner } from "../../src/engine/model-runner.js";
import type { ForwardBatch } from "../../src/engine/types.js";
import { ExecutorCore } from "../../src/executor/step-loop.js";
import type { FinalOutput } from "../../src/executor/messages.js";
import { KVCacheManager } from "../../src/kvcache/kv-cache-manager.js";
import { Scheduler } from "../../src/scheduler/scheduler.js";
import type { Tokenizer } from "../../src/tokenizer/tokenizer.js";

const V = 50, TPB = 4;

/** logits after token `tok` at position `pos`: 3 at (7 tok + pos) mod V, +1 at (3 tok + 1) mod V, 0 elsewhere */
function row(tok: number, pos: number): Float64Array {
  const r = new Float64Array(V);
  r[(7 * tok + pos) % V] = 3;
  r[(3 * tok + 1) % V]! += 1;
  return r;
}

class FakeModel {
  readonly config = { vocabSize: V };
  rowsPerForward: number[] = [];
  forward(b: ForwardBatch, _kv: readonly KvLayer[]): Float32Array {
    this.rowsPerForward.push(b.logitRows.length);
    const out = new Float32Array(b.logitRows.length * V);
    b.logitRows.forEach((at, i) => out.set(Float32Array.from(row(b.tokens[at]!, b.positions[at]!)), i * V));
    return out;
  }
}

test("prompt logprobs equal the fake model's, computed in chunks of at most maxPromptLogitRows", () => {
  const model = new FakeModel();
  const pool = new KvPool({ numLayers: 1, numKvHeads: 1, headDim: 1, tokensPerBlock: TPB, dtype: "f32" }, 40);
  const kv = new KVCacheManager({ numBlocks: 40, tokensPerBlock: TPB });
  const scheduler = new Scheduler({ maxBatchSize: 4, maxNumTokens: 512 }, kv);
  const tokenizer = { eosTokenIds: [V + 1], vocabSize: V } as unknown as Tokenizer;
  const core = new ExecutorCore(new ModelRunner(model, pool), kv, scheduler, tokenizer, {
    maxBatchSize: 4, maxSeqLen: 64, maxInputLen: 63, maxNumTokens: 512, enableChunkedPrefill: false, maxUtilization: false, maxPromptLogitRows: 8,
  });
  const prompt = Array.from({ length: 30 }, (_, i) => (i * 17 + 5) % V);
  const params = createSamplingParams({ maxTokens: 2, promptLogprobs: 1, detokenize: false });
  params.endId = V + 1;
  core.submit({ requestId: 1, prompt: null, promptTokenIds: prompt, params, badWordsIds: [], streaming: false });
  const finals: FinalOutput[] = [];
  for (let i = 0; core.hasWork && i < 100; i++) {
    const out = core.step();
    assert.deepEqual(out.errors, []);
    finals.push(...out.finals);
  }
  assert.equal(finals.length, 1);
  // 30 prompt rows in chunks of 8, 8, 8, 6 (the last one's final row samples), then one decode row
  assert.deepEqual(model.rowsPerForward, [8, 8, 8, 6, 1]);
  const lp = finals[0]!.promptLogprobs!;
  assert.equal(lp.length, 30);
  assert.equal(lp[0], null);
  for (let i = 1; i < 30; i++) {
    const r = row(prompt[i - 1]!, i - 1);
    const lse = Math.log(r.reduce((a, x) => a + Math.exp(x), 0));
    const want = r[prompt[i]!]! - lse;
    const got = lp[i]!.get(prompt[i]!)!;
    assert.ok(Math.abs(got.logprob - want) < 1e-6, `entry ${i}: ${got.logprob} vs ${want}`);
    const rank = 1 + [...r].filter((x) => x > r[prompt[i]!]!).length;
    assert.equal(got.rank, rank);
    const top = [...lp[i]!.entries()].find(([, v]) => v.rank === 1);
    assert.ok(top, `entry ${i} has a rank-1 token`);
    assert.equal(r[top[0]], Math.max(...r));
  }
  assert.equal(kv.stats().numUsedBlocks, 0);
});

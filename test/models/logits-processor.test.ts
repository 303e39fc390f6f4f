// Per-request logitsProcessor callbacks through the executor worker: they run on the caller's
// thread (the worker blocks on shared memory until they answer) and change the output exactly as
// an independent mechanism predicts:
//   ban: a processor setting token X to -inf gives the same tokens as badTokenIds [X];
//   force: a processor leaving only token Y at step s makes output[s] = Y, and the greedy tokens
//     after it equal a plain run on prompt + output[0..s];
//   the ids a callback sees are prompt + output so far, ctx.step the output length;
//   a throwing callback fails its request only, with its message, and leaks no KV block.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { LLM } from "../../src/api/llm.js";
import { GgmlType } from "../../src/backends/dtypes.js";
import { ensureFixture, type RandomModelSpec } from "../../src/checkpoint/random-model.js";
import { TllmError } from "../../src/errors.js";
import { WorkerExecutor } from "../../src/executor/index.js";

const ROOT = resolve(import.meta.dirname, "../..");
const SPEC: RandomModelSpec = {
  arch: "llama", vocab: join(ROOT, "test/fixtures/vocab/ggml-vocab-llama-spm.gguf"), hidden: 64, layers: 2, heads: 4,
  kvHeads: 2, headDim: 16, ffn: 128, tieEmbeddings: false, qkvBias: false, qkNorm: false, ropeTheta: 10000,
  rmsEps: 1e-5, maxPositions: 512, seed: 4242, weightTypes: GgmlType.Q8_0,
};
const PROMPT = [1, 450, 4996, 17354, 1701, 432, 17204];
let model = "";
let ex: WorkerExecutor;

before(async () => {
  model = (await ensureFixture(SPEC, join(tmpdir(), "tllm-test-fixtures"))).gguf;
  ex = await WorkerExecutor.create({ model, backend: "reference", log: false, kvCacheConfig: { maxTokens: 2048 } });
});
after(async () => {
  await ex?.shutdown();
});

describe("logitsProcessor callbacks (worker -> caller's thread)", () => {
  test("banning a token equals badTokenIds; the callback sees prompt + output and the step", async () => {
    const plain = await ex.generateAsync(PROMPT, { maxTokens: 6, ignoreEos: true });
    const X = plain.outputs[0]!.tokenIds[0]!;
    const seen: { ids: number[]; step: number }[] = [];
    const banned = await ex.generateAsync(PROMPT, {
      maxTokens: 6, ignoreEos: true,
      logitsProcessor: (row, ids, ctx) => {
        seen.push({ ids: [...ids], step: ctx.step });
        row[X] = -Infinity;
      },
    });
    const viaBad = await ex.generateAsync(PROMPT, { maxTokens: 6, ignoreEos: true, badTokenIds: [X] });
    const out = banned.outputs[0]!.tokenIds;
    assert.notEqual(out[0], X);
    assert.deepEqual(out, viaBad.outputs[0]!.tokenIds);
    assert.equal(seen.length, 6, "one call per generated token");
    seen.forEach((s, i) => {
      assert.equal(s.step, i);
      assert.deepEqual(s.ids, [...PROMPT, ...out.slice(0, i)]);
    });
  });

  test("forcing a token at step 2 puts it there; the tokens after it follow from the new prefix", async () => {
    const Y = 12345;
    const force = (row: Float32Array, _ids: readonly number[], ctx: { step: number }) => {
      if (ctx.step !== 2) return;
      row.fill(-Infinity);
      row[Y] = 0;
    };
    const forced = await ex.generateAsync(PROMPT, { maxTokens: 5, ignoreEos: true, logitsProcessor: [force] });
    const out = forced.outputs[0]!.tokenIds;
    assert.equal(out[2], Y);
    const rest = await ex.generateAsync([...PROMPT, ...out.slice(0, 3)], { maxTokens: 2, ignoreEos: true });
    assert.deepEqual(out.slice(3), rest.outputs[0]!.tokenIds);
    // two processors run in order: the second sees what the first wrote
    const order: string[] = [];
    await ex.generateAsync(PROMPT, { maxTokens: 1, logitsProcessor: [
      (row) => { order.push("a"); row[7] = 1e9; },
      (row) => { order.push(row[7] === 1e9 ? "b saw a" : "b did not see a"); },
    ] });
    assert.deepEqual(order, ["a", "b saw a"]);
  });

  test("a throwing callback fails its request only, with its message; nothing leaks", async () => {
    const bad = ex.generateAsync(PROMPT, { maxTokens: 8, ignoreEos: true, logitsProcessor: (_row, _ids, ctx) => {
      if (ctx.step === 3) throw new RangeError("processor exploded at step 3");
    } });
    const good = ex.generateAsync(PROMPT, { maxTokens: 8, ignoreEos: true });
    await assert.rejects(bad.promise, (e: unknown) => e instanceof TllmError && /processor exploded at step 3/.test(e.message) && /RangeError/.test(e.message));
    assert.equal((await good).outputs[0]!.tokenIds.length, 8);
    assert.ok(ex.healthy);
    const snap = await ex.snapshot();
    assert.equal(snap.kvCacheStats.usedNumBlocks, 0);
    assert.equal(snap.numInflightRequests, 0);
  });

  test("through LLM.generate, and with beam search", async () => {
    const llm = await LLM.create({ model, backend: "reference", maxBeamWidth: 2, kvCacheConfig: { maxTokens: 1024 } });
    try {
      const plain = await llm.generate(PROMPT, { maxTokens: 3, ignoreEos: true });
      const X = plain.outputs[0]!.tokenIds[0]!;
      const out = await llm.generate(PROMPT, { maxTokens: 3, ignoreEos: true, logitsProcessor: (row) => { row[X] = -Infinity; } });
      const viaBad = await llm.generate(PROMPT, { maxTokens: 3, ignoreEos: true, badTokenIds: [X] });
      assert.deepEqual(out.outputs[0]!.tokenIds, viaBad.outputs[0]!.tokenIds);
      const beamBan = await llm.generate(PROMPT, { maxTokens: 3, ignoreEos: true, useBeamSearch: true, bestOf: 2, logitsProcessor: (row) => { row[X] = -Infinity; } });
      const beamBad = await llm.generate(PROMPT, { maxTokens: 3, ignoreEos: true, useBeamSearch: true, bestOf: 2, badTokenIds: [X] });
      assert.deepEqual(beamBan.outputs[0]!.tokenIds, beamBad.outputs[0]!.tokenIds);
      assert.ok(!beamBan.outputs[0]!.tokenIds.includes(X));
    } finally {
      await llm.shutdown();
    }
  });
});

// The executor (worker + step loop + paged KV with prefix reuse) on a random-weight Llama over the
// real Llama-2 SPM vocabulary. The invariants come from the design, not from the code under test:
//   greedy tokens of a request do not depend on what else runs in the batch, on arrival times,
//   on prefix-cache hits, on preemption/recompute, or on chunked prefill; and they equal the
//   independent simple loop behind LLM.generate (own KV layout, no scheduler).
// "Alone" runs use a unique cacheSalt so that they never hit blocks cached by the batched runs.
// Kernel note: the fixture's weights are Q8_0, whose ggml arithmetic (vec_dot for one row, tinyBLAS_Q0
// for several: the same 8 fma lanes per block, then the same horizontal sum) does not depend on how
// many rows share a matmul, on the native and the reference backend alike. (F16 and Q4_K do depend on
// it, in llama.cpp too: src/executor/README.md.) TLLM_GEMM_MIN_M=1 pins the GEMM path of the other,
// non-exact weight types (read by the addon at its first matmul; the worker shares the process env).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureFixture } from "../../src/checkpoint/random-model.js";
import { LLM } from "../../src/api/llm.js";
import { ValidationError } from "../../src/errors.js";
import { ExecutorError, WorkerExecutor, type ExecutorConfig, type FinalOutput } from "../../src/executor/index.js";
import { EXECUTOR_SPEC } from "./fixtures.js";

process.env["TLLM_GEMM_MIN_M"] = "1";
const VOCAB = 32000;
let model = "";
let ex: WorkerExecutor;
let saltCounter = 0;

/** xorshift32 stream (test data only) */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return x / 4294967296;
  };
}
/** token ids in [3, VOCAB): no BOS/EOS/UNK */
function randomPrompt(r: () => number, len: number): number[] {
  return Array.from({ length: len }, () => 3 + Math.floor(r() * (VOCAB - 3)));
}
const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));

function config(extra: Partial<ExecutorConfig> = {}): ExecutorConfig {
  return { model, threads: 1, log: false, kvCacheConfig: { maxTokens: 8192 }, ...extra };
}

async function alone(e: WorkerExecutor, prompt: number[], maxTokens: number): Promise<FinalOutput> {
  return e.generateAsync(prompt, { maxTokens }, { cacheSalt: `alone-${saltCounter++}` });
}

before(async () => {
  model = (await ensureFixture(EXECUTOR_SPEC, join(tmpdir(), "tllm-test-fixtures"))).gguf;
  ex = await WorkerExecutor.create(config());
});
after(async () => {
  await ex?.shutdown();
});

describe("executor: batching invariants (greedy)", () => {
  test("(a) N requests with prompt lengths 1..300 and staggered arrivals equal each run alone", async () => {
    const r = rng(1);
    const lens = [1, 2, 7, 31, 32, 33, 64, 100, 150, 255, 256, 300];
    const prompts = lens.map((n) => randomPrompt(r, n));
    const maxTokens = lens.map((_, i) => 4 + (i % 5) * 3);
    const delays = lens.map(() => Math.floor(r() * 40));
    const batched = await Promise.all(prompts.map(async (p, i) => {
      await sleep(delays[i]!);
      return ex.generateAsync(p, { maxTokens: maxTokens[i]! }, { cacheSalt: "batch-a" });
    }));
    const stats = await ex.getStats();
    assert.ok(stats.some((s) => s.inflightBatchingStats.numScheduledRequests >= 2), "requests ran together at least once");
    assert.ok(stats.some((s) => s.inflightBatchingStats.numContextRequests > 0 && s.inflightBatchingStats.numGenRequests > 0),
      "a prompt was prefilled in the same step as other requests' decode tokens");
    for (let i = 0; i < prompts.length; i++) {
      const solo = await alone(ex, prompts[i]!, maxTokens[i]!);
      assert.deepEqual(batched[i]!.outputs[0]!.tokenIds, solo.outputs[0]!.tokenIds, `prompt length ${lens[i]}`);
      assert.equal(batched[i]!.outputs[0]!.text, solo.outputs[0]!.text);
      assert.deepEqual(batched[i]!.promptTokenIds, prompts[i]);
    }
  });

  test("(a) on the reference backend with f32 KV (row-independent kernels, no GEMM pinning needed)", async () => {
    const refEx = await WorkerExecutor.create(config({ backend: "reference", kvCacheConfig: { maxTokens: 4096, dtype: "f32" } }));
    try {
      const r = rng(14);
      const lens = [1, 33, 120, 257];
      const prompts = lens.map((n) => randomPrompt(r, n));
      const batched = await Promise.all(prompts.map(async (p, i) => {
        await sleep(i * 5);
        return refEx.generateAsync(p, { maxTokens: 8 }, { cacheSalt: "batch-ref" });
      }));
      for (let i = 0; i < prompts.length; i++) {
        assert.deepEqual(batched[i]!.outputs[0]!.tokenIds, (await alone(refEx, prompts[i]!, 8)).outputs[0]!.tokenIds, `prompt length ${lens[i]}`);
      }
    } finally {
      await refEx.shutdown();
    }
  });

  test("executor tokens equal LLM.generate's simple loop (independent KV layout and loop)", async () => {
    const llm = await LLM.create({ model, threads: 1, maxSeqLen: 1024 });
    try {
      const r = rng(2);
      for (const len of [5, 40, 130]) {
        const p = randomPrompt(r, len);
        const ref = await llm.generate(p, { maxTokens: 10 });
        const got = await alone(ex, p, 10);
        assert.deepEqual(got.outputs[0]!.tokenIds, ref.outputs[0]!.tokenIds, `prompt length ${len}`);
        assert.equal(got.outputs[0]!.text, ref.outputs[0]!.text);
        assert.equal(got.outputs[0]!.finishReason, ref.outputs[0]!.finishReason);
      }
    } finally {
      await llm.shutdown();
    }
  });

  test("(b) a request sharing a 256-token prefix reuses >= 224 cached tokens and yields the same tokens", async () => {
    const r = rng(3);
    const prefix = randomPrompt(r, 256);
    const first = [...prefix, ...randomPrompt(r, 20)];
    const second = [...prefix, ...randomPrompt(r, 9)];
    const a = await ex.generateAsync(first, { maxTokens: 6 }, { cacheSalt: "prefix-b" });
    assert.equal(a.metrics.numCachedTokens, 0, "cold start: nothing cached under this salt");
    const b = await ex.generateAsync(second, { maxTokens: 8 }, { cacheSalt: "prefix-b" });
    assert.ok(b.metrics.numCachedTokens >= 224, `cached ${b.metrics.numCachedTokens} tokens`);
    assert.equal(b.metrics.numCachedTokens % 32, 0);
    const cold = await alone(ex, second, 8);
    assert.equal(cold.metrics.numCachedTokens, 0);
    assert.deepEqual(b.outputs[0]!.tokenIds, cold.outputs[0]!.tokenIds);
    // the same prompt again: every full block but the one holding the last token is a hit
    const again = await ex.generateAsync(second, { maxTokens: 8 }, { cacheSalt: "prefix-b" });
    assert.equal(again.metrics.numCachedTokens, Math.floor((second.length - 1) / 32) * 32);
    assert.deepEqual(again.outputs[0]!.tokenIds, cold.outputs[0]!.tokenIds);
    const snap = await ex.snapshot();
    assert.ok(snap.kvCacheStats.reusedBlocks >= 8 + 8);
    assert.ok(snap.kvCacheStats.cacheHitRate > 0 && snap.kvCacheStats.cacheHitRate <= 1);
  });

  test("(c) MAX_UTILIZATION with a pool too small for all: preemption happens, every request completes as alone", async () => {
    // 24 usable blocks of 32 = 768 tokens; 8 requests of 60..130 prompt tokens + 40 new each need ~1100
    const small = await WorkerExecutor.create(config({
      kvCacheConfig: { maxTokens: 768, enableBlockReuse: false }, schedulerConfig: { capacitySchedulerPolicy: "MAX_UTILIZATION" },
    }));
    try {
      const r = rng(4);
      const prompts = Array.from({ length: 8 }, (_, i) => randomPrompt(r, 60 + i * 10));
      const outs = await small.generateBatch(prompts, { maxTokens: 40, ignoreEos: true });
      const stats = await small.getStats();
      const paused = stats.reduce((a, s) => a + s.inflightBatchingStats.numPausedRequests, 0);
      assert.ok(paused > 0, "the pool forced at least one preemption");
      assert.equal(outs.reduce((a, o) => a + o.metrics.numPreemptions, 0), paused);
      for (let i = 0; i < prompts.length; i++) {
        assert.equal(outs[i]!.outputs[0]!.tokenIds.length, 40);
        const solo = await alone(ex, prompts[i]!, 40);
        assert.deepEqual(outs[i]!.outputs[0]!.tokenIds, solo.outputs[0]!.tokenIds, `request ${i}`);
      }
      const snap = await small.snapshot();
      assert.equal(snap.kvCacheStats.freeNumBlocks, snap.kvCacheStats.maxNumBlocks);
    } finally {
      await small.shutdown();
    }
  });

  test("chunked prefill (64-token budget) gives the same tokens as whole prefill", async () => {
    const chunked = await WorkerExecutor.create(config({ enableChunkedPrefill: true, maxNumTokens: 64 }));
    try {
      const r = rng(5);
      const prompts = [randomPrompt(r, 300), randomPrompt(r, 77), randomPrompt(r, 3)];
      const outs = await chunked.generateBatch(prompts, { maxTokens: 6 });
      const stats = await chunked.getStats();
      assert.ok(stats.every((s) => s.inflightBatchingStats.numCtxTokens + s.inflightBatchingStats.numGenTokens <= 64));
      for (let i = 0; i < prompts.length; i++) {
        assert.deepEqual(outs[i]!.outputs[0]!.tokenIds, (await alone(ex, prompts[i]!, 6)).outputs[0]!.tokenIds);
      }
    } finally {
      await chunked.shutdown();
    }
  });
});

describe("executor: API surface", () => {
  test("streaming: diffs concatenate to the final text and tokens; finish reason on the last snapshot", async () => {
    const p = randomPrompt(rng(6), 12);
    const res = ex.generateAsync(p, { maxTokens: 9, ignoreEos: true }, { streaming: true });
    let text = "";
    const ids: number[] = [];
    let snapshots = 0;
    let last = null;
    for await (const s of res) {
      text += s.outputs[0]!.textDiff;
      ids.push(...s.outputs[0]!.tokenIdsDiff);
      snapshots++;
      last = s;
    }
    const final = await res;
    assert.equal(text, final.outputs[0]!.text);
    assert.deepEqual(ids, final.outputs[0]!.tokenIds);
    assert.ok(snapshots >= 9, `${snapshots} snapshots for 9 tokens`);
    assert.equal(last!.outputs[0]!.finishReason, "length");
    assert.equal(last!.finished, true);
  });

  test("a stop string ends generation in the worker; the stream never shows any part of it", async () => {
    const p = randomPrompt(rng(7), 10);
    const full = await alone(ex, p, 12);
    const text = full.outputs[0]!.text;
    assert.ok(text.length >= 8, `reference text ${JSON.stringify(text)}`);
    const stop = text.slice(4, 7);
    const res = ex.generateAsync(p, { maxTokens: 12, stop }, { streaming: true, cacheSalt: "stop" });
    const cut = text.slice(0, text.indexOf(stop));
    let streamed = "";
    for await (const s of res) {
      streamed += s.outputs[0]!.textDiff;
      assert.ok(cut.startsWith(streamed), `streamed ${JSON.stringify(streamed)} runs past the stop string's start`);
    }
    const out = await res;
    assert.equal(out.outputs[0]!.text, cut);
    assert.equal(streamed, out.outputs[0]!.text);
    assert.equal(out.outputs[0]!.finishReason, "stop");
    assert.equal(out.outputs[0]!.stopReason, stop);
    assert.ok(out.outputs[0]!.tokenIds.length < 12);
  });

  test("abort() ends a running request as 'cancelled' and frees its blocks", async () => {
    const res = ex.generateAsync(randomPrompt(rng(8), 50), { maxTokens: 500, ignoreEos: true }, { streaming: true });
    let n = 0;
    for await (const s of res) {
      if (++n === 3) res.abort();
      if (s.finished) break;
    }
    const out = await res;
    assert.equal(out.outputs[0]!.finishReason, "cancelled");
    assert.ok(out.outputs[0]!.tokenIds.length >= 3 && out.outputs[0]!.tokenIds.length < 500);
    const snap = await ex.snapshot();
    assert.equal(snap.numInflightRequests, 0);
    assert.equal(snap.kvCacheStats.freeNumBlocks, snap.kvCacheStats.maxNumBlocks);
  });

  test("n / bestOf with seeded sampling: n outputs, reproducible by seed", async () => {
    const p = randomPrompt(rng(9), 8);
    const params = { maxTokens: 5, temperature: 1, topK: 50, seed: 123, n: 2, bestOf: 3 };
    const a = await ex.generateAsync(p, params);
    const b = await ex.generateAsync(p, params, { cacheSalt: "other" });
    assert.equal(a.outputs.length, 2);
    assert.deepEqual(a.outputs.map((o) => o.index), [0, 1]);
    assert.ok(a.outputs[0]!.cumulativeLogprob! >= a.outputs[1]!.cumulativeLogprob!);
    assert.deepEqual(a.outputs.map((o) => o.tokenIds), b.outputs.map((o) => o.tokenIds));
  });

  test("guided decoding in the worker: outputs match the regex and end on EOS; unguided requests beside them are unchanged", async () => {
    const r = rng(15);
    const plain = randomPrompt(r, 12);
    const [yesNo, digits, other] = await Promise.all([
      ex.generateAsync(randomPrompt(r, 9), { maxTokens: 12, guidedDecoding: { regex: "(yes|no)" } }),
      ex.generateAsync(randomPrompt(r, 9), { maxTokens: 12, temperature: 1, seed: 3, n: 2, guidedDecoding: { regex: "[0-9]{3}" } }),
      ex.generateAsync(plain, { maxTokens: 6 }, { cacheSalt: "guided-mix" }),
    ]);
    assert.match(yesNo.outputs[0]!.text, /^(yes|no)$/);
    assert.equal(yesNo.outputs[0]!.finishReason, "stop");
    for (const o of digits.outputs) {
      assert.match(o.text, /^[0-9]{3}$/);
      assert.equal(o.finishReason, "stop");
    }
    assert.deepEqual(other.outputs[0]!.tokenIds, (await alone(ex, plain, 6)).outputs[0]!.tokenIds);
    await assert.rejects(ex.generateAsync([5, 6], { maxTokens: 4, guidedDecoding: { regex: "(unclosed" } }).promise,
      (e: unknown) => e instanceof Error && /regex|guided|grammar|parse/i.test(e.message));
  });

  test("a request with bad params fails alone (caller side and worker side); the others complete as alone", async () => {
    const r = rng(10);
    const prompts = [randomPrompt(r, 20), randomPrompt(r, 30)];
    const good = prompts.map((p) => ex.generateAsync(p, { maxTokens: 6 }, { cacheSalt: "bad-mix" }));
    const badCaller = ex.generateAsync(prompts[0]!, { maxTokens: -1 });
    const badWorker = ex.generateAsync(prompts[1]!, { maxTokens: 6, stopTokenIds: [VOCAB + 5] });
    const tooLong = ex.generateAsync(randomPrompt(r, 1100), { maxTokens: 2 });
    const badToken = ex.generateAsync([5, VOCAB], { maxTokens: 2 });
    await assert.rejects(badCaller.promise, (e: unknown) => e instanceof ValidationError && e.field === "maxTokens");
    await assert.rejects(badWorker.promise, (e: unknown) => e instanceof ValidationError && e.field === "stopTokenIds");
    await assert.rejects(tooLong.promise, (e: unknown) => e instanceof ValidationError && e.field === "prompt");
    await assert.rejects(badToken.promise, (e: unknown) => e instanceof ValidationError && e.field === "prompt" && e.value === VOCAB);
    const outs = await Promise.all(good);
    for (let i = 0; i < prompts.length; i++) {
      assert.deepEqual(outs[i]!.outputs[0]!.tokenIds, (await alone(ex, prompts[i]!, 6)).outputs[0]!.tokenIds);
    }
    assert.equal(ex.healthy, true);
  });

  test("a request that can never fit the KV pool is rejected at submission, naming maxTokens", async () => {
    const tiny = await WorkerExecutor.create(config({ kvCacheConfig: { maxTokens: 128 } }));
    try {
      await assert.rejects(tiny.generateAsync(randomPrompt(rng(11), 100), { maxTokens: 100 }).promise,
        (e: unknown) => e instanceof ValidationError && e.field === "maxTokens" && /never fit/.test(e.message));
      const ok = await tiny.generateAsync(randomPrompt(rng(11), 100), { maxTokens: 20 });
      assert.equal(ok.outputs[0]!.tokenIds.length > 0, true);
    } finally {
      await tiny.shutdown();
    }
  });

  test("a fatal worker error fails every in-flight request with ExecutorError and marks it unhealthy", async () => {
    const doomed = await WorkerExecutor.create(config({ enableTestHooks: true }));
    const r = rng(12);
    const inflight = [0, 1, 2].map(() => doomed.generateAsync(randomPrompt(r, 30), { maxTokens: 400, ignoreEos: true }));
    doomed.injectFatalError();
    for (const res of inflight) {
      await assert.rejects(res.promise, (e: unknown) => e instanceof ExecutorError && /injected fatal error/.test(e.message));
    }
    assert.equal(doomed.healthy, false);
    await assert.rejects(doomed.generateAsync([5, 6], { maxTokens: 2 }).promise, ExecutorError);
    await assert.rejects(doomed.getStats(), ExecutorError);
    await doomed.shutdown();
  });

  test("shutdown() ends in-flight requests as 'cancelled'; later calls fail with ExecutorError", async () => {
    const e = await WorkerExecutor.create(config());
    const r = rng(13);
    const inflight = [0, 1].map(() => e.generateAsync(randomPrompt(r, 20), { maxTokens: 900, ignoreEos: true }, { streaming: true }));
    for await (const s of inflight[0]!) if (s.outputs[0]!.tokenIds.length >= 2) break;
    await e.shutdown();
    for (const res of inflight) assert.equal((await res).outputs[0]!.finishReason, "cancelled");
    assert.equal(e.healthy, false);
    await assert.rejects(e.generateAsync([5, 6], { maxTokens: 2 }).promise, (err: unknown) => err instanceof ExecutorError && /shut down/.test(err.message));
    await e.shutdown(); // idempotent
  });

  test("a model that cannot load rejects create() with the loader's typed error", async () => {
    await assert.rejects(WorkerExecutor.create({ model: join(tmpdir(), "no-such-model.gguf"), log: false }),
      (e: unknown) => e instanceof Error && e.name === "CheckpointError" && /no-such-model/.test(e.message));
  });
});

// The step loop (ExecutorCore) in-process over a fake model that really goes through the paged KV
// pool: each forward writes (token + 1) at the token's slot, and a sequence's next token is
//   next = (Σ over positions p < kvLen of the value read back through its block table) mod V.
// So the next token equals (Σ (t + 1) over prompt + outputs) mod V exactly when every slot mapping,
// block table, prefix-cache hit, chunk and recompute is right. The expected outputs come from that
// formula, simulated here in plain arithmetic.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { KvLayer } from "../../src/backends/backend.js";
import { createSamplingParams, type SamplingParamsInput } from "../../src/api/sampling-params.js";
import { KvPool } from "../../src/engine/kv-pool.js";
import { ModelRunner } from "../../src/engine/model-runner.js";
import type { ForwardBatch } from "../../src/engine/types.js";
import { ValidationError } from "../../src/errors.js";
import { ExecutorCore, type Submission } from "../../src/executor/step-loop.js";
import type { FinalOutput } from "../../src/executor/messages.js";
import type { IterationStats } from "../../src/executor/stats.js";
import { KVCacheManager } from "../../src/kvcache/kv-cache-manager.js";
import { Scheduler } from "../../src/scheduler/scheduler.js";
import type { CapacitySchedulerPolicy } from "../../src/scheduler/types.js";
import type { Tokenizer } from "../../src/tokenizer/tokenizer.js";

const V = 997;
const TPB = 4;

class SumModel {
  readonly config = { vocabSize: V };
  forwards = 0;
  forward(b: ForwardBatch, kv: readonly KvLayer[]): Float32Array {
    this.forwards++;
    const data = kv[0]!.data;
    const at = (slot: number) => Math.floor(slot / TPB) * 2 * TPB + (slot % TPB); // K of [blocks, 2, 1, TPB, 1]
    b.slots.forEach((s, i) => { data[at(s)] = b.tokens[i]! + 1; });
    const out = new Float32Array(b.logitRows.length * V);
    b.logitRows.forEach((row, r) => {
      const seq = b.seqs.find((s) => row >= s.qStart && row < s.qStart + s.qLen)!;
      const kvLen = seq.kvLen - (seq.qStart + seq.qLen - 1 - row);
      let sum = 0;
      for (let p = 0; p < kvLen; p++) sum += data[at(seq.blockTable[Math.floor(p / TPB)]! * TPB + (p % TPB))]!;
      out[r * V + (sum % V)] = 1;
    });
    return out;
  }
}

function expected(prompt: number[], n: number): number[] {
  const toks = [...prompt];
  let sum = toks.reduce((a, t) => a + t + 1, 0);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = sum % V;
    out.push(t);
    toks.push(t);
    sum += t + 1;
  }
  return out;
}

/** a tokenizer stub whose vocabulary stops at 500 (the model's has V = 997 rows): each id is one "x" */
const SHORT_VOCAB = {
  eosTokenIds: [V + 1], vocabSize: 500, specialTokenIds: new Set<number>(), stripLeadingSpace: false,
  tokenBytes: (id: number) => {
    if (id >= 500) throw new Error(`id ${id} past the vocabulary`);
    return Uint8Array.of(0x78);
  },
} as unknown as Tokenizer;

interface Opts { priority?: boolean; tokenizer?: Tokenizer; numBlocks: number; policy?: CapacitySchedulerPolicy; maxNumTokens?: number; chunked?: boolean; maxBatchSize?: number; reuse?: boolean }

function makeCore(o: Opts): { core: ExecutorCore; model: SumModel; kv: KVCacheManager } {
  const model = new SumModel();
  const pool = new KvPool({ numLayers: 1, numKvHeads: 1, headDim: 1, tokensPerBlock: TPB, dtype: "f32" }, o.numBlocks);
  const kv = new KVCacheManager({ numBlocks: o.numBlocks, tokensPerBlock: TPB, enableBlockReuse: o.reuse ?? true });
  const maxNumTokens = o.maxNumTokens ?? 512;
  const scheduler = new Scheduler({
    capacitySchedulerPolicy: o.policy ?? "GUARANTEED_NO_EVICT", maxBatchSize: o.maxBatchSize ?? 8, maxNumTokens,
    enableChunkedPrefill: o.chunked ?? false, waitingQueuePolicy: o.priority ? "priority" : "fcfs",
  }, kv);
  const tokenizer = o.tokenizer ?? ({ eosTokenIds: [V + 1], vocabSize: V } as unknown as Tokenizer); // no EOS inside the vocabulary
  const core = new ExecutorCore(new ModelRunner(model, pool), kv, scheduler, tokenizer, {
    maxBatchSize: o.maxBatchSize ?? 8, maxSeqLen: 256, maxInputLen: 255, maxNumTokens, enableChunkedPrefill: o.chunked ?? false, maxUtilization: o.policy === "MAX_UTILIZATION",
  });
  return { core, model, kv };
}

let nextId = 0;
function sub(prompt: number[], input: SamplingParamsInput, extra: Partial<Submission> = {}): Submission {
  const params = createSamplingParams({ detokenize: false, ...input });
  params.endId = V + 1;
  return { requestId: nextId++, prompt: null, promptTokenIds: prompt, params, badWordsIds: [], streaming: true, ...extra };
}

function drain(core: ExecutorCore, maxSteps = 10_000): FinalOutput[] {
  const finals: FinalOutput[] = [];
  for (let i = 0; core.hasWork && i < maxSteps; i++) {
    const out = core.step();
    assert.deepEqual(out.errors, []);
    finals.push(...out.finals);
  }
  assert.equal(core.hasWork, false, "the loop drained");
  return finals;
}

function prompt(seed: number, len: number): number[] {
  return Array.from({ length: len }, (_, i) => (seed * 131 + i * 17) % V);
}

describe("ExecutorCore step loop", () => {
  test("batched requests of mixed lengths produce the formula's tokens; KV fully freed", () => {
    const { core, kv } = makeCore({ numBlocks: 64 });
    const prompts = [1, 3, 4, 5, 9, 16, 23].map((n, i) => prompt(i, n));
    const subs = prompts.map((p, i) => sub(p, { maxTokens: 3 + i }));
    subs.forEach((s) => core.submit(s));
    const finals = drain(core);
    for (const [i, s] of subs.entries()) {
      const f = finals.find((x) => x.requestId === s.requestId)!;
      assert.deepEqual(f.outputs[0]!.tokenIds, expected(prompts[i]!, 3 + i));
      assert.equal(f.outputs[0]!.finishReason, "length");
    }
    assert.equal(kv.numFreeBlocks, 63);
  });

  test("iteration stats add up: context tokens = prompts, generation tokens = outputs - 1 each, new blocks = total", () => {
    const { core } = makeCore({ numBlocks: 64, reuse: false });
    const prompts = [3, 9, 14].map((n, i) => prompt(i + 40, n));
    prompts.forEach((p) => core.submit(sub(p, { maxTokens: 5 })));
    const stats: IterationStats[] = [];
    while (core.hasWork) stats.push(core.step().stats);
    const sum = (f: (s: IterationStats) => number) => stats.reduce((a, s) => a + f(s), 0);
    assert.equal(sum((s) => s.inflightBatchingStats.numCtxTokens), 3 + 9 + 14);
    assert.equal(sum((s) => s.inflightBatchingStats.numGenTokens), 3 * (5 - 1));
    assert.equal(sum((s) => s.kvCacheStats.allocNewBlocks), stats.at(-1)!.kvCacheStats.allocTotalBlocks);
    assert.equal(sum((s) => s.numCompletedRequests), 3);
    assert.deepEqual(stats.map((s) => s.iter), stats.map((_, i) => i));
    assert.equal(stats[0]!.maxBatchSizeStatic, 8);
    assert.equal(stats.at(-1)!.kvCacheStats.usedNumBlocks, 0);
  });

  test("per-request times are ordered: arrival <= first scheduled <= first token <= last token <= finish", () => {
    const { core } = makeCore({ numBlocks: 64 });
    core.submit(sub(prompt(50, 6), { maxTokens: 4 }));
    const [f] = drain(core);
    const m = f!.metrics;
    assert.ok(m.firstScheduledTime !== null && m.firstTokenTime !== null && m.lastTokenTime !== null);
    assert.ok(m.arrivalTime <= m.firstScheduledTime! && m.firstScheduledTime! <= m.firstTokenTime!);
    assert.ok(m.firstTokenTime! <= m.lastTokenTime! && m.lastTokenTime! <= m.finishTime);
    assert.equal(m.numGeneratedTokens, 4);
    assert.equal(m.numPromptTokens, 6);
  });

  test("prefix hits attach cached blocks (cached tokens counted) and keep the tokens right", () => {
    const { core, kv } = makeCore({ numBlocks: 64 });
    const p = prompt(9, 14);
    core.submit(sub(p, { maxTokens: 2 }));
    drain(core);
    const second = [...p.slice(0, 12), 5, 6, 7];
    core.submit(sub(second, { maxTokens: 4 }));
    const [f] = drain(core);
    assert.equal(f!.metrics.numCachedTokens, 12); // 3 full blocks of the shared 12 tokens
    assert.deepEqual(f!.outputs[0]!.tokenIds, expected(second, 4));
    assert.ok(kv.stats().reused >= 3);
    // a different salt never hits
    core.submit(sub(second, { maxTokens: 4 }, { cacheSalt: "s" }));
    const [g] = drain(core);
    assert.equal(g!.metrics.numCachedTokens, 0);
    assert.deepEqual(g!.outputs[0]!.tokenIds, f!.outputs[0]!.tokenIds);
  });

  test("MAX_UTILIZATION on a small pool: requests are preempted, recomputed, and still exact", () => {
    const { core, kv } = makeCore({ numBlocks: 13, policy: "MAX_UTILIZATION", reuse: false });
    const prompts = [0, 1, 2, 3].map((i) => prompt(i + 20, 6 + i));
    const subs = prompts.map((p) => sub(p, { maxTokens: 14 }));
    subs.forEach((s) => core.submit(s));
    const finals = drain(core);
    assert.ok(finals.reduce((a, f) => a + f.metrics.numPreemptions, 0) > 0, "preemption happened");
    for (const [i, s] of subs.entries()) {
      assert.deepEqual(finals.find((x) => x.requestId === s.requestId)!.outputs[0]!.tokenIds, expected(prompts[i]!, 14));
    }
    assert.equal(kv.numFreeBlocks, 12);
  });

  test("chunked prefill over a 4-token budget is exact; a step never exceeds the budget", () => {
    const { core } = makeCore({ numBlocks: 64, chunked: true, maxNumTokens: 4 });
    const p = prompt(3, 30);
    core.submit(sub(p, { maxTokens: 5 }));
    core.submit(sub(prompt(4, 7), { maxTokens: 5 }));
    const finals: FinalOutput[] = [];
    while (core.hasWork) {
      const out = core.step();
      const b = out.stats.inflightBatchingStats;
      assert.ok(b.numCtxTokens + b.numGenTokens <= 4);
      finals.push(...out.finals);
    }
    assert.deepEqual(finals.find((f) => f.promptTokenIds === p)!.outputs[0]!.tokenIds, expected(p, 5));
  });

  test("abort before and after admission: 'cancelled', blocks freed, the others unaffected", () => {
    const { core, kv } = makeCore({ numBlocks: 64 });
    const a = sub(prompt(5, 10), { maxTokens: 50 }), b = sub(prompt(6, 10), { maxTokens: 6 }), c = sub(prompt(7, 3), { maxTokens: 6 });
    core.submit(a);
    core.submit(b);
    core.submit(c);
    const early = core.abort(c.requestId)!;
    assert.equal(early.outputs[0]!.finishReason, "cancelled");
    assert.deepEqual(early.outputs[0]!.tokenIds, []);
    core.step();
    core.step();
    const mid = core.abort(a.requestId)!;
    assert.equal(mid.outputs[0]!.finishReason, "cancelled");
    assert.deepEqual(mid.outputs[0]!.tokenIds, expected(a.promptTokenIds, 2));
    assert.equal(core.abort(a.requestId), null, "a second abort finds nothing");
    const [fb] = drain(core);
    assert.deepEqual(fb!.outputs[0]!.tokenIds, expected(b.promptTokenIds, 6));
    assert.equal(kv.numFreeBlocks, 63);
  });

  test("a request whose sampling throws fails alone; the batch goes on", () => {
    const { core, kv } = makeCore({ numBlocks: 64 });
    const bad = sub(prompt(8, 5), { maxTokens: 4 });
    bad.params.logitsProcessors = [() => { throw new Error("boom"); }];
    const good = sub(prompt(9, 5), { maxTokens: 4 });
    core.submit(bad);
    core.submit(good);
    const first = core.step();
    assert.equal(first.errors.length, 1);
    assert.equal(first.errors[0]!.requestId, bad.requestId);
    assert.match(String(first.errors[0]!.error), /boom/);
    const [f] = drain(core);
    assert.equal(f!.requestId, good.requestId);
    assert.deepEqual(f!.outputs[0]!.tokenIds, expected(good.promptTokenIds, 4));
    assert.equal(kv.numFreeBlocks, 63);
  });

  test("ids past the tokenizer's vocabulary (padded model rows) are kept as tokens but add no text", () => {
    const { core } = makeCore({ numBlocks: 64, tokenizer: SHORT_VOCAB });
    const s = sub(prompt(2, 9), { maxTokens: 12, detokenize: true });
    core.submit(s);
    const [f] = drain(core);
    const want = expected(s.promptTokenIds, 12);
    assert.ok(want.some((t) => t >= 500) && want.some((t) => t < 500), "the formula's tokens fall on both sides");
    assert.deepEqual(f!.outputs[0]!.tokenIds, want);
    assert.equal(f!.outputs[0]!.text, "x".repeat(want.filter((t) => t < 500).length));
  });

  test("waiting queue: fcfs serves in arrival order, 'priority' serves higher priority first", () => {
    for (const priority of [false, true]) {
      const { core } = makeCore({ numBlocks: 64, maxBatchSize: 1, priority });
      const subs = [0.1, 0.9, 0.5].map((p, i) => sub(prompt(i, 5), { maxTokens: 2 }, { priority: p }));
      subs.forEach((x) => core.submit(x));
      const order = drain(core).map((f) => subs.findIndex((x) => x.requestId === f.requestId));
      assert.deepEqual(order, priority ? [1, 2, 0] : [0, 1, 2]);
    }
  });

  test("submission checks: empty, too long, never fits, duplicate id", () => {
    const { core } = makeCore({ numBlocks: 9, policy: "MAX_UTILIZATION", maxNumTokens: 20 });
    const field = (f: string) => (e: unknown) => e instanceof ValidationError && e.field === f;
    assert.throws(() => core.submit(sub([], { maxTokens: 2 })), field("prompt"));
    assert.throws(() => core.submit(sub(prompt(1, 256), { maxTokens: 2 })), field("prompt"));
    assert.throws(() => core.submit(sub(prompt(1, 10), { maxTokens: 30 })), field("maxTokens")); // 40 tokens > 32 slots
    assert.throws(() => core.submit(sub(prompt(1, 10), { maxTokens: 15 })), /recomputed in one step/); // 10 + 15 - 1 > 20
    assert.throws(() => core.submit(sub(prompt(1, 10), { maxTokens: 5, n: 9, temperature: 1 })), field("bestOf")); // > maxBatchSize 8
    const s = sub(prompt(1, 10), { maxTokens: 5 });
    core.submit(s);
    assert.throws(() => core.submit(s), field("requestId"));
  });
});

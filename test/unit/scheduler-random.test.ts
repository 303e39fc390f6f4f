// Randomized scheduler runs: 1000 requests per policy with random arrivals, salts, shared prefixes,
// priorities and aborts, driven by a minimal executor loop. Checks per step: batch and token limits,
// chunk alignment, block coverage, no preemption outside MAX_UTILIZATION; at the end: every request
// finished with exactly maxTokens outputs or was aborted, and no block or reference leaked.
import { test } from "node:test";
import assert from "node:assert/strict";
import { KVCacheManager } from "../../src/kvcache/index.js";
import { RequestState, Scheduler, type SchedRequest, type SchedulerOptions } from "../../src/scheduler/index.js";
import { rng } from "./test-rng.js";


class Req implements SchedRequest {
  state = RequestState.CONTEXT_INIT;
  numComputedTokens = 0;
  readonly promptLen: number;
  constructor(
    readonly id: number, readonly arrival: number, readonly tokens: number[], readonly maxTokens: number,
    readonly priority: number, readonly cacheSalt: string | undefined,
  ) {
    this.promptLen = tokens.length;
  }
  get numTokens(): number {
    return this.tokens.length;
  }
}

const TPB = 4;
const NUM_BLOCKS = 33; // 32 usable blocks = 128 tokens; the largest request needs 12 + 48 = 60

function run(opts: Partial<SchedulerOptions>, seed: number) {
  const rand = rng(seed);
  const int = (n: number) => Math.floor(rand() * n);
  const kv = new KVCacheManager({ numBlocks: NUM_BLOCKS, tokensPerBlock: TPB });
  const o: SchedulerOptions = { maxBatchSize: 6, maxNumTokens: 64, ...opts };
  const sched = new Scheduler(o, kv);
  const prefixes = Array.from({ length: 3 }, () => Array.from({ length: 40 }, () => int(100)));
  let running: Req[] = [], waiting: Req[] = [];
  let created = 0, finished = 0, aborted = 0, paused = 0, steps = 0;
  const abort = (r: Req) => {
    kv.free(r); // safe whether it holds blocks or not
    running = running.filter((x) => x !== r);
    waiting = waiting.filter((x) => x !== r);
    aborted++;
  };
  while (created < 1000 || running.length + waiting.length > 0) {
    assert.ok(++steps < 50000, "no progress");
    for (let k = int(3); k > 0 && created < 1000; k--) {
      const prompt = [...prefixes[int(3)]!.slice(0, int(41)), ...Array.from({ length: 1 + int(8) }, () => int(100))];
      waiting.push(new Req(created, created, prompt, 1 + int(12), rand(), ["x", "y", undefined][int(3)]));
      created++;
    }
    if (rand() < 0.05) {
      const pool = [...running, ...waiting];
      if (pool.length > 0) abort(pool[int(pool.length)]!);
    }
    const decoding = running.filter((r) => r.state === RequestState.GENERATION_IN_PROGRESS);
    const out = sched.schedule(running, waiting);
    if (o.capacitySchedulerPolicy !== "MAX_UTILIZATION") {
      assert.equal(out.pausedRequests.length, 0);
      // the reservation guarantee: every decoding request gets its token (running <= maxBatchSize)
      assert.equal(out.generationRequests.length, decoding.length, "a reserved request could not allocate");
    }
    paused += out.pausedRequests.length;
    for (const p of out.pausedRequests) {
      assert.equal(kv.isAllocated(p.id), false);
      running = running.filter((r) => r !== p);
      waiting.push(p as Req);
    }
    for (const a of out.admittedRequests) {
      waiting = waiting.filter((r) => r !== a);
      running.push(a as Req);
    }
    const all = [...out.contextRequests, ...out.generationRequests];
    assert.ok(all.length <= o.maxBatchSize);
    assert.ok(all.reduce((n, s) => n + s.numTokens, 0) <= o.maxNumTokens);
    for (const { req, numTokens } of all) {
      const r = req as Req;
      const end = r.numComputedTokens + numTokens;
      assert.ok(numTokens > 0 && end <= r.numTokens);
      if (o.enableChunkedPrefill && end < r.numTokens) assert.equal(numTokens % TPB, 0, "non-final chunk not block aligned");
      assert.ok(kv.numHeldBlocks(r.id) * TPB >= end, "blocks cover the scheduled tokens");
      r.numComputedTokens = end;
      kv.cacheFullBlocks(r);
      if (end < r.numTokens) continue;
      r.tokens.push(int(100));
      r.state = RequestState.GENERATION_IN_PROGRESS;
      if (r.tokens.length - r.promptLen === r.maxTokens) {
        r.state = RequestState.GENERATION_COMPLETE;
        kv.free(r);
        running = running.filter((x) => x !== r);
        finished++;
      }
    }
  }
  assert.equal(finished + aborted, 1000);
  assert.equal(kv.numFreeBlocks, NUM_BLOCKS - 1);
  assert.deepEqual([...kv.freeBlockIds()].sort((a, b) => a - b), Array.from({ length: NUM_BLOCKS - 1 }, (_, i) => i + 1));
  for (let b = 0; b < NUM_BLOCKS; b++) assert.equal(kv.refCount(b), 0);
  return { finished, aborted, paused, steps, stats: kv.stats() };
}

for (const [name, opts] of [
  ["GUARANTEED_NO_EVICT, fcfs, no chunking", {}],
  ["GUARANTEED_NO_EVICT, priority, FCFS chunks", { waitingQueuePolicy: "priority", enableChunkedPrefill: true, maxNumTokens: 16 }],
  ["MAX_UTILIZATION, EQUAL_PROGRESS chunks", { capacitySchedulerPolicy: "MAX_UTILIZATION", enableChunkedPrefill: true, maxNumTokens: 24, contextChunkingPolicy: "EQUAL_PROGRESS" }],
  ["MAX_UTILIZATION, no chunking", { capacitySchedulerPolicy: "MAX_UTILIZATION" }],
  ["STATIC_BATCH", { capacitySchedulerPolicy: "STATIC_BATCH" }],
] as [string, Partial<SchedulerOptions>][]) {
  test(`1000 random requests through the scheduler: ${name}`, () => {
    const r = run(opts, 7);
    assert.ok(r.finished > 800 && r.stats.reused > 0, JSON.stringify(r));
    if (opts.capacitySchedulerPolicy === "MAX_UTILIZATION") assert.ok(r.paused > 0, "preemption was exercised");
  });
}

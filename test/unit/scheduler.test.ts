// Two-level scheduler: exact decisions for given budgets under each capacity policy, chunk sizes
// under both chunking policies, preemption and recompute, priority order, prefix-aware admission.
import { test } from "node:test";
import assert from "node:assert/strict";
import { KVCacheManager } from "../../src/kvcache/index.js";
import {
  RequestState, Scheduler, equalProgress, firstComeFirstServed, isContextPhase,
  type SchedRequest, type SchedulerOptions, type SchedulerOutput,
} from "../../src/scheduler/index.js";
import { ValidationError } from "../../src/errors.js";

let nextArrival = 0;
class Req implements SchedRequest {
  state = RequestState.CONTEXT_INIT;
  numComputedTokens = 0;
  readonly arrival = nextArrival++;
  readonly tokens: number[];
  readonly promptLen: number;
  constructor(readonly id: string, prompt: number | number[], readonly maxTokens = 16, readonly priority = 0.5) {
    // distinct token ranges per id unless a prompt is given, so no accidental prefix hits
    this.tokens = typeof prompt === "number" ? Array.from({ length: prompt }, (_, i) => 1000 * (this.arrival + 1) + i) : [...prompt];
    this.promptLen = this.tokens.length;
  }
  get numTokens(): number {
    return this.tokens.length;
  }
  get numOutputs(): number {
    return this.tokens.length - this.promptLen;
  }
}

/** A minimal executor: owns running/waiting, applies the output, "computes" and "samples". */
class Sim {
  running: Req[] = [];
  waiting: Req[] = [];
  finished: string[] = [];
  readonly kv: KVCacheManager;
  readonly sched: Scheduler;
  constructor(numBlocks: number, opts: Partial<SchedulerOptions>) {
    this.kv = new KVCacheManager({ numBlocks, tokensPerBlock: 4 });
    this.sched = new Scheduler({ maxBatchSize: 8, maxNumTokens: 64, ...opts }, this.kv);
  }
  add(...rs: Req[]): this {
    this.waiting.push(...rs);
    return this;
  }
  step(): SchedulerOutput {
    const out = this.sched.schedule(this.running, this.waiting);
    for (const p of out.pausedRequests) {
      this.running = this.running.filter((r) => r !== p);
      this.waiting.push(p as Req);
    }
    for (const a of out.admittedRequests) {
      this.waiting = this.waiting.filter((r) => r !== a);
      this.running.push(a as Req);
    }
    for (const { req, numTokens } of [...out.contextRequests, ...out.generationRequests]) {
      const r = req as Req;
      r.numComputedTokens += numTokens;
      this.kv.cacheFullBlocks(r);
      if (r.numComputedTokens < r.numTokens) continue; // mid-prefill chunk
      r.tokens.push(7); // sampled token
      r.state = RequestState.GENERATION_IN_PROGRESS;
      if (r.numOutputs === r.maxTokens) this.finish(r);
    }
    return out;
  }
  finish(r: Req): void {
    r.state = RequestState.GENERATION_COMPLETE;
    this.kv.free(r);
    this.running = this.running.filter((x) => x !== r);
    this.finished.push(r.id);
  }
}

/** "id:numTokens" for compact exact comparisons */
const ids = (xs: { req: SchedRequest; numTokens: number }[]) => xs.map((x) => `${String(x.req.id)}:${x.numTokens}`);
const names = (xs: SchedRequest[]) => xs.map((x) => String(x.id));

test("GUARANTEED_NO_EVICT: reserves to completion and blocks the head of the line", () => {
  // 10 usable blocks of 4 tokens. a: 10 + 6 tokens -> 4 blocks; b: 20 + 8 -> 7 blocks; c: 4 + 4 -> 2 blocks
  const a = new Req("a", 10, 6), b = new Req("b", 20, 8), c = new Req("c", 4, 4);
  const sim = new Sim(11, {}).add(a, b, c);
  const s1 = sim.step();
  assert.deepEqual(ids(s1.contextRequests), ["a:10"]); // b needs 7 > 6 left; c fits but waits behind b
  assert.deepEqual([s1.numFittingRequests, sim.kv.numFreeBlocks], [1, 7]);
  for (let i = 2; i <= 6; i++) {
    const s = sim.step();
    assert.deepEqual([ids(s.generationRequests), ids(s.contextRequests)], [["a:1"], []], `step ${i}`);
  }
  assert.deepEqual(sim.finished, ["a"]);
  const s7 = sim.step();
  assert.deepEqual(ids(s7.contextRequests), ["b:20", "c:4"]);
  assert.deepEqual(names(s7.admittedRequests), ["b", "c"]);
  assert.equal(sim.kv.numFreeBlocks, 10 - 5 - 1);
});

test("STATIC_BATCH admits only when the batch has drained; GUARANTEED_NO_EVICT refills at once", () => {
  const admittedAt = (policy: SchedulerOptions["capacitySchedulerPolicy"]) => {
    const a = new Req("a", 4, 2), b = new Req("b", 4, 5), c = new Req("c", 4, 1);
    const sim = new Sim(64, { capacitySchedulerPolicy: policy, maxBatchSize: 2 }).add(a, b, c);
    for (let step = 1; step <= 10; step++) if (sim.step().admittedRequests.includes(c)) return step;
    return -1;
  };
  assert.equal(admittedAt("GUARANTEED_NO_EVICT"), 3); // a finishes after step 2 (prefill + 1 decode)
  assert.equal(admittedAt("STATIC_BATCH"), 6); // b finishes after step 5 (prefill + 4 decodes)
});

test("MAX_UTILIZATION pauses the most recently admitted request and recomputes it later", () => {
  // 6 usable blocks; three prompts of 2 blocks each fill the pool
  const a = new Req("a", 8, 3), b = new Req("b", 8, 3), c = new Req("c", 7, 3);
  const sim = new Sim(7, { capacitySchedulerPolicy: "MAX_UTILIZATION" }).add(a, b, c);
  assert.deepEqual(ids(sim.step().contextRequests), ["a:8", "b:8", "c:7"]);
  assert.equal(sim.kv.numFreeBlocks, 0);
  const s2 = sim.step(); // a needs a 3rd block: c (tail of running) is paused
  assert.deepEqual(names(s2.pausedRequests), ["c"]);
  assert.deepEqual([c.state, c.numComputedTokens, sim.kv.isAllocated("c")], [RequestState.PAUSED, 0, false]);
  assert.deepEqual(ids(s2.generationRequests), ["a:1", "b:1"]);
  assert.deepEqual(s2.admittedRequests, []); // no admission in a step that paused
  const s3 = sim.step();
  assert.deepEqual([ids(s3.generationRequests), s3.contextRequests.length], [["a:1", "b:1"], 0]);
  assert.deepEqual(sim.finished, ["a", "b"]);
  const s4 = sim.step(); // c recomputes prompt + its one output; its cached block was evicted
  assert.deepEqual(ids(s4.contextRequests), ["c:8"]);
  assert.ok(isContextPhase(c.state) || c.state === RequestState.GENERATION_IN_PROGRESS);
  sim.step();
  sim.step();
  assert.deepEqual(sim.finished, ["a", "b", "c"]);
  assert.equal(sim.kv.numFreeBlocks, 6);
});

test("GUARANTEED_NO_EVICT never preempts: the same load only delays admission", () => {
  const sim = new Sim(7, {}).add(new Req("a", 8, 3), new Req("b", 8, 3), new Req("c", 7, 3));
  const s1 = sim.step(); // a and b reserve 3 blocks each (11 tokens) -> c waits
  assert.deepEqual(ids(s1.contextRequests), ["a:8", "b:8"]);
  for (let i = 0; i < 3; i++) assert.deepEqual(sim.step().pausedRequests, []);
  assert.deepEqual(sim.finished, ["a", "b"]);
});

test("waiting queue: priority (higher first, FCFS ties) and fcfs by arrival", () => {
  const r = [new Req("p0", 4, 1, 0.2), new Req("p1", 4, 1, 0.9), new Req("p2", 4, 1, 0.5), new Req("p3", 4, 1, 0.9)];
  const shuffled = [r[2]!, r[3]!, r[0]!, r[1]!];
  const prio = new Scheduler({ maxBatchSize: 2, maxNumTokens: 64, waitingQueuePolicy: "priority" }, new KVCacheManager({ numBlocks: 32, tokensPerBlock: 4 }));
  assert.deepEqual(names(prio.orderWaiting(shuffled)), ["p1", "p3", "p2", "p0"]);
  assert.deepEqual(names(prio.schedule([], shuffled).admittedRequests), ["p1", "p3"]);
  const fcfs = new Scheduler({ maxBatchSize: 8, maxNumTokens: 64 }, new KVCacheManager({ numBlocks: 32, tokensPerBlock: 4 }));
  assert.deepEqual(names(fcfs.orderWaiting(shuffled)), ["p0", "p1", "p2", "p3"]);
  assert.throws(() => prio.orderWaiting([new Req("bad", 4, 1, 1.5)]), (e: unknown) => e instanceof ValidationError && e.field === "priority");
});

test("micro-batch without chunking: generation first, whole prompts, stop at the first that overflows", () => {
  const g = new Req("g", 4, 5);
  const sim = new Sim(64, { maxNumTokens: 20 }).add(g);
  sim.step(); // g prefilled, now decoding
  sim.add(new Req("p", 12), new Req("q", 10), new Req("r", 2));
  const s = sim.step();
  assert.deepEqual(ids(s.generationRequests), ["g:1"]);
  assert.deepEqual(ids(s.contextRequests), ["p:12"]); // q needs 10 > 7 left; r waits behind it
  assert.equal(s.numFittingRequests, 4);
});

test("maxBatchSize caps generation and context together", () => {
  const sim = new Sim(64, { maxBatchSize: 4 }).add(new Req("a", 4), new Req("b", 4), new Req("c", 4));
  sim.step();
  sim.add(new Req("d", 4), new Req("e", 4));
  const s = sim.step();
  assert.deepEqual([ids(s.generationRequests), ids(s.contextRequests)], [["a:1", "b:1", "c:1"], ["d:4"]]);
});

test("chunk sizes: FIRST_COME_FIRST_SERVED and EQUAL_PROGRESS", () => {
  assert.deepEqual(firstComeFirstServed([10, 30], 19, 4), [10, 8]);
  assert.deepEqual(firstComeFirstServed([30, 30], 20, 4), [20, 0]);
  assert.deepEqual(firstComeFirstServed([30, 1], 13, 4), [12, 1]); // a later prompt may finish in the rest
  assert.deepEqual(firstComeFirstServed([30, 2], 13, 4), [12, 0]); // ...but a partial chunk is unit-truncated
  assert.deepEqual(equalProgress([30, 30], 20, 4), [12, 8]);
  assert.deepEqual(equalProgress([6, 30, 1], 20, 4), [6, 12, 1]);

  const run = (policy: SchedulerOptions["contextChunkingPolicy"]) => {
    const sim = new Sim(64, { maxNumTokens: 20, enableChunkedPrefill: true, contextChunkingPolicy: policy });
    sim.add(new Req("a", 30), new Req("b", 30));
    return [ids(sim.step().contextRequests), ids(sim.step().contextRequests), ids(sim.step().contextRequests)];
  };
  // FCFS: a takes the whole budget until it is done, then b
  // (step 3: a decodes 1 token first, leaving 19 -> a 16-token chunk of b)
  assert.deepEqual(run("FIRST_COME_FIRST_SERVED"), [["a:20"], ["a:10", "b:8"], ["b:16"]]);
  // EQUAL_PROGRESS: one block each per round
  // (step 3: remainders 6 + 14 fit the budget, so both finish unchunked)
  assert.deepEqual(run("EQUAL_PROGRESS"), [["a:12", "b:8"], ["a:12", "b:8"], ["a:6", "b:14"]]);
});

test("prefix hits start computed > 0 and shared blocks do not count against admission", () => {
  const shared = Array.from({ length: 8 }, (_, i) => 500 + i);
  const sim = new Sim(7, {}); // 6 usable blocks
  const r = new Req("r", [...shared, 1], 3); // 12 tokens at completion -> 3 blocks
  sim.add(r).step();
  assert.equal(sim.kv.numFreeBlocks, 3);
  const other = new Req("o", [...Array.from({ length: 8 }, (_, i) => 900 + i), 2], 7); // 16 tokens -> 4 blocks
  const w = new Req("w", [...shared, 3], 7); // 4 blocks, 2 shared with r -> needs 2
  const s = sim.add(other, w).step();
  assert.deepEqual(names(s.admittedRequests), []); // fcfs: o arrived first and does not fit
  sim.waiting = [w];
  const s2 = sim.step();
  assert.deepEqual(ids(s2.contextRequests), ["w:1"]);
  assert.equal(sim.kv.numCachedTokens("w"), 8);
});

test("bad scheduler options get typed errors naming the field", () => {
  const kv = new KVCacheManager({ numBlocks: 8, tokensPerBlock: 16 });
  const field = (f: string) => (e: unknown) => e instanceof ValidationError && e.field === f;
  assert.throws(() => new Scheduler({ maxBatchSize: 0, maxNumTokens: 64 }, kv), field("maxBatchSize"));
  assert.throws(() => new Scheduler({ maxBatchSize: 1, maxNumTokens: 8, enableChunkedPrefill: true }, kv), field("maxNumTokens"));
  assert.throws(() => new Scheduler({ maxBatchSize: 1, maxNumTokens: 64, capacitySchedulerPolicy: "X" as never }, kv), field("capacitySchedulerPolicy"));
});

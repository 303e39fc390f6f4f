// Bench metrics on a hand-computed timeline (every expected number below is worked out by hand in
// the comments, not taken from the code), both percentile methods, and the chart timeline.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  computeDecodingStats, computeTimeline, computeTrtllmStats, computeVllmStats, peakConcurrency, percentileFloor, percentileInterp, percentileStats,
  type RequestRecord,
} from "../../src/bench/metrics.js";

const MS = 1e6;

/** ms timeline -> record (ns); token times are one per output token. */
function rec(start: number, times: number[], input: number, error?: string): RequestRecord {
  const r: RequestRecord = {
    startNs: start * MS, firstTokenNs: (times[0] ?? start) * MS, endNs: (times[times.length - 1] ?? start + 20) * MS,
    tokenTimesNs: times.map((t) => t * MS), numInputTokens: input, numOutputTokens: times.length,
  };
  if (error) r.error = error;
  return r;
}

// R1: start 0,   tokens at 100..500 step 100 (5 out), 10 in
// R2: start 50,  tokens at 250, 350, 450 (3 out), 20 in
// R3: start 100, one token at 150 (1 out), 30 in
// R4: start 200, tokens at 400, 600, 800, 1000 (4 out), 40 in
// R5: start 300, failed (excluded everywhere but the failed count)
const RECORDS = [
  rec(0, [100, 200, 300, 400, 500], 10), rec(50, [250, 350, 450], 20), rec(100, [150], 30),
  rec(200, [400, 600, 800, 1000], 40), rec(300, [], 50, "HTTP 500"),
];

const close = (a: number, b: number, what: string): void => assert.ok(Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b)), `${what}: ${a} != ${b}`);

test("percentileFloor is sorted[int(n*q)] clamped to the last element", () => {
  const s = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  assert.equal(percentileFloor(s, 0.5), 6); // int(5.0) = 5
  assert.equal(percentileFloor(s, 0.9), 10); // int(9.0) = 9
  assert.equal(percentileFloor(s, 0.95), 10); // int(9.5) = 9
  assert.equal(percentileFloor(s, 0.99), 10);
  assert.equal(percentileFloor(s, 1), 10); // int(10) would be out of range
  assert.equal(percentileFloor([3, 7, 9], 0.5), 7); // int(1.5) = 1
  assert.ok(Number.isNaN(percentileFloor([], 0.5)));
});

test("percentileInterp matches np.percentile (linear)", () => {
  assert.equal(percentileInterp([1, 2, 3, 4], 50), 2.5); // rank 1.5
  close(percentileInterp([1, 2, 3, 4], 90), 3.7, "p90"); // rank 2.7 -> 3 + 0.7
  assert.equal(percentileInterp([1, 2, 3, 4], 0), 1);
  assert.equal(percentileInterp([1, 2, 3, 4], 100), 4);
  close(percentileInterp([10, 20, 40], 25), 15, "p25"); // rank 0.5
  assert.equal(percentileInterp([5], 99), 5);
});

test("percentileStats uses the floor method", () => {
  const p = percentileStats([50, 800, 400, 500]);
  assert.deepEqual(p, { minimum: 50, maximum: 800, average: 437.5, p50: 500, p90: 800, p95: 800, p99: 800 });
});

test("trtllm-bench statistics on the hand timeline", () => {
  const t = computeTrtllmStats(RECORDS, 2);
  assert.equal(t.numRequests, 4);
  assert.equal(t.numFailed, 1);
  assert.equal(t.totalInputTokens, 100);
  assert.equal(t.totalOutputTokens, 13);
  close(t.totalLatencyMs, 1000, "total latency = max end 1000 - min start 0");
  close(t.requestThroughputReqS, 4, "4 req / 1 s");
  close(t.systemOutputThroughputTokS, 13, "13 tok / 1 s");
  close(t.systemTotalThroughputTokS, 113, "(100 + 13) / 1 s");
  close(t.outputThroughputPerGpuTokS, 6.5, "13 / world size 2");
  close(t.avgRequestLatencyMs, 437.5, "e2e 500, 400, 50, 800");
  close(t.outputThroughputPerUserTokS, 10.625, "mean(5/.5, 3/.4, 1/.05, 4/.8) = (10+7.5+20+5)/4");
  close(t.issueRateReqS!, 20, "4 / (0.2 s - 0)");
  close(t.avgConcurrency, 1.75, "sum e2e 1750 ms / 1000 ms");
  close(t.avgTtftMs, 137.5, "ttft 100, 200, 50, 200");
  close(t.avgTpotMs, 100, "tpot 100, 100, 0, 200 (R3 has one token: 0, as TRT-LLM)");
  close(t.tokenOutputSpeedTokS, 6.25, "mean generation tok/s (10 + 10 + 0 + 5) / 4");
  close(t.avgInputLength, 25, "100 / 4");
  close(t.avgOutputLength, 3.25, "13 / 4");
  assert.deepEqual(t.ttftPercentilesMs, { minimum: 50, maximum: 200, average: 137.5, p50: 200, p90: 200, p95: 200, p99: 200 });
  assert.equal(t.tpotPercentilesMs.p50, 100); // sorted [0, 100, 100, 200], int(2.0) = 2
  assert.equal(t.tpotPercentilesMs.p90, 200); // int(3.6) = 3
  assert.equal(t.tpotPercentilesMs.minimum, 0);
  assert.deepEqual([t.genTpsPercentiles.minimum, t.genTpsPercentiles.p50, t.genTpsPercentiles.maximum].map((x) => Math.round(x * 1e9) / 1e9),
    [0, 10, 10]); // R1 4/0.4 s, R2 2/0.2 s, R3 0, R4 3/0.6 s: sorted [0, 5, 10, 10]
  assert.equal(t.requestLatencyPercentilesMs.p50, 500);
});

test("issue rate is null when every request starts at once", () => {
  const t = computeTrtllmStats([rec(0, [10, 20], 1), rec(0, [15], 1)]);
  assert.equal(t.issueRateReqS, null);
});

test("vLLM statistics on the hand timeline", () => {
  const v = computeVllmStats(RECORDS, 1.25, { percentiles: [25, 50, 99] });
  assert.equal(v.completed, 4);
  assert.equal(v.failed, 1);
  assert.equal(v.totalInput, 100);
  assert.equal(v.totalOutput, 13);
  close(v.requestThroughput, 3.2, "4 / 1.25 s");
  close(v.outputThroughput, 10.4, "13 / 1.25 s");
  close(v.totalTokenThroughput, 90.4, "113 / 1.25 s");
  assert.equal(v.requestGoodput, null);
  // TTFT [50, 100, 200, 200]: mean 137.5, median 150, pop. std sqrt(16875/4), p25 rank .75 -> 87.5, p99 rank 2.97 -> 200
  close(v.ttftMs.mean, 137.5, "ttft mean");
  close(v.ttftMs.median, 150, "ttft median");
  close(v.ttftMs.std, Math.sqrt(16875 / 4), "ttft std");
  assert.deepEqual(v.ttftMs.percentiles.map(([p]) => p), [25, 50, 99]);
  close(v.ttftMs.percentiles[0]![1], 87.5, "ttft p25");
  close(v.ttftMs.percentiles[2]![1], 200, "ttft p99");
  // TPOT [100, 100, 200] (output_len > 1 only): p99 rank 1.98 -> 100 + 0.98 * 100
  close(v.tpotMs.mean, 400 / 3, "tpot mean");
  close(v.tpotMs.median, 100, "tpot median");
  close(v.tpotMs.percentiles[2]![1], 198, "tpot p99");
  // ITL pooled gaps: R1 4 x 100, R2 2 x 100, R4 3 x 200
  close(v.itlMs.mean, 1200 / 9, "itl mean");
  close(v.itlMs.median, 100, "itl median");
  close(v.itlMs.percentiles[2]![1], 200, "itl p99 rank 7.92 between two 200s");
  close(v.e2elMs.median, 450, "e2el [50, 400, 500, 800]");
  assert.equal(v.maxConcurrentRequests, 3); // at 100-150 ms: R1, R2, R3
  assert.equal(v.maxOutputTokensPerS, 12); // 12 tokens before 1 s, R4's last at exactly 1 s is bucket 1
});

test("vLLM goodput counts requests meeting every SLO (TPOT 0 for single-token requests)", () => {
  const v1 = computeVllmStats(RECORDS, 2, { goodput: { ttftMs: 150 } }); // R1 (100), R3 (50)
  close(v1.requestGoodput!, 1, "2 / 2 s");
  const v2 = computeVllmStats(RECORDS, 2, { goodput: { tpotMs: 100 } }); // R1, R2, R3 (0)
  close(v2.requestGoodput!, 1.5, "3 / 2 s");
  const v3 = computeVllmStats(RECORDS, 2, { goodput: { ttftMs: 150, tpotMs: 100, e2elMs: 60 } }); // only R3
  close(v3.requestGoodput!, 0.5, "1 / 2 s");
});

test("peak concurrency frees before it admits at the same instant", () => {
  assert.equal(peakConcurrency([rec(0, [100], 1), rec(100, [200], 1)]), 1);
  assert.equal(peakConcurrency([rec(0, [100], 1), rec(99, [200], 1)]), 2);
});

test("timeline buckets tokens and samples running requests", () => {
  const tl = computeTimeline(RECORDS, 10); // [0, 1000] ms in 100 ms buckets
  close(tl.bucketS, 0.1, "bucket width");
  assert.deepEqual(tl.tS.map((x) => Math.round(x * 1000)), [0, 100, 200, 300, 400, 500, 600, 700, 800, 900]);
  // tokens: R1 -> b1..b5, R2 -> b2..b4, R3 -> b1, R4 -> b4, b6, b8, b9 (1000 ms clamps into the last)
  assert.deepEqual(tl.outputTokS.map((x) => Math.round(x * 0.1)), [0, 2, 2, 2, 3, 1, 1, 0, 1, 1]);
  assert.deepEqual(tl.running, [1, 3, 3, 3, 3, 1, 1, 1, 1, 1]);
  assert.deepEqual(tl.completed, [0, 1, 0, 0, 1, 1, 0, 0, 0, 1]);
});

test("no successful records gives NaN statistics, not a throw", () => {
  const t = computeTrtllmStats([rec(0, [], 5, "boom")]);
  assert.equal(t.numRequests, 0);
  assert.equal(t.numFailed, 1);
  assert.ok(Number.isNaN(t.avgTtftMs));
  const v = computeVllmStats([rec(0, [], 5, "boom")], 1);
  assert.equal(v.completed, 0);
  assert.equal(v.ttftMs.mean, 0);
});

test("200k records: no argument-spread overflow, linear-time enough", () => {
  const n = 200_000;
  const recs: RequestRecord[] = [];
  for (let i = 0; i < n; i++) {
    const s = i * 1e6; // one request per ms, each 3 tokens 10 ms apart after a 5 ms TTFT
    recs.push({ startNs: s, firstTokenNs: s + 5e6, endNs: s + 25e6, tokenTimesNs: [s + 5e6, s + 15e6, s + 25e6], numInputTokens: 4, numOutputTokens: 3 });
  }
  const t = computeTrtllmStats(recs);
  close(t.totalLatencyMs, (n - 1) + 25, "first start 0, last end (n-1) ms + 25 ms");
  close(t.avgTpotMs, 10, "tpot");
  const v = computeVllmStats(recs, 200);
  assert.equal(v.maxConcurrentRequests, 25); // 25 ms long, one start per ms (an end frees before a start)
  assert.equal(computeTimeline(recs, 20).running.length, 20);
});

test("speculative decoding stats follow TRT-LLM's per-request formulas", () => {
  // max draft 3. A: 9 tokens in 1 + 2 iterations (3 steps): drafted 9, accepted 6, rate 2/3, length 3.
  //              B: 4 tokens in 4 steps: drafted 12, accepted 0, rate 0, length 1.
  const a = { ...rec(0, [1, 2, 3, 4, 5, 6, 7, 8, 9], 1), decodeIterations: 2 };
  const b = { ...rec(0, [1, 2, 3, 4], 1), decodeIterations: 3 };
  const d = computeDecodingStats([a, b, rec(0, [1], 1)], 3)!;
  close(d.acceptanceLength, 13 / 7, "13 tokens / 7 steps");
  assert.deepEqual([d.numDraftTokensPercentiles.minimum, d.numDraftTokensPercentiles.maximum], [9, 12]);
  assert.deepEqual([d.numAcceptedDraftTokensPercentiles.minimum, d.numAcceptedDraftTokensPercentiles.maximum], [0, 6]);
  close(d.draftAcceptanceRatePercentiles.average, 1 / 3, "mean(2/3, 0)");
  close(d.acceptanceLengthPercentiles.average, 2, "mean(3, 1)");
  assert.equal(computeDecodingStats([rec(0, [1], 1)], 3), null);
  assert.equal(computeDecodingStats([a], 0), null);
});

// Report builders (JSON sections and names, text blocks) and the progress bar's two modes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { computeDecodingStats, computeTrtllmStats, computeVllmStats, type RequestRecord } from "../../src/bench/metrics.js";
import { buildReportJson, formatTextReport, machineInfo } from "../../src/bench/report.js";
import { renderHtmlReport } from "../../src/bench/report-html.js";
import { ProgressBar } from "../../src/bench/progress.js";
import { niceTicks } from "../../src/bench/svg.js";

const MS = 1e6;
// Two requests: A 0 -> tokens at 100, 300 (2 out, 8 in); B 100 -> tokens 200, 250, 300, 500 (4 out, 12 in)
const RECS: RequestRecord[] = [
  { startNs: 0, firstTokenNs: 100 * MS, endNs: 300 * MS, tokenTimesNs: [100 * MS, 300 * MS], numInputTokens: 8, numOutputTokens: 2 },
  { startNs: 100 * MS, firstTokenNs: 200 * MS, endNs: 500 * MS, tokenTimesNs: [200, 250, 300, 500].map((x) => x * MS), numInputTokens: 12, numOutputTokens: 4 },
];

test("report JSON has trtllm-bench's sections and values in its units", () => {
  const t = computeTrtllmStats(RECS);
  const j = buildReportJson(t, { engine: { model: "m" }, worldInfo: { tp: 2 }, concurrency: 4, prefixCacheHitRate: 0.5 }, undefined, machineInfo());
  assert.deepEqual(Object.keys(j), ["engine", "machine", "world_info", "request_info", "performance", "streaming_metrics", "dataset"]);
  const perf = j.performance as Record<string, unknown>;
  assert.equal(perf.total_latency_ms, 500); // max end 500 - min start 0
  assert.equal(perf.request_throughput_req_s, 4); // 2 / 0.5 s
  assert.equal(perf.system_output_throughput_tok_s, 12); // 6 / 0.5 s
  assert.equal(perf.system_total_throughput_tok_s, 52); // 26 / 0.5 s
  assert.equal(perf.output_throughput_per_gpu_tok_s, 12); // world size is passed to computeTrtllmStats, not here
  assert.equal(perf.prefix_cache_hit_rate, 0.5);
  assert.equal(perf.kv_cache_usage, null);
  const sm = j.streaming_metrics as Record<string, unknown>;
  assert.equal(sm.avg_ttft_ms, 100); // both 100
  assert.equal(sm.avg_tpot_ms, 150); // A 200/1, B 300/3
  assert.deepEqual(Object.keys(sm.ttft_percentiles as object), ["p50", "p90", "p95", "p99", "minimum", "maximum", "average"]);
  assert.equal((j.world_info as Record<string, unknown>).tp_size, 2);
  assert.equal((j.world_info as Record<string, unknown>).issue_rate, 20); // 2 / 0.1 s
  assert.equal((j.dataset as Record<string, unknown>).total_input_tokens, 20);
  assert.doesNotThrow(() => JSON.stringify(j));
});

test("decoding_stats section appears with speculative decoding", () => {
  const recs = RECS.map((r) => ({ ...r, decodeIterations: 0 })); // every request: all tokens in one step
  const stats = computeDecodingStats(recs, 4)!;
  const j = buildReportJson(computeTrtllmStats(recs), { decoding: { mode: "MTP", stats } });
  const d = j.decoding_stats as Record<string, unknown>;
  assert.equal(d.mode, "MTP");
  assert.equal(d.acceptance_length, 3); // 6 tokens / 2 steps
  assert.deepEqual(Object.keys(j).slice(-2), ["decoding_stats", "dataset"]);
  assert.match(formatTextReport(computeTrtllmStats(recs), computeVllmStats(recs, 1), { decoding: { mode: "MTP", stats } }), /Speculative decoding \(MTP\)/);
});

test("NaN statistics become null in JSON (no successful request)", () => {
  const bad: RequestRecord[] = [{ ...RECS[0]!, error: "x" }];
  const j = buildReportJson(computeTrtllmStats(bad), {}, computeVllmStats(bad, 1));
  assert.equal((j.performance as Record<string, unknown>).avg_request_latency_ms, null);
  assert.ok("vllm" in j);
});

test("text report prints both families with their labels", () => {
  const txt = formatTextReport(computeTrtllmStats(RECS), computeVllmStats(RECS, 0.5, { percentiles: [50, 99] }), { concurrency: 4 });
  assert.match(txt, /Request Throughput \(req\/sec\):\s+4\.0000/);
  assert.match(txt, /Average time-per-output-token \[TPOT\] \(ms\):\s+150\.0000/);
  assert.match(txt, /Serving Benchmark Result/);
  assert.match(txt, /Maximum request concurrency:\s+4\n/);
  assert.match(txt, /Mean ITL \(ms\):\s+125\.00/); // gaps: A 200; B 50, 50, 200 -> 500 / 4
  assert.match(txt, /P99 TTFT \(ms\):\s+100\.00/);
  assert.match(txt, /-+Time per Output Token \(excl\. 1st token\)-+/);
});

test("HTML report is one page with inline SVG charts and no external resource", () => {
  const html = renderHtmlReport({ records: RECS, trt: computeTrtllmStats(RECS), vllm: computeVllmStats(RECS, 0.5), title: "T <&>" });
  assert.ok(html.startsWith("<!doctype html>"));
  assert.equal((html.match(/<svg /g) ?? []).length, 6);
  assert.ok(html.includes("<title>T &lt;&amp;&gt;</title>"));
  assert.doesNotMatch(html, /<script|<link|src=|@import|url\(/);
});

test("niceTicks steps by 1, 2 or 5 x 10^k and covers the range", () => {
  assert.deepEqual(niceTicks(0, 10, 5), [0, 2, 4, 6, 8, 10]);
  assert.deepEqual(niceTicks(0.3, 1.2, 4), [0.5, 1]); // raw step 0.225 -> the next nice step is 0.5
  assert.deepEqual(niceTicks(0.3, 1.2, 5), [0.4, 0.6, 0.8, 1, 1.2]); // raw 0.18 -> 0.2
  assert.deepEqual(niceTicks(0, 73, 4), [0, 20, 40, 60]);
});

function sink(tty: boolean): { stream: Writable & { isTTY?: boolean }; text: () => string } {
  let buf = "";
  const stream = new Writable({ write(c, _e, cb) { buf += c.toString(); cb(); } }) as Writable & { isTTY?: boolean; columns?: number };
  stream.isTTY = tty;
  stream.columns = 100;
  return { stream, text: () => buf };
}

test("progress: plain lines at each 10% when not a TTY", () => {
  const s = sink(false);
  let now = 0;
  const bar = new ProgressBar({ total: 20, label: "bench", stream: s.stream, nowMs: () => now });
  for (let i = 0; i < 20; i++) {
    now += 500;
    bar.tick();
  }
  bar.finish();
  const lines = s.text().trimEnd().split("\n");
  assert.equal(lines.length, 11); // the first tick (5%), then 10%, 20%, ... 100%
  assert.equal(lines[0], "bench   5% 1/20 [0.5s, 2.00 req/s eta 9.5s]");
  assert.ok(!s.text().includes("\r"));
  assert.equal(lines[10], "bench 100% 20/20 [10.0s, 2.00 req/s eta 0.0s]");
});

test("progress: redraws one line with \\r on a TTY, throttled to 100 ms", () => {
  const s = sink(true);
  let now = 0;
  const bar = new ProgressBar({ total: 4, stream: s.stream, nowMs: () => now });
  bar.tick(); // drawn (first)
  now += 50;
  bar.tick(); // throttled
  now += 100;
  bar.tick(1, "3 tok/s"); // drawn
  bar.tick(); // last: always drawn
  bar.finish();
  const draws = s.text().split("\r").filter(Boolean);
  assert.equal(draws.length, 4);
  assert.match(draws[1]!, /^ 75% \|█+░+\| 3\/4 .* 3 tok\/s\x1b\[K$/);
  assert.ok(s.text().endsWith("\x1b[K\n"));
});

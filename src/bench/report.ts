// Bench reports: a text summary with both metric families (trtllm-bench's block, then vLLM's) and
// the `--report-json` object with trtllm-bench's sections and snake_case field names.
import os from "node:os";
import type { DecodingStats, PercentileStats, TrtllmStats, VllmMetricSummary, VllmStats } from "./metrics.js";

/** What the caller knows about the target (all optional: the CLI fills what applies). */
export interface BenchInfo {
  engine?: { model?: string; modelPath?: string; backend?: string; version?: string; dtype?: string; quantization?: string; target?: string };
  worldInfo?: {
    tp?: number; pp?: number; ep?: number; maxBatchSize?: number; maxNumTokens?: number;
    schedulingPolicy?: string; kvCachePercentage?: number;
  };
  /** concurrency limit (undefined = unlimited) and the request rate asked */
  concurrency?: number;
  requestRate?: number | "inf";
  streaming?: boolean;
  /** prefix-cache hit rate and KV usage when the target exposes them, fractions in [0, 1] */
  prefixCacheHitRate?: number;
  kvCacheUsage?: number;
  datasetPath?: string;
  /** speculative decoding mode and its statistics (computeDecodingStats), when used */
  decoding?: { mode: string; stats: DecodingStats };
}

export interface MachineInfo {
  platform: string;
  arch: string;
  cpu_model: string;
  cpu_count: number;
  total_memory_gib: number;
  node_version: string;
  hostname: string;
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    platform: `${os.type()} ${os.release()}`,
    arch: os.arch(),
    cpu_model: cpus[0]?.model ?? "unknown",
    cpu_count: cpus.length,
    total_memory_gib: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node_version: process.version,
    hostname: os.hostname(),
  };
}

const pctJson = (p: PercentileStats): Record<string, number> => ({
  p50: p.p50, p90: p.p90, p95: p.p95, p99: p.p99, minimum: p.minimum, maximum: p.maximum, average: p.average,
});

/** NaN and ±Infinity are not JSON; they become null. */
function finite(v: number | null | undefined): number | null {
  return v === null || v === undefined || !Number.isFinite(v) ? null : v;
}

/** The `--report-json` object (trtllm-bench's sections), plus a `vllm` section when given. */
export function buildReportJson(t: TrtllmStats, info: BenchInfo = {}, v?: VllmStats, machine: MachineInfo = machineInfo()): Record<string, unknown> {
  const w = info.worldInfo ?? {};
  const obj = {
    engine: { model: info.engine?.model ?? null, model_path: info.engine?.modelPath ?? null, backend: info.engine?.backend ?? null,
      version: info.engine?.version ?? null, dtype: info.engine?.dtype ?? null, quantization: info.engine?.quantization ?? null,
      target: info.engine?.target ?? null },
    machine,
    world_info: { tp_size: w.tp ?? 1, pp_size: w.pp ?? 1, ep_size: w.ep ?? 1, world_size: (w.tp ?? 1) * (w.pp ?? 1),
      max_batch_size: w.maxBatchSize ?? null, max_num_tokens: w.maxNumTokens ?? null,
      scheduling_policy: w.schedulingPolicy ?? null, kv_cache_percentage: w.kvCachePercentage ?? null,
      issue_rate: finite(t.issueRateReqS) },
    request_info: { num_requests: t.numRequests, num_failed: t.numFailed, avg_num_concurrent_requests: finite(t.avgConcurrency),
      avg_input_length: finite(t.avgInputLength), avg_output_length: finite(t.avgOutputLength),
      concurrency: info.concurrency ?? null, request_rate: info.requestRate ?? "inf" },
    performance: { total_latency_ms: t.totalLatencyMs, avg_request_latency_ms: finite(t.avgRequestLatencyMs),
      request_throughput_req_s: finite(t.requestThroughputReqS), system_output_throughput_tok_s: finite(t.systemOutputThroughputTokS),
      system_total_throughput_tok_s: finite(t.systemTotalThroughputTokS), output_throughput_per_user_tok_s: finite(t.outputThroughputPerUserTokS),
      output_throughput_per_gpu_tok_s: finite(t.outputThroughputPerGpuTokS),
      request_latency_percentiles_ms: pctJson(t.requestLatencyPercentilesMs),
      prefix_cache_hit_rate: info.prefixCacheHitRate ?? null, kv_cache_usage: info.kvCacheUsage ?? null },
    streaming_metrics: info.streaming === false ? null : {
      token_output_speed_tok_s: finite(t.tokenOutputSpeedTokS), avg_ttft_ms: finite(t.avgTtftMs), avg_tpot_ms: finite(t.avgTpotMs),
      tpot_percentiles: pctJson(t.tpotPercentilesMs), ttft_percentiles: pctJson(t.ttftPercentilesMs),
      gen_tps_percentiles: pctJson(t.genTpsPercentiles) },
    ...(info.decoding ? { decoding_stats: {
      mode: info.decoding.mode, acceptance_length: finite(info.decoding.stats.acceptanceLength),
      num_draft_tokens_percentiles: pctJson(info.decoding.stats.numDraftTokensPercentiles),
      num_accepted_draft_tokens_percentiles: pctJson(info.decoding.stats.numAcceptedDraftTokensPercentiles),
      draft_acceptance_rate_percentiles: pctJson(info.decoding.stats.draftAcceptanceRatePercentiles),
      acceptance_length_percentiles: pctJson(info.decoding.stats.acceptanceLengthPercentiles) } } : {}),
    dataset: { path: info.datasetPath ?? null, num_requests: t.numRequests, total_input_tokens: t.totalInputTokens,
      total_output_tokens: t.totalOutputTokens, avg_isl: finite(t.avgInputLength), avg_osl: finite(t.avgOutputLength),
      isl_stats: pctJson(t.inputLengthPercentiles), osl_stats: pctJson(t.outputLengthPercentiles) },
    ...(v ? { vllm: v } : {}),
  };
  // JSON.stringify turns NaN into null anyway; the round trip makes the object itself JSON-clean.
  return JSON.parse(JSON.stringify(obj)) as Record<string, unknown>;
}

const f2 = (x: number | null | undefined): string => (x === null || x === undefined || !Number.isFinite(x) ? "n/a" : x.toFixed(2));
const f4 = (x: number | null | undefined): string => (x === null || x === undefined || !Number.isFinite(x) ? "n/a" : x.toFixed(4));

function row(label: string, value: string, width = 44): string {
  return `${label.padEnd(width)}${value}`;
}

function pctRows(title: string, p: PercentileStats): string[] {
  return [`[${title}]`, ...(["minimum", "maximum", "average", "p50", "p90", "p95", "p99"] as const).map(
    (k) => row(`  ${k.toUpperCase()}:`, f4(p[k])))];
}

/** trtllm-bench's summary block. */
export function formatTrtllmText(t: TrtllmStats, info: BenchInfo = {}): string {
  const l: string[] = [];
  const eq = "=".repeat(60);
  l.push(eq, "= PERFORMANCE OVERVIEW (trtllm-bench definitions)", eq);
  l.push(row("Number of requests:", String(t.numRequests)), row("Number of failed requests:", String(t.numFailed)));
  l.push(row("Average Input Length (tokens):", f4(t.avgInputLength)), row("Average Output Length (tokens):", f4(t.avgOutputLength)));
  l.push(row("Issue Rate (req/sec):", f4(t.issueRateReqS)), row("Average Concurrent Requests:", f4(t.avgConcurrency)));
  l.push(row("Request Throughput (req/sec):", f4(t.requestThroughputReqS)));
  l.push(row("Total Output Throughput (tokens/sec):", f4(t.systemOutputThroughputTokS)));
  l.push(row("Total Token Throughput (tokens/sec):", f4(t.systemTotalThroughputTokS)));
  l.push(row("Total Latency (ms):", f4(t.totalLatencyMs)), row("Average request latency (ms):", f4(t.avgRequestLatencyMs)));
  l.push(row("Per User Output Throughput [w/ ctx] (tps/user):", f4(t.outputThroughputPerUserTokS)));
  l.push(row("Per GPU Output Throughput (tps/gpu):", f4(t.outputThroughputPerGpuTokS)));
  if (info.prefixCacheHitRate !== undefined) l.push(row("Prefix Cache Hit Rate (%):", f2(info.prefixCacheHitRate * 100)));
  if (info.kvCacheUsage !== undefined) l.push(row("KV Cache Usage (%):", f2(info.kvCacheUsage * 100)));
  if (info.streaming !== false) {
    l.push("", "-- Streaming metrics --");
    l.push(row("Average time-to-first-token [TTFT] (ms):", f4(t.avgTtftMs)));
    l.push(row("Average time-per-output-token [TPOT] (ms):", f4(t.avgTpotMs)));
    l.push(row("Per User Output Speed [1/TPOT] (tps/user):", f4(t.tokenOutputSpeedTokS)));
    l.push(...pctRows("GTPS (tok/s)", t.genTpsPercentiles), ...pctRows("TPOT (ms)", t.tpotPercentilesMs), ...pctRows("TTFT (ms)", t.ttftPercentilesMs));
  }
  l.push(...pctRows("Request Latency (ms)", t.requestLatencyPercentilesMs));
  if (info.decoding) {
    const d = info.decoding.stats;
    l.push("", `-- Speculative decoding (${info.decoding.mode}) --`, row("Acceptance Length (tokens/step):", f4(d.acceptanceLength)),
      ...pctRows("Draft Acceptance Rate", d.draftAcceptanceRatePercentiles), ...pctRows("Acceptance Length", d.acceptanceLengthPercentiles));
  }
  l.push(eq);
  return l.join("\n");
}

function vllmSection(name: string, full: string, s: VllmMetricSummary): string[] {
  // vLLM centres the title in a 50-wide line of dashes ("{s:{c}^{n}}").
  const left = Math.max(0, Math.floor((50 - full.length) / 2));
  const head = `${"-".repeat(left)}${full}${"-".repeat(Math.max(0, 50 - full.length - left))}`;
  return [head, row(`Mean ${name} (ms):`, f2(s.mean), 40), row(`Median ${name} (ms):`, f2(s.median), 40),
    ...s.percentiles.map(([p, v]) => row(`P${Number.isInteger(p) ? p : p.toFixed(1)} ${name} (ms):`, f2(v), 40))];
}

/** vLLM benchmark_serving's result block. */
export function formatVllmText(v: VllmStats, info: BenchInfo = {}): string {
  const l: string[] = [`${"=".repeat(12)} Serving Benchmark Result ${"=".repeat(12)}`];
  l.push(row("Successful requests:", String(v.completed), 40), row("Failed requests:", String(v.failed), 40));
  if (info.concurrency !== undefined) l.push(row("Maximum request concurrency:", String(info.concurrency), 40));
  l.push(row("Benchmark duration (s):", f2(v.durationS), 40), row("Total input tokens:", String(v.totalInput), 40));
  l.push(row("Total generated tokens:", String(v.totalOutput), 40), row("Request throughput (req/s):", f2(v.requestThroughput), 40));
  if (v.requestGoodput !== null) l.push(row("Request goodput (req/s):", f2(v.requestGoodput), 40));
  l.push(row("Output token throughput (tok/s):", f2(v.outputThroughput), 40));
  l.push(row("Peak output token throughput (tok/s):", f2(v.maxOutputTokensPerS), 40));
  l.push(row("Peak concurrent requests:", f2(v.maxConcurrentRequests), 40));
  l.push(row("Total Token throughput (tok/s):", f2(v.totalTokenThroughput), 40));
  l.push(...vllmSection("TTFT", "Time to First Token", v.ttftMs));
  l.push(...vllmSection("TPOT", "Time per Output Token (excl. 1st token)", v.tpotMs));
  l.push(...vllmSection("ITL", "Inter-token Latency", v.itlMs));
  l.push(...vllmSection("E2EL", "End-to-end Latency", v.e2elMs));
  l.push("=".repeat(50));
  return l.join("\n");
}

/** Both blocks, trtllm-bench's first. */
export function formatTextReport(t: TrtllmStats, v: VllmStats, info: BenchInfo = {}): string {
  return `${formatTrtllmText(t, info)}\n\n${formatVllmText(v, info)}\n`;
}

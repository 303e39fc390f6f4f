// Benchmark statistics in the two families users compare against:
//  - trtllm-bench (ReportUtility / BenchmarkStatistics): floor-index percentiles sorted[int(n*q)],
//    throughput over total_latency = max(end) - min(start).
//  - vLLM benchmark_serving: np.percentile (linear interpolation), throughput over the wall
//    duration of the run, ITL pooled over every gap between streamed chunks.
// Times in a RequestRecord are nanoseconds from any common origin; results are in ms, s and tok/s.

export interface RequestRecord {
  /** submit time (ns) */
  startNs: number;
  /** arrival of the first output token / chunk (ns) */
  firstTokenNs: number;
  /** arrival of the final response (ns) */
  endNs: number;
  /** arrival time of every streamed chunk, first included (ns); one entry per chunk */
  tokenTimesNs: number[];
  numInputTokens: number;
  /** output tokens, the first one included */
  numOutputTokens: number;
  /** set when the request failed; failed records are excluded from every statistic but `failed` */
  error?: string;
  /** speculative decoding: decode iterations after the first token (TRT-LLM's decode_iteration), when known */
  decodeIterations?: number;
}

/** TRT-LLM's PercentileStats (same field names). */
export interface PercentileStats {
  minimum: number;
  maximum: number;
  average: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
}

/** trtllm-bench's percentile: sorted[int(len * q)] (clamped to the last element), no interpolation. */
export function percentileFloor(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!;
}

/** np.percentile's default ("linear"): p in [0, 100], rank (n-1)p/100 interpolated between neighbours. */
export function percentileInterp(sorted: readonly number[], p: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const rank = ((n - 1) * p) / 100;
  const lo = Math.floor(rank);
  const hi = Math.min(n - 1, lo + 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo);
}

function mean(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Population standard deviation (np.std's default, ddof = 0). */
function stdPop(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const m = mean(xs);
  let s = 0;
  for (const x of xs) s += (x - m) * (x - m);
  return Math.sqrt(s / xs.length);
}

const sortAsc = (xs: readonly number[]): number[] => [...xs].sort((a, b) => a - b);

/** Min / max by loop: Math.min(...xs) overflows the call stack past ~100k arguments. */
export function minOf(xs: Iterable<number>, init = Infinity): number {
  let m = init;
  for (const x of xs) if (x < m) m = x;
  return m;
}

export function maxOf(xs: Iterable<number>, init = -Infinity): number {
  let m = init;
  for (const x of xs) if (x > m) m = x;
  return m;
}

export function percentileStats(values: readonly number[]): PercentileStats {
  const s = sortAsc(values);
  return {
    minimum: s.length ? s[0]! : NaN,
    maximum: s.length ? s[s.length - 1]! : NaN,
    average: mean(s),
    p50: percentileFloor(s, 0.5),
    p90: percentileFloor(s, 0.9),
    p95: percentileFloor(s, 0.95),
    p99: percentileFloor(s, 0.99),
  };
}

const NS_PER_MS = 1e6;
const NS_PER_S = 1e9;

export interface TrtllmStats {
  numRequests: number;
  numFailed: number;
  totalInputTokens: number;
  totalOutputTokens: number;
  /** max(end) - min(start), ms */
  totalLatencyMs: number;
  avgRequestLatencyMs: number;
  requestThroughputReqS: number;
  systemOutputThroughputTokS: number;
  systemTotalThroughputTokS: number;
  /** mean over requests of output / e2e ("Per User Output Throughput [w/ ctx]") */
  outputThroughputPerUserTokS: number;
  outputThroughputPerGpuTokS: number;
  /** N / (last start - first start), req/s; null with fewer than two distinct starts */
  issueRateReqS: number | null;
  /** time-averaged number of requests in flight: sum(e2e) / total_latency (Little's law) */
  avgConcurrency: number;
  avgInputLength: number;
  avgOutputLength: number;
  /** mean per-request generation tok/s (TRT-LLM's per_user_generation_token_throughput, printed as "Per User Output Speed") */
  tokenOutputSpeedTokS: number;
  avgTtftMs: number;
  avgTpotMs: number;
  requestLatencyPercentilesMs: PercentileStats;
  ttftPercentilesMs: PercentileStats;
  /** per request (end - first) / (output - 1); 0 for single-token requests (TRT-LLM's intertoken_latency) */
  tpotPercentilesMs: PercentileStats;
  /** per-request generation tok/s: (output - 1) / (e2e - ttft); 0 for single-token requests */
  genTpsPercentiles: PercentileStats;
  inputLengthPercentiles: PercentileStats;
  outputLengthPercentiles: PercentileStats;
}

/** trtllm-bench's numbers over the successful records. `worldSize` divides the per-GPU figure. */
export function computeTrtllmStats(records: readonly RequestRecord[], worldSize = 1): TrtllmStats {
  const ok = records.filter((r) => r.error === undefined);
  const n = ok.length;
  const starts = ok.map((r) => r.startNs);
  const minStart = n ? minOf(starts) : 0;
  const maxStart = n ? maxOf(starts) : 0;
  const maxEnd = n ? maxOf(ok.map((r) => r.endNs)) : 0;
  const totalNs = maxEnd - minStart;
  const totalS = totalNs / NS_PER_S;
  const e2eMs = ok.map((r) => (r.endNs - r.startNs) / NS_PER_MS);
  const ttftMs = ok.map((r) => (r.firstTokenNs - r.startNs) / NS_PER_MS);
  // As TRT-LLM's RequestRecord: a request with one output token has TPOT 0 and generation tok/s 0,
  // and both still count in the averages and percentiles.
  const tpotMs = ok.map((r) => (r.numOutputTokens > 1 ? (r.endNs - r.firstTokenNs) / NS_PER_MS / (r.numOutputTokens - 1) : 0));
  const genTps = ok.map((r) => (r.numOutputTokens > 1 ? (r.numOutputTokens - 1) / ((r.endNs - r.firstTokenNs) / NS_PER_S) : 0));
  const inTok = ok.reduce((s, r) => s + r.numInputTokens, 0);
  const outTok = ok.reduce((s, r) => s + r.numOutputTokens, 0);
  const rate = (x: number): number => (totalS > 0 ? x / totalS : NaN);
  const avgTpotMs = mean(tpotMs);
  return {
    numRequests: n,
    numFailed: records.length - n,
    totalInputTokens: inTok,
    totalOutputTokens: outTok,
    totalLatencyMs: totalNs / NS_PER_MS,
    avgRequestLatencyMs: mean(e2eMs),
    requestThroughputReqS: rate(n),
    systemOutputThroughputTokS: rate(outTok),
    systemTotalThroughputTokS: rate(inTok + outTok),
    outputThroughputPerUserTokS: mean(ok.map((r) => r.numOutputTokens / ((r.endNs - r.startNs) / NS_PER_S))),
    outputThroughputPerGpuTokS: rate(outTok) / worldSize,
    issueRateReqS: maxStart > minStart ? n / ((maxStart - minStart) / NS_PER_S) : null,
    avgConcurrency: totalNs > 0 ? e2eMs.reduce((s, x) => s + x, 0) / (totalNs / NS_PER_MS) : NaN,
    avgInputLength: n ? inTok / n : NaN,
    avgOutputLength: n ? outTok / n : NaN,
    tokenOutputSpeedTokS: mean(genTps),
    avgTtftMs: mean(ttftMs),
    avgTpotMs,
    requestLatencyPercentilesMs: percentileStats(e2eMs),
    ttftPercentilesMs: percentileStats(ttftMs),
    tpotPercentilesMs: percentileStats(tpotMs),
    genTpsPercentiles: percentileStats(genTps),
    inputLengthPercentiles: percentileStats(ok.map((r) => r.numInputTokens)),
    outputLengthPercentiles: percentileStats(ok.map((r) => r.numOutputTokens)),
  };
}

/** vLLM's per-metric summary (ms): mean, median, std (population) and the asked percentiles. */
export interface VllmMetricSummary {
  mean: number;
  median: number;
  std: number;
  /** [p, value] pairs in the order asked, p in [0, 100] */
  percentiles: [number, number][];
}

export interface VllmStats {
  completed: number;
  failed: number;
  durationS: number;
  totalInput: number;
  totalOutput: number;
  requestThroughput: number;
  requestGoodput: number | null;
  outputThroughput: number;
  totalTokenThroughput: number;
  /** peak output tokens counted in one-second buckets from the first start */
  maxOutputTokensPerS: number;
  maxConcurrentRequests: number;
  ttftMs: VllmMetricSummary;
  tpotMs: VllmMetricSummary;
  itlMs: VllmMetricSummary;
  e2elMs: VllmMetricSummary;
}

/** DistServe goodput SLOs, ms; a request counts when it meets every SLO given. */
export interface GoodputSlo {
  ttftMs?: number;
  tpotMs?: number;
  e2elMs?: number;
}

function summarize(values: readonly number[], percentiles: readonly number[]): VllmMetricSummary {
  const s = sortAsc(values);
  return {
    mean: s.length ? mean(s) : 0,
    median: s.length ? percentileInterp(s, 50) : 0,
    std: s.length ? stdPop(s) : 0,
    percentiles: percentiles.map((p) => [p, s.length ? percentileInterp(s, p) : 0]),
  };
}

/** Largest number of requests in flight at once (an end at the same instant as a start frees first). */
export function peakConcurrency(records: readonly RequestRecord[]): number {
  const ev: [number, number][] = [];
  for (const r of records) ev.push([r.startNs, 1], [r.endNs, -1]);
  ev.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let cur = 0;
  let peak = 0;
  for (const [, d] of ev) peak = Math.max(peak, (cur += d));
  return peak;
}

/** vLLM's numbers over the successful records; `durationS` is the run's wall time. */
export function computeVllmStats(
  records: readonly RequestRecord[], durationS: number,
  opts: { percentiles?: readonly number[]; goodput?: GoodputSlo } = {},
): VllmStats {
  const ps = opts.percentiles ?? [99];
  const ok = records.filter((r) => r.error === undefined);
  const ttft = ok.map((r) => (r.firstTokenNs - r.startNs) / NS_PER_MS);
  const e2el = ok.map((r) => (r.endNs - r.startNs) / NS_PER_MS);
  // vLLM appends TPOT only for output_len > 1 (goodput counts the others as TPOT 0).
  const tpotOf = (r: RequestRecord): number =>
    r.numOutputTokens > 1 ? (r.endNs - r.firstTokenNs) / NS_PER_MS / (r.numOutputTokens - 1) : 0;
  const tpot = ok.filter((r) => r.numOutputTokens > 1).map(tpotOf);
  const itl: number[] = [];
  for (const r of ok) for (let i = 1; i < r.tokenTimesNs.length; i++) itl.push((r.tokenTimesNs[i]! - r.tokenTimesNs[i - 1]!) / NS_PER_MS);
  const totalInput = ok.reduce((s, r) => s + r.numInputTokens, 0);
  const totalOutput = ok.reduce((s, r) => s + r.numOutputTokens, 0);
  let goodput: number | null = null;
  const slo = opts.goodput;
  if (slo && (slo.ttftMs !== undefined || slo.tpotMs !== undefined || slo.e2elMs !== undefined)) {
    const good = ok.filter((r, i) =>
      (slo.ttftMs === undefined || ttft[i]! <= slo.ttftMs) &&
      (slo.tpotMs === undefined || tpotOf(r) <= slo.tpotMs) &&
      (slo.e2elMs === undefined || e2el[i]! <= slo.e2elMs)).length;
    goodput = good / durationS;
  }
  return {
    completed: ok.length,
    failed: records.length - ok.length,
    durationS,
    totalInput,
    totalOutput,
    requestThroughput: ok.length / durationS,
    requestGoodput: goodput,
    outputThroughput: totalOutput / durationS,
    totalTokenThroughput: (totalInput + totalOutput) / durationS,
    maxOutputTokensPerS: peakOutputPerSecond(ok),
    maxConcurrentRequests: peakConcurrency(ok),
    ttftMs: summarize(ttft, ps),
    tpotMs: summarize(tpot, ps),
    itlMs: summarize(itl, ps),
    e2elMs: summarize(e2el, ps),
  };
}

/** Peak tokens in one-second buckets [t0 + k s, t0 + (k+1) s), t0 = earliest start; one token per chunk time. */
export function peakOutputPerSecond(records: readonly RequestRecord[]): number {
  if (records.length === 0) return 0;
  const t0 = minOf(records.map((r) => r.startNs));
  const buckets = new Map<number, number>();
  for (const r of records) {
    for (const t of r.tokenTimesNs) {
      const k = Math.floor((t - t0) / NS_PER_S);
      buckets.set(k, (buckets.get(k) ?? 0) + 1);
    }
  }
  return maxOf(buckets.values(), 0);
}

/** TRT-LLM's decoding_stats (speculative decoding), over successful records with decodeIterations. */
export interface DecodingStats {
  /** total output tokens / total decode steps (the first token counts one step per request) */
  acceptanceLength: number;
  numDraftTokensPercentiles: PercentileStats;
  numAcceptedDraftTokensPercentiles: PercentileStats;
  draftAcceptanceRatePercentiles: PercentileStats;
  acceptanceLengthPercentiles: PercentileStats;
}

/**
 * Per request, with steps = decodeIterations + 1: drafted = maxDraftLen * steps,
 * accepted = output - steps, rate = accepted / drafted, length = output / steps. Null when no record
 * carries decodeIterations or maxDraftLen is 0.
 */
export function computeDecodingStats(records: readonly RequestRecord[], maxDraftLen: number): DecodingStats | null {
  const ok = records.filter((r) => r.error === undefined && r.decodeIterations !== undefined);
  if (ok.length === 0 || maxDraftLen <= 0) return null;
  const steps = ok.map((r) => r.decodeIterations! + 1);
  const drafted = steps.map((s) => maxDraftLen * s);
  const accepted = ok.map((r, i) => r.numOutputTokens - steps[i]!);
  const totalOut = ok.reduce((a, r) => a + r.numOutputTokens, 0);
  return {
    acceptanceLength: totalOut / steps.reduce((a, s) => a + s, 0),
    numDraftTokensPercentiles: percentileStats(drafted),
    numAcceptedDraftTokensPercentiles: percentileStats(accepted),
    draftAcceptanceRatePercentiles: percentileStats(accepted.map((a, i) => a / drafted[i]!)),
    acceptanceLengthPercentiles: percentileStats(ok.map((r, i) => r.numOutputTokens / steps[i]!)),
  };
}

export interface Timeline {
  /** bucket start times, s from the earliest start */
  tS: number[];
  bucketS: number;
  /** output chunks (tokens) per second in each bucket */
  outputTokS: number[];
  /** requests in flight at each bucket's start */
  running: number[];
  /** requests completed within each bucket */
  completed: number[];
}

/** Throughput and concurrency over time, for charts; `buckets` equal time slices over the run. */
export function computeTimeline(records: readonly RequestRecord[], buckets = 60): Timeline {
  const ok = records.filter((r) => r.error === undefined);
  if (ok.length === 0) return { tS: [], bucketS: 0, outputTokS: [], running: [], completed: [] };
  const t0 = minOf(ok.map((r) => r.startNs));
  const t1 = maxOf(ok.map((r) => r.endNs));
  const width = Math.max(1, t1 - t0) / buckets;
  const tokens = new Array<number>(buckets).fill(0);
  const completed = new Array<number>(buckets).fill(0);
  const idx = (t: number): number => Math.min(buckets - 1, Math.max(0, Math.floor((t - t0) / width)));
  for (const r of ok) {
    for (const t of r.tokenTimesNs) tokens[idx(t)]!++;
    completed[idx(r.endNs)]!++;
  }
  const tS = tokens.map((_, k) => (k * width) / NS_PER_S);
  const running = tS.map((_, k) => {
    const t = t0 + k * width;
    return ok.reduce((c, r) => c + (r.startNs <= t && r.endNs > t ? 1 : 0), 0);
  });
  return { tS, bucketS: width / NS_PER_S, outputTokS: tokens.map((x) => x / (width / NS_PER_S)), running, completed };
}

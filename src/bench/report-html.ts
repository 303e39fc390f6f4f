// The HTML bench report: ONE self-contained page (inline CSS and SVG; no script, no network) with
// headline cards, TTFT/TPOT histograms, throughput and running requests over time, latency
// percentiles, a per-request timeline, and both metric tables.
import { computeTimeline, minOf, percentileFloor, type RequestRecord, type TrtllmStats, type VllmStats } from "./metrics.js";
import type { BenchInfo } from "./report.js";
import { COLORS, barGroups, esc, fmtNum, ganttChart, histogram, lineChart, type Span } from "./svg.js";

export interface HtmlReportInput {
  title?: string;
  records: readonly RequestRecord[];
  trt: TrtllmStats;
  vllm: VllmStats;
  info?: BenchInfo;
  /** ISO time shown in the header (default: now) */
  generatedAt?: string;
  /** at most this many requests drawn in the timeline chart (evenly sampled; default 300) */
  maxTimelineRows?: number;
}

const CSS = `
:root{--bg:#f4f6fb;--card:#fff;--ink:#0f172a;--muted:#64748b;--line:#e2e8f0}
*{box-sizing:border-box}body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
header{background:linear-gradient(120deg,#312e81,#4f46e5 55%,#0d9488);color:#fff;padding:26px 36px 22px}
header h1{margin:0 0 4px;font-size:24px;font-weight:650;letter-spacing:-.01em}header p{margin:0;opacity:.85}
main{max-width:1240px;margin:0 auto;padding:22px 28px 40px}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(120px,1fr));gap:12px;margin:0 0 18px}
.kpi{background:var(--card);border-radius:12px;padding:12px 14px;box-shadow:0 1px 2px rgba(15,23,42,.06),0 0 0 1px var(--line)}
.kpi b{display:block;font-size:22px;font-weight:650;letter-spacing:-.02em}.kpi span{color:var(--muted);font-size:12px}
.grid{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:16px}
.card{background:var(--card);border-radius:14px;padding:14px 16px 8px;box-shadow:0 1px 2px rgba(15,23,42,.06),0 0 0 1px var(--line)}
.card h2{margin:0 0 2px;font-size:15px;font-weight:620}.card .sub{margin:0 0 6px;color:var(--muted);font-size:12px}
.wide{grid-column:1/-1}svg{width:100%;height:auto;display:block}
svg .grid{stroke:#e2e8f0;stroke-width:1}svg .axis{stroke:#94a3b8;stroke-width:1}
svg .tick{fill:#64748b;font-size:10.5px}svg .label{fill:#334155;font-size:11.5px}svg .gtitle{fill:#0f172a;font-size:12px;font-weight:600}
svg .marker{stroke:#0f172a;stroke-width:1;stroke-dasharray:4 3;opacity:.7}svg .mlabel{fill:#0f172a;font-size:10.5px;font-weight:600}
table{width:100%;border-collapse:collapse;font-size:12px;font-variant-numeric:tabular-nums}td,th{padding:4px 6px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
td:first-child,th:first-child{text-align:left;color:#334155;white-space:normal}th{color:var(--muted);font-weight:600}
footer{color:var(--muted);font-size:12px;text-align:center;margin-top:18px}
.legend{display:flex;gap:14px;font-size:12px;color:var(--muted);margin:0 0 4px}.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px;vertical-align:-1px}
`;

const n2 = (x: number | null | undefined): string => (x === null || x === undefined || !Number.isFinite(x) ? "n/a" : x.toFixed(2));

function kpis(t: TrtllmStats, v: VllmStats, info: BenchInfo): string {
  const items: [string, string][] = [
    [fmtNum(t.systemOutputThroughputTokS), "output tok/s"],
    [fmtNum(t.requestThroughputReqS), "requests/s"],
    [`${fmtNum(t.avgTtftMs)} ms`, "mean TTFT"],
    [`${fmtNum(t.avgTpotMs)} ms`, "mean TPOT"],
    [fmtNum(t.outputThroughputPerUserTokS), "tok/s per user"],
    [`${v.completed}/${v.completed + v.failed}`, "requests ok"],
  ];
  if (info.prefixCacheHitRate !== undefined) items.push([`${(info.prefixCacheHitRate * 100).toFixed(1)}%`, "prefix-cache hits"]);
  if (info.kvCacheUsage !== undefined) items.push([`${(info.kvCacheUsage * 100).toFixed(1)}%`, "KV cache usage"]);
  return `<section class="kpis">${items.map(([b, s]) => `<div class="kpi"><b>${esc(b)}</b><span>${esc(s)}</span></div>`).join("")}</section>`;
}

function card(title: string, sub: string, svg: string, wide = false, extra = ""): string {
  return `<section class="card${wide ? " wide" : ""}" data-chart="${esc(title)}"><h2>${esc(title)}</h2><p class="sub">${esc(sub)}</p>${extra}${svg}</section>`;
}

function table(head: string[], rows: (string | number)[][]): string {
  const cell = (c: string | number): string => esc(typeof c === "number" ? n2(c) : c);
  return `<table><tr>${head.map((h) => `<th>${esc(h)}</th>`).join("")}</tr>${rows.map((r) => `<tr>${r.map((c) => `<td>${cell(c)}</td>`).join("")}</tr>`).join("")}</table>`;
}

function trtTable(t: TrtllmStats): string {
  const p = (name: string, s: TrtllmStats["ttftPercentilesMs"]): (string | number)[] => [name, s.minimum, s.p50, s.p90, s.p95, s.p99, s.maximum, s.average];
  return table(["metric", "min", "p50", "p90", "p95", "p99", "max", "avg"], [
    p("TTFT (ms)", t.ttftPercentilesMs), p("TPOT (ms)", t.tpotPercentilesMs),
    p("Request latency (ms)", t.requestLatencyPercentilesMs), p("Gen. tok/s per request", t.genTpsPercentiles),
  ]) + table(["throughput", "value"], [
    ["Request throughput (req/s)", t.requestThroughputReqS], ["Output throughput (tok/s)", t.systemOutputThroughputTokS],
    ["Total token throughput (tok/s)", t.systemTotalThroughputTokS], ["Per user output throughput (tok/s)", t.outputThroughputPerUserTokS],
    ["Per GPU output throughput (tok/s)", t.outputThroughputPerGpuTokS], ["Per user output speed (tok/s)", t.tokenOutputSpeedTokS],
    ["Issue rate (req/s)", t.issueRateReqS ?? NaN], ["Average concurrency", t.avgConcurrency], ["Total latency (ms)", t.totalLatencyMs],
  ]);
}

function vllmTable(v: VllmStats): string {
  const ps = v.ttftMs.percentiles.map(([p]) => `p${p}`);
  const r = (name: string, s: VllmStats["ttftMs"]): (string | number)[] => [name, s.mean, s.median, s.std, ...s.percentiles.map(([, x]) => x)];
  return table(["metric", "mean", "median", "std", ...ps], [
    r("TTFT (ms)", v.ttftMs), r("TPOT (ms)", v.tpotMs), r("ITL (ms)", v.itlMs), r("E2EL (ms)", v.e2elMs),
  ]) + table(["throughput", "value"], [
    ["Benchmark duration (s)", v.durationS], ["Request throughput (req/s)", v.requestThroughput],
    ["Output token throughput (tok/s)", v.outputThroughput], ["Peak output tok/s (1 s buckets)", v.maxOutputTokensPerS],
    ["Peak concurrent requests", String(v.maxConcurrentRequests)], ["Total token throughput (tok/s)", v.totalTokenThroughput],
    ...(v.requestGoodput !== null ? [["Request goodput (req/s)", v.requestGoodput] as (string | number)[]] : []),
  ]);
}

function spansOf(records: readonly RequestRecord[], maxRows: number): Span[] {
  const sorted = [...records].sort((a, b) => a.startNs - b.startNs);
  const m = Math.min(maxRows, sorted.length);
  const out: Span[] = [];
  for (let k = 0; k < m; k++) {
    const r = sorted[Math.floor((k * sorted.length) / m)]!;
    out.push({ start: r.startNs / 1e9, first: r.firstTokenNs / 1e9, end: r.endNs / 1e9, failed: r.error !== undefined });
  }
  const t0 = minOf(out.map((s) => s.start));
  return out.map((s) => ({ start: s.start - t0, first: s.first - t0, end: s.end - t0, failed: s.failed }));
}

function charts(inp: HtmlReportInput): string {
  const { trt: t, records } = inp;
  const ok = records.filter((r) => r.error === undefined);
  const ttft = ok.map((r) => (r.firstTokenNs - r.startNs) / 1e6);
  const tpot = ok.filter((r) => r.numOutputTokens > 1).map((r) => (r.endNs - r.firstTokenNs) / 1e6 / (r.numOutputTokens - 1));
  const tpotSorted = [...tpot].sort((a, b) => a - b); // markers over the plotted requests (the stats count 1-token requests as 0)
  const tl = computeTimeline(records, 60);
  const mid = tl.tS.map((x) => x + tl.bucketS / 2);
  const pctRows = (s: TrtllmStats["ttftPercentilesMs"]): { label: string; value: number }[] =>
    [["p50", s.p50], ["p90", s.p90], ["p95", s.p95], ["p99", s.p99], ["max", s.maximum]].map(([label, value]) => ({ label: label as string, value: value as number }));
  const legend = `<div class="legend"><span><i style="background:${COLORS.amber};opacity:.55"></i>waiting for first token</span><span><i style="background:${COLORS.indigo}"></i>generating</span><span><i style="background:${COLORS.rose}"></i>failed</span></div>`;
  return [
    card("Time to first token", `${ttft.length} requests; dashed lines: p50 and p99`, histogram(ttft, { color: COLORS.indigo, xLabel: "TTFT (ms)", label: "TTFT histogram",
      markers: [{ value: t.ttftPercentilesMs.p50, label: "p50" }, { value: t.ttftPercentilesMs.p99, label: "p99" }] })),
    card("Time per output token", `${tpot.length} requests with 2+ output tokens`, histogram(tpot, { color: COLORS.teal, xLabel: "TPOT (ms)", label: "TPOT histogram",
      markers: [{ value: percentileFloor(tpotSorted, 0.5), label: "p50" }, { value: percentileFloor(tpotSorted, 0.99), label: "p99" }] })),
    card("Output throughput over time", `tokens/s in ${fmtNum(tl.bucketS)} s buckets`, lineChart([{ name: "output tok/s", color: COLORS.indigo, xs: mid, ys: tl.outputTokS, area: true }],
      { xLabel: "time since start (s)", yLabel: "tok/s", label: "throughput over time" })),
    card("Requests in flight", "running requests sampled at each bucket", lineChart([{ name: "running", color: COLORS.teal, xs: tl.tS, ys: tl.running, area: true, step: true }],
      { xLabel: "time since start (s)", yLabel: "requests", label: "running requests over time" })),
    card("Latency percentiles", "trtllm-bench floor-index percentiles", barGroups([
      { title: "TTFT", unit: "ms", color: COLORS.indigo, rows: pctRows(t.ttftPercentilesMs) },
      { title: "TPOT", unit: "ms", color: COLORS.teal, rows: pctRows(t.tpotPercentilesMs) },
      { title: "End-to-end latency", unit: "ms", color: COLORS.amber, rows: pctRows(t.requestLatencyPercentilesMs) },
    ], "latency percentiles")),
    card("Request timeline", "one row per request (sampled when many)", ganttChart(spansOf(records, inp.maxTimelineRows ?? 300), { label: "request timeline" }), false, legend),
  ].join("");
}

/** The whole page as a string. */
export function renderHtmlReport(inp: HtmlReportInput): string {
  const info = inp.info ?? {};
  const title = inp.title ?? "tllm bench report";
  const sub = [info.engine?.model, info.engine?.target, info.concurrency !== undefined ? `concurrency ${info.concurrency}` : "unlimited concurrency",
    `rate ${info.requestRate ?? "inf"}`, inp.generatedAt ?? new Date().toISOString()].filter(Boolean).join(" · ");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(title)}</title><style>${CSS}</style></head>
<body><header><h1>${esc(title)}</h1><p>${esc(sub)}</p></header>
<main>${kpis(inp.trt, inp.vllm, info)}
<div class="grid">${charts(inp)}
<section class="card"><h2>trtllm-bench metrics</h2><p class="sub">percentiles: sorted[int(n·q)]</p>${trtTable(inp.trt)}</section>
<section class="card"><h2>vLLM benchmark_serving metrics</h2><p class="sub">percentiles: linear interpolation (np.percentile)</p>${vllmTable(inp.vllm)}</section>
</div><footer>generated by tllm bench · self-contained page, no network</footer></main></body></html>
`;
}

// Public surface of the bench harness (the CLI's `tllm bench` wires these together):
//   dataset  -> runBenchmark(send) -> summarizeBenchmark -> text / JSON / HTML reports.
export * from "./dataset.js";
export * from "./metrics.js";
export * from "./runner.js";
export * from "./report.js";
export { renderHtmlReport, type HtmlReportInput } from "./report-html.js";
export { ProgressBar, type ProgressOptions } from "./progress.js";
export * from "./openai-client.js";
export { Prng } from "./prng.js";

import { computeTrtllmStats, computeVllmStats, type GoodputSlo, type TrtllmStats, type VllmStats } from "./metrics.js";
import { buildReportJson, formatTextReport, type BenchInfo } from "./report.js";
import { renderHtmlReport } from "./report-html.js";
import type { BenchmarkRun } from "./runner.js";

export interface BenchSummary {
  trt: TrtllmStats;
  vllm: VllmStats;
  text: string;
  json: Record<string, unknown>;
  html: string;
}

/** Every report of one run; `percentiles` are vLLM's (default [50, 90, 99]), `worldSize` divides per-GPU throughput. */
export function summarizeBenchmark(
  run: BenchmarkRun,
  o: { info?: BenchInfo; percentiles?: number[]; goodput?: GoodputSlo; worldSize?: number; title?: string } = {},
): BenchSummary {
  const trt = computeTrtllmStats(run.records, o.worldSize ?? 1);
  const vllm = computeVllmStats(run.records, run.durationS, { percentiles: o.percentiles ?? [50, 90, 99], ...(o.goodput ? { goodput: o.goodput } : {}) });
  const info = o.info ?? {};
  return {
    trt, vllm, text: formatTextReport(trt, vllm, info), json: buildReportJson(trt, info, vllm),
    html: renderHtmlReport({ records: run.records, trt, vllm, info, ...(o.title ? { title: o.title } : {}) }),
  };
}

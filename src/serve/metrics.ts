// Prometheus metrics (prom-client, a private registry so several servers in one process never
// share counters). Names follow vLLM's/TRT-LLM's with a `tllm_` prefix; src/bench scrapes
// tllm_prefix_cache_hits_total, tllm_prefix_cache_queries_total and tllm_kv_cache_usage_perc.
// Gauges are read from the engine at scrape time (collect callbacks), counters move per request.
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { EngineStats } from "./engine.js";

const LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80];
const TPOT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5];

export interface RequestRecord {
  /** seconds */
  ttft: number | null;
  e2e: number;
  queue: number;
  /** seconds per output token after the first; null with fewer than 2 tokens */
  tpot: number | null;
  promptTokens: number;
  generationTokens: number;
  /** one entry per returned choice */
  finishReasons: string[];
}

export class ServerMetrics {
  readonly registry = new Registry();
  private readonly ttft: Histogram;
  private readonly tpot: Histogram;
  private readonly e2e: Histogram;
  private readonly queue: Histogram;
  private readonly promptTokens: Counter;
  private readonly genTokens: Counter;
  private readonly finished: Counter<"finish_reason">;

  private snap: { at: number; p: Promise<EngineStats> } | null = null;

  constructor(stats: () => Promise<EngineStats>) {
    const r = [this.registry];
    // one engine read per scrape (the gauges' collect callbacks all run within it)
    const read = (): Promise<EngineStats> => {
      const now = performance.now();
      if (!this.snap || now - this.snap.at > 50) this.snap = { at: now, p: stats() };
      return this.snap.p;
    };
    const hist = (name: string, help: string, buckets: number[]) => new Histogram({ name, help, buckets, registers: r });
    this.ttft = hist("tllm_time_to_first_token_seconds", "Time to first token (s)", LATENCY_BUCKETS);
    this.tpot = hist("tllm_time_per_output_token_seconds", "Time per output token after the first (s)", TPOT_BUCKETS);
    this.e2e = hist("tllm_e2e_request_latency_seconds", "End-to-end request latency (s)", LATENCY_BUCKETS);
    this.queue = hist("tllm_request_queue_time_seconds", "Time from arrival until the request was handed to the engine (s)", LATENCY_BUCKETS);
    this.promptTokens = new Counter({ name: "tllm_prompt_tokens_total", help: "Prompt tokens processed", registers: r });
    this.genTokens = new Counter({ name: "tllm_generation_tokens_total", help: "Generated tokens", registers: r });
    this.finished = new Counter({ name: "tllm_request_success_total", help: "Finished requests by finish_reason", labelNames: ["finish_reason"], registers: r });
    const gauge = (name: string, help: string, pick: (s: EngineStats) => number) =>
      new Gauge({ name, help, registers: r, async collect() { this.set(pick(await read())); } });
    gauge("tllm_num_requests_running", "Requests being computed", (s) => s.running);
    gauge("tllm_num_requests_waiting", "Requests waiting to be scheduled", (s) => s.waiting);
    gauge("tllm_kv_cache_blocks_used", "KV cache blocks in use", (s) => s.kvBlocksUsed);
    gauge("tllm_kv_cache_blocks_free", "KV cache blocks free", (s) => s.kvBlocksFree);
    gauge("tllm_kv_cache_usage_perc", "KV cache usage as a fraction in [0, 1] (vLLM's name)", (s) => s.kvBlocksTotal > 0 ? s.kvBlocksUsed / s.kvBlocksTotal : 0);
    gauge("tllm_prefix_cache_hit_rate", "Prefix-cache hit rate since start (reused / looked-up blocks)", (s) => s.prefixHitRate);
    const total = (name: string, help: string, pick: (s: EngineStats) => number) =>
      new Counter({ name, help, registers: r, async collect() { const v = pick(await read()); this.reset(); this.inc(v); } });
    total("tllm_prefix_cache_hits_total", "Prompt tokens served from the prefix cache", (s) => s.prefixHitTokens);
    total("tllm_prefix_cache_queries_total", "Prompt tokens looked up in the prefix cache", (s) => s.prefixQueryTokens);
  }

  record(r: RequestRecord): void {
    if (r.ttft !== null) this.ttft.observe(r.ttft);
    if (r.tpot !== null) this.tpot.observe(r.tpot);
    this.e2e.observe(r.e2e);
    this.queue.observe(r.queue);
    this.promptTokens.inc(r.promptTokens);
    this.genTokens.inc(r.generationTokens);
    for (const f of r.finishReasons) this.finished.inc({ finish_reason: f });
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

// A minimal streaming client for an OpenAI-compatible `/v1/completions` endpoint (global fetch),
// shaped as a bench `send` function, and a scraper for the server's Prometheus `/metrics`.
// Nothing tllm-specific goes on the wire: the same client measures vLLM, trtllm-serve or llama.cpp.
import { ValidationError } from "../errors.js";
import type { DatasetItem } from "./dataset.js";
import type { OnToken, SendFn, SendResult } from "./runner.js";

export interface OpenAiClientOptions {
  /** e.g. http://127.0.0.1:8000 (with or without a trailing /v1) */
  baseUrl: string;
  model: string;
  apiKey?: string;
  /** ask the server to ignore EOS so that output_tokens are generated (default true) */
  ignoreEos?: boolean;
  temperature?: number;
  /** extra JSON body fields, merged last */
  extraBody?: Record<string, unknown>;
  /** abort a request that takes longer than this (ms); recorded as a failed request */
  requestTimeoutMs?: number;
  fetchImpl?: typeof fetch;
}

/** Splits an SSE byte stream into `data:` payloads (multi-line data joined by "\n"); stops at [DONE]. */
export async function* parseSse(body: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const dec = new TextDecoder();
  let buf = "";
  const flushEvent = function* (ev: string): Generator<string> {
    const data = ev.split(/\r?\n/).filter((l) => l.startsWith("data:")).map((l) => l.slice(5).replace(/^ /, ""));
    if (data.length) yield data.join("\n");
  };
  for await (const chunk of body) {
    buf += dec.decode(chunk, { stream: true });
    let m: RegExpExecArray | null;
    while ((m = /\r?\n\r?\n/.exec(buf))) {
      const ev = buf.slice(0, m.index);
      buf = buf.slice(m.index + m[0].length);
      for (const d of flushEvent(ev)) {
        if (d.trim() === "[DONE]") return;
        yield d;
      }
    }
  }
  buf += dec.decode();
  for (const d of flushEvent(buf)) if (d.trim() !== "[DONE]") yield d;
}

function completionsUrl(base: string): string {
  const b = base.replace(/\/+$/, "");
  return b.endsWith("/v1") ? `${b}/completions` : `${b}/v1/completions`;
}

interface CompletionChunk {
  choices?: { text?: string; finish_reason?: string | null }[];
  usage?: { prompt_tokens?: number; completion_tokens?: number } | null;
  error?: { message?: string };
}

/** Streams one completion; calls onToken per chunk carrying text; returns usage when reported. */
export async function streamCompletion(
  o: OpenAiClientOptions, item: DatasetItem, onToken: OnToken,
): Promise<SendResult & { text: string }> {
  const body: Record<string, unknown> = {
    model: o.model,
    prompt: item.inputIds ?? item.prompt,
    max_tokens: item.outputTokens,
    temperature: o.temperature ?? 0,
    stream: true,
    stream_options: { include_usage: true },
    ...(o.ignoreEos ?? true ? { ignore_eos: true } : {}),
    ...o.extraBody,
  };
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (o.apiKey) headers.authorization = `Bearer ${o.apiKey}`;
  const init: RequestInit = { method: "POST", headers, body: JSON.stringify(body) };
  if (o.requestTimeoutMs !== undefined) init.signal = AbortSignal.timeout(o.requestTimeoutMs);
  const res = await (o.fetchImpl ?? fetch)(completionsUrl(o.baseUrl), init);
  if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`);
  let text = "";
  let chunks = 0;
  const out: SendResult & { text: string } = { text: "" };
  for await (const data of parseSse(res.body as unknown as AsyncIterable<Uint8Array>)) {
    const c = JSON.parse(data) as CompletionChunk;
    if (c.error) throw new Error(c.error.message ?? "server error in stream");
    const t = c.choices?.[0]?.text;
    if (t) {
      text += t;
      chunks++;
      onToken();
    }
    if (c.usage) {
      if (c.usage.completion_tokens !== undefined) out.outputTokens = c.usage.completion_tokens;
      if (c.usage.prompt_tokens !== undefined) out.inputTokens = c.usage.prompt_tokens;
    }
  }
  out.text = text;
  if (out.outputTokens === undefined) out.outputTokens = chunks; // no usage: one token per chunk
  return out;
}

/** A bench `send` for an OpenAI-compatible server. */
export function createOpenAiSend(o: OpenAiClientOptions): SendFn {
  if (!/^https?:\/\//.test(o.baseUrl)) throw new ValidationError("baseUrl", o.baseUrl, "must start with http:// or https://");
  return async (item, onToken) => {
    const r = await streamCompletion(o, item, onToken);
    return { outputTokens: r.outputTokens, inputTokens: r.inputTokens };
  };
}

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text exposition format (comments skipped). */
export function parsePrometheusText(text: string): PromSample[] {
  const out: PromSample[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const lm of (m[3] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[lm[1]!] = lm[2]!;
    const v = m[4] === "+Inf" ? Infinity : m[4] === "-Inf" ? -Infinity : Number(m[4]);
    out.push({ name: m[1]!, labels, value: v });
  }
  return out;
}

/** Cache figures from one scrape; undefined when the server does not expose them. */
export interface CacheCounters {
  /** KV cache usage fraction in [0, 1] (gauge) */
  kvCacheUsage?: number;
  /** cumulative prefix-cache hits / queries (counters, in tokens or blocks as the server counts) */
  prefixHits?: number;
  prefixQueries?: number;
  /** a hit-rate gauge when the server exposes one directly */
  prefixHitRate?: number;
}

const sumOf = (s: PromSample[], names: string[]): number | undefined => {
  const hits = s.filter((x) => names.includes(x.name));
  return hits.length ? hits.reduce((a, x) => a + x.value, 0) : undefined;
};

/** Known names: vLLM (vllm:*), tllm (tllm_*), TRT-LLM (kv_cache_*). */
export function cacheCountersFrom(samples: PromSample[]): CacheCounters {
  const usagePerc = sumOf(samples, ["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc", "tllm_kv_cache_usage_perc"]);
  const usageRatio = sumOf(samples, ["tllm_kv_cache_usage_ratio", "kv_cache_utilization"]);
  return {
    kvCacheUsage: usagePerc ?? usageRatio,
    prefixHits: sumOf(samples, ["vllm:prefix_cache_hits_total", "vllm:prefix_cache_hits", "tllm_prefix_cache_hits_total"]),
    prefixQueries: sumOf(samples, ["vllm:prefix_cache_queries_total", "vllm:prefix_cache_queries", "tllm_prefix_cache_queries_total"]),
    prefixHitRate: sumOf(samples, ["tllm_prefix_cache_hit_rate", "kv_cache_hit_rate", "vllm:gpu_prefix_cache_hit_rate"]),
  };
}

/** GETs `/metrics` and extracts the cache counters; resolves to null when there is no such endpoint. */
export async function scrapeCacheCounters(baseUrl: string, fetchImpl: typeof fetch = fetch): Promise<CacheCounters | null> {
  try {
    const res = await fetchImpl(`${baseUrl.replace(/\/+$/, "").replace(/\/v1$/, "")}/metrics`);
    if (!res.ok) return null;
    return cacheCountersFrom(parsePrometheusText(await res.text()));
  } catch {
    return null;
  }
}

/** Prefix-cache hit rate over a run from two scrapes (counter deltas), else the later gauge. */
export function prefixHitRateBetween(before: CacheCounters | null, after: CacheCounters | null): number | undefined {
  if (!after) return undefined;
  if (after.prefixHits !== undefined && after.prefixQueries !== undefined) {
    const dh = after.prefixHits - (before?.prefixHits ?? 0);
    const dq = after.prefixQueries - (before?.prefixQueries ?? 0);
    return dq > 0 ? dh / dq : undefined;
  }
  return after.prefixHitRate;
}

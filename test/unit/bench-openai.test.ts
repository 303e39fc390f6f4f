// The OpenAI streaming client against a local HTTP server that imitates /v1/completions (SSE,
// events split across TCP writes, a final usage chunk) and /metrics (Prometheus text).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import {
  cacheCountersFrom, createOpenAiSend, parsePrometheusText, parseSse, prefixHitRateBetween, scrapeCacheCounters, streamCompletion,
} from "../../src/bench/openai-client.js";

async function withServer(handler: (req: IncomingMessage, body: string, res: ServerResponse) => void, fn: (url: string) => Promise<void>): Promise<void> {
  const srv = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => handler(req, body, res));
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  try {
    await fn(`http://127.0.0.1:${(srv.address() as AddressInfo).port}`);
  } finally {
    await new Promise<void>((r) => srv.close(() => r()));
  }
}

const sse = (o: unknown): string => `data: ${JSON.stringify(o)}\n\n`;

test("parseSse joins events split across chunks and stops at [DONE]", async () => {
  const enc = new TextEncoder();
  async function* chunks(): AsyncGenerator<Uint8Array> {
    for (const s of ["data: {\"a\"", ":1}\n", "\ndata: x\r\ndata: y\r\n\r\n: comment\n\n", "data: [DONE]\n\n", "data: after\n\n"]) yield enc.encode(s);
  }
  const out: string[] = [];
  for await (const d of parseSse(chunks())) out.push(d);
  assert.deepEqual(out, ['{"a":1}', "x\ny"]);
});

test("streamCompletion sends an OpenAI body and counts chunks and usage", async () => {
  let seen: Record<string, unknown> = {};
  let path = "";
  await withServer((req, body, res) => {
    path = req.url ?? "";
    seen = JSON.parse(body) as Record<string, unknown>;
    res.writeHead(200, { "content-type": "text/event-stream" });
    const parts = [sse({ choices: [{ text: "He" }] }), sse({ choices: [{ text: "llo" }] }), sse({ choices: [{ text: "" }] }),
      sse({ choices: [{ text: "!", finish_reason: "length" }] }), sse({ choices: [], usage: { prompt_tokens: 3, completion_tokens: 4 } }), "data: [DONE]\n\n"];
    // Write the stream in awkward pieces: events must be reassembled.
    const all = parts.join("");
    let i = 0;
    const step = (): void => {
      if (i >= all.length) return void res.end();
      res.write(all.slice(i, i + 7));
      i += 7;
      setImmediate(step);
    };
    step();
  }, async (url) => {
    let chunks = 0;
    const r = await streamCompletion({ baseUrl: `${url}/v1`, model: "m" }, { taskId: 0, inputIds: [5, 6, 7], outputTokens: 4 }, () => chunks++);
    assert.equal(path, "/v1/completions");
    assert.deepEqual(seen, { model: "m", prompt: [5, 6, 7], max_tokens: 4, temperature: 0, stream: true, stream_options: { include_usage: true }, ignore_eos: true });
    assert.equal(chunks, 3); // the empty-text chunk is not a token
    assert.deepEqual(r, { text: "Hello!", outputTokens: 4, inputTokens: 3 });
  });
});

test("without usage, output tokens are the chunk count; HTTP errors and in-stream errors throw", async () => {
  await withServer((req, body, res) => {
    const prompt = (JSON.parse(body) as { prompt: string }).prompt;
    if (prompt === "bad") {
      res.writeHead(400, { "content-type": "application/json" });
      return void res.end('{"error":{"message":"max_tokens too large"}}');
    }
    res.writeHead(200, { "content-type": "text/event-stream" });
    if (prompt === "slow") return void setTimeout(() => res.end(sse({ choices: [{ text: "late" }] })), 500);
    if (prompt === "midway") return void res.end(sse({ choices: [{ text: "a" }] }) + sse({ error: { message: "worker died" } }));
    res.end(sse({ choices: [{ text: "a" }] }) + sse({ choices: [{ text: "b" }] }) + "data: [DONE]\n\n");
  }, async (url) => {
    const send = createOpenAiSend({ baseUrl: url, model: "m", ignoreEos: false });
    assert.deepEqual(await send({ taskId: 0, prompt: "ok", outputTokens: 9 }, () => {}), { outputTokens: 2, inputTokens: undefined });
    await assert.rejects(send({ taskId: 1, prompt: "bad", outputTokens: 9 }, () => {}), /HTTP 400: .*max_tokens too large/);
    await assert.rejects(send({ taskId: 2, prompt: "midway", outputTokens: 9 }, () => {}), /worker died/);
    const impatient = createOpenAiSend({ baseUrl: url, model: "m", requestTimeoutMs: 50 });
    await assert.rejects(impatient({ taskId: 3, prompt: "slow", outputTokens: 9 }, () => {}), /abort|timeout/i);
  });
});

test("Prometheus text: labels, counters, and a prefix-cache hit rate from two scrapes", async () => {
  const text = (hits: number, queries: number): string => [
    "# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.",
    "# TYPE vllm:kv_cache_usage_perc gauge",
    `vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.25`,
    `vllm:prefix_cache_queries_total{engine="0",model_name="m"} ${queries}`,
    `vllm:prefix_cache_hits_total{engine="0",model_name="m"} ${hits}`,
    `http_requests_total{handler="/v1/completions",le="+Inf"} +Inf`,
  ].join("\n");
  const s = parsePrometheusText(text(10, 40));
  assert.equal(s.length, 4);
  assert.deepEqual(s[0], { name: "vllm:kv_cache_usage_perc", labels: { engine: "0", model_name: "m" }, value: 0.25 });
  assert.equal(s[3]!.value, Infinity);
  const before = cacheCountersFrom(s);
  assert.deepEqual(before, { kvCacheUsage: 0.25, prefixHits: 10, prefixQueries: 40, prefixHitRate: undefined });
  let n = 0;
  await withServer((req, _b, res) => {
    if (req.url !== "/metrics") return void res.writeHead(404).end();
    res.end(n++ === 0 ? text(10, 40) : text(70, 140));
  }, async (url) => {
    const a = await scrapeCacheCounters(`${url}/v1`);
    const b = await scrapeCacheCounters(url);
    assert.equal(prefixHitRateBetween(a, b), 0.6); // (70 - 10) / (140 - 40)
  });
  assert.equal(prefixHitRateBetween(null, { prefixHitRate: 0.3 }), 0.3);
  assert.equal(prefixHitRateBetween(null, null), undefined);
  assert.equal(await scrapeCacheCounters("http://127.0.0.1:9"), null); // nothing listens: null, no throw
});

test("end to end: runBenchmark drives the client against a streaming server; summarizeBenchmark reports it", async () => {
  const { runBenchmark } = await import("../../src/bench/runner.js");
  const { summarizeBenchmark } = await import("../../src/bench/index.js");
  let inFlight = 0;
  let peak = 0;
  await withServer((_req, body, res) => {
    const n = (JSON.parse(body) as { max_tokens: number }).max_tokens;
    peak = Math.max(peak, ++inFlight);
    res.writeHead(200, { "content-type": "text/event-stream" });
    let k = 0;
    const tick = (): void => {
      if (k < n) {
        res.write(sse({ choices: [{ text: `t${k++}` }] }));
        return void setTimeout(tick, 2);
      }
      inFlight--;
      res.end(sse({ choices: [], usage: { prompt_tokens: 5, completion_tokens: n } }) + "data: [DONE]\n\n");
    };
    tick();
  }, async (url) => {
    const dataset = Array.from({ length: 6 }, (_, i) => ({ taskId: i, inputIds: [1, 2, 3, 4, 5], outputTokens: 3 + i }));
    const run = await runBenchmark({ dataset, send: createOpenAiSend({ baseUrl: url, model: "m" }), concurrency: 2 });
    assert.equal(peak, 2);
    assert.deepEqual(run.records.map((r) => [r.numOutputTokens, r.tokenTimesNs.length, r.numInputTokens]),
      dataset.map((d) => [d.outputTokens, d.outputTokens, 5]));
    assert.ok(run.records.every((r) => r.startNs <= r.firstTokenNs && r.firstTokenNs <= r.endNs));
    const s = summarizeBenchmark(run, { info: { concurrency: 2 } });
    assert.equal(s.trt.totalOutputTokens, 3 + 4 + 5 + 6 + 7 + 8);
    assert.equal((s.json.request_info as Record<string, unknown>).num_requests, 6);
    assert.match(s.text, /Maximum request concurrency:\s+2/);
    assert.equal(s.vllm.maxConcurrentRequests, 2);
    assert.ok(s.html.includes("Requests in flight"));
  });
});

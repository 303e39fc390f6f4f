// The server in-process (TllmServer.start on a loaded LLM): health follows the engine (a failed
// engine, or an executor reporting itself unhealthy, turns /health and /health_generate into 503 and
// new generation requests into 503), the per-request log line, and a non-streaming client that
// disconnects having its request cancelled.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:http";
import { LLM } from "../../src/api/llm.js";
import { TllmServer } from "../../src/serve/server.js";
import { fixtureModel, metric, post, scrape } from "./serve-helpers.js";

let llm: LLM;
const lines: string[] = [];

before(async () => {
  llm = await LLM.create({ model: await fixtureModel(), backend: "reference", maxSeqLen: 256 });
});

after(async () => {
  await llm?.shutdown();
});

async function withServer(fn: (s: TllmServer) => Promise<void>): Promise<void> {
  const s = await TllmServer.start(llm, { port: 0, logLevel: "info", logSink: (l) => lines.push(l), servedModelName: "m" });
  try {
    await fn(s);
  } finally {
    await s.close();
  }
}

test("one log line per request: id, tokens in/out, TTFT, duration, finish reason", async () => {
  await withServer(async (s) => {
    const r = await post(s.url, "/v1/completions", { prompt: "Hello", max_tokens: 4, ignore_eos: true });
    assert.equal(r.status, 200);
    const line = lines.find((l) => l.includes(r.json.id));
    assert.ok(line, lines.join("\n"));
    assert.match(line!, new RegExp(`${r.json.id} in=${r.json.usage.prompt_tokens} out=4 ttft=[0-9.]+ms dur=[0-9.]+ms finish=length`));
  });
});

test("an engine failure makes /health and /health_generate 503 and refuses new requests with 503", async () => {
  await withServer(async (s) => {
    assert.equal((await fetch(`${s.url}/health`)).status, 200);
    s.ctx.engine.markFailed(new Error("worker died"));
    assert.equal((await fetch(`${s.url}/health`)).status, 503);
    assert.equal((await fetch(`${s.url}/health_generate`)).status, 503);
    const r = await post(s.url, "/v1/completions", { prompt: "Hello", max_tokens: 2 });
    assert.equal(r.status, 503);
    assert.match(r.json.error.message, /worker died/);
  });
});

test("an executor that reports itself unhealthy (LLM.healthy = false) makes /health 503", async () => {
  Object.defineProperty(llm, "healthy", { value: false, configurable: true });
  try {
    await withServer(async (s) => {
      assert.equal((await fetch(`${s.url}/health`)).status, 503);
    });
  } finally {
    delete (llm as unknown as { healthy?: boolean }).healthy;
  }
});

test("a non-streaming client that disconnects has its request cancelled", async () => {
  await withServer(async (s) => {
    const before = await scrape(s.url);
    const cancelled = (x: typeof before) => { try { return metric(x, "tllm_request_success_total", { finish_reason: "cancelled" }); } catch { return 0; } };
    const c0 = cancelled(before);
    await new Promise<void>((ok) => {
      const req = request(`${s.url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" } });
      req.on("error", () => ok());
      req.end(JSON.stringify({ prompt: "Hello", max_tokens: 240, ignore_eos: true }));
      // disconnect once the request is in the engine (well before 240 tokens are generated)
      const poll = setInterval(() => {
        if (s.ctx.engine.inflight > 0) { clearInterval(poll); setTimeout(() => { req.destroy(); ok(); }, 20); }
      }, 2);
    });
    const deadline = Date.now() + 10_000;
    let m = await scrape(s.url);
    // the engine frees an aborted request at once; the server records its finish a moment later
    while (Date.now() < deadline && (s.ctx.engine.inflight > 0 || cancelled(m) - c0 < 1)) {
      await new Promise((r) => setTimeout(r, 50));
      m = await scrape(s.url);
    }
    assert.equal(s.ctx.engine.inflight, 0);
    assert.equal(cancelled(m) - c0, 1, lines.slice(-3).join("\n"));
    const gen = metric(m, "tllm_generation_tokens_total") - metric(before, "tllm_generation_tokens_total");
    assert.ok(gen < 240, `cancelled early (${gen} of 240 tokens generated)`);
  });
});

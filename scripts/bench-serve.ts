// HTTP+SSE overhead of `tllm serve`: the same load (C concurrent streaming requests, fixed output
// length with ignore_eos) run through the in-process API (LLM.generateAsync) and through the HTTP
// server (a TllmServer in this process, clients over loopback parsing SSE). Reports output tokens/s
// of both and their ratio; the target is HTTP >= 95% of in-process.
//   npm run bench:serve -- [MODEL] [--concurrency 16] [--requests 32] [--max-tokens 64] [--backend auto] [--rounds 3]
// MODEL defaults to a random-weight Llama fixture (hidden 256, 4 layers, Q8_0, Llama-2 vocabulary).
import { loadavg } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { GgmlType } from "../src/backends/dtypes.js";
import { ensureFixture } from "../src/checkpoint/random-model.js";
import { LLM } from "../src/api/llm.js";
import type { BackendChoice } from "../src/api/llm-args.js";
import { TllmServer } from "../src/serve/server.js";

const ROOT = resolve(import.meta.dirname, "..");
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    concurrency: { type: "string", default: "16" }, requests: { type: "string", default: "32" },
    "max-tokens": { type: "string", default: "64" }, backend: { type: "string", default: "auto" }, rounds: { type: "string", default: "3" },
  },
});
const C = Number(values.concurrency), N = Number(values.requests), T = Number(values["max-tokens"]), ROUNDS = Number(values.rounds);

async function defaultModel(): Promise<string> {
  return (await ensureFixture({
    arch: "llama", vocab: join(ROOT, "test/fixtures/vocab/ggml-vocab-llama-spm.gguf"), hidden: 256, layers: 4, heads: 4, kvHeads: 2,
    headDim: 64, ffn: 704, tieEmbeddings: false, qkvBias: false, qkNorm: false, ropeTheta: 10000, rmsEps: 1e-5,
    maxPositions: 1024, seed: 99, weightTypes: GgmlType.Q8_0,
  }, join(ROOT, ".cache", "fixtures"))).gguf;
}

const prompt = (i: number): string => `Request ${i}: tell me a story about the number ${i * 7}.`;

/** Runs N requests with at most C in flight; returns generated tokens / wall seconds. */
async function pool(run: (i: number) => Promise<number>): Promise<{ tokens: number; seconds: number }> {
  let next = 0, tokens = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: C }, async () => {
    while (next < N) tokens += await run(next++);
  }));
  return { tokens, seconds: (performance.now() - t0) / 1000 };
}

async function inProcess(llm: LLM, i: number): Promise<number> {
  const s = llm.generateAsync(prompt(i), { maxTokens: T, temperature: 0, ignoreEos: true });
  let n = 0;
  for await (const ev of s) if (ev.token >= 0) n++;
  await s.result;
  return n;
}

async function overHttp(url: string, i: number): Promise<number> {
  const res = await fetch(`${url}/v1/completions`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ prompt: prompt(i), max_tokens: T, temperature: 0, ignore_eos: true, stream: true, stream_options: { include_usage: true } }),
  });
  if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const dec = new TextDecoder();
  let buf = "", usage = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += dec.decode(chunk, { stream: true });
    let k: number;
    while ((k = buf.indexOf("\n\n")) >= 0) {
      const ev = buf.slice(0, k).trim();
      buf = buf.slice(k + 2);
      if (!ev.startsWith("data: ") || ev === "data: [DONE]") continue;
      const c = JSON.parse(ev.slice(6)) as { usage?: { completion_tokens: number } };
      if (c.usage) usage = c.usage.completion_tokens;
    }
  }
  return usage;
}

const model = positionals[0] ?? await defaultModel();
process.env["TLLM_LOG_LEVEL"] ??= "warn";
const llm = await LLM.create({ model, backend: values.backend as BackendChoice });
const server = await TllmServer.start(llm, { port: 0, logLevel: "warn" });
try {
  await pool((i) => inProcess(llm, i)); // warm-up (kernels, caches, JIT)
  await pool((i) => overHttp(server.url, i));
  // paired rounds (in-process then HTTP, back to back) so that drift in the machine's load hits
  // both sides alike; the ratio reported is the median of the per-pair ratios
  const tps = { api: [] as number[], http: [] as number[] };
  for (let r = 0; r < ROUNDS; r++) {
    const a = await pool((i) => inProcess(llm, i));
    const h = await pool((i) => overHttp(server.url, i));
    tps.api.push(a.tokens / a.seconds);
    tps.http.push(h.tokens / h.seconds);
  }
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor((xs.length - 1) / 2)]!;
  const ratios = tps.http.map((h, i) => h / tps.api[i]!);
  const ratio = median(ratios);
  console.log(`model ${model} backend ${llm.config.backend} threads ${llm.config.threads}; ${N} requests x ${T} tokens, ${C} concurrent, ${ROUNDS} paired rounds; load average ${loadavg()[0]!.toFixed(1)}`);
  console.log(`in-process : ${median(tps.api).toFixed(1)} output tok/s median  (rounds: ${tps.api.map((x) => x.toFixed(1)).join(", ")})`);
  console.log(`HTTP + SSE : ${median(tps.http).toFixed(1)} output tok/s median  (rounds: ${tps.http.map((x) => x.toFixed(1)).join(", ")})`);
  console.log(`ratio HTTP/in-process: ${ratio.toFixed(3)} median of pairs (${ratios.map((x) => x.toFixed(3)).join(", ")}); overhead ${((1 - ratio) * 100).toFixed(1)}%, target <= 5%`);
} finally {
  await server.close();
  await llm.shutdown();
}

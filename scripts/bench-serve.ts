// HTTP+SSE overhead of `tllm serve`: the same load (C concurrent streaming requests, fixed output
// length with ignore_eos) run through the in-process API (LLM.generateAsync) and through the HTTP
// server (a TllmServer in this process, clients over loopback parsing SSE). Reports output tokens/s
// of both and their ratio; the target is HTTP >= 95% of in-process. The two modes alternate
// (A B B A ...) over --rounds runs each, so that drift in the machine's load hits both alike; the
// ratio reported is the median of the per-round ratios. Also reported, as load-insensitive
// cross-checks: the process CPU time per token in each mode (all threads: the model runs in the
// executor worker, the HTTP layer and its clients on the main thread), and the HTTP
// layer's own CPU cost per token, measured against an engine that costs nothing (a stand-in for
// LLM.generate that emits one token per active request per event-loop turn), which with the
// in-process CPU per token predicts the ratio on a machine whose cores are all busy with this bench.
//   npm run bench:serve -- [MODEL] [--concurrency 16] [--requests 48] [--max-tokens 64] [--backend auto] [--rounds 5]
// MODEL defaults to a random-weight Llama fixture (hidden 256, 4 layers, Q8_0, Llama-2 vocabulary).
import { Agent, request } from "node:http";
import { loadavg } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { GgmlType } from "../src/backends/dtypes.js";
import { ensureFixture } from "../src/checkpoint/random-model.js";
import { LLM, type GenerateOptions, type PromptInput, type StreamEvent } from "../src/api/llm.js";
import type { RequestOutput } from "../src/api/request-output.js";
import type { SamplingParamsInput } from "../src/api/sampling-params.js";
import type { BackendChoice } from "../src/api/llm-args.js";
import { TllmServer } from "../src/serve/server.js";

const ROOT = resolve(import.meta.dirname, "..");
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    concurrency: { type: "string", default: "16" }, requests: { type: "string", default: "48" },
    "max-tokens": { type: "string", default: "64" }, backend: { type: "string", default: "auto" }, rounds: { type: "string", default: "5" },
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

/** Runs N requests with at most C in flight; returns generated tokens, wall seconds and the
 *  process's CPU seconds (all threads, user + system). */
async function pool(run: (i: number) => Promise<number>): Promise<{ tokens: number; seconds: number; cpu: number }> {
  let next = 0, tokens = 0;
  const t0 = performance.now(), cpu0 = process.cpuUsage();
  await Promise.all(Array.from({ length: C }, async () => {
    while (next < N) {
      const n = await run(next++); // not `tokens += await ...`: that reads `tokens` before the await
      tokens += n;
    }
  }));
  const cpu = process.cpuUsage(cpu0);
  return { tokens, seconds: (performance.now() - t0) / 1000, cpu: (cpu.user + cpu.system) / 1e6 };
}

async function inProcess(llm: LLM, i: number): Promise<number> {
  const s = llm.generateAsync(prompt(i), { maxTokens: T, temperature: 0, ignoreEos: true });
  let n = 0;
  for await (const ev of s) if (ev.token >= 0) n++;
  await s.result;
  return n;
}

const agent = new Agent({ keepAlive: true, maxSockets: C });

/** One streaming client (node:http, keep-alive): reads every SSE event as it arrives; only the
 *  usage event (the last before [DONE]) is parsed, as a client that only counts tokens would do.
 *  (undici's fetch costs several times more CPU per event, all on this same process's main thread.) */
function overHttp(url: string, i: number): Promise<number> {
  const body = JSON.stringify({ prompt: prompt(i), max_tokens: T, temperature: 0, ignore_eos: true, stream: true, stream_options: { include_usage: true } });
  return new Promise((ok, fail) => {
    const req = request(`${url}/v1/completions`, { method: "POST", agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } }, (res) => {
      res.setEncoding("utf8");
      let tail = "", events = 0, usage = -1, text = "";
      res.on("data", (d: string) => {
        tail += d;
        for (let k = tail.indexOf("\n\n"); k >= 0; k = tail.indexOf("\n\n")) {
          const ev = tail.slice(0, k);
          tail = tail.slice(k + 2);
          events++;
          if (ev.startsWith('data: {"id"') && ev.includes('"usage":')) usage = (JSON.parse(ev.slice(6)) as { usage: { completion_tokens: number } }).usage.completion_tokens;
          else if (res.statusCode !== 200) text += ev;
        }
      });
      res.on("end", () => {
        if (res.statusCode !== 200 || usage < 0) fail(new Error(`request ${i}: HTTP ${res.statusCode}, ${events} events, no usage ${text.slice(0, 200)}`));
        else ok(usage);
      });
      res.on("error", fail);
    });
    req.on("error", fail);
    req.end(body);
  });
}

/**
 * `llm` with generate() replaced by an engine that costs nothing: every event-loop turn (setImmediate)
 * each active request gets one token (id 100, text "a"). The tokenizer, config and server setup are
 * the real ones, so the HTTP layer runs exactly as with the model.
 */
function zeroCostEngine(llm: LLM): LLM {
  const active = new Set<{ n: number; max: number; emit: (ev: StreamEvent) => void; done: () => void }>();
  let scheduled = false;
  const step = () => {
    scheduled = false;
    for (const a of active) {
      a.n++;
      a.emit({ requestId: 0, index: 0, textDelta: "a", token: 100, finished: a.n >= a.max });
      if (a.n >= a.max) { active.delete(a); a.done(); }
    }
    if (active.size > 0) { scheduled = true; setImmediate(step); }
  };
  const generate = async (p: PromptInput, params: SamplingParamsInput = {}, opts: GenerateOptions = {}): Promise<RequestOutput> => {
    const ids = typeof p === "string" ? await llm.tokenizer.encode(p) : p;
    const max = params.maxTokens ?? 16;
    await new Promise<void>((done) => {
      active.add({ n: 0, max, emit: opts.onStream ?? (() => {}), done });
      if (!scheduled) { scheduled = true; setImmediate(step); }
    });
    return {
      requestId: 0, prompt: typeof p === "string" ? p : null, promptTokenIds: ids, finished: true, promptLogprobs: null,
      outputs: [{ index: 0, text: "a".repeat(max), tokenIds: Array<number>(max).fill(100), cumulativeLogprob: null, logprobs: null, finishReason: "length", stopReason: null }],
    };
  };
  const proxy: LLM = new Proxy(llm, {
    get(target, key) {
      if (key === "generate") return generate;
      const v = Reflect.get(target, key, target) as unknown;
      // methods run on the proxy (generateAsync calls this.generate); getters read the real LLM
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(proxy) : v;
    },
  });
  return proxy;
}

const median = (xs: number[]): number => {
  const v = [...xs].sort((x, y) => x - y), h = Math.floor(v.length / 2);
  return v.length % 2 ? v[h]! : (v[h - 1]! + v[h]!) / 2;
};

type Run = { tps: number; cpuPerTok: number };

/** Alternates in-process and HTTP runs (A B, B A, ...), `rounds` of each. */
async function compare(llm: LLM, url: string, rounds: number): Promise<{ api: Run[]; http: Run[] }> {
  const runs = { api: [] as Run[], http: [] as Run[] };
  const once = async (mode: "api" | "http") => {
    const r = await pool((i) => (mode === "api" ? inProcess(llm, i) : overHttp(url, i)));
    if (r.tokens !== N * T) throw new Error(`${mode}: ${r.tokens} tokens, expected ${N * T}`);
    runs[mode].push({ tps: r.tokens / r.seconds, cpuPerTok: r.cpu / r.tokens });
  };
  await pool((i) => inProcess(llm, i)); // warm-up (kernels, caches, JIT)
  await pool((i) => overHttp(url, i));
  for (let r = 0; r < rounds; r++) {
    for (const m of r % 2 === 0 ? ["api", "http"] as const : ["http", "api"] as const) await once(m);
  }
  return runs;
}

/** CPU microseconds per token of the HTTP layer alone: HTTP minus in-process, both on the zero-cost engine. */
async function layerCost(llm: LLM): Promise<{ api: number; http: number }> {
  const fake = zeroCostEngine(llm);
  const server = await TllmServer.start(fake, { port: 0, logLevel: "warn" });
  try {
    const runs = await compare(fake, server.url, 3);
    return { api: median(runs.api.map((r) => r.cpuPerTok)) * 1e6, http: median(runs.http.map((r) => r.cpuPerTok)) * 1e6 };
  } finally {
    await server.close();
  }
}

const model = positionals[0] ?? await defaultModel();
process.env["TLLM_LOG_LEVEL"] ??= "warn";
const llm = await LLM.create({ model, backend: values.backend as BackendChoice });
const server = await TllmServer.start(llm, { port: 0, logLevel: "warn" });
try {
  const runs = await compare(llm, server.url, ROUNDS);
  const layer = await layerCost(llm);
  const ratios = runs.http.map((h, i) => h.tps / runs.api[i]!.tps);
  const ratio = median(ratios);
  const line = (name: string, xs: Run[]) =>
    `${name}: ${median(xs.map((x) => x.tps)).toFixed(1)} output tok/s median (runs: ${xs.map((x) => x.tps.toFixed(1)).join(", ")}); ` +
    `process CPU ${(median(xs.map((x) => x.cpuPerTok)) * 1e3).toFixed(3)} ms/token`;
  const apiCpu = median(runs.api.map((a) => a.cpuPerTok)) * 1e6, extra = layer.http - layer.api;
  console.log(`model ${model} backend ${llm.config.backend} threads ${llm.config.threads}; ${N} requests x ${T} tokens, ${C} concurrent, ${ROUNDS} runs per mode (alternating); load average ${loadavg()[0]!.toFixed(1)}`);
  console.log(line("in-process", runs.api));
  console.log(line("HTTP + SSE", runs.http));
  console.log(`HTTP layer alone (zero-cost engine): ${extra.toFixed(1)} us CPU per token (server + client, kernel included: ${layer.http.toFixed(1)} over HTTP - ${layer.api.toFixed(1)} in-process); ` +
    `with ${apiCpu.toFixed(0)} us per token in-process, a CPU-bound machine would give a ratio of ${(apiCpu / (apiCpu + extra)).toFixed(3)}`);
  console.log(`ratio HTTP/in-process: ${ratio.toFixed(3)} (median of per-round ratios ${ratios.map((x) => x.toFixed(3)).join(", ")}); overhead ${((1 - ratio) * 100).toFixed(1)}%; target <= 5%: ${ratio >= 0.95 ? "PASS" : "FAIL"}`);
} finally {
  agent.destroy();
  await server.close();
  await llm.shutdown();
}

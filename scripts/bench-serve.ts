// HTTP+SSE overhead of `tllm serve`: the same load (C concurrent streaming requests, N in all, each
// exactly T output tokens with ignore_eos, greedy) run two ways on one loaded LLM:
//   in-process: C concurrent llm.generateAsync() streams in this process, each iterated token by
//     token (for await), as an application embedding the library would;
//   HTTP + SSE: the same prompts as streaming POST /v1/completions (stream_options.include_usage)
//     to a TllmServer in this process, sent by a separate client process
//     (scripts/bench-serve-client.ts, 16 keep-alive node:http clients reading every SSE event), as a
//     real server's clients are: their parsing never runs on the server's event loop. The client
//     process still shares the machine's cores with the server, and its CPU time is reported.
// Output tokens/s = tokens / wall seconds of the run (in-process: this process's clock around the
// pool; HTTP: the client's clock from its first request to its last stream's end). The two modes
// alternate (A B, B A, ...) over --rounds runs each, so that drift in the machine's load hits both
// alike; the ratio reported is the median of the per-round ratios; the target is HTTP >= 95% of
// in-process. Also reported, as load-insensitive cross-checks: CPU time per token of the server
// process (all threads: the model runs in the executor worker, the HTTP layer on the main thread)
// and of the client process; and the HTTP layer's own CPU cost per token, measured against an engine
// that costs nothing (a stand-in for LLM.generate that emits one token per active request per
// event-loop turn), which with the in-process CPU per token predicts the ratio on a machine whose
// cores are all busy with this bench (server + client).
//   npm run bench:serve -- [MODEL | --model tiny] [--concurrency 16] [--requests 48] [--max-tokens 64] [--backend auto] [--rounds 5]
// MODEL defaults to the SmolLM2-135M-shaped random Q4_0 GGUF of the other benches (scripts/bench-lib.ts;
// ~430 tok/s here, the smallest real model shape); `--model tiny` picks a toy fixture (hidden 256, 4
// layers, Q8_0, Llama-2 vocabulary; ~3000 tok/s), where the per-token HTTP cost is a much larger share.
import { fork, type ChildProcess } from "node:child_process";
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
import type { ClientJob, ClientReply } from "./bench-serve-client.js";
import { ensureModel } from "./bench-lib.js";

const ROOT = resolve(import.meta.dirname, "..");
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    concurrency: { type: "string", default: "16" }, requests: { type: "string", default: "48" },
    "max-tokens": { type: "string", default: "64" }, model: { type: "string" }, backend: { type: "string", default: "auto" }, rounds: { type: "string", default: "5" },
  },
});
const C = Number(values.concurrency), N = Number(values.requests), T = Number(values["max-tokens"]), ROUNDS = Number(values.rounds);

async function defaultModel(): Promise<string> {
  if (values.model !== "tiny") return ensureModel("smollm2", "q4_0");
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

/** The HTTP client process (scripts/bench-serve-client.ts), started once and reused for every run. */
class ClientProcess {
  private readonly child: ChildProcess = fork(join(ROOT, "scripts/bench-serve-client.ts"), [], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  private waiting: ((r: ClientReply) => void) | null = null;

  constructor() {
    this.child.on("message", (r: ClientReply) => this.waiting?.(r));
    this.child.on("exit", (code) => this.waiting?.({ tokens: 0, seconds: 0, cpu: 0, error: `client process exited (${code})` }));
  }

  /** N requests, C in flight, over HTTP from the client process. */
  run(url: string): Promise<ClientReply> {
    const job: ClientJob = { url, prompts: Array.from({ length: N }, (_, i) => prompt(i)), concurrency: C, maxTokens: T };
    return new Promise((ok, fail) => {
      this.waiting = (r) => { this.waiting = null; if (r.error) fail(new Error(`HTTP client: ${r.error}`)); else ok(r); };
      this.child.send(job);
    });
  }

  close(): void {
    this.child.disconnect();
  }
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

/** tokens/s; CPU seconds per token of this (server) process and of the client process (0 in-process) */
type Run = { tps: number; cpuPerTok: number; clientCpuPerTok: number };

/** Alternates in-process and HTTP runs (A B, B A, ...), `rounds` of each. */
async function compare(llm: LLM, url: string, client: ClientProcess, rounds: number): Promise<{ api: Run[]; http: Run[] }> {
  const runs = { api: [] as Run[], http: [] as Run[] };
  const overHttp = async () => {
    const cpu0 = process.cpuUsage();
    const r = await client.run(url);
    const cpu = process.cpuUsage(cpu0);
    return { ...r, serverCpu: (cpu.user + cpu.system) / 1e6 };
  };
  const once = async (mode: "api" | "http") => {
    if (mode === "api") {
      const r = await pool((i) => inProcess(llm, i));
      if (r.tokens !== N * T) throw new Error(`in-process: ${r.tokens} tokens, expected ${N * T}`);
      runs.api.push({ tps: r.tokens / r.seconds, cpuPerTok: r.cpu / r.tokens, clientCpuPerTok: 0 });
    } else {
      const r = await overHttp();
      if (r.tokens !== N * T) throw new Error(`HTTP: ${r.tokens} tokens, expected ${N * T}`);
      runs.http.push({ tps: r.tokens / r.seconds, cpuPerTok: r.serverCpu / r.tokens, clientCpuPerTok: r.cpu / r.tokens });
    }
  };
  await pool((i) => inProcess(llm, i)); // warm-up (kernels, caches, JIT; the client's too)
  await overHttp();
  for (let r = 0; r < rounds; r++) {
    for (const m of r % 2 === 0 ? ["api", "http"] as const : ["http", "api"] as const) await once(m);
  }
  return runs;
}

/** CPU microseconds per token of the HTTP layer alone, on the zero-cost engine: the server's (this
 *  process over HTTP minus in-process) and the client process's. */
async function layerCost(llm: LLM, client: ClientProcess): Promise<{ server: number; client: number; api: number; http: number }> {
  const fake = zeroCostEngine(llm);
  const server = await TllmServer.start(fake, { port: 0, logLevel: "warn" });
  try {
    const runs = await compare(fake, server.url, client, 3);
    const api = median(runs.api.map((r) => r.cpuPerTok)) * 1e6, http = median(runs.http.map((r) => r.cpuPerTok)) * 1e6;
    return { server: http - api, client: median(runs.http.map((r) => r.clientCpuPerTok)) * 1e6, api, http };
  } finally {
    await server.close();
  }
}

const model = positionals[0] ?? await defaultModel();
process.env["TLLM_LOG_LEVEL"] ??= "warn";
const llm = await LLM.create({ model, backend: values.backend as BackendChoice });
const server = await TllmServer.start(llm, { port: 0, logLevel: "warn" });
const client = new ClientProcess();
try {
  const runs = await compare(llm, server.url, client, ROUNDS);
  const layer = await layerCost(llm, client);
  const ratios = runs.http.map((h, i) => h.tps / runs.api[i]!.tps);
  const ratio = median(ratios);
  const ms = (xs: number[]) => (median(xs) * 1e3).toFixed(3);
  const line = (name: string, xs: Run[]) =>
    `${name}: ${median(xs.map((x) => x.tps)).toFixed(1)} output tok/s median (runs: ${xs.map((x) => x.tps.toFixed(1)).join(", ")}); ` +
    `server process CPU ${ms(xs.map((x) => x.cpuPerTok))} ms/token${name === "HTTP + SSE" ? `, client process CPU ${ms(xs.map((x) => x.clientCpuPerTok))} ms/token` : ""}`;
  const apiCpu = median(runs.api.map((a) => a.cpuPerTok)) * 1e6;
  const predict = (extra: number) => (apiCpu / (apiCpu + extra)).toFixed(3);
  console.log(`model ${model} backend ${llm.config.backend} threads ${llm.config.threads}; ${N} requests x ${T} tokens, ${C} concurrent, ${ROUNDS} runs per mode (alternating); load average ${loadavg()[0]!.toFixed(1)}`);
  console.log(line("in-process", runs.api));
  console.log(line("HTTP + SSE", runs.http));
  console.log(`HTTP layer alone (zero-cost engine): server ${layer.server.toFixed(1)} us CPU per token (${layer.http.toFixed(1)} over HTTP - ${layer.api.toFixed(1)} in-process, kernel included), ` +
    `client process ${layer.client.toFixed(1)} us; with ${apiCpu.toFixed(0)} us per token in-process, a CPU-bound machine would give a ratio of ` +
    `${predict(layer.server)} (server alone) or ${predict(layer.server + layer.client)} (server + client on the same cores)`);
  console.log(`ratio HTTP/in-process: ${ratio.toFixed(3)} (median of per-round ratios ${ratios.map((x) => x.toFixed(3)).join(", ")}); overhead ${((1 - ratio) * 100).toFixed(1)}%; target <= 5%: ${ratio >= 0.95 ? "PASS" : "FAIL"}`);
} finally {
  client.close();
  await server.close();
  await llm.shutdown();
}

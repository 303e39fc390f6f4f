// HTTP+SSE overhead of `tllm serve`: the same load (C concurrent streaming requests, fixed output
// length with ignore_eos) run through the in-process API (LLM.generateAsync) and through the HTTP
// server (a TllmServer in this process, clients over loopback parsing SSE). Reports output tokens/s
// of both and their ratio; the target is HTTP >= 95% of in-process. The two modes alternate
// (A B B A ...) over --rounds runs each, so that drift in the machine's load hits both alike; the
// ratio reported is the median of the per-round ratios. Also reported: the main thread's event-loop
// utilization in each mode (the HTTP layer's own cost: the model runs in the executor worker).
//   npm run bench:serve -- [MODEL] [--concurrency 16] [--requests 48] [--max-tokens 64] [--backend auto] [--rounds 5]
// MODEL defaults to a random-weight Llama fixture (hidden 256, 4 layers, Q8_0, Llama-2 vocabulary).
import { Agent, request } from "node:http";
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

/** Runs N requests with at most C in flight; returns generated tokens, wall seconds and the main
 *  thread's event-loop utilization over the run. */
async function pool(run: (i: number) => Promise<number>): Promise<{ tokens: number; seconds: number; elu: number; cpu: number }> {
  let next = 0, tokens = 0;
  const t0 = performance.now(), elu0 = performance.eventLoopUtilization(), cpu0 = process.cpuUsage();
  await Promise.all(Array.from({ length: C }, async () => {
    while (next < N) {
      const n = await run(next++); // not `tokens += await ...`: that reads `tokens` before the await
      tokens += n;
    }
  }));
  const cpu = process.cpuUsage(cpu0);
  return { tokens, seconds: (performance.now() - t0) / 1000, elu: performance.eventLoopUtilization(elu0).utilization, cpu: (cpu.user + cpu.system) / 1e6 };
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

const model = positionals[0] ?? await defaultModel();
process.env["TLLM_LOG_LEVEL"] ??= "warn";
const llm = await LLM.create({ model, backend: values.backend as BackendChoice });
const server = await TllmServer.start(llm, { port: 0, logLevel: "warn" });
try {
  await pool((i) => inProcess(llm, i)); // warm-up (kernels, caches, JIT)
  await pool((i) => overHttp(server.url, i));
  type Run = { tps: number; elu: number; cpuPerTok: number };
  const runs = { api: [] as Run[], http: [] as Run[] };
  const once = async (mode: "api" | "http") => {
    const r = await pool((i) => (mode === "api" ? inProcess(llm, i) : overHttp(server.url, i)));
    if (r.tokens !== N * T) throw new Error(`${mode}: ${r.tokens} tokens, expected ${N * T}`);
    runs[mode].push({ tps: r.tokens / r.seconds, elu: r.elu, cpuPerTok: r.cpu / r.tokens });
  };
  for (let r = 0; r < ROUNDS; r++) {
    const order: ("api" | "http")[] = r % 2 === 0 ? ["api", "http"] : ["http", "api"];
    for (const m of order) await once(m);
  }
  const median = (xs: number[]) => {
    const v = [...xs].sort((x, y) => x - y), h = Math.floor(v.length / 2);
    return v.length % 2 ? v[h]! : (v[h - 1]! + v[h]!) / 2;
  };
  const ratios = runs.http.map((h, i) => h.tps / runs.api[i]!.tps);
  const ratio = median(ratios);
  const line = (name: string, xs: Run[]) =>
    `${name}: ${median(xs.map((x) => x.tps)).toFixed(1)} output tok/s median (runs: ${xs.map((x) => x.tps.toFixed(1)).join(", ")}); ` +
    `main-thread busy ${(median(xs.map((x) => x.elu)) * 100).toFixed(0)}%; process CPU ${(median(xs.map((x) => x.cpuPerTok)) * 1e3).toFixed(3)} ms/token`;
  const cpuRatio = median(runs.api.map((a) => a.cpuPerTok)) / median(runs.http.map((h) => h.cpuPerTok));
  console.log(`model ${model} backend ${llm.config.backend} threads ${llm.config.threads}; ${N} requests x ${T} tokens, ${C} concurrent, ${ROUNDS} runs per mode (alternating); load average ${loadavg()[0]!.toFixed(1)}`);
  console.log(line("in-process", runs.api));
  console.log(line("HTTP + SSE", runs.http));
  // a load-insensitive cross-check: when the machine is CPU-bound, tokens/s scale as 1 / (CPU per token)
  console.log(`CPU-per-token ratio in-process/HTTP: ${cpuRatio.toFixed(3)} (what the tok/s ratio would be with every core busy and no other load)`);
  console.log(`ratio HTTP/in-process: ${ratio.toFixed(3)} (median of per-round ratios ${ratios.map((x) => x.toFixed(3)).join(", ")}); overhead ${((1 - ratio) * 100).toFixed(1)}%; target <= 5%: ${ratio >= 0.95 ? "PASS" : "FAIL"}`);
} finally {
  agent.destroy();
  await server.close();
  await llm.shutdown();
}

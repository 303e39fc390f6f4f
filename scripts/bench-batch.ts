// `npm run bench:batch [-- --models tinyllama,smollm2 --conc 1,4,16,64 --threads 2 --prompt 128 --gen 128 --kv-dtype f16]`
// Aggregate output tokens/s with N concurrent requests (prompt 128, output 128, EOS ignored) on
// the Q4_0 GGUFs: ours (the executor: continuous batching, one worker thread) vs
// llama-batched-bench (-npl N, same prompt/output lengths) and node-llama-cpp (N sequences in one
// context, decoded concurrently). Ours and node-llama-cpp: all generated tokens / wall time from
// submission (prefill included); llama-batched-bench: the same (N x output / its total time t; its
// own S counts prompt tokens too) and its S_TG (decode phase only).
// The compute limit: a step over N sequences streams the weights once, so decode may reach
// min(N x bandwidth / weight bytes, FMA peak / (2 x parameters)) tokens/s.
// Shared prefix (--prefix-requests, default 64, on --prefix-model, default smollm2): requests with
// a common 1024-token system prompt plus 16 own tokens, 16 output tokens, submitted together;
// mean time-to-first-token with block reuse (after one warm-up request) vs cold (reuse off).
// --kv-dtype (f16 default, f32 or int8): our KV cache element type (llama.cpp's stays f16).
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { WorkerExecutor } from "../src/executor/index.js";
import {
  BENCH_DIR, ensureModel, fmt, listFlag, llamaCppBinDir, machineLine, markdownTable, measureLimits, median, pct, randomTokens,
  SHAPES, weightStats,
} from "./bench-lib.js";

const { values: v } = parseArgs({ options: {
  models: { type: "string" }, conc: { type: "string" }, threads: { type: "string" }, prompt: { type: "string" }, gen: { type: "string" },
  runs: { type: "string" }, "prefix-requests": { type: "string" }, "prefix-len": { type: "string" }, "prefix-model": { type: "string" },
  "kv-dtype": { type: "string" }, "no-llama-bench": { type: "boolean" }, "no-nlc": { type: "boolean" }, "no-prefix": { type: "boolean" }, "no-batch": { type: "boolean" },
} });
const MODELS = listFlag(v.models, ["tinyllama", "smollm2"], Object.keys(SHAPES));
const CONC = listFlag(v.conc, ["1", "4", "16", "64"]).map(Number);
const T = Number(v.threads ?? 2), PP = Number(v.prompt ?? 128), TG = Number(v.gen ?? 128), RUNS = Number(v.runs ?? 1);
const PREFIX_N = Number(v["prefix-requests"] ?? 64), PREFIX_LEN = Number(v["prefix-len"] ?? 1024);
const KV_DTYPE = listFlag(v["kv-dtype"], ["f16"], ["f32", "f16", "int8"])[0] as "f32" | "f16" | "int8";

function executor(gguf: string, reuse: boolean, maxSeqLen: number): Promise<WorkerExecutor> {
  return WorkerExecutor.create({
    model: gguf, threads: T, maxBatchSize: 64, maxNumTokens: 8192, maxSeqLen, log: false,
    kvCacheConfig: { enableBlockReuse: reuse, dtype: KV_DTYPE },
  });
}

/** ours: N requests at once; generated tokens / wall seconds. */
async function oursAggregate(ex: WorkerExecutor, n: number, vocab: number): Promise<number> {
  const prompts = Array.from({ length: n }, (_, i) => randomTokens(PP, vocab, 100 + i));
  const t0 = performance.now();
  const outs = await ex.generateBatch(prompts, { maxTokens: TG, ignoreEos: true, temperature: 0 });
  const secs = (performance.now() - t0) / 1000;
  return outs.reduce((a, o) => a + o.outputs[0]!.tokenIds.length, 0) / secs;
}

function batchedBench(bin: string, gguf: string, n: number): { outPerS: number; speedTg: number } {
  const out = execFileSync(join(bin, "llama-batched-bench"), ["-m", gguf, "-c", String(n * (PP + TG) + 64), "-b", "2048", "-ub", "512",
    "-npp", String(PP), "-ntg", String(TG), "-npl", String(n), "-t", String(T), "--output-format", "jsonl"],
  { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 1 << 24 });
  const line = out.split("\n").find((l) => l.startsWith("{"));
  if (!line) return { outPerS: NaN, speedTg: NaN };
  const j = JSON.parse(line) as { pl: number; tg: number; t: number; speed_tg: number };
  return { outPerS: (j.pl * j.tg) / j.t, speedTg: j.speed_tg };
}

type Nlc = typeof import("node-llama-cpp");
type NlcLlama = Awaited<ReturnType<Nlc["getLlama"]>>;
async function nlcAggregate(llama: NlcLlama, gguf: string, n: number, vocab: number): Promise<number> {
  const model = await llama.loadModel({ modelPath: gguf, gpuLayers: 0, useMmap: true });
  try {
    // contextSize is per sequence in node-llama-cpp (its KV holds contextSize x sequences tokens)
    const ctx = await model.createContext({ contextSize: PP + TG + 16, sequences: n, batchSize: 512, threads: T });
    const t0 = performance.now();
    const counts = await Promise.all(Array.from({ length: n }, async (_, i) => {
      let k = 0;
      for await (const _t of ctx.getSequence().evaluate(randomTokens(PP, vocab, 100 + i) as never, { temperature: 0, yieldEogToken: true })) if (++k >= TG) break;
      return k;
    }));
    const secs = (performance.now() - t0) / 1000;
    await ctx.dispose();
    return counts.reduce((a, b) => a + b, 0) / secs;
  } finally {
    await model.dispose();
  }
}

/** Mean TTFT (ms, from submission) of PREFIX_N requests sharing a PREFIX_LEN-token system prompt. */
async function prefixTtft(gguf: string, vocab: number, reuse: boolean): Promise<number> {
  const ex = await executor(gguf, reuse, PREFIX_LEN + 64);
  try {
    const prefix = randomTokens(PREFIX_LEN, vocab, 5);
    const prompt = (i: number): number[] => [...prefix, ...randomTokens(16, vocab, 1000 + i)];
    if (reuse) await ex.generateBatch([prompt(-1)], { maxTokens: 1, ignoreEos: true }); // the prefix enters the cache
    const outs = await ex.generateBatch(Array.from({ length: PREFIX_N }, (_, i) => prompt(i)), { maxTokens: 16, ignoreEos: true, temperature: 0 });
    const ttfts = outs.map((o) => (o.metrics.firstTokenTime ?? NaN) - o.metrics.arrivalTime);
    const cached = outs.reduce((a, o) => a + o.metrics.numCachedTokens, 0);
    process.stderr.write(`prefix ${reuse ? "reuse" : "cold"}: mean TTFT ${fmt(ttfts.reduce((a, b) => a + b, 0) / ttfts.length)} ms, cached tokens ${cached}\n`);
    return ttfts.reduce((a, b) => a + b, 0) / ttfts.length;
  } finally {
    await ex.shutdown();
  }
}

async function batchTable(bin: string | null, nlc: NlcLlama | null): Promise<string> {
  const lim = measureLimits(T);
  const rows: string[][] = [];
  for (const name of MODELS) {
    const gguf = ensureModel(name, "q4_0");
    const ws = weightStats(gguf), vocab = SHAPES[name]!.vocab;
    const ex = await executor(gguf, false, PP + TG + 8);
    try {
      await oursAggregate(ex, 1, vocab); // warm-up
      for (const n of CONC) {
        const ours: number[] = [], lb: number[] = [], lbTg: number[] = [], nl: number[] = [];
        for (let r = 0; r < RUNS; r++) {
          ours.push(await oursAggregate(ex, n, vocab));
          if (bin) { const b = batchedBench(bin, gguf, n); lb.push(b.outPerS); lbTg.push(b.speedTg); }
          if (nlc) nl.push(await nlcAggregate(nlc, gguf, n, vocab));
          process.stderr.write(`${name} N=${n}: ours ${fmt(ours.at(-1)!)}${bin ? `, lb ${fmt(lb.at(-1)!)} (tg ${fmt(lbTg.at(-1)!)})` : ""}${nlc ? `, nlc ${fmt(nl.at(-1)!)}` : ""}\n`);
        }
        const limit = Math.min((n * lim.bandwidthGBs * 1e9) / ws.bytesPerToken, (lim.fmaGflops * 1e9) / (2 * ws.matmulParams));
        const [o, l, lt, nm] = [median(ours), median(lb), median(lbTg), median(nl)];
        rows.push([`${name} Q4_0`, String(n), `${fmt(o)} (${pct(o / limit)})`, `${fmt(l)} / ${fmt(lt)}`, fmt(nm), fmt(o / l, 2), fmt(o / nm, 2), fmt(limit, 0)]);
      }
    } finally {
      await ex.shutdown();
    }
  }
  return `Limits (${T} threads): read ${fmt(lim.bandwidthGBs)} GB/s, f32 FMA ${fmt(lim.fmaGflops, 0)} GFLOP/s\n\n` + markdownTable(
    ["model", "N", "ours tok/s (of limit)", "llama-batched-bench out/s / S_TG", "nlc tok/s", "ours/lb", "ours/nlc", "limit tok/s"], rows);
}

async function main(): Promise<void> {
  const started = machineLine();
  const bin = v["no-llama-bench"] ? null : llamaCppBinDir();
  let nlc: NlcLlama | null = null;
  if (!v["no-nlc"]) {
    const mod = await import("node-llama-cpp");
    nlc = await mod.getLlama({ gpu: false, build: "never", logLevel: mod.LlamaLogLevel.error, maxThreads: T });
  }
  let out = `Started ${started}\nprompt ${PP}, output ${TG}, ${T} threads, our KV ${KV_DTYPE}, medians of ${RUNS} run(s)\n\n`;
  if (!v["no-batch"]) out += (await batchTable(bin, nlc)) + "\n\n";
  if (nlc) await nlc.dispose();
  if (!v["no-prefix"]) {
    const name = v["prefix-model"] ?? "smollm2";
    const gguf = ensureModel(name, "q4_0"), vocab = SHAPES[name]!.vocab;
    const cold = await prefixTtft(gguf, vocab, false), warm = await prefixTtft(gguf, vocab, true);
    out += `Shared prefix (${name} Q4_0, ${PREFIX_N} requests, ${PREFIX_LEN}-token common prefix + 16 own tokens, submitted together):\n` +
      `mean TTFT cold ${fmt(cold, 0)} ms, with prefix reuse ${fmt(warm, 0)} ms (${fmt(cold / warm, 1)}x)\n`;
  }
  out += `Finished ${machineLine()}\n`;
  process.stdout.write(out);
  writeFileSync(join(BENCH_DIR, `batch-${new Date().toISOString().replace(/[:.]/g, "-")}.txt`), out);
}

await main();

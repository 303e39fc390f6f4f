// `npm run bench:peer [-- --models tinyllama,smollm2 --types f16,q8_0,q4_0,q4_k --threads 1,2 --runs 3]`
// tllm vs llama.cpp on the same random-weight GGUF and thread count, in one process run:
//   pp512: tokens/s of one 512-token prompt evaluation; tg128: tokens/s over 128 decode steps
//   from an empty context (llama-bench's definitions; no sampling in ours or llama-bench).
// Engines: ours (LlamaModel.forward on the native backend, f16 KV), llama-bench (native build,
// scripts/build-llama-cpp.sh), node-llama-cpp (prebuilt, its JS loop; tg includes its sampling).
// Runs alternate engine by engine, `--runs` times; medians are reported. Each figure is also given
// as a fraction of this machine's limit at that thread count: decode = read bandwidth / weight
// bytes per token; prefill = f32 FMA peak / (2 x matmul parameters). Prints a markdown table and
// writes the raw figures to .cache/bench/peer-<time>.json.
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { NativeBackend, setNativeThreads } from "../src/backends/native/index.js";
import { SimpleKvCache } from "../src/engine/simple-kv-cache.js";
import { loadModel, type LoadedModel } from "../src/models/loader.js";
import {
  BENCH_DIR, ensureModel, fmt, listFlag, llamaCppBinDir, machineLine, markdownTable, measureLimits, median, pct, randomTokens,
  SHAPES, TYPES, weightStats, type Limits,
} from "./bench-lib.js";

const { values: v } = parseArgs({ options: {
  models: { type: "string" }, types: { type: "string" }, threads: { type: "string" }, runs: { type: "string" },
  pp: { type: "string" }, tg: { type: "string" }, "no-llama-bench": { type: "boolean" }, "no-nlc": { type: "boolean" },
} });
const MODELS = listFlag(v.models, ["tinyllama", "smollm2"], Object.keys(SHAPES));
const WTYPES = listFlag(v.types, ["f16", "q8_0", "q4_0", "q4_k"], Object.keys(TYPES));
const THREADS = listFlag(v.threads, ["1", "2"]).map(Number);
const RUNS = Number(v.runs ?? 3), PP = Number(v.pp ?? 512), TG = Number(v.tg ?? 128);

type Engine = "ours" | "llama-bench" | "nlc";
interface Fig { pp: number[]; tg: number[] }

/** ours: one prompt of PP tokens in one forward; then TG single-token steps from position 0. */
function oursRun(m: LoadedModel, threads: number): { pp: number; tg: number } {
  setNativeThreads(threads);
  const c = m.config, tpb = 32;
  const kvOf = (n: number): SimpleKvCache => {
    const kv = new SimpleKvCache({ numLayers: c.numLayers, numKvHeads: c.numKvHeads, headDim: c.headDim, numBlocks: Math.ceil(n / tpb) + 1, tokensPerBlock: tpb, dtype: "f16" });
    kv.allocSeq(0, n);
    return kv;
  };
  const toks = randomTokens(PP, c.vocabSize, 7);
  let kv = kvOf(PP);
  let t0 = performance.now();
  m.model.forward({ tokens: Int32Array.from(toks), positions: Int32Array.from(toks, (_, i) => i), slots: kv.slotsFor(0, 0, PP),
    seqs: [{ qStart: 0, qLen: PP, kvLen: PP, blockTable: kv.blockTable(0) }], logitRows: Int32Array.of(PP - 1) }, kv.layers);
  const pp = PP / ((performance.now() - t0) / 1000);
  kv = kvOf(TG);
  const bt = kv.blockTable(0);
  t0 = performance.now();
  for (let p = 0; p < TG; p++) {
    m.model.forward({ tokens: Int32Array.of(toks[p % PP]!), positions: Int32Array.of(p), slots: kv.slotsFor(0, p, 1),
      seqs: [{ qStart: 0, qLen: 1, kvLen: p + 1, blockTable: bt }], logitRows: Int32Array.of(0) }, kv.layers);
  }
  return { pp, tg: TG / ((performance.now() - t0) / 1000) };
}

function llamaBenchRun(bin: string, gguf: string, threads: number): { pp: number; tg: number } {
  const out = execFileSync(join(bin, "llama-bench"), ["-m", gguf, "-t", String(threads), "-p", String(PP), "-n", String(TG), "-r", "1", "-o", "json"],
    { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], maxBuffer: 1 << 24 });
  const rows = JSON.parse(out) as { n_prompt: number; n_gen: number; avg_ts: number }[];
  return { pp: rows.find((r) => r.n_prompt > 0 && r.n_gen === 0)?.avg_ts ?? NaN, tg: rows.find((r) => r.n_gen > 0 && r.n_prompt === 0)?.avg_ts ?? NaN };
}

type Nlc = typeof import("node-llama-cpp");
async function nlcRun(nlc: { mod: Nlc; llama: Awaited<ReturnType<Nlc["getLlama"]>> }, gguf: string, threads: number, vocab: number): Promise<{ pp: number; tg: number }> {
  const model = await nlc.llama.loadModel({ modelPath: gguf, gpuLayers: 0, useMmap: true });
  try {
    const toks = randomTokens(PP, vocab, 7);
    let ctx = await model.createContext({ contextSize: PP + 64, batchSize: PP, threads, sequences: 1 });
    let t0 = performance.now();
    await ctx.getSequence().evaluateWithoutGeneratingNewTokens(toks as never);
    const pp = PP / ((performance.now() - t0) / 1000);
    await ctx.dispose();
    ctx = await model.createContext({ contextSize: TG + 64, batchSize: 64, threads, sequences: 1 });
    let n = 0;
    t0 = performance.now();
    for await (const _t of ctx.getSequence().evaluate([toks[0]!] as never, { temperature: 0, yieldEogToken: true })) if (++n >= TG) break;
    const tg = TG / ((performance.now() - t0) / 1000);
    await ctx.dispose();
    return { pp, tg };
  } finally {
    await model.dispose();
  }
}

async function main(): Promise<void> {
  const bin = v["no-llama-bench"] ? null : llamaCppBinDir();
  if (!bin && !v["no-llama-bench"]) process.stderr.write("llama-bench unavailable (scripts/build-llama-cpp.sh failed): skipped\n");
  let nlc: { mod: Nlc; llama: Awaited<ReturnType<Nlc["getLlama"]>> } | null = null;
  if (!v["no-nlc"]) {
    const mod = await import("node-llama-cpp");
    nlc = { mod, llama: await mod.getLlama({ gpu: false, build: "never", logLevel: mod.LlamaLogLevel.error, maxThreads: Math.max(...THREADS) }) };
  }
  const limits = new Map<number, Limits>(THREADS.map((t) => [t, measureLimits(t)]));
  const started = machineLine();
  const rows: string[][] = [];
  const raw: Record<string, unknown>[] = [];
  for (const name of MODELS) for (const type of WTYPES) {
    let gguf: string;
    try {
      gguf = ensureModel(name, type);
    } catch (e) {
      process.stderr.write(`skip ${name} ${type}: ${(e as Error).message}\n`);
      continue;
    }
    const ws = weightStats(gguf);
    const ours = loadModel(gguf, new NativeBackend());
    try {
      for (const t of THREADS) {
        const figs: Record<Engine, Fig> = { ours: { pp: [], tg: [] }, "llama-bench": { pp: [], tg: [] }, nlc: { pp: [], tg: [] } };
        const add = (e: Engine, r: { pp: number; tg: number }): void => { figs[e].pp.push(r.pp); figs[e].tg.push(r.tg); };
        oursRun(ours, t); // warm the page cache and the kernels
        for (let r = 0; r < RUNS; r++) {
          add("ours", oursRun(ours, t));
          if (bin) add("llama-bench", llamaBenchRun(bin, gguf, t));
          if (nlc) add("nlc", await nlcRun(nlc, gguf, t, ours.config.vocabSize));
          process.stderr.write(`${name} ${type} t=${t} run ${r + 1}/${RUNS}: ours ${fmt(figs.ours.pp.at(-1)!)} / ${fmt(figs.ours.tg.at(-1)!)}` +
            (bin ? `, llama-bench ${fmt(figs["llama-bench"].pp.at(-1)!)} / ${fmt(figs["llama-bench"].tg.at(-1)!)}` : "") +
            (nlc ? `, nlc ${fmt(figs.nlc.pp.at(-1)!)} / ${fmt(figs.nlc.tg.at(-1)!)}` : "") + "\n");
        }
        const L = limits.get(t)!;
        const ppLimit = (L.fmaGflops * 1e9) / (2 * ws.matmulParams), tgLimit = (L.bandwidthGBs * 1e9) / ws.bytesPerToken;
        const med = (e: Engine, k: "pp" | "tg"): number => median(figs[e][k]);
        const [op, ot, lp, lt, np, nt] = [med("ours", "pp"), med("ours", "tg"), med("llama-bench", "pp"), med("llama-bench", "tg"), med("nlc", "pp"), med("nlc", "tg")];
        rows.push([`${name} ${type.toUpperCase()}`, String(t),
          `${fmt(op)} (${pct(op / ppLimit)})`, `${fmt(lp)} (${pct(lp / ppLimit)})`, `${fmt(np)} (${pct(np / ppLimit)})`, fmt(op / lp, 2), fmt(op / np, 2),
          `${fmt(ot)} (${pct(ot / tgLimit)})`, `${fmt(lt)} (${pct(lt / tgLimit)})`, `${fmt(nt)} (${pct(nt / tgLimit)})`, fmt(ot / lt, 2), fmt(ot / nt, 2),
          `${fmt(ppLimit, 0)} / ${fmt(tgLimit, 1)}`]);
        raw.push({ model: name, type, threads: t, figs, limits: L, ppLimit, tgLimit, weightBytesPerToken: ws.bytesPerToken, matmulParams: ws.matmulParams });
      }
    } finally {
      ours.checkpoint.close();
    }
  }
  if (nlc) await nlc.llama.dispose();
  const head = ["model", "threads", `ours pp${PP}`, `llama-bench pp${PP}`, `nlc pp${PP}`, "pp ours/lb", "pp ours/nlc",
    `ours tg${TG}`, `llama-bench tg${TG}`, `nlc tg${TG}`, "tg ours/lb", "tg ours/nlc", "limit pp / tg"];
  const lim = [...limits].map(([t, l]) => `${t} thread(s): read ${fmt(l.bandwidthGBs)} GB/s, f32 FMA ${fmt(l.fmaGflops, 0)} GFLOP/s`).join("; ");
  process.stdout.write(`\nStarted ${started}\nFinished ${machineLine()}\nLimits: ${lim}\nMedians of ${RUNS} runs, tokens/s (fraction of the limit):\n\n${markdownTable(head, rows)}\n`);
  const file = join(BENCH_DIR, `peer-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(file, JSON.stringify({ started, limits: Object.fromEntries(limits), results: raw }, null, 2));
  process.stderr.write(`raw figures: ${file}\n`);
}

await main();

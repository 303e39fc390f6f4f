// `tllm bench`: trtllm-bench's modes over tllm.
//   prepare-dataset  synthetic (token-norm-dist / token-unif-dist) or file-based (dataset) JSONL
//   throughput       every request submitted at once to the in-process LLM (batched), streamed
//   latency          one request at a time (concurrency 1), streamed
//   serve            any OpenAI-compatible server over HTTP (vLLM's benchmark_serving arrivals)
// Reports: the text summary on stdout (trtllm-bench's block, then vLLM's), --report-json,
// --report-html, and --request-json (one line per request: ttft/e2e in ms, tokens).
import { writeFile } from "node:fs/promises";
import { LLM, type StreamEvent } from "../api/llm.js";
import type { LlmArgsInput } from "../api/llm-args.js";
import {
  createOpenAiSend, prefixHitRateBetween, prepareFromDataset, prepareTokenNormDist, prepareTokenUnifDist,
  ProgressBar, readDatasetJsonl, runBenchmark, scrapeCacheCounters, summarizeBenchmark, writeDatasetJsonl,
  type BenchInfo, type BenchmarkRun, type DatasetItem, type RequestRecord, type SendFn,
} from "../bench/index.js";
import { resolveModel } from "../checkpoint/resolve-model.js";
import { readGgufMetadata } from "../checkpoint/gguf.js";
import { Tokenizer } from "../tokenizer/tokenizer.js";
import { numberFlag, parseFlags, stringFlag, UsageError, type Options, type Parsed } from "./args.js";

export const BENCH_HELP = `Usage: tllm bench <mode> [options]

Modes:
  prepare-dataset --output FILE (token-norm-dist | token-unif-dist | dataset) [options]
      --model M | --tokenizer T   vocabulary (size, special ids) and tokenizer for 'dataset'
      --random-seed S             default 420
      token-norm-dist: --num-requests N --input-mean X --input-stdev X --output-mean X --output-stdev X
      token-unif-dist: --num-requests N --input-min N --input-max N --output-min N --output-max N
      dataset:         --input FILE [--num-requests N] [--max-input-len N] [--max-output-len N]
  throughput --model M --dataset FILE   all requests submitted at once to the in-process engine
  latency    --model M --dataset FILE   one request at a time
  serve --base-url URL --model NAME --dataset FILE [--request-rate R|inf] [--burstiness B] [--api-key K]

Run options:
  --num-requests N      measured requests (default: the whole dataset after warmup)
  --warmup N            requests run first and dropped (default 0)
  --concurrency N       max requests in flight (throughput: default all; latency: 1)
  --streaming           (throughput, latency) record per-token times (always on; accepted for trtllm-bench parity)
  --report-json FILE    trtllm-bench's report JSON (plus a 'vllm' section)
  --report-html FILE    a self-contained HTML report
  --request-json FILE   one JSON line per request (ttft_ms, e2e_ms, input_tokens, output_tokens, error)
  --seed S              arrival seed for --request-rate (default 0)
Engine options (throughput, latency): --backend B --threads N --max-batch-size N --max-num-tokens N
  --max-seq-len N --kv-cache-max-tokens N --tokenizer DIR --offline --revision REV
  -h, --help            this help
`;

const OPTIONS: Options = {
  model: { type: "string" }, tokenizer: { type: "string" }, revision: { type: "string" }, offline: { type: "boolean" },
  output: { type: "string" }, "random-seed": { type: "string" }, "num-requests": { type: "string" },
  "input-mean": { type: "string" }, "input-stdev": { type: "string" }, "output-mean": { type: "string" }, "output-stdev": { type: "string" },
  "input-min": { type: "string" }, "input-max": { type: "string" }, "output-min": { type: "string" }, "output-max": { type: "string" },
  input: { type: "string" }, "max-input-len": { type: "string" }, "max-output-len": { type: "string" },
  dataset: { type: "string" }, concurrency: { type: "string" }, warmup: { type: "string" }, streaming: { type: "boolean" },
  "report-json": { type: "string" }, "report-html": { type: "string" }, "request-json": { type: "string" },
  "base-url": { type: "string" }, "request-rate": { type: "string" }, burstiness: { type: "string" }, seed: { type: "string" },
  "api-key": { type: "string" },
  backend: { type: "string" }, threads: { type: "string" }, "max-batch-size": { type: "string" }, "max-num-tokens": { type: "string" },
  "max-seq-len": { type: "string" }, "kv-cache-max-tokens": { type: "string" },
  help: { type: "boolean", short: "h" },
};

type V = Parsed["values"];
const C = "bench";

function need(v: V, name: string, what: string): string {
  const s = stringFlag(v, name);
  if (s === undefined) throw new UsageError(`missing --${name} (${what})`, C);
  return s;
}
function needNum(v: V, name: string, integer = false): number {
  const n = numberFlag(C, v, name, integer);
  if (n === undefined) throw new UsageError(`missing --${name}`, C);
  return n;
}

/** The tokenizer of --tokenizer or --model (a .gguf file, HF directory, hub id or 'demo'). */
async function tokenizerFor(v: V): Promise<Tokenizer> {
  const spec = stringFlag(v, "tokenizer") ?? stringFlag(v, "model");
  if (spec === undefined) throw new UsageError("missing --model or --tokenizer (the vocabulary to draw token ids from)", C);
  const r = await resolveModel(spec, { revision: stringFlag(v, "revision") ?? "main", ...(v["offline"] === true ? { offline: true } : {}) });
  return r.format === "hf" ? Tokenizer.fromHfDir(r.path) : Tokenizer.fromGgufMetadata(readGgufMetadata(r.path), r.path);
}

async function prepareDataset(v: V, kind: string | undefined): Promise<number> {
  const output = need(v, "output", "the JSONL file to write");
  const seed = numberFlag(C, v, "random-seed", true);
  const tok = await tokenizerFor(v);
  const specialIds = [...(tok.bosTokenId !== undefined ? [tok.bosTokenId] : []), ...tok.eosTokenIds];
  let items: DatasetItem[];
  if (kind === "token-norm-dist") {
    items = prepareTokenNormDist({
      numRequests: needNum(v, "num-requests", true), inputMean: needNum(v, "input-mean"), inputStdev: needNum(v, "input-stdev"),
      outputMean: needNum(v, "output-mean"), outputStdev: needNum(v, "output-stdev"), vocabSize: tok.vocabSize, specialIds,
      ...(seed !== undefined ? { seed } : {}),
    });
  } else if (kind === "token-unif-dist") {
    items = prepareTokenUnifDist({
      numRequests: needNum(v, "num-requests", true), inputMin: needNum(v, "input-min", true), inputMax: needNum(v, "input-max", true),
      outputMin: needNum(v, "output-min", true), outputMax: needNum(v, "output-max", true), vocabSize: tok.vocabSize, specialIds,
      ...(seed !== undefined ? { seed } : {}),
    });
  } else if (kind === "dataset") {
    const o: Parameters<typeof prepareFromDataset>[2] = {};
    const n = numberFlag(C, v, "num-requests", true), mi = numberFlag(C, v, "max-input-len", true), mo = numberFlag(C, v, "max-output-len", true);
    if (n !== undefined) o.numSamples = n;
    if (mi !== undefined) o.maxInputLength = mi;
    if (mo !== undefined) o.maxOutputLength = mo;
    if (seed !== undefined) o.seed = seed;
    items = await prepareFromDataset(need(v, "input", "a ShareGPT or prompt/answer JSON(L) file"), (s) => tok.encode(s), o);
  } else {
    throw new UsageError(`prepare-dataset needs one of token-norm-dist, token-unif-dist, dataset${kind ? ` (got '${kind}')` : ""}`, C);
  }
  await writeDatasetJsonl(output, items);
  process.stderr.write(`tllm bench: wrote ${items.length} requests to ${output}\n`);
  return 0;
}

function engineArgs(v: V): LlmArgsInput {
  const a: LlmArgsInput = { model: need(v, "model", "a .gguf file, HF directory, hub id, or 'demo'") };
  const tok = stringFlag(v, "tokenizer"), rev = stringFlag(v, "revision"), backend = stringFlag(v, "backend");
  if (tok !== undefined) a.tokenizer = tok;
  if (rev !== undefined) a.revision = rev;
  if (backend !== undefined) a.backend = backend as LlmArgsInput["backend"];
  if (v["offline"] === true) a.offline = true;
  const nums: [string, "threads" | "maxBatchSize" | "maxNumTokens" | "maxSeqLen"][] = [
    ["threads", "threads"], ["max-batch-size", "maxBatchSize"], ["max-num-tokens", "maxNumTokens"], ["max-seq-len", "maxSeqLen"]];
  for (const [flag, key] of nums) {
    const n = numberFlag(C, v, flag, true);
    if (n !== undefined) a[key] = n;
  }
  const kvMax = numberFlag(C, v, "kv-cache-max-tokens", true);
  if (kvMax !== undefined) a.kvCacheConfig = { maxTokens: kvMax };
  return a;
}

/**
 * A bench `send` over the in-process LLM that batches: requests that arrive while a batch runs wait
 * and go together in the next LLM.generate(list) call (static batching, one wave after another).
 * Greedy, ignoreEos, maxTokens = the item's output_tokens. onToken fires once per sampled token.
 */
export function createBatchingSend(llm: LLM): SendFn {
  type Pending = { item: DatasetItem; onToken: (n?: number) => void; ok: (r: { outputTokens: number; inputTokens: number }) => void; fail: (e: unknown) => void };
  let queue: Pending[] = [];
  let running = false;
  const runBatch = async (batch: Pending[]): Promise<void> => {
    let base = -1; // the wave's first request id: prompt 0 samples first, ids are consecutive in list order
    const counts = new Array<number>(batch.length).fill(0);
    const onStream = (ev: StreamEvent): void => {
      if (base < 0) base = ev.requestId;
      const i = ev.requestId - base, p = batch[i];
      if (!p) return;
      if (ev.token >= 0) {
        counts[i]!++;
        p.onToken(1);
      }
      // token-id prompts end when their stream ends (text prompts need the tokenized length: at the end)
      if (ev.finished && p.item.inputIds) p.ok({ outputTokens: counts[i]!, inputTokens: p.item.inputIds.length });
    };
    const outs = await llm.generate(batch.map((p) => p.item.inputIds ?? p.item.prompt!),
      batch.map((p) => ({ maxTokens: p.item.outputTokens, ignoreEos: true, temperature: 0 })), { onStream });
    outs.forEach((o, i) => {
      if (o.requestId !== base + i) throw new Error(`request id ${o.requestId} out of order (expected ${base + i})`);
      batch[i]!.ok({ outputTokens: o.outputs[0]!.tokenIds.length, inputTokens: o.promptTokenIds.length }); // no-op when settled
    });
  };
  const pump = (): void => {
    if (running || queue.length === 0) return;
    running = true;
    const batch = queue;
    queue = [];
    runBatch(batch).catch((e: unknown) => batch.forEach((p) => p.fail(e))).finally(() => {
      running = false;
      pump();
    });
  };
  return (item, onToken) => new Promise((ok, fail) => {
    queue.push({ item, onToken, ok, fail });
    setImmediate(pump); // gather every request submitted in this tick
  });
}

interface RunSpec { dataset: DatasetItem[]; send: SendFn; concurrency?: number; requestRate?: number | "inf"; info: BenchInfo }

async function measure(v: V, s: RunSpec): Promise<BenchmarkRun> {
  const warmup = numberFlag(C, v, "warmup", true) ?? 0;
  const numRequests = numberFlag(C, v, "num-requests", true);
  const burstiness = numberFlag(C, v, "burstiness");
  const seed = numberFlag(C, v, "seed", true);
  const total = numRequests ?? Math.max(0, s.dataset.length - warmup);
  const bar = new ProgressBar({ total, label: "bench" });
  let outTokens = 0;
  const t0 = performance.now();
  return runBenchmark({
    dataset: s.dataset, send: s.send, warmup,
    ...(numRequests !== undefined ? { numRequests } : {}), ...(s.concurrency !== undefined ? { concurrency: s.concurrency } : {}),
    ...(s.requestRate !== undefined ? { requestRate: s.requestRate } : {}), ...(burstiness !== undefined ? { burstiness } : {}),
    ...(seed !== undefined ? { seed } : {}),
    onRequestDone: (rec) => {
      outTokens += rec.numOutputTokens;
      bar.tick(1, `${(outTokens / ((performance.now() - t0) / 1000)).toFixed(1)} tok/s`);
    },
  });
}

/** One JSON line per measured request (times in ms from the start of the measured run). */
export function requestLines(records: readonly RequestRecord[]): string {
  return records.map((r) => JSON.stringify({
    start_ms: r.startNs / 1e6, ttft_ms: (r.firstTokenNs - r.startNs) / 1e6, e2e_ms: (r.endNs - r.startNs) / 1e6,
    input_tokens: r.numInputTokens, output_tokens: r.numOutputTokens, chunks: r.tokenTimesNs.length, ...(r.error ? { error: r.error } : {}),
  }) + "\n").join("");
}

async function report(v: V, run: BenchmarkRun, info: BenchInfo, title: string): Promise<number> {
  const s = summarizeBenchmark(run, { info, title });
  process.stdout.write(s.text);
  const json = stringFlag(v, "report-json"), html = stringFlag(v, "report-html"), req = stringFlag(v, "request-json");
  if (json !== undefined) await writeFile(json, JSON.stringify(s.json, null, 2) + "\n");
  if (html !== undefined) await writeFile(html, s.html);
  if (req !== undefined) await writeFile(req, requestLines(run.records));
  return s.trt.numFailed > 0 ? 1 : 0;
}

async function benchInProcess(v: V, mode: "throughput" | "latency"): Promise<number> {
  const args = engineArgs(v); // usage errors before any file is read
  const datasetPath = need(v, "dataset", "a JSONL file from prepare-dataset");
  const dataset = await readDatasetJsonl(datasetPath);
  const llm = new LLM(args);
  try {
    await llm.ready();
    const concurrency = mode === "latency" ? 1 : numberFlag(C, v, "concurrency", true);
    const send = createBatchingSend(llm);
    const cfg = llm.config;
    const info: BenchInfo = {
      engine: { model: args.model, modelPath: llm.source.path, backend: `tllm ${cfg.backend}`, dtype: cfg.dtype, target: mode },
      worldInfo: { maxBatchSize: cfg.maxBatchSize, maxNumTokens: cfg.maxNumTokens }, streaming: true, datasetPath,
      ...(concurrency !== undefined ? { concurrency } : {}),
    };
    const run = await measure(v, { dataset, send, info, ...(concurrency !== undefined ? { concurrency } : {}) });
    return await report(v, run, info, `tllm bench ${mode}`);
  } finally {
    await llm.shutdown();
  }
}

async function benchServe(v: V): Promise<number> {
  const baseUrl = need(v, "base-url", "the server, e.g. http://127.0.0.1:8000");
  const model = need(v, "model", "the model name the server serves");
  const datasetPath = need(v, "dataset", "a JSONL file from prepare-dataset");
  const dataset = await readDatasetJsonl(datasetPath);
  const rateFlag = stringFlag(v, "request-rate");
  const requestRate = rateFlag === undefined || rateFlag === "inf" ? "inf" : numberFlag(C, v, "request-rate");
  const concurrency = numberFlag(C, v, "concurrency", true);
  const apiKey = stringFlag(v, "api-key");
  const send = createOpenAiSend({ baseUrl, model, ...(apiKey ? { apiKey } : {}) });
  const before = await scrapeCacheCounters(baseUrl);
  const info: BenchInfo = {
    engine: { model, target: baseUrl, backend: "openai" }, requestRate: requestRate!, streaming: true, datasetPath,
    ...(concurrency !== undefined ? { concurrency } : {}),
  };
  const run = await measure(v, { dataset, send, info, requestRate: requestRate!, ...(concurrency !== undefined ? { concurrency } : {}) });
  const after = await scrapeCacheCounters(baseUrl);
  const hit = prefixHitRateBetween(before, after);
  if (hit !== undefined) info.prefixCacheHitRate = hit;
  if (after?.kvCacheUsage !== undefined) info.kvCacheUsage = after.kvCacheUsage;
  return report(v, run, info, `tllm bench serve ${baseUrl}`);
}

export async function runBench(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(C, argv, OPTIONS, true);
  if (values["help"] || positionals.length === 0) {
    process.stdout.write(BENCH_HELP);
    return values["help"] ? 0 : 2;
  }
  const [mode, ...rest] = positionals;
  if (mode !== "prepare-dataset" && rest.length > 0) throw new UsageError(`unexpected argument '${rest[0]}'`, C);
  if (mode === "prepare-dataset" && rest.length > 1) throw new UsageError(`unexpected argument '${rest[1]}'`, C);
  switch (mode) {
    case "prepare-dataset": return prepareDataset(values, rest[0]);
    case "throughput": case "latency": return benchInProcess(values, mode);
    case "serve": return benchServe(values);
    default: throw new UsageError(`unknown mode '${mode}' (prepare-dataset, throughput, latency, serve)`, C);
  }
}

// Sampling + grammar-mask cost per decode step, as a fraction of the forward step's time.
//   npm run bench:sampling [-- --batch 64 --steps 8 --ctx 128 --grammar 1 --compare 1]   (--grammar 0: skip the masks;
//   --compare 0: skip the per-row column)
// Forward: a TinyLlama-shaped random Q4_0 model (hidden 2048, 22 layers, 32 heads, 4 KV heads, ffn
// 5632, vocab 32000; written once by ensureFixture into .cache/bench), one batch-B decode step at
// context `ctx` on the native backend through loadModel (f16 KV; KV contents do not change the
// time). Sampling: the Sampler over [B, 151936] model-like logits (Qwen2's vocabulary, from
// test/fixtures/vocab/ggml-vocab-qwen2.gguf), without a grammar and with XGrammar masks (JSON
// schema, json_object, regex), where a step is the decoder's masksSync + Sampler.sample + accept for
// the whole batch; masks come from the engine's ParallelGuidedDecoder (one XGrammar worker thread per
// native pool thread), the in-thread GuidedDecoder in the last column. Without a grammar the rows cover greedy, temperature, top_k, top_p (a narrow and a
// wide nucleus), min_p, top_k + top_p, the three penalties and logprobs (raw log-softmax, rank and
// top-5: one more pass over the raw logits). Times are medians over `steps` steps after one
// warm-up; "% fwd" = ms / forward ms. Targets: <= 5% without a grammar, <= 15% with one.
// The Sampler takes the batched native step (src/sampling/batch.ts: all rows in one addon call over
// the thread pool); "per-row ms" times the same rows through the per-row path in the same run
// (setBatchedSampling(false)), for a before/after on one machine state.
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { GgmlType } from "../src/backends/dtypes.js";
import { isNativeAvailable, NativeBackend, nativeInfo } from "../src/backends/native/index.js";
import { ensureFixture, type RandomModelSpec } from "../src/checkpoint/random-model.js";
import { readGgufMetadata } from "../src/checkpoint/gguf.js";
import { loadModel } from "../src/models/loader.js";
import { SimpleKvCache } from "../src/engine/simple-kv-cache.js";
import { Tokenizer } from "../src/tokenizer/index.js";
import { createSamplingParams, type SamplingParamsInput } from "../src/api/sampling-params.js";
import { Sampler, type SamplingRow } from "../src/sampling/sampler.js";
import { setBatchedSampling } from "../src/sampling/batch.js";
import { rngKeyForSeed } from "../src/sampling/rng.js";
import { GuidedDecoder } from "../src/sampling/guided/index.js";
import { ParallelGuidedDecoder } from "../src/sampling/guided/parallel.js";
import type { GuidedDecodingParams } from "../src/sampling/params.js";

const REPO = fileURLToPath(new URL("..", import.meta.url));
const arg = (k: string, d: number): number => {
  const i = process.argv.indexOf(`--${k}`);
  return i >= 0 ? Number(process.argv[i + 1]) : d;
};
const B = arg("batch", 64), STEPS = arg("steps", 8), CTX = arg("ctx", 128), GRAMMAR = arg("grammar", 1) !== 0, TPB = 16;
const COMPARE = arg("compare", 1) !== 0;

const TINYLLAMA: RandomModelSpec = {
  arch: "llama", vocab: join(REPO, "test/fixtures/vocab/ggml-vocab-llama-spm.gguf"), hidden: 2048, layers: 22, heads: 32,
  kvHeads: 4, headDim: 64, ffn: 5632, tieEmbeddings: false, qkvBias: false, qkNorm: false, ropeTheta: 10000, rmsEps: 1e-5,
  maxPositions: 2048, seed: 7, weightTypes: GgmlType.Q4_0, name: "tinyllama-shaped-random",
};

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function time(fn: () => void, n: number): number {
  fn();
  const ts: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    fn();
    ts.push(performance.now() - t0);
  }
  return median(ts);
}

/** ms per batch-B decode step of the TinyLlama-shaped model at context CTX. */
async function forwardMs(): Promise<number> {
  const t0 = performance.now();
  const { gguf } = await ensureFixture(TINYLLAMA, join(REPO, ".cache", "bench"));
  console.error(`model ready (${((performance.now() - t0) / 1000).toFixed(1)} s): ${gguf}`);
  const m = loadModel(gguf, new NativeBackend());
  try {
    const c = m.config;
    const per = Math.ceil((CTX + 1) / TPB);
    const kv = new SimpleKvCache({ numLayers: c.numLayers, numKvHeads: c.numKvHeads, headDim: c.headDim, numBlocks: B * per + 1, tokensPerBlock: TPB, dtype: "f16" });
    for (let s = 0; s < B; s++) kv.allocSeq(s, CTX + 1);
    const seqs = Array.from({ length: B }, (_, s) => ({ qStart: s, qLen: 1, kvLen: CTX + 1, blockTable: kv.blockTable(s) }));
    const slots = Int32Array.from({ length: B }, (_, s) => kv.slotsFor(s, CTX, 1)[0]!);
    const batch = { tokens: Int32Array.from({ length: B }, (_, s) => 100 + s), positions: new Int32Array(B).fill(CTX), seqs, slots,
      logitRows: Int32Array.from({ length: B }, (_, s) => s) };
    return time(() => void m.model.forward(batch, kv.layers), Math.max(3, Math.min(STEPS, 5)));
  } finally {
    m.checkpoint.close();
  }
}

/** Model-like logits: ~N(0, 2) noise plus a few dozen strong candidates per row. */
function fillLogits(buf: Float32Array, vocab: number, seed: number): void {
  let s = seed >>> 0;
  const rnd = (): number => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
  for (let i = 0; i < buf.length; i++) buf[i] = (rnd() + rnd() + rnd() - 1.5) * 4;
  for (let r = 0; r < B; r++) for (let j = 0; j < 40; j++) buf[r * vocab + Math.floor(rnd() * vocab)] = 12 + rnd() * 6;
}

/** ms: the whole step; maskMs: of which computing the grammar bitmasks (computeBitmasks); perRowMs: the step without the batched native call */
interface Row { name: string; ms: number; maskMs?: number; perRowMs?: number; serialMs?: number }

function samplingMs(name: string, input: SamplingParamsInput, logits: Float32Array, vocab: number): Row {
  const row = stepMs(name, input, logits, vocab);
  if (!COMPARE) return row;
  setBatchedSampling(false);
  try {
    row.perRowMs = stepMs(name, input, logits, vocab).ms;
  } finally {
    setBatchedSampling(true);
  }
  return row;
}

function stepMs(name: string, input: SamplingParamsInput, logits: Float32Array, vocab: number): Row {
  const params = createSamplingParams(input, undefined);
  const sampler = new Sampler();
  const work = new Float32Array(logits.length);
  const outs: number[][] = Array.from({ length: B }, () => []);
  const rows: SamplingRow[] = outs.map((o, i) => ({ params, rng: rngKeyForSeed(1, i), promptTokenIds: [1, 2, 3], outputTokenIds: o }));
  const ms = time(() => {
    work.set(logits); // the sampler processes rows in place
    sampler.sample(work, rows, vocab).forEach((r, i) => outs[i]!.push(r.token));
  }, STEPS);
  return { name, ms: ms - copyMs(logits, work) };
}

function copyMs(a: Float32Array, b: Float32Array): number {
  return time(() => b.set(a), 5);
}

/** One guided step for the batch: masks, sampling, accept; finished rows restart their grammar
 *  (a new sequence key). The decoder is the engine's (ParallelGuidedDecoder, masks on worker
 *  threads); `serialMs` is the same step with the in-thread GuidedDecoder, in the same run. */
async function guidedMs(
  name: string, guide: GuidedDecodingParams, dec: { par: GuidedDecoder; serial: GuidedDecoder }, logits: Float32Array, vocab: number,
  input: SamplingParamsInput = { temperature: 0.8, topP: 0.95 },
): Promise<Row> {
  const row = await guidedStepMs(name, guide, dec.par, logits, vocab, input);
  if (COMPARE) row.serialMs = (await guidedStepMs(name, guide, dec.serial, logits, vocab, input)).ms;
  return row;
}

async function guidedStepMs(name: string, guide: GuidedDecodingParams, dec: GuidedDecoder, logits: Float32Array, vocab: number,
  input: SamplingParamsInput): Promise<Row> {
  const params = createSamplingParams(input, undefined);
  const sampler = new Sampler();
  await dec.prepare(guide);
  let next = 0;
  const keys = Array.from({ length: B }, () => next++);
  keys.forEach((k) => dec.addSync(k, guide));
  const outs: number[][] = Array.from({ length: B }, () => []);
  const work = new Float32Array(logits.length);
  const ts: number[] = [], maskTs: number[] = [];
  for (let step = 0; step <= STEPS; step++) {
    work.set(logits);
    const t0 = performance.now();
    const masks = dec.masksSync(keys);
    if (step > 0) maskTs.push(performance.now() - t0);
    const rows: SamplingRow[] = outs.map((o, i) => ({ params, rng: rngKeyForSeed(2, i), promptTokenIds: [1], outputTokenIds: o, tokenBitmask: masks[i] }));
    const res = sampler.sample(work, rows, vocab);
    for (let i = 0; i < B; i++) {
      dec.accept(keys[i]!, res[i]!.token);
      outs[i]!.push(res[i]!.token);
      if (dec.isTerminated(keys[i]!)) {
        dec.remove(keys[i]!);
        keys[i] = next++;
        dec.addSync(keys[i]!, guide);
        outs[i] = [];
      }
    }
    if (step > 0) ts.push(performance.now() - t0); // step 0: warm-up
  }
  keys.forEach((k) => dec.remove(k));
  return { name, ms: median(ts), maskMs: median(maskTs) };
}

const SCHEMA = { type: "object", properties: {
  name: { type: "string", maxLength: 20 }, age: { type: "integer", minimum: 0, maximum: 120 },
  tags: { type: "array", items: { type: "string", enum: ["a", "b", "c"] }, maxItems: 5 },
  address: { type: "object", properties: { city: { type: "string" }, zip: { type: "string" } }, required: ["city"] } },
  required: ["name", "age"] };

/** The grammar rows: JSON schema (top_p; top_k + top_p), json_object, regex. */
async function guidedRows(tok: Tokenizer, vocab: number, logits: Float32Array): Promise<Row[]> {
  const out: Row[] = [];
  const t0 = performance.now();
  const workers = nativeInfo().threads;
  const dec = { par: await ParallelGuidedDecoder.createParallel(tok, vocab, workers), serial: await GuidedDecoder.create(tok, vocab) };
  await dec.par.prepare({ json: SCHEMA });
  console.error(`tokenizer info + compiler + ${workers} mask workers + first schema: ${(performance.now() - t0).toFixed(0)} ms`);
  out.push(await guidedMs("grammar: JSON schema (+ top_p 0.95)", { json: SCHEMA }, dec, logits, vocab));
  out.push(await guidedMs("grammar: JSON schema (+ top_k 50, top_p)", { json: SCHEMA }, dec, logits, vocab, { temperature: 1, topK: 50, topP: 0.9 }));
  out.push(await guidedMs("grammar: json_object (+ top_p 0.95)", { jsonObject: true }, dec, logits, vocab));
  out.push(await guidedMs("grammar: regex (+ top_p 0.95)", { regex: "[a-z]{1,12}(-[0-9]{1,4}){0,3}" }, dec, logits, vocab));
  dec.par.dispose();
  dec.serial.dispose();
  return out;
}

async function main(): Promise<void> {
  if (!isNativeAvailable()) throw new Error("the native addon is not built (npm run build:native or node-gyp rebuild)");
  console.error(JSON.stringify(nativeInfo()));
  const fwd = await forwardMs();
  const qwenVocab = join(REPO, "test/fixtures/vocab/ggml-vocab-qwen2.gguf");
  const tok = Tokenizer.fromGgufMetadata(readGgufMetadata(qwenVocab), qwenVocab);
  const vocab = tok.vocabSize;
  const logits = new Float32Array(B * vocab);
  fillLogits(logits, vocab, 2024);
  const rows: Row[] = [
    samplingMs("greedy", { temperature: 0 }, logits, vocab),
    samplingMs("temperature 0.8", { temperature: 0.8 }, logits, vocab),
    samplingMs("top_k 50", { temperature: 1, topK: 50 }, logits, vocab),
    samplingMs("temperature 0.8, top_p 0.95", { temperature: 0.8, topP: 0.95 }, logits, vocab),
    samplingMs("top_p 0.9 (temperature 1.5)", { temperature: 1.5, topP: 0.9 }, logits, vocab),
    samplingMs("min_p 0.05", { temperature: 1, minP: 0.05 }, logits, vocab),
    samplingMs("top_k 50, top_p 0.9", { temperature: 1, topK: 50, topP: 0.9 }, logits, vocab),
    samplingMs("top_p 0.9 + rep./presence/frequency", { temperature: 1, topP: 0.9, repetitionPenalty: 1.1, presencePenalty: 0.5, frequencyPenalty: 0.2 }, logits, vocab),
    samplingMs("greedy + 5 logprobs", { temperature: 0, logprobs: 5 }, logits, vocab),
    samplingMs("top_p 0.95 + 5 logprobs", { temperature: 0.8, topP: 0.95, logprobs: 5 }, logits, vocab),
  ];
  if (GRAMMAR) rows.push(...(await guidedRows(tok, vocab, logits)));
  console.log(`\nbatch ${B}, sampling vocab ${vocab} (qwen2), forward: TinyLlama-shaped Q4_0 decode step at ctx ${CTX} = ${fwd.toFixed(1)} ms`);
  console.log(`${new Date().toISOString()}; load average ${loadavg().map((x) => x.toFixed(2)).join(" ")} on ${cpus().length} cores`);
  console.log(`native pool threads: ${nativeInfo().threads}`);
  console.log(`${"step (whole batch)".padEnd(40)} ${"ms/step".padStart(9)} ${"% fwd".padStart(7)}  ${"target".padEnd(10)} ${"masks ms".padStart(9)} ${"% fwd".padStart(7)} ${"per-row ms".padStart(10)}`);
  console.log("(per-row ms: sampling rows without the batched native step; grammar rows: masks computed in-thread instead of on the mask workers)");
  for (const r of rows) {
    const target = r.name.startsWith("grammar") ? 15 : 5;
    const pct = (100 * r.ms) / fwd;
    const mask = r.maskMs === undefined ? "".padStart(17) : `${r.maskMs.toFixed(2).padStart(9)} ${((100 * r.maskMs) / fwd).toFixed(2).padStart(7)}`;
    const perRow = (r.perRowMs ?? r.serialMs) === undefined ? "" : (r.perRowMs ?? r.serialMs)!.toFixed(2).padStart(10);
    console.log(`${r.name.padEnd(40)} ${r.ms.toFixed(2).padStart(9)} ${pct.toFixed(2).padStart(7)}  ${`<= ${target}% ${pct <= target ? "ok" : "OVER"}`.padEnd(10)} ${mask} ${perRow}`);
  }
}

await main();

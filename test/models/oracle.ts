// llama.cpp (through node-llama-cpp, prebuilt CPU binary) as the oracle for model tests:
// next-token distributions, greedy continuations and tokenization of a GGUF file.
// Token ids are always fed directly (never text), so node-llama-cpp adds no BOS of its own.
// openLlamaCpp() keeps a model loaded for several evaluations (each in a fresh context); the
// llamaCpp*() one-shot helpers load and dispose per call. Call closeLlamaCpp() once at the end of a
// test file (after()). ORACLE_FIXTURES are the random-weight models, one per vocabulary family,
// that model tests compare on (ensureOracleFixture writes them once into <repo>/.cache/fixtures).
import { fileURLToPath } from "node:url";
import { GgmlType } from "../../src/backends/dtypes.js";
import { readGgufMetadata } from "../../src/checkpoint/gguf.js";
import { ensureFixture, Q4_K_M_MIX, type RandomModelSpec } from "../../src/checkpoint/random-model.js";
import { getLlama, type Llama, type LlamaContextSequence, type Token } from "node-llama-cpp";

const THREADS = 2;
let llamaPromise: Promise<Llama> | undefined;

function llama(): Promise<Llama> {
  llamaPromise ??= getLlama({ gpu: false, build: "never", logLevel: "error" as never, maxThreads: THREADS });
  return llamaPromise;
}

/** Disposes the shared llama.cpp instance (lets the test process exit). */
export async function closeLlamaCpp(): Promise<void> {
  if (!llamaPromise) return;
  const l = await llamaPromise;
  llamaPromise = undefined;
  await l.dispose();
}

/** One loaded model; each evaluation runs in a fresh context (nothing carried between calls). */
export interface LlamaCppModel {
  /** raw next-token logits (f32, one per vocabulary entry) after `promptTokens` */
  nextTokenLogits(promptTokens: readonly number[]): Promise<Float32Array>;
  /** full next-token distribution after `promptTokens`, natural-log probabilities (f64 log-softmax of the logits) */
  nextTokenLogprobs(promptTokens: readonly number[]): Promise<Float64Array>;
  /** log-probabilities after every prefix of `promptTokens` (entry i: the distribution of token i+1),
   *  from one evaluation of the whole prompt */
  promptLogprobs(promptTokens: readonly number[]): Promise<Float64Array[]>;
  /** llama.cpp's own probabilities (its softmax in f32, from evaluateWithMetadata): for cross-checks */
  nextTokenProbabilities(promptTokens: readonly number[]): Promise<Map<number, number>>;
  /** `n` tokens chosen by argmax (temperature 0), EOG tokens included */
  greedy(promptTokens: readonly number[], n: number): Promise<number[]>;
  /** tokenization of `text` (no BOS by default); special: parse special-token text; addBos: prepend
   *  BOS when llama.cpp would (add_bos_token, or its default for the tokenizer type) */
  tokenize(text: string, opts?: { special?: boolean; addBos?: boolean }): number[];
  readonly vocabSize: number;
  close(): Promise<void>;
}

/** Unfiltered sampling, so the returned logits/probabilities are the model's own. */
const FULL = { temperature: 1, topK: 0, topP: 1, minP: 0 } as const;

/** Loads `gguf` into llama.cpp (CPU, 2 threads). Close it when done. */
export async function openLlamaCpp(gguf: string): Promise<LlamaCppModel> {
  const model = await (await llama()).loadModel({ modelPath: gguf, gpuLayers: 0, useMmap: true });
  const withSeq = async <T>(nTokens: number, fn: (s: LlamaContextSequence) => Promise<T>): Promise<T> => {
    const ctxSize = Math.max(64, Math.ceil((nTokens + 8) / 64) * 64);
    // f32 KV and no flash attention: llama.cpp's defaults (f16 KV, FA) round attention to f16,
    // which moves logits by ~4e-3 on these models and would hide our own errors.
    const ctx = await model.createContext({
      contextSize: ctxSize, batchSize: ctxSize, threads: THREADS, sequences: 1,
      flashAttention: false, experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32",
    });
    try {
      return await fn(ctx.getSequence());
    } finally {
      await ctx.dispose();
    }
  };
  const checkPrompt = (t: readonly number[]): Token[] => {
    if (t.length === 0) throw new Error("llama.cpp oracle: empty prompt");
    return t as Token[];
  };
  const m: LlamaCppModel = {
    vocabSize: (readGgufMetadata(gguf).get("tokenizer.ggml.tokens") as unknown[] | undefined)?.length ?? 0,
    nextTokenLogits: (prompt) => withSeq(prompt.length, async (seq) => {
      const toks = checkPrompt(prompt);
      const input = [...toks.slice(0, -1), [toks[toks.length - 1]!, { generateNext: { logits: true, options: FULL } }] as const];
      const res = await seq.controlledEvaluate(input as Parameters<LlamaContextSequence["controlledEvaluate"]>[0]);
      return denseLogits(res[res.length - 1]?.next.logits);
    }),
    nextTokenLogprobs: async (prompt) => logSoftmax(await m.nextTokenLogits(prompt)),
    promptLogprobs: (prompt) => withSeq(prompt.length, async (seq) => {
      const input = checkPrompt(prompt).map((t) => [t, { generateNext: { logits: true, options: FULL } }] as const);
      const res = await seq.controlledEvaluate(input as unknown as Parameters<LlamaContextSequence["controlledEvaluate"]>[0]);
      return res.map((r) => logSoftmax(denseLogits(r?.next.logits)));
    }),
    nextTokenProbabilities: (prompt) => withSeq(prompt.length, async (seq) => {
      const it = seq.evaluateWithMetadata(checkPrompt(prompt), { probabilities: true }, { ...FULL, yieldEogToken: true });
      const first = await it.next();
      await it.return();
      if (first.done) throw new Error("llama.cpp produced no token");
      return first.value.probabilities as Map<number, number>;
    }),
    greedy: (prompt, n) => withSeq(prompt.length + n, async (seq) => {
      const out: number[] = [];
      if (n <= 0) return out;
      for await (const t of seq.evaluate(checkPrompt(prompt), { temperature: 0, yieldEogToken: true })) {
        out.push(t);
        if (out.length >= n) break;
      }
      return out;
    }),
    tokenize: (text, opts = {}) => {
      const toks = model.tokenize(text, opts.special ?? false).map(Number);
      const bos = model.tokens.bos;
      // llama.cpp's own rule: tokenizer.ggml.add_bos_token, else a default per tokenizer type / pre-tokenizer
      const wantBos = opts.addBos === true && model.tokens.shouldPrependBosToken;
      return wantBos && bos !== null && toks[0] !== bos ? [bos, ...toks] : toks;
    },
    close: () => model.dispose(),
  };
  return m;
}

function denseLogits(logits: Map<Token, number> | undefined): Float32Array {
  if (!logits) throw new Error("llama.cpp returned no logits");
  const out = new Float32Array(logits.size).fill(Number.NaN); // the map holds every vocabulary entry
  for (const [tok, v] of logits) {
    if (tok >= out.length) throw new Error(`llama.cpp logits: token ${tok} outside 0..${out.length - 1}`);
    out[tok] = v;
  }
  return out;
}

async function withModel<T>(gguf: string, fn: (m: LlamaCppModel) => Promise<T>): Promise<T> {
  const m = await openLlamaCpp(gguf);
  try {
    return await fn(m);
  } finally {
    await m.close();
  }
}

/** log-softmax in f64 of f32 logits. */
export function logSoftmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  const lse = max + Math.log(sum);
  const out = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i]! - lse;
  return out;
}

/** One-shot helpers (load, evaluate, dispose). */
export const llamaCppNextTokenLogits = (gguf: string, prompt: readonly number[]) => withModel(gguf, (m) => m.nextTokenLogits(prompt));
export const llamaCppNextTokenLogprobs = (gguf: string, prompt: readonly number[]) => withModel(gguf, (m) => m.nextTokenLogprobs(prompt));
export const llamaCppGreedy = (gguf: string, prompt: readonly number[], n: number) => withModel(gguf, (m) => m.greedy(prompt, n));
export const llamaCppTokenize = (gguf: string, text: string, opts?: { special?: boolean; addBos?: boolean }) =>
  withModel(gguf, async (m) => m.tokenize(text, opts));

/** Entropy (nats) of a distribution given as natural-log probabilities. */
export function entropy(logprobs: Float64Array): number {
  let h = 0;
  for (const lp of logprobs) if (lp > -Infinity) h -= Math.exp(lp) * lp;
  return h;
}

/** <repo>/.cache/fixtures (gitignored): generated models are kept across test runs. */
export const FIXTURE_CACHE = fileURLToPath(new URL("../../.cache/fixtures", import.meta.url));
const vocab = (n: string) => fileURLToPath(new URL(`../fixtures/vocab/ggml-vocab-${n}.gguf`, import.meta.url));

const SMALL = { layers: 2, hidden: 64, ffn: 128, rmsEps: 1e-5, maxPositions: 1024, qkvBias: false, qkNorm: false } as const;

/** One random-weight model per vocabulary family, covering the four architectures and the storage
 *  types F32, F16, Q8_0, Q4_0 and the Q4_K/Q6_K mix of Q4_K_M (which needs rows of 256). */
export const ORACLE_FIXTURES: Readonly<Record<"llama-spm" | "gpt-2" | "qwen2" | "llama-bpe" | "phi-3", RandomModelSpec>> = {
  "llama-spm": {
    arch: "llama", vocab: vocab("llama-spm"), layers: 2, hidden: 256, heads: 4, kvHeads: 2, headDim: 64, ffn: 512,
    tieEmbeddings: false, qkvBias: false, qkNorm: false, ropeTheta: 10000, rmsEps: 1e-5, maxPositions: 1024, seed: 11,
    weightTypes: Q4_K_M_MIX,
  },
  "gpt-2": { ...SMALL, arch: "qwen3", vocab: vocab("gpt-2"), heads: 4, kvHeads: 2, headDim: 32, qkNorm: true,
    tieEmbeddings: true, ropeTheta: 1e6, seed: 12, weightTypes: GgmlType.F32 },
  "qwen2": { ...SMALL, arch: "qwen2", vocab: vocab("qwen2"), heads: 2, kvHeads: 1, headDim: 32, qkvBias: true,
    tieEmbeddings: true, ropeTheta: 1e6, rmsEps: 1e-6, seed: 13, weightTypes: GgmlType.Q8_0 },
  "llama-bpe": { ...SMALL, arch: "llama", vocab: vocab("llama-bpe"), heads: 4, kvHeads: 1, headDim: 16,
    tieEmbeddings: false, ropeTheta: 500000, seed: 14, weightTypes: GgmlType.F16 },
  "phi-3": { ...SMALL, arch: "mistral", vocab: vocab("phi-3"), heads: 4, kvHeads: 4, headDim: 16,
    tieEmbeddings: false, ropeTheta: 10000, slidingWindow: 4096, seed: 15, weightTypes: GgmlType.Q4_0 },
};

/** The fixture's GGUF (and HF twin with `hf`), generated on first use. */
export function ensureOracleFixture(name: keyof typeof ORACLE_FIXTURES, opts: { hf?: boolean } = {}): Promise<{ gguf: string; hfDir?: string }> {
  return ensureFixture(ORACLE_FIXTURES[name], FIXTURE_CACHE, opts);
}

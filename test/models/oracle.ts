// llama.cpp (through node-llama-cpp, prebuilt CPU binary) as the oracle for model tests:
// next-token distributions, greedy continuations and tokenization of a GGUF file.
// Token ids are always fed directly (never text), so node-llama-cpp adds no BOS of its own.
// Every call loads the model, evaluates in a fresh context and disposes model and context;
// call closeLlamaCpp() once at the end of a test file (after()).
import { getLlama, type Llama, type LlamaContextSequence, type LlamaModel, type Token } from "node-llama-cpp";

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

async function withModel<T>(gguf: string, fn: (m: LlamaModel) => Promise<T>): Promise<T> {
  const model = await (await llama()).loadModel({ modelPath: gguf, gpuLayers: 0, useMmap: true });
  try {
    return await fn(model);
  } finally {
    await model.dispose();
  }
}

async function withSequence<T>(gguf: string, nTokens: number, fn: (s: LlamaContextSequence, m: LlamaModel) => Promise<T>): Promise<T> {
  return withModel(gguf, async (model) => {
    const ctxSize = Math.max(64, Math.ceil((nTokens + 8) / 64) * 64);
    const ctx = await model.createContext({ contextSize: ctxSize, batchSize: ctxSize, threads: THREADS, sequences: 1 });
    try {
      return await fn(ctx.getSequence(), model);
    } finally {
      await ctx.dispose();
    }
  });
}

/** Unfiltered sampling, so the returned logits/probabilities are the model's own. */
const FULL = { temperature: 1, topK: 0, topP: 1, minP: 0 } as const;

/** llama.cpp's raw next-token logits (f32, one per vocabulary entry) after `promptTokens`. */
export async function llamaCppNextTokenLogits(gguf: string, promptTokens: readonly number[]): Promise<Float32Array> {
  if (promptTokens.length === 0) throw new Error("llamaCppNextTokenLogits: empty prompt");
  return withSequence(gguf, promptTokens.length, async (seq) => {
    const toks = promptTokens as Token[];
    const input = [...toks.slice(0, -1), [toks[toks.length - 1]!, { generateNext: { logits: true, options: FULL } }] as const];
    const res = await seq.controlledEvaluate(input as Parameters<LlamaContextSequence["controlledEvaluate"]>[0]);
    const logits = res[res.length - 1]?.next.logits;
    if (!logits) throw new Error("llama.cpp returned no logits");
    const out = new Float32Array(logits.size).fill(Number.NaN); // the map holds every vocabulary entry
    for (const [tok, v] of logits) {
      if (tok >= out.length) throw new Error(`llama.cpp logits: token ${tok} outside 0..${out.length - 1}`);
      out[tok] = v;
    }
    return out;
  });
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

/** llama.cpp's full next-token distribution after `promptTokens`, as natural-log probabilities. */
export async function llamaCppNextTokenLogprobs(gguf: string, promptTokens: readonly number[]): Promise<Float64Array> {
  return logSoftmax(await llamaCppNextTokenLogits(gguf, promptTokens));
}

/** llama.cpp's probabilities map (its own softmax, f32) for the same position: for cross-checks. */
export async function llamaCppNextTokenProbabilities(gguf: string, promptTokens: readonly number[]): Promise<Map<number, number>> {
  return withSequence(gguf, promptTokens.length, async (seq) => {
    const it = seq.evaluateWithMetadata(promptTokens as Token[], { probabilities: true }, { ...FULL, yieldEogToken: true });
    const first = await it.next();
    await it.return();
    if (first.done) throw new Error("llama.cpp produced no token");
    return first.value.probabilities as Map<number, number>;
  });
}

/** Greedy continuation: `n` tokens chosen by argmax (temperature 0), EOG tokens included. */
export async function llamaCppGreedy(gguf: string, promptTokens: readonly number[], n: number): Promise<number[]> {
  return withSequence(gguf, promptTokens.length + n, async (seq) => {
    const out: number[] = [];
    if (n <= 0) return out;
    for await (const t of seq.evaluate(promptTokens as Token[], { temperature: 0, yieldEogToken: true })) {
      out.push(t);
      if (out.length >= n) break;
    }
    return out;
  });
}

/** llama.cpp's tokenization of `text` (special tokens parsed; BOS as the vocabulary says). */
export async function llamaCppTokenize(gguf: string, text: string, opts: { special?: boolean } = {}): Promise<number[]> {
  return withModel(gguf, async (model) => {
    const toks = model.tokenize(text, opts.special ?? false);
    const bos = model.tokens.bos;
    const addBos = model.fileInfo.metadata.tokenizer?.ggml?.add_bos_token ?? false;
    return (addBos && bos !== null && toks[0] !== bos ? [bos, ...toks] : [...toks]).map(Number);
  });
}

/** Entropy (nats) of a distribution given as natural-log probabilities. */
export function entropy(logprobs: Float64Array): number {
  let h = 0;
  for (const lp of logprobs) if (lp > -Infinity) h -= Math.exp(lp) * lp;
  return h;
}

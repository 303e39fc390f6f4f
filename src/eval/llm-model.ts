// EvalModel over the in-process model (what `tllm eval` runs when no --base-url is given):
//  - scoring (loglikelihood, logprobsOfTokens) runs the model's forward over the whole sequence
//    with every logit row kept: a second LlamaModel over the same checkpoint (loadModel maps the
//    file, so the weights are not copied), one SimpleKvCache per sequence, the sequence fed in
//    chunks of `chunkTokens` positions so that the logits [chunk, vocab] stay bounded;
//  - generate goes through LLM.generate (greedy by default, stop strings honoured);
//  - tokenize is the model's tokenizer without special tokens (as the OpenAI model's /tokenize);
//    loglikelihood adds them (BOS when the model wants one), as lm-eval's HF model does.
// Log-softmax is computed in f64 per row: lp(t) = logit[t] - (max + ln sum exp(logit - max)).
import type { Backend } from "../backends/backend.js";
import { ReferenceBackend } from "../backends/reference/index.js";
import type { LLM } from "../api/llm.js";
import { SimpleKvCache } from "../engine/simple-kv-cache.js";
import type { ForwardBatch } from "../engine/types.js";
import { ValidationError } from "../errors.js";
import { loadModel, type LoadedModel } from "../models/loader.js";
import { applyChatTemplate } from "../tokenizer/chat-template.js";
import type { ChatMessage, EvalModel, GenerateParams, LoglikelihoodResult, PositionLogprobs } from "./model.js";

export interface LlmEvalModelOptions {
  /** positions per forward call when scoring (default 256) */
  chunkTokens?: number;
  /** backend for the scoring model (default: native when the LLM runs native, else reference) */
  backend?: Backend;
}

export interface LlmEvalModel extends EvalModel {
  /** releases the scoring model's checkpoint (the LLM is the caller's) */
  close(): void;
}

async function scoringBackend(llm: LLM): Promise<Backend> {
  if (llm.config.backend !== "native") return new ReferenceBackend();
  const spec = "../backends/native/index.js"; // optional at build time, as in api/llm.ts
  const m = (await import(spec)) as { NativeBackend: new () => Backend };
  return new m.NativeBackend();
}

/** Builds the EvalModel; `llm` must be ready (LLM.create or await llm.ready()). */
export async function createLlmEvalModel(llm: LLM, o: LlmEvalModelOptions = {}): Promise<LlmEvalModel> {
  const chunk = o.chunkTokens ?? 256;
  if (!Number.isInteger(chunk) || chunk < 1) throw new ValidationError("chunkTokens", chunk, "must be an integer >= 1");
  const loaded = loadModel(llm.source.path, o.backend ?? (await scoringBackend(llm)));
  const tok = llm.tokenizer;
  const tokenize = (text: string): Promise<number[]> => tok.encode(text, { addSpecialTokens: false });

  async function logprobsOfTokens(tokens: readonly number[], opts?: { distributions?: boolean }): Promise<PositionLogprobs> {
    return scoreSequence(loaded, tokens, chunk, opts?.distributions === true);
  }

  async function loglikelihood(context: string, continuation: string): Promise<LoglikelihoodResult> {
    // lm-eval: the context's trailing whitespace moves onto the continuation
    const trail = /\s*$/.exec(context)![0];
    const ctxText = context.slice(0, context.length - trail.length);
    const ctx = await tok.encode(ctxText);
    const whole = await tok.encode(ctxText + trail + continuation);
    if (whole.length <= ctx.length) throw new ValidationError("continuation", continuation, "tokenizes to no tokens after the context");
    const r = await scoreSequence(loaded, whole, chunk, false, ctx.length - 1);
    let sum = 0;
    for (let i = ctx.length - 1; i < whole.length - 1; i++) sum += r.logprobs[i]!;
    return { logprob: sum, isGreedy: r.greedy.slice(ctx.length - 1).every(Boolean) };
  }

  async function generate(prompt: string | ChatMessage[], p: GenerateParams): Promise<string> {
    let text: string;
    let addSpecialTokens = true;
    if (typeof prompt === "string") text = prompt;
    else {
      if (!tok.chatTemplate) throw new ValidationError("applyChatTemplate", true, "the model has no chat template");
      text = applyChatTemplate(tok.chatTemplate, prompt.map((x) => ({ role: x.role, content: x.content })), { addGenerationPrompt: true, bosToken: tok.bosToken, eosToken: tok.eosToken });
      addSpecialTokens = false; // the template writes BOS itself
    }
    const out = await llm.generate(text, {
      maxTokens: p.maxTokens, temperature: p.temperature ?? 0, addSpecialTokens, ...(p.stop?.length ? { stop: p.stop } : {}),
    });
    return out.outputs[0]!.text;
  }

  return { tokenize, loglikelihood, generate, logprobsOfTokens, close: () => loaded.checkpoint.close() };
}

/**
 * Runs `tokens` through the model in chunks and returns logprobs[i] = ln p(tokens[i+1] | tokens[..i])
 * (length n - 1), greedy[i] = whether tokens[i+1] is the argmax at i, and the full log-distribution
 * per position when asked. Rows before `firstRow` are not scored (their logits are not requested).
 */
export async function scoreSequence(
  m: LoadedModel, tokens: readonly number[], chunk: number, wantDist: boolean, firstRow = 0,
): Promise<PositionLogprobs & { logprobs: Float64Array; greedy: boolean[] }> {
  const c = m.config, n = tokens.length;
  if (n < 2) throw new ValidationError("tokens.length", n, "need at least 2 tokens to score");
  for (const t of tokens) if (!Number.isInteger(t) || t < 0 || t >= c.vocabSize) throw new ValidationError("tokens", t, `token id out of range [0, ${c.vocabSize})`);
  const tpb = 16;
  const kv = new SimpleKvCache({ numLayers: c.numLayers, numKvHeads: c.numKvHeads, headDim: c.headDim, numBlocks: Math.ceil(n / tpb) + 1, tokensPerBlock: tpb, dtype: "f32" });
  kv.allocSeq(0, n);
  const blockTable = kv.blockTable(0);
  const logprobs = new Float64Array(n - 1);
  const greedy = new Array<boolean>(n - 1).fill(true);
  const distributions: Float32Array[] | undefined = wantDist ? [] : undefined;
  // The last position predicts nothing: feed positions [0, n - 1).
  for (let start = 0; start < n - 1; start += chunk) {
    const end = Math.min(start + chunk, n - 1), T = end - start;
    const lo = Math.max(start, firstRow); // first row whose logits are needed
    // (at least one row: the forward always returns some logits; rows before firstRow are skipped below)
    const rows = lo < end ? Int32Array.from({ length: end - lo }, (_, i) => lo - start + i) : Int32Array.of(T - 1);
    const batch: ForwardBatch = {
      tokens: Int32Array.from(tokens.slice(start, end)), positions: Int32Array.from({ length: T }, (_, i) => start + i),
      seqs: [{ qStart: 0, qLen: T, kvLen: end, blockTable }], slots: kv.slotsFor(0, start, T), logitRows: rows,
    };
    const logits = m.model.forward(batch, kv.layers);
    rows.forEach((r, k) => {
      const pos = start + r;
      if (pos < firstRow) return;
      const row = logits.subarray(k * c.vocabSize, (k + 1) * c.vocabSize);
      const s = logSoftmaxStats(row);
      const next = tokens[pos + 1]!;
      logprobs[pos] = row[next]! - s.lse;
      greedy[pos] = row[next]! >= row[s.argmax]!;
      if (distributions) {
        const d = new Float32Array(c.vocabSize);
        for (let v = 0; v < c.vocabSize; v++) d[v] = row[v]! - s.lse;
        distributions[pos] = d;
      }
    });
    await new Promise<void>((ok) => setImmediate(ok)); // keep the event loop (progress, signals) alive
  }
  return { logprobs, greedy, ...(distributions ? { distributions } : {}) };
}

/** ln sum exp(row) (stable, f64) and the argmax of one logit row. */
export function logSoftmaxStats(row: Float32Array): { lse: number; argmax: number } {
  let max = -Infinity, argmax = 0;
  for (let v = 0; v < row.length; v++) if (row[v]! > max) { max = row[v]!; argmax = v; }
  let sum = 0;
  for (let v = 0; v < row.length; v++) sum += Math.exp(row[v]! - max);
  return { lse: max + Math.log(sum), argmax };
}

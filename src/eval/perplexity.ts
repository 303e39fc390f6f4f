// Perplexity with a sliding window (Hugging Face's "perplexity of fixed-length models" recipe):
// windows of `contextLength` tokens start every `stride` tokens; each window scores only the
// tokens not scored by the previous one (its last end - prevEnd targets), so every token after
// the first is scored once, with up to contextLength - stride tokens of extra context.
// PPL = exp(mean NLL) over the scored tokens.
//
// KL divergence (llama.cpp `perplexity --kl-divergence-base FILE [--kl-divergence]`): a base run
// saves the top-K distribution at every scored position (kld-file.ts); a compare run over the same
// tokens, windows and positions reports mean KLD, top-1 agreement and the change in perplexity.
import { ValidationError } from "../errors.js";
import { klAtPosition, readKldFile, topKOf, writeKldFile, type KldHeader, type KldPosition } from "./kld-file.js";
import type { EvalModel } from "./model.js";
import { meanStats, perplexityInterval, timed, Z95 } from "./stats.js";

export interface PerplexityOptions {
  /** the text to score (tokenized with model.tokenize), or the tokens themselves */
  text?: string;
  tokens?: readonly number[];
  /** window length in tokens (llama.cpp's -c) */
  contextLength: number;
  /** window start step (default contextLength / 2, at least 1) */
  stride?: number;
  /** score at most this many tokens from the start */
  maxTokens?: number;
  /** save (klDivergence false) or compare against (klDivergence true) this base file */
  klDivergenceBase?: string;
  klDivergence?: boolean;
  /** entries per position kept in a saved base file (default 32) */
  topK?: number;
}

export interface KldReport {
  positions: number;
  meanKld: number;
  kldSe: number;
  medianKld: number;
  p99Kld: number;
  maxKld: number;
  /** fraction of positions where both runs' most probable token agree */
  top1Agreement: number;
  basePpl: number;
  ppl: number;
  /** ppl - basePpl */
  deltaPpl: number;
  /** mean over positions of ln p_base(token) - ln p_new(token), i.e. ln(PPL / PPL_base) */
  meanLnPplRatio: number;
}

export interface PerplexityResult {
  ppl: number;
  /** 95% interval: exp(mean NLL ± 1.96 se) */
  ci95: { lo: number; hi: number };
  meanNll: number;
  numTokensScored: number;
  numWindows: number;
  seconds: number;
  tokensPerSecond: number;
  /** present when a base file was compared against */
  kld?: KldReport;
  /** present when a base file was written */
  savedBase?: string;
}

export interface Window {
  begin: number;
  end: number;
  /** first absolute position scored in this window (targets firstTarget .. end-1) */
  firstTarget: number;
}

/** The windows over n tokens (HF recipe; the first token of a window is never a target). */
export function slidingWindows(n: number, contextLength: number, stride: number): Window[] {
  if (!Number.isInteger(contextLength) || contextLength < 2) throw new ValidationError("contextLength", contextLength, "must be an integer >= 2");
  if (!Number.isInteger(stride) || stride < 1 || stride > contextLength) {
    throw new ValidationError("stride", stride, `must be an integer in [1, contextLength=${contextLength}]`);
  }
  const out: Window[] = [];
  let prevEnd = 0;
  for (let begin = 0; begin < n; begin += stride) {
    const end = Math.min(begin + contextLength, n);
    out.push({ begin, end, firstTarget: Math.max(begin + 1, prevEnd) });
    prevEnd = end;
    if (end === n) break;
  }
  return out;
}

/** Receives each scored position in order: the actual token, its NLL, and the full log-distribution when asked. */
type PositionSink = (token: number, nll: number, dist: Float32Array | undefined) => void;

/** Scores every window; distributions are handed to `sink` one position at a time and not kept. */
async function scoreWindows(model: EvalModel, tokens: readonly number[], wins: Window[], wantDist: boolean, sink: PositionSink): Promise<number[]> {
  const nll: number[] = [];
  for (const w of wins) {
    const lp = await model.logprobsOfTokens(tokens.slice(w.begin, w.end), { distributions: wantDist });
    if (lp.logprobs.length !== w.end - w.begin - 1) {
      throw new ValidationError("logprobs.length", lp.logprobs.length, `model returned the wrong count for a ${w.end - w.begin}-token window`);
    }
    if (wantDist && (!lp.distributions || lp.distributions.length !== lp.logprobs.length)) {
      throw new ValidationError("distributions", lp.distributions?.length, "KL divergence needs the full distribution at every position");
    }
    for (let j = w.firstTarget; j < w.end; j++) {
      const i = j - w.begin - 1; // logprobs[i] predicts window[i + 1] = tokens[j]
      nll.push(-lp.logprobs[i]!);
      sink(tokens[j]!, -lp.logprobs[i]!, lp.distributions?.[i]);
    }
  }
  return nll;
}

type RunHeader = { contextLength: number; stride: number; nTokens: number };

/** Collects top-K positions for a base file. */
function baseWriter(topK: number): { sink: PositionSink; write: (file: string, h: RunHeader) => Promise<void> } {
  const positions: KldPosition[] = [];
  let nVocab = 0;
  return {
    sink: (token, nll, dist) => {
      nVocab = dist!.length;
      positions.push({ token, tokenLogprob: -nll, ...topKOf(dist!, Math.min(topK, nVocab)) });
    },
    write: (file, h) => writeKldFile(file, { k: Math.min(topK, nVocab), nVocab, nPositions: positions.length, ...h }, positions),
  };
}

/** Compares each position against a loaded base file as it is scored. */
function baseComparer(file: string, base: { header: KldHeader; positions: KldPosition[] }): { sink: PositionSink; report: () => KldReport } {
  const klds: number[] = [];
  let agree = 0;
  let nll = 0;
  let baseNll = 0;
  const sink: PositionSink = (token, tokNll, dist) => {
    const i = klds.length;
    const bp = base.positions[i];
    if (!bp) throw new ValidationError("positions", i + 1, `base file ${file} has only ${base.positions.length}`);
    if (bp.token !== token) throw new ValidationError(`tokens[${i}]`, token, `base file scored token ${bp.token} here: different text or tokenizer`);
    if (dist!.length !== base.header.nVocab) throw new ValidationError("vocabSize", dist!.length, `base file has ${base.header.nVocab}`);
    const r = klAtPosition(bp, dist!);
    klds.push(r.kld);
    if (r.argmax === bp.ids[0]) agree++;
    nll += tokNll;
    baseNll -= bp.tokenLogprob;
  };
  const report = (): KldReport => {
    const n = klds.length;
    if (n !== base.positions.length) throw new ValidationError("positions", n, `base file ${file} has ${base.positions.length}`);
    const sorted = [...klds].sort((a, b) => a - b);
    const m = meanStats(klds);
    const basePpl = Math.exp(baseNll / n);
    const ppl = Math.exp(nll / n);
    return {
      positions: n, meanKld: m.mean, kldSe: m.se, medianKld: sorted[Math.floor(n / 2)]!, p99Kld: sorted[Math.min(n - 1, Math.floor(n * 0.99))]!,
      maxKld: sorted[n - 1]!, top1Agreement: agree / n, basePpl, ppl, deltaPpl: ppl - basePpl, meanLnPplRatio: (nll - baseNll) / n,
    };
  };
  return { sink, report };
}

function checkOptions(o: PerplexityOptions): number {
  const stride = o.stride ?? Math.max(1, Math.floor(o.contextLength / 2));
  if (o.maxTokens !== undefined && (!Number.isInteger(o.maxTokens) || o.maxTokens < 2)) throw new ValidationError("maxTokens", o.maxTokens, "must be an integer >= 2");
  if (o.topK !== undefined && (!Number.isInteger(o.topK) || o.topK < 1)) throw new ValidationError("topK", o.topK, "must be an integer >= 1");
  if (o.klDivergence && !o.klDivergenceBase) throw new ValidationError("klDivergence", true, "needs klDivergenceBase (the file saved by a base run)");
  return stride;
}

/** Runs the perplexity task; saves or compares a KLD base file when asked. */
export async function run(model: EvalModel, o: PerplexityOptions): Promise<PerplexityResult> {
  const stride = checkOptions(o);
  const file = o.klDivergenceBase;
  const { result, seconds } = await timed(async () => {
    let tokens = o.tokens ? [...o.tokens] : o.text !== undefined ? await model.tokenize(o.text) : undefined;
    if (!tokens) throw new ValidationError("text", undefined, "give text or tokens to score");
    if (o.maxTokens !== undefined) tokens = tokens.slice(0, o.maxTokens);
    if (tokens.length < 2) throw new ValidationError("tokens.length", tokens.length, "need at least 2 tokens to score");
    const h: RunHeader = { contextLength: o.contextLength, stride, nTokens: tokens.length };
    const wins = slidingWindows(tokens.length, o.contextLength, stride);
    if (file === undefined) return { nll: await scoreWindows(model, tokens, wins, false, () => {}), numWindows: wins.length };
    if (!o.klDivergence) {
      const w = baseWriter(o.topK ?? 32);
      const nll = await scoreWindows(model, tokens, wins, true, w.sink);
      await w.write(file, h);
      return { nll, numWindows: wins.length };
    }
    const base = await readKldFile(file);
    for (const key of ["contextLength", "stride", "nTokens"] as const) {
      if (base.header[key] !== h[key]) throw new ValidationError(key, h[key], `differs from the base file ${file} (${base.header[key]})`);
    }
    const c = baseComparer(file, base);
    const nll = await scoreWindows(model, tokens, wins, true, c.sink);
    return { nll, numWindows: wins.length, kld: c.report() };
  });
  const pi = perplexityInterval(result.nll, Z95);
  const out: PerplexityResult = {
    ppl: pi.ppl, ci95: { lo: pi.lo, hi: pi.hi }, meanNll: Math.log(pi.ppl), numTokensScored: result.nll.length,
    numWindows: result.numWindows, seconds, tokensPerSecond: seconds > 0 ? result.nll.length / seconds : NaN,
  };
  if (result.kld) out.kld = result.kld;
  else if (file !== undefined) out.savedBase = file;
  return out;
}

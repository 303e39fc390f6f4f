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
import { klAtPosition, readKldFile, topKOf, writeKldFile, type KldPosition } from "./kld-file.js";
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

interface Scored {
  nll: number[];
  /** per scored position, for KLD */
  tokens: number[];
  dists: Float32Array[];
  numWindows: number;
}

async function scoreWindows(model: EvalModel, tokens: readonly number[], wins: Window[], wantDist: boolean): Promise<Scored> {
  const s: Scored = { nll: [], tokens: [], dists: [], numWindows: wins.length };
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
      s.nll.push(-lp.logprobs[i]!);
      if (wantDist) {
        s.tokens.push(tokens[j]!);
        s.dists.push(lp.distributions![i]!);
      }
    }
  }
  return s;
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
  const { result, seconds } = await timed(async () => {
    let tokens = o.tokens ? [...o.tokens] : o.text !== undefined ? await model.tokenize(o.text) : undefined;
    if (!tokens) throw new ValidationError("text", undefined, "give text or tokens to score");
    if (o.maxTokens !== undefined) tokens = tokens.slice(0, o.maxTokens);
    if (tokens.length < 2) throw new ValidationError("tokens.length", tokens.length, "need at least 2 tokens to score");
    const wins = slidingWindows(tokens.length, o.contextLength, stride);
    const scored = await scoreWindows(model, tokens, wins, o.klDivergenceBase !== undefined);
    return { tokens, scored };
  });
  const { tokens, scored } = result;
  const pi = perplexityInterval(scored.nll, Z95);
  const out: PerplexityResult = {
    ppl: pi.ppl, ci95: { lo: pi.lo, hi: pi.hi }, meanNll: Math.log(pi.ppl), numTokensScored: scored.nll.length,
    numWindows: scored.numWindows, seconds, tokensPerSecond: seconds > 0 ? scored.nll.length / seconds : NaN,
  };
  if (o.klDivergenceBase !== undefined) {
    const h = { contextLength: o.contextLength, stride, nTokens: tokens.length };
    if (o.klDivergence) out.kld = await compareWithBase(o.klDivergenceBase, h, scored);
    else {
      await saveBase(o.klDivergenceBase, h, scored, o.topK ?? 32);
      out.savedBase = o.klDivergenceBase;
    }
  }
  return out;
}

async function saveBase(file: string, h: { contextLength: number; stride: number; nTokens: number }, s: Scored, topK: number): Promise<void> {
  const nVocab = s.dists[0]?.length ?? 0;
  const k = Math.min(topK, nVocab);
  const positions: KldPosition[] = s.dists.map((d, i) => ({ token: s.tokens[i]!, tokenLogprob: -s.nll[i]!, ...topKOf(d, k) }));
  await writeKldFile(file, { k, nVocab, nPositions: positions.length, ...h }, positions);
}

async function compareWithBase(file: string, h: { contextLength: number; stride: number; nTokens: number }, s: Scored): Promise<KldReport> {
  const base = await readKldFile(file);
  const bh = base.header;
  for (const key of ["contextLength", "stride", "nTokens"] as const) {
    if (bh[key] !== h[key]) throw new ValidationError(key, h[key], `differs from the base file ${file} (${bh[key]})`);
  }
  if (bh.nPositions !== s.dists.length) throw new ValidationError("positions", s.dists.length, `base file has ${bh.nPositions}`);
  if (s.dists[0] && s.dists[0].length !== bh.nVocab) throw new ValidationError("vocabSize", s.dists[0].length, `base file has ${bh.nVocab}`);
  const klds: number[] = [];
  let agree = 0;
  let lnRatio = 0;
  let baseNll = 0;
  base.positions.forEach((bp, i) => {
    if (bp.token !== s.tokens[i]) throw new ValidationError(`tokens[${i}]`, s.tokens[i], `base file scored token ${bp.token} here: different text or tokenizer`);
    const { kld, argmax } = klAtPosition(bp, s.dists[i]!);
    klds.push(kld);
    if (argmax === bp.ids[0]) agree++;
    lnRatio += bp.tokenLogprob + s.nll[i]!;
    baseNll -= bp.tokenLogprob;
  });
  const n = klds.length;
  const sorted = [...klds].sort((a, b) => a - b);
  const m = meanStats(klds);
  const basePpl = Math.exp(baseNll / n);
  const ppl = Math.exp(s.nll.reduce((a, x) => a + x, 0) / n);
  return {
    positions: n, meanKld: m.mean, kldSe: m.se, medianKld: sorted[Math.floor(n / 2)]!, p99Kld: sorted[Math.min(n - 1, Math.floor(n * 0.99))]!,
    maxKld: sorted[n - 1]!, top1Agreement: agree / n, basePpl, ppl, deltaPpl: ppl - basePpl, meanLnPplRatio: lnRatio / n,
  };
}

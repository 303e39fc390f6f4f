// Beam search as a pure, engine-independent module (TensorRT-LLM / HF semantics).
//
// Each step the engine gives one log-probability row per live beam ([numLive, vocab] f32, the
// log-softmax of the processed logits: penalties, bias and the grammar mask applied, temperature
// not). The module scores every continuation cum_logprob + logprob, takes the best 2·beamWidth
// candidates (ties: lower beam, then lower token id), and walks them in order:
//   - a candidate whose token is an end id (EOS / stop) becomes a finished hypothesis if it ranks
//     among the first beamWidth candidates (HF's rule; later EOS candidates are dropped);
//   - other candidates become the next live beams until beamWidth are taken.
// Finished hypotheses are ranked by score = cum_logprob / length^lengthPenalty (TRT-LLM), length =
// generated tokens including the end token; at most beamWidth are kept.
// earlyStopping (TRT-LLM / HF): 1 (true) stops once beamWidth hypotheses are finished; 0 (false)
// also stops when the best live beam, scored at its current length, cannot beat the worst kept
// hypothesis (HF's heuristic); 2 ("never") stops only when no live beam can beat it at any length
// up to maxTokens (exact, for lengthPenalty > 0 the bound uses maxTokens). At maxTokens (or when no
// beam is left) the live beams join the hypotheses unless the search already stopped.
// step() returns, for each new live beam, its parent beam index and token: the engine forks the
// parent's KV block table for it (kvForkPlan) and copy-on-writes the first block it writes into.
import { ValidationError } from "../errors.js";

export interface BeamSearchOptions {
  /** beams kept per step (= bestOf) */
  beamWidth: number;
  /** hypotheses returned by result() (= n); default beamWidth */
  numReturn?: number;
  /** score = cum_logprob / length^lengthPenalty; default 0 (plain cum_logprob) */
  lengthPenalty?: number;
  /** 0, 1 (default) or 2, see the header */
  earlyStopping?: number;
  /** tokens that finish a hypothesis (EOS, stop ids); default none */
  endIds?: readonly number[];
  /** generated tokens at most (>= 1) */
  maxTokens: number;
  /** also record each token's rank in its row (Beam.ranks; one O(vocab) count per kept candidate) */
  trackRanks?: boolean;
}

export interface Beam {
  tokens: number[];
  /** per-token log-probabilities (the rows' values), tokens.length entries */
  logprobs: number[];
  cumLogprob: number;
  /** per-token rank in its row (1 = most likely), when trackRanks is set; else empty */
  ranks: number[];
}

export interface Hypothesis extends Beam {
  score: number;
  /** ended with an end id (false: cut at maxTokens) */
  finished: boolean;
}

export interface BeamStep {
  /** parents[i]: index (in the previous live beams) that new live beam i extends */
  parents: Int32Array;
  /** tokens[i]: the token new live beam i appended */
  tokens: Int32Array;
  /** the search is over: call result() */
  done: boolean;
}

interface Candidate { beam: number; token: number; cum: number }

export class BeamSearch {
  readonly beamWidth: number;
  readonly numReturn: number;
  readonly lengthPenalty: number;
  readonly earlyStopping: number;
  readonly maxTokens: number;
  private readonly endIds: ReadonlySet<number>;
  private live: Beam[] = [{ tokens: [], logprobs: [], cumLogprob: 0, ranks: [] }];
  private readonly trackRanks: boolean;
  private hyps: Hypothesis[] = []; // best first, at most beamWidth
  private finishedSearch = false;

  constructor(o: BeamSearchOptions) {
    this.beamWidth = posInt("beamWidth", o.beamWidth);
    this.numReturn = o.numReturn === undefined ? this.beamWidth : posInt("numReturn", o.numReturn);
    if (this.numReturn > this.beamWidth) throw new ValidationError("numReturn", this.numReturn, `must be <= beamWidth ${this.beamWidth}`);
    this.lengthPenalty = o.lengthPenalty ?? 0;
    if (!Number.isFinite(this.lengthPenalty)) throw new ValidationError("lengthPenalty", o.lengthPenalty, "must be finite");
    this.earlyStopping = o.earlyStopping ?? 1;
    if (![0, 1, 2].includes(this.earlyStopping)) throw new ValidationError("earlyStopping", o.earlyStopping, "must be 0, 1 or 2");
    this.maxTokens = posInt("maxTokens", o.maxTokens);
    this.endIds = new Set(o.endIds ?? []);
    this.trackRanks = o.trackRanks ?? false;
  }

  /** The live beams (the rows step() expects, in this order). */
  get beams(): readonly Beam[] {
    return this.live;
  }

  get done(): boolean {
    return this.finishedSearch;
  }

  /** One step; `logprobs` is [beams.length, vocab] (row b belongs to beams[b]). */
  step(logprobs: Float32Array, vocab: number): BeamStep {
    if (this.finishedSearch) throw new ValidationError("step", "done", "the beam search is over");
    const nb = this.live.length;
    if (!Number.isInteger(vocab) || vocab <= 0 || logprobs.length < nb * vocab) {
      throw new ValidationError("logprobs", logprobs.length, `need ${nb} rows of vocab ${vocab}`);
    }
    const cands = topCandidates(this.live, logprobs, vocab, 2 * this.beamWidth);
    const len = this.live[0]!.tokens.length + 1;
    const next: Beam[] = [];
    const parents: number[] = [];
    for (let rank = 0; rank < cands.length && next.length < this.beamWidth; rank++) {
      const c = cands[rank]!;
      const parent = this.live[c.beam]!;
      const lp = logprobs[c.beam * vocab + c.token]!;
      const ranks = this.trackRanks ? [...parent.ranks, rankIn(logprobs, c.beam * vocab, vocab, lp)] : parent.ranks;
      const beam = { tokens: [...parent.tokens, c.token], logprobs: [...parent.logprobs, lp], cumLogprob: c.cum, ranks };
      if (this.endIds.has(c.token)) {
        if (rank < this.beamWidth) this.addHyp(beam, true);
      } else {
        next.push(beam);
        parents.push(c.beam);
      }
    }
    this.live = next;
    const stop = next.length === 0 || this.canStop(len);
    if (!stop && len >= this.maxTokens) {
      for (const b of next) this.addHyp(b, false);
    }
    this.finishedSearch = stop || len >= this.maxTokens;
    return { parents: Int32Array.from(parents), tokens: Int32Array.from(next.map((b) => b.tokens[len - 1]!)), done: this.finishedSearch };
  }

  /** The best numReturn hypotheses, best first (call when done; before that, includes live beams). */
  result(): Hypothesis[] {
    if (this.finishedSearch) return this.hyps.slice(0, this.numReturn);
    const all = [...this.hyps, ...this.live.map((b) => ({ ...b, score: this.score(b.cumLogprob, b.tokens.length), finished: false }))];
    return all.sort(byScore).slice(0, this.numReturn);
  }

  /** score = cum / len^lengthPenalty */
  score(cumLogprob: number, length: number): number {
    return this.lengthPenalty === 0 ? cumLogprob : cumLogprob / Math.pow(length, this.lengthPenalty);
  }

  private addHyp(b: Beam, finished: boolean): void {
    const h: Hypothesis = { ...b, score: this.score(b.cumLogprob, b.tokens.length), finished };
    if (this.hyps.length === this.beamWidth && !(h.score > this.hyps[this.hyps.length - 1]!.score)) return;
    let i = this.hyps.length;
    while (i > 0 && this.hyps[i - 1]!.score < h.score) i--;
    this.hyps.splice(i, 0, h);
    if (this.hyps.length > this.beamWidth) this.hyps.pop();
  }

  /** Early-stopping test after a step whose live beams have length `len`. */
  private canStop(len: number): boolean {
    if (this.hyps.length < this.beamWidth) return false;
    if (this.earlyStopping === 1) return true;
    const best = this.live.reduce((m, b) => Math.max(m, b.cumLogprob), -Infinity);
    const atLen = this.earlyStopping === 2 && this.lengthPenalty > 0 ? this.maxTokens : len;
    return this.hyps[this.hyps.length - 1]!.score >= this.score(best, atLen);
  }
}

/** 1 + entries of rows[at .. at+vocab) strictly above x */
function rankIn(rows: Float32Array, at: number, vocab: number, x: number): number {
  let r = 1;
  for (let i = at; i < at + vocab; i++) if (rows[i]! > x) r++;
  return r;
}

function byScore(a: Hypothesis, b: Hypothesis): number {
  return b.score - a.score;
}

function posInt(field: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new ValidationError(field, v, "must be a positive integer");
  return v;
}

/** Better candidate first: higher cum, then lower beam, then lower token. */
function better(a: Candidate, b: Candidate): boolean {
  return a.cum > b.cum || (a.cum === b.cum && (a.beam < b.beam || (a.beam === b.beam && a.token < b.token)));
}

/** The k best (beam, token) continuations, best first; one pass with a bounded min-heap. */
function topCandidates(live: readonly Beam[], rows: Float32Array, vocab: number, k: number): Candidate[] {
  const heap: Candidate[] = []; // heap[0] = worst kept
  for (let b = 0; b < live.length; b++) {
    const base = live[b]!.cumLogprob;
    for (let t = 0; t < vocab; t++) {
      const x = rows[b * vocab + t]!;
      if (x === -Infinity || Number.isNaN(x)) continue;
      const c = { beam: b, token: t, cum: base + x };
      if (heap.length < k) heapPush(heap, c);
      else if (better(c, heap[0]!)) heapReplaceTop(heap, c);
    }
  }
  return heap.sort((a, b) => (better(a, b) ? -1 : better(b, a) ? 1 : 0));
}

function heapPush(h: Candidate[], c: Candidate): void {
  h.push(c);
  let i = h.length - 1;
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (!better(h[p]!, h[i]!)) break;
    [h[p], h[i]] = [h[i]!, h[p]!];
    i = p;
  }
}

function heapReplaceTop(h: Candidate[], c: Candidate): void {
  h[0] = c;
  let i = 0;
  for (;;) {
    const l = 2 * i + 1, r = l + 1;
    let w = i;
    if (l < h.length && better(h[w]!, h[l]!)) w = l;
    if (r < h.length && better(h[w]!, h[r]!)) w = r;
    if (w === i) return;
    [h[w], h[i]] = [h[i]!, h[w]!];
    i = w;
  }
}

/**
 * KV bookkeeping for a step's parents: fork[i] = the previous beam whose block table new beam i
 * shares (KVCacheManager.fork(prev[fork[i]], new[i])); `freed` = previous beams no new beam
 * extends (free them after forking). The engine then calls copyOnWrite for each new beam before
 * writing its next token, which copies only the first shared block being written.
 */
export function kvForkPlan(parents: Int32Array, numPrev: number): { fork: Int32Array; freed: number[] } {
  const used = new Uint8Array(numPrev);
  for (const p of parents) {
    if (p < 0 || p >= numPrev) throw new ValidationError("parents", p, `must be in [0, ${numPrev})`);
    used[p] = 1;
  }
  const freed: number[] = [];
  used.forEach((u, i) => { if (!u) freed.push(i); });
  return { fork: Int32Array.from(parents), freed };
}

/**
 * n of best_of (sampling, not beam search): indices of the n sequences with the highest
 * cumulative logprob (of the raw distribution; the Sampler computes it when bestOf > n), best
 * first, ties to the lower index (TRT-LLM returns them re-indexed in this order).
 */
export function selectBestOf(cumLogprobs: readonly number[], n: number): number[] {
  if (!Number.isInteger(n) || n < 1 || n > cumLogprobs.length) {
    throw new ValidationError("n", n, `must be an integer in [1, ${cumLogprobs.length}]`);
  }
  cumLogprobs.forEach((c, i) => {
    if (Number.isNaN(c)) throw new ValidationError(`cumLogprobs[${i}]`, c, "NaN: the sequence's logprobs were not computed");
  });
  return cumLogprobs.map((c, i) => [c, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, n).map(([, i]) => i);
}

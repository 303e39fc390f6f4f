// Sampler: one batched step of token selection over logits [batch, vocab] f32 (row i belongs to
// rows[i]; `logits` may be a subarray view). With the addon's sampling passes (the default), a batch
// of 2+ rows takes the batched step (batch.ts): steps 0-6 per row in JS, then ONE native call runs
// step 6b and the whole-vocabulary work of steps 7-12 (and the raw logprobs) for every row over the
// addon's thread pool, bit-identical to the per-row path; rows it cannot take (logprobs of a row
// that earlier steps modify, top_k > 4096, more than 64 top logprobs) go through the per-row path.
// Otherwise rows are processed one after another. Scratch is shared and reused, so the hot path
// allocates nothing vocab-sized. Steps, in order (each is skipped when its parameters are neutral):
//   0. logprobs snapshot: when the row wants logprobs and a later step modifies logits, the raw
//      row is copied to scratch (logprobs are of the raw model distribution, see logprobs.ts);
//   1. logit bias (embeddingBias);
//   2. bad words / bad token ids (multi-token words ban their last token when the prefix matches);
//   3. min_tokens: EOS (unless ignoreEos) and stop ids banned while output length < minTokens;
//   4. repetition / presence / frequency penalties (see processors.ts for what is counted);
//   5. no_repeat_ngram_size;
//   6. per-request logitsProcessor callbacks, in the order given;
//   6b. guided decoding: the row's grammar bitmask (SamplingRow.tokenBitmask, see guided/) sets
//      every token the grammar disallows to -inf. It runs last among the logit modifiers, right
//      before greedy/temperature, so nothing after it can re-allow a token and greedy rows obey
//      it too; if earlier steps banned every allowed token, the grammar wins (guided/mask.ts);
//   -- the logits rows now hold the processed logits (modified in place: callers that need the
//      raw logits, e.g. returnGenerationLogits, copy them before calling sample) --
//   7. greedy rows: argmax (ties: lowest id). Done.
//   8. temperature T: folded into the weights w_i = exp((x_i - x_max) / T) (float64, a table-
//      driven exp within 2 ulp of Math.exp: select.ts), never written back;
//   9. min_p: keep x_i >= x_max + T·ln(min_p)  (<=> p_i >= min_p · p_max);
//  10. top_k: one-pass heap selection of the k best (no sort of the vocabulary);
//  11. top_p (after top-p decay): smallest prefix of the survivors, sorted by probability (logit
//      desc, id asc), whose renormalized mass reaches top_p. With top_k the survivors are <= k
//      tokens; without it the one weight pass also lists the tokens near the top, and a weight
//      histogram of that list (or, for flat rows, of a range located by a subsampled histogram)
//      finds the cut bin; only the cut bin is sorted (draw.ts drawNucleus);
//  12. draw: u = Philox(seed, step, stream) in [0,1); the first survivor at which the cumulative
//      weight exceeds u · Σw is the token, survivors taken in a fixed order: by probability after
//      top_k; with top_p alone, the bins above the cut in id order, then the cut bin's prefix by
//      probability; by id otherwise (the no-top_p scan skips whole 2048-id blocks by their sums).
//      Each token thus owns one interval of u of length its probability (exact; the stratified-u
//      test in sampling-distribution.test.ts checks every path).
// Cost at batch 64 x 152k vocabulary: see docs/PERF.md (bench:sampling).
// min_p and top_k both keep a prefix of the tokens sorted by logit, so applying them in either
// order gives the same set; top_p then renormalizes over what is left (TRT-LLM order).
import { ValidationError } from "../errors.js";
import { LogprobScratch, logprobAndRank, topLogprobs, type TopLogprob } from "./logprobs.js";
import type { ResolvedSamplingParams } from "./params.js";
import {
  applyBadWords, applyBias, applyMinTokens, applyNoRepeatNgram, applyPenalties, PenaltyScratch, TokenSeq,
} from "./processors.js";
import { uniformAt, type RngKey } from "./rng.js";
import { drawFull, drawSelected, drawTopK, DrawScratch, listNats, type Filters } from "./draw.js";
import { argmax } from "./select.js";
import {
  batchedSampling, KIND_DONE, KIND_TOPK, LP_CAP, NativeBatch, O_ALLOWED, O_COUNT, O_KIND, O_TOKEN, OP_ARGMAX, OP_SAMPLE, OUT,
  P_INVT, P_K, P_LISTNATS, P_LOGMINP, P_LPK, P_LSE, P_OP, P_TOPP, P_U, PLAN, sampleBatched, TOPK_CAP, type SampleFailure,
} from "./batch.js";
import { applyTokenBitmask } from "./guided/mask.js";

/** Masks allowing at most this many tokens are drawn through the top-k path (see drawSample). */
const GUIDED_TOPK_MAX = 2048;

export interface SamplingRow {
  params: ResolvedSamplingParams;
  /** the sequence's RNG key (rngKeyForSeed(params.seed, sequenceIndex)), kept by the request */
  rng: RngKey;
  promptTokenIds: ArrayLike<number>;
  /** output tokens so far; its length is the RNG step and drives min_tokens and top-p decay */
  outputTokenIds: ArrayLike<number>;
  /** `params.bad` tokenized by the executor (each entry one multi-token bad word) */
  badWordsIds?: readonly (readonly number[])[];
  /** top-k logprobs wanted for this token; default params.logprobs (null: none, 0: sampled only) */
  numLogprobs?: number | null;
  /** computes `logprob` even without numLogprobs (always on when bestOf > n, for the ranking) */
  needLogprob?: boolean;
  requestId?: string | number;
  /**
   * Guided decoding: XGrammar bitmask for this step, Int32Array [ceil(vocab / 32)], bit t set =
   * token t allowed (GuidedState.nextBitmask / computeBitmasks). Undefined: no grammar.
   */
  tokenBitmask?: Int32Array;
}

export interface SampleResult {
  token: number;
  /** raw-distribution logprob of the token; NaN when the row asked for none */
  logprob: number;
  /** 1 + tokens with a strictly larger raw logit; 0 when the row asked for no logprobs */
  rank: number;
  topLogprobs?: TopLogprob[];
}

export class Sampler {
  private raw = new Float32Array(0);
  private readonly seq = new TokenSeq();
  private readonly penalty = new PenaltyScratch();
  private readonly draw = new DrawScratch();
  private readonly lp = new LogprobScratch();
  /** tokens the current row's grammar mask allows (0: no mask) */
  private allowed = 0;
  /** the batched native step's buffers (null: native passes off) */
  private batch: NativeBatch | null | undefined;

  sample(logits: Float32Array, rows: readonly SamplingRow[], vocab: number): SampleResult[] {
    if (!Number.isInteger(vocab) || vocab <= 0) throw new ValidationError("vocab", vocab, "must be a positive integer");
    if (logits.length < rows.length * vocab) {
      throw new ValidationError("logits", logits.length, `too short for ${rows.length} rows of vocab ${vocab}`);
    }
    if (rows.length >= 2 && batchedSampling() && (this.batch ??= NativeBatch.create()) !== null) {
      const res = sampleBatched(this, this.batch, logits, rows.map((_, i) => i), rows, vocab);
      for (const r of res) if ("error" in r) throw r.error;
      return res as SampleResult[];
    }
    const out: SampleResult[] = new Array(rows.length);
    for (let i = 0; i < rows.length; i++) out[i] = this.sampleRow(logits.subarray(i * vocab, (i + 1) * vocab), rows[i], vocab);
    return out;
  }

  /**
   * rows[i] sampled from logits row rowIdx[i] (logits [*, vocab]; distinct rows), each row on its
   * own: a row whose processing throws (a logits processor, bad parameters) gets `{ error }` and the
   * others are sampled as usual (the executor fails only that request). Batched like sample().
   */
  sampleEach(logits: Float32Array, rowIdx: readonly number[], rows: readonly SamplingRow[], vocab: number): (SampleResult | SampleFailure)[] {
    if (!Number.isInteger(vocab) || vocab <= 0) throw new ValidationError("vocab", vocab, "must be a positive integer");
    if (rowIdx.length !== rows.length) throw new ValidationError("rowIdx", rowIdx.length, `must have one entry per row (${rows.length})`);
    const seen = new Set<number>();
    for (const i of rowIdx) {
      if (!Number.isInteger(i) || i < 0 || (i + 1) * vocab > logits.length || seen.has(i)) {
        throw new ValidationError("rowIdx", i, `must be distinct logits rows in [0, ${Math.floor(logits.length / vocab)})`);
      }
      seen.add(i);
    }
    if (rows.length >= 2 && batchedSampling() && (this.batch ??= NativeBatch.create()) !== null) {
      return sampleBatched(this, this.batch, logits, rowIdx, rows, vocab);
    }
    return rows.map((r, i) => {
      try {
        return this.sampleRow(logits.subarray(rowIdx[i] * vocab, (rowIdx[i] + 1) * vocab), r, vocab);
      } catch (error) {
        return { error };
      }
    });
  }

  /**
   * The batched step's phase 1 for row i (batch.ts): steps 0-6 in JS, then the row's plan for the
   * native call (step 6b, the mask, and steps 7-12's vocabulary passes). Rows the batch cannot take
   * (logprobs of a modified row, top_k or logprobs above its capacities) are sampled whole here.
   */
  prepareBatchRow(row: Float32Array, r: SamplingRow, vocab: number, b: NativeBatch, i: number): SampleResult | null {
    const p = r.params;
    if (p.strategy === "beam") throw new ValidationError("useBeamSearch", true, "beam search is not supported by Sampler.sample");
    const { numLogprobs, wantLogprob } = logprobsWanted(r);
    const k = p.topK > 0 && p.topK < vocab ? p.topK : 0;
    if ((wantLogprob && modifiesLogits(p, r)) || k > TOPK_CAP || (numLogprobs ?? 0) > LP_CAP) return this.sampleRow(row, r, vocab);
    this.applyProcessors(row, r, vocab, this.seq.set(r.promptTokenIds, r.outputTokenIds), false);
    const q = b.plan.subarray(i * PLAN, (i + 1) * PLAN);
    q[P_OP] = p.strategy === "greedy" || !(p.temperature > 1e-30) ? OP_ARGMAX : OP_SAMPLE;
    q[P_LSE] = wantLogprob ? 1 : 0;
    q[P_LPK] = numLogprobs !== null && numLogprobs > 0 ? numLogprobs : 0;
    if (q[P_OP] === OP_SAMPLE) {
      const f = this.filters(r);
      q[P_K] = k;
      q[P_INVT] = f.invT;
      q[P_LOGMINP] = f.logMinP;
      q[P_TOPP] = f.topP;
      q[P_LISTNATS] = f.topP < 1 ? listNats(f.topP) : 0;
      q[P_U] = uniformAt(r.rng, r.outputTokenIds.length);
    }
    b.setMask(i, r.tokenBitmask);
    return null;
  }

  /** Phase 3 of the batched step for row i: the token from the native results (the top-k draw's exps in JS). */
  finishBatchRow(row: Float32Array, r: SamplingRow, vocab: number, b: NativeBatch, i: number): number {
    const o = b.out.subarray(i * OUT, (i + 1) * OUT);
    if (o[O_KIND] === KIND_DONE) return o[O_TOKEN];
    const u = uniformAt(r.rng, r.outputTokenIds.length);
    const at = i * TOPK_CAP;
    if (o[O_KIND] === KIND_TOPK) return drawSelected(b.idx.subarray(at), b.val.subarray(at), o[O_COUNT], this.filters(r), u, this.draw);
    this.allowed = o[O_ALLOWED]; // not drawn (unreachable: such rows are sampled whole); the row is masked already
    return this.drawSample(row, r, vocab);
  }

  /** One row through the whole pipeline (the per-row path). */
  sampleRow(row: Float32Array, r: SamplingRow, vocab: number): SampleResult {
    const p = r.params;
    if (p.strategy === "beam") throw new ValidationError("useBeamSearch", true, "beam search is not supported by Sampler.sample");
    const seq = this.seq.set(r.promptTokenIds, r.outputTokenIds);
    const { numLogprobs, wantLogprob } = logprobsWanted(r);
    let raw = row;
    if (wantLogprob && modifiesLogits(p, r)) {
      if (this.raw.length < vocab) this.raw = new Float32Array(vocab);
      raw = this.raw.subarray(0, vocab);
      raw.set(row);
    }
    this.applyProcessors(row, r, vocab, seq);
    const token = p.strategy === "greedy" ? argmax(row, vocab) : this.drawSample(row, r, vocab);
    if (!wantLogprob) return { token, logprob: NaN, rank: 0 };
    const { logprob, rank, lse } = logprobAndRank(raw, vocab, token);
    const res: SampleResult = { token, logprob, rank };
    if (numLogprobs !== null && numLogprobs > 0) res.topLogprobs = topLogprobs(raw, vocab, numLogprobs, lse, this.lp);
    return res;
  }

  /** Steps 1-6b in place (6b only with `mask`: the batched step applies masks natively). */
  private applyProcessors(row: Float32Array, r: SamplingRow, vocab: number, seq: TokenSeq, mask = true): void {
    const p = r.params;
    if (p.embeddingBias) applyBias(row, vocab, p.embeddingBias);
    if (p.badTokenIds.length > 0 || (r.badWordsIds?.length ?? 0) > 0) {
      applyBadWords(row, vocab, seq, p.badTokenIds, r.badWordsIds ?? []);
    }
    if (r.outputTokenIds.length < p.minTokens) applyMinTokens(row, vocab, p.ignoreEos ? undefined : p.endId, p.stopTokenIds);
    if (p.repetitionPenalty !== 1 || p.presencePenalty !== 0 || p.frequencyPenalty !== 0) {
      const pen = {
        repetition: p.repetitionPenalty, presence: p.presencePenalty,
        frequency: p.frequencyPenalty, promptIgnoreLength: p.promptIgnoreLength,
      };
      applyPenalties(row, vocab, seq, pen, this.penalty);
    }
    if (p.noRepeatNgramSize > 0) applyNoRepeatNgram(row, vocab, seq, p.noRepeatNgramSize);
    if (p.logitsProcessors.length > 0) {
      const ids = [...Array.from(r.promptTokenIds), ...Array.from(r.outputTokenIds)];
      const ctx = { requestId: r.requestId, step: r.outputTokenIds.length };
      for (const fn of p.logitsProcessors) fn(row, ids, ctx);
    }
    if (mask) this.allowed = r.tokenBitmask ? applyTokenBitmask(row, vocab, r.tokenBitmask) : 0;
  }

  /** The temperature / min_p / top_p filters of a sampling row (temperature > 1e-30). */
  private filters(r: SamplingRow): Filters {
    const p = r.params;
    const topP = effectiveTopP(p, r.outputTokenIds);
    return { invT: 1 / p.temperature, logMinP: p.minP > 0 ? p.temperature * Math.log(p.minP) : -Infinity, topP };
  }

  /** Steps 8-12. */
  private drawSample(row: Float32Array, r: SamplingRow, vocab: number): number {
    const p = r.params;
    const u = uniformAt(r.rng, r.outputTokenIds.length);
    if (!(p.temperature > 1e-30)) return argmax(row, vocab); // 1/T would overflow: the limit is greedy
    const f = this.filters(r);
    let k = p.topK > 0 && p.topK < vocab ? p.topK : 0;
    // A grammar mask leaving few tokens: top-k over exactly those is the same distribution (every
    // other logit is -inf) without the whole-vocabulary top-p pass.
    if (this.allowed > 0 && this.allowed <= GUIDED_TOPK_MAX && (k === 0 || this.allowed < k)) k = this.allowed;
    if (k > 0) return drawTopK(row, vocab, k, f, u, this.draw);
    return drawFull(row, vocab, f, u, this.draw);
  }
}

/** Top logprobs the row wants (null: none) and whether it wants the sampled token's logprob. */
function logprobsWanted(r: SamplingRow): { numLogprobs: number | null; wantLogprob: boolean } {
  const p = r.params;
  const numLogprobs = r.numLogprobs !== undefined ? r.numLogprobs : p.logprobs;
  return { numLogprobs, wantLogprob: numLogprobs !== null || r.needLogprob === true || p.bestOf > p.n };
}

/** Whether steps 1-6b can change the row (then the raw row is kept for logprobs). */
function modifiesLogits(p: ResolvedSamplingParams, r: SamplingRow): boolean {
  return p.embeddingBias !== undefined || p.badTokenIds.length > 0 || (r.badWordsIds?.length ?? 0) > 0
    || r.outputTokenIds.length < p.minTokens || p.repetitionPenalty !== 1 || p.presencePenalty !== 0
    || p.frequencyPenalty !== 0 || p.noRepeatNgramSize > 0 || p.logitsProcessors.length > 0
    || r.tokenBitmask !== undefined;
}

/**
 * Top-p decay (TRT-LLM top_p_decay/top_p_min/top_p_reset_ids): after each generated token
 * p <- max(topPMin, p · decay), reset to topP when the token is topPResetIds. Equivalently
 * p_t = max(topPMin, topP · decay^k) with k = output tokens after the last reset token.
 */
export function effectiveTopP(p: ResolvedSamplingParams, output: ArrayLike<number>): number {
  if (p.topPDecay === 1 || p.topP >= 1) return p.topP;
  let k = 0;
  for (let i = output.length - 1; i >= 0 && output[i] !== p.topPResetIds; i--) k++;
  return Math.max(p.topPMin, p.topP * Math.pow(p.topPDecay, k));
}

// Beam search inside the executor (TensorRT-LLM's useBeamSearch; beam width = bestOf, n returned).
// A beam request is a RequestGroup of bestOf Requests used as *slots*: slot i holds live beam i
// (its tokens, its KV block table). Only slot 0 enters the scheduler at first; it prefills the
// prompt. The search itself is src/sampling/beam.ts (BeamSearch); this file feeds it and moves KV:
//   - each step every live slot computes its last token; its logits row is processed (bias, bad
//     words, min tokens, penalties, no-repeat-ngram, logitsProcessor; no temperature) and
//     log-softmaxed into a pending row;
//   - when every live slot has its row (a group may be split over steps, or a slot preempted and
//     recomputed), BeamSearch.step picks the new beams; slot i then takes a shared copy of its
//     parent's block table (KVCacheManager.reassign, ref-counted: the prompt blocks stay shared by
//     all beams), its tokens and output, and at once copy-on-writes the block its next token is
//     written into if that block is shared (KvPool.copyBlock). Slots beyond the live count are
//     parked (KV freed, out of the scheduler) and may be activated again by a later step;
//   - slot 0 books, in the capacity scheduler, the blocks of the beams not yet live
//     (KvRequest.pendingForks: to completion under GUARANTEED_NO_EVICT, the next step's copies under
//     MAX_UTILIZATION), so forking never takes blocks the scheduler promised others. After a step
//     the copies never outnumber the blocks the dropped beams freed.
// Outputs: the search's n best hypotheses, best first (score = cumLogprob / length^lengthPenalty);
// cumulativeLogprob and logprobs are those of the processed distribution the search ranked by.
// Not supported with beam search (rejected at submission): guided decoding, stop strings, top-k
// logprobs (logprobs > 0). Beam requests do not stream deltas: the stream yields the final output.
import type { CompletionOutput, FinishReason } from "../api/request-output.js";
import type { SamplingParams } from "../api/sampling-params.js";
import { ValidationError } from "../errors.js";
import type { KVCacheManager } from "../kvcache/kv-cache-manager.js";
import { RequestState } from "../scheduler/request-state.js";
import { BeamSearch, type Beam, type Hypothesis } from "../sampling/beam.js";
import { logSumExp } from "../sampling/logprobs.js";
import {
  applyBadWords, applyBias, applyMinTokens, applyNoRepeatNgram, applyPenalties, PenaltyScratch, TokenSeq,
} from "../sampling/processors.js";
import type { SamplingRow } from "../sampling/sampler.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import type { Request } from "./request.js";

/** Rejects what beam search does not support (ValidationError naming the field). */
export function checkBeamParams(p: SamplingParams): void {
  if (p.strategy !== "beam") return;
  if (p.guidedDecoding !== undefined) throw new ValidationError("guidedDecoding", p.guidedDecoding, "is not supported with beam search");
  if (p.stop.length > 0) throw new ValidationError("stop", p.stop, "stop strings are not supported with beam search; use stopTokenIds");
  if (p.logprobs !== null && p.logprobs > 0) {
    throw new ValidationError("logprobs", p.logprobs, "top-k logprobs are not supported with beam search; use logprobs: 0 (each token's own logprob)");
  }
}

/** Blocks one beam needs beyond the prompt's full blocks (which all beams share). */
export function blocksPerExtraBeam(kv: Pick<KVCacheManager, "blocksFor" | "tokensPerBlock">, promptLen: number, maxTokens: number): number {
  return kv.blocksFor(promptLen + maxTokens) - Math.floor(promptLen / kv.tokensPerBlock);
}

/** Turns one logits row into the processed log-probabilities beam search ranks by. */
export class BeamRowProcessor {
  private readonly seq = new TokenSeq();
  private readonly penalty = new PenaltyScratch();

  /** Processes `row` in place ([vocab] f32) and returns a log-softmaxed copy. */
  logprobs(row: Float32Array, r: SamplingRow, vocab: number, extraEos: ReadonlySet<number>): Float32Array {
    const p = r.params;
    const seq = this.seq.set(r.promptTokenIds, r.outputTokenIds);
    if (p.embeddingBias) applyBias(row, vocab, p.embeddingBias);
    if (p.badTokenIds.length > 0 || (r.badWordsIds?.length ?? 0) > 0) applyBadWords(row, vocab, seq, p.badTokenIds, r.badWordsIds ?? []);
    if (r.outputTokenIds.length < p.minTokens) {
      applyMinTokens(row, vocab, p.ignoreEos ? undefined : p.endId, p.stopTokenIds);
      if (!p.ignoreEos) for (const t of extraEos) if (t < vocab) row[t] = -Infinity;
    }
    if (p.repetitionPenalty !== 1 || p.presencePenalty !== 0 || p.frequencyPenalty !== 0) {
      const pen = { repetition: p.repetitionPenalty, presence: p.presencePenalty, frequency: p.frequencyPenalty, promptIgnoreLength: p.promptIgnoreLength };
      applyPenalties(row, vocab, seq, pen, this.penalty);
    }
    if (p.noRepeatNgramSize > 0) applyNoRepeatNgram(row, vocab, seq, p.noRepeatNgramSize);
    if (p.logitsProcessors.length > 0) {
      const ids = [...Array.from(r.promptTokenIds), ...Array.from(r.outputTokenIds)];
      for (const fn of p.logitsProcessors) fn(row, ids, { requestId: r.requestId, step: r.outputTokenIds.length });
    }
    const lse = logSumExp(row, vocab);
    const out = new Float32Array(vocab);
    for (let i = 0; i < vocab; i++) out[i] = row[i]! - lse;
    return out;
  }
}

/** What a beam step changed in the scheduler's lists. */
export interface BeamMoves {
  /** parked slots that now hold a live beam: add to running */
  activated: Request[];
  /** slots no longer live (KV freed): remove from running */
  parked: Request[];
  /** the search ended: every slot is finished */
  done: boolean;
}

export class BeamRun {
  readonly search: BeamSearch;
  private readonly pending: (Float32Array | null)[];
  private numLive = 1;
  private outputsDone: CompletionOutput[] | null = null;

  constructor(readonly slots: readonly Request[], readonly endIds: readonly number[], private readonly tokenizer: Tokenizer) {
    const s0 = slots[0]!, p = s0.params;
    this.search = new BeamSearch({
      beamWidth: slots.length, numReturn: p.n, lengthPenalty: p.lengthPenalty, earlyStopping: p.earlyStopping,
      endIds, maxTokens: s0.maxTokens, trackRanks: p.logprobs !== null,
    });
    this.pending = slots.map(() => null);
    this.updateReserve();
  }

  get done(): boolean {
    return this.outputsDone !== null;
  }

  /** Stores a live slot's processed row; true when every live slot has one (time to advance). */
  setRow(slot: Request, row: Float32Array): boolean {
    this.pending[slot.index] = row;
    for (let i = 0; i < this.numLive; i++) if (!this.pending[i]) return false;
    return true;
  }

  /** A preempted slot recomputes its tokens: its row comes again. */
  dropRow(slot: Request): void {
    this.pending[slot.index] = null;
  }

  /** One beam step over the pending rows; moves tokens, outputs and KV between slots. */
  advance(kv: KVCacheManager, copyBlock: (src: number, dst: number) => void, vocab: number): BeamMoves {
    const live = this.numLive;
    const rows = new Float32Array(live * vocab);
    for (let i = 0; i < live; i++) rows.set(this.pending[i]!, i * vocab);
    this.pending.fill(null);
    const st = this.search.step(rows, vocab);
    if (st.done) return this.finish();
    const nNew = st.parents.length;
    const parentTokens = this.slots.slice(0, live).map((s) => s.tokens.slice());
    kv.reassign(Array.from(st.parents, (p, i) => ({ dst: this.slots[i]!.id, src: this.slots[p]!.id })));
    const parked = this.slots.slice(nNew, live);
    for (const s of parked) {
      kv.free(s);
      s.numComputedTokens = 0;
    }
    this.search.beams.forEach((b, i) => this.setBeam(this.slots[i]!, parentTokens[st.parents[i]!]!, b, kv, copyBlock));
    const activated = this.slots.slice(live, nNew);
    this.numLive = nNew;
    this.updateReserve();
    return { activated, parked, done: false };
  }

  /** The outputs: the n best hypotheses when done; on a cancel, the best so far (live beams 'cancelled'). */
  outputs(): CompletionOutput[] {
    return this.outputsDone ?? this.search.result().map((h, i) => this.toOutput(h, i, "cancelled"));
  }

  /** slot takes beam b: parent's tokens + b's last token, its KV (already reassigned), copy-on-write */
  private setBeam(slot: Request, parentTokens: number[], b: Beam, kv: KVCacheManager, copyBlock: (src: number, dst: number) => void): void {
    slot.tokens.length = 0;
    slot.tokens.push(...parentTokens, b.tokens[b.tokens.length - 1]!);
    const out = slot.output;
    out.tokenIds.length = 0;
    out.tokenIds.push(...b.tokens);
    out.cumulativeLogprob = b.cumLogprob;
    slot.numComputedTokens = parentTokens.length;
    slot.state = RequestState.GENERATION_IN_PROGRESS;
    const cow = kv.copyOnWrite(slot);
    if (cow) copyBlock(cow.src, cow.dst);
  }

  private finish(): BeamMoves {
    this.outputsDone = this.search.result().map((h, i) => this.toOutput(h, i, "length"));
    for (const s of this.slots) {
      s.output.finishReason = "stop";
      s.state = RequestState.GENERATION_TO_COMPLETE;
    }
    this.slots[0]!.pendingForks = 0;
    return { activated: [], parked: [], done: true };
  }

  private toOutput(h: Hypothesis, index: number, unfinished: FinishReason): CompletionOutput {
    const p = this.slots[0]!.params;
    const last = h.tokens[h.tokens.length - 1];
    const byStopId = h.finished && last !== undefined && p.stopTokenIds.includes(last) && last !== p.endId;
    const tok = this.tokenizer;
    return {
      index, tokenIds: [...h.tokens], cumulativeLogprob: h.cumLogprob,
      text: p.detokenize ? tok.decode(h.tokens.filter((t) => t < tok.vocabSize), { skipSpecialTokens: p.skipSpecialTokens }) : "",
      logprobs: p.logprobs === null ? null : h.tokens.map((t, j) => new Map([[t, { logprob: h.logprobs[j]!, rank: h.ranks[j]! }]])),
      finishReason: h.finished ? "stop" : unfinished, stopReason: byStopId ? last : null,
    };
  }

  /** slot 0 books the blocks of the beams not live yet */
  private updateReserve(): void {
    this.slots[0]!.pendingForks = this.slots.length - this.numLive;
  }
}

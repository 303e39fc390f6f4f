// Request: one output sequence inside the executor worker, with an explicit state (RequestState,
// after TensorRT-LLM's LlmRequestState; transitions drawn in src/scheduler/request-state.ts). A
// client request with bestOf > 1 becomes bestOf Requests sharing its requestId (index 0..bestOf-1).
// It implements the scheduler's SchedRequest: `tokens` = prompt + outputs (append-only), numTokens =
// tokens.length, and numComputedTokens = tokens whose KV exists.
import type { CompletionOutput, FinishReason, TokenLogprobs } from "../api/request-output.js";
import type { SamplingParams } from "../api/sampling-params.js";
import { RequestState } from "../scheduler/request-state.js";
import type { SchedRequest } from "../scheduler/types.js";
import type { SampleResult, SamplingRow } from "../sampling/sampler.js";
import { rngKeyForSeed } from "../sampling/rng.js";
import { checkTokenStop, StopStringMatcher } from "../sampling/stop.js";
import { IncrementalDetokenizer } from "../tokenizer/detokenizer.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";

export { RequestState };

export interface RequestInit {
  /** unique per sequence (the KV manager's key) */
  seqId: number;
  /** the client's request id */
  requestId: number;
  /** output index within the client request */
  index: number;
  promptTokenIds: readonly number[];
  params: SamplingParams;
  /** max new tokens, already capped so that prompt + output <= maxSeqLen */
  maxTokens: number;
  arrival: number;
  priority: number;
  cacheSalt: string | undefined;
  badWordsIds: number[][];
  /** end ids beyond params.endId that also stop (the tokenizer's other EOG ids) */
  extraEos: ReadonlySet<number>;
}

/** What one step produced for a sequence. */
export interface SeqDelta {
  token: number;
  /** text now safe to emit (whole characters, nothing that may start a stop string) */
  text: string;
  logprobs: TokenLogprobs | null;
}

export class Request implements SchedRequest {
  readonly id: number;
  readonly requestId: number;
  readonly index: number;
  readonly priority: number;
  readonly arrival: number;
  readonly promptLen: number;
  readonly maxTokens: number;
  readonly cacheSalt: string | undefined;
  readonly params: SamplingParams;
  state = RequestState.CONTEXT_INIT;
  numComputedTokens = 0;
  /** prompt then outputs */
  readonly tokens: number[];
  readonly output: CompletionOutput;
  readonly row: SamplingRow;
  /** prompt tokens found in the prefix cache at first admission (null until admitted) */
  numCachedTokens: number | null = null;
  /** computes its request's prompt logprobs (output 0 when promptLogprobs is set): every prompt
   *  row is computed, so it never attaches prefix-cache blocks (KvRequest.skipPrefixCache) */
  readonly skipPrefixCache: boolean;
  /** beam search: beams still to be forked from this slot (KvRequest.pendingForks; slot 0 books them) */
  pendingForks = 0;
  get forkSharedTokens(): number {
    return this.promptLen;
  }
  private readonly detok: IncrementalDetokenizer | null;
  private readonly stops: StopStringMatcher;
  /** end ids beyond params.endId that also stop (the tokenizer's other EOG ids) */
  readonly extraEos: ReadonlySet<number>;
  private readonly tokenizerVocab: number;

  constructor(init: RequestInit, tokenizer: Tokenizer) {
    this.id = init.seqId;
    this.requestId = init.requestId;
    this.index = init.index;
    this.priority = init.priority;
    this.arrival = init.arrival;
    this.promptLen = init.promptTokenIds.length;
    this.maxTokens = init.maxTokens;
    this.cacheSalt = init.cacheSalt;
    this.params = init.params;
    this.extraEos = init.extraEos;
    this.tokenizerVocab = tokenizer.vocabSize;
    this.tokens = [...init.promptTokenIds];
    this.skipPrefixCache = init.index === 0 && init.params.promptLogprobs !== null;
    this.output = {
      index: init.index, text: "", tokenIds: [], cumulativeLogprob: this.wantsLogprob(init.params) ? 0 : null,
      logprobs: init.params.logprobs !== null ? [] : null, finishReason: null, stopReason: null,
    };
    this.row = {
      params: init.params, rng: rngKeyForSeed(init.params.seed, init.index), promptTokenIds: init.promptTokenIds,
      outputTokenIds: this.output.tokenIds, badWordsIds: init.badWordsIds,
      needLogprob: this.wantsLogprob(init.params), requestId: init.requestId,
    };
    const p = init.params;
    this.detok = p.detokenize ? new IncrementalDetokenizer(tokenizer, { skipSpecialTokens: p.skipSpecialTokens }) : null;
    this.stops = new StopStringMatcher(p.stop, p.includeStopStrInOutput);
  }

  /** the log-softmax pass over the vocabulary costs about as much as the rest of sampling: only
   *  when logprobs are asked for, or to rank bestOf > n candidates (cumulativeLogprob stays null otherwise) */
  private wantsLogprob(p: SamplingParams): boolean {
    return p.logprobs !== null || p.bestOf > p.n;
  }

  get numTokens(): number {
    return this.tokens.length;
  }

  get finished(): boolean {
    return this.output.finishReason !== null;
  }

  /** every known token has its KV: the next forward of this sequence samples */
  get samplesThisStep(): boolean {
    return this.numComputedTokens === this.tokens.length;
  }

  /**
   * Appends a sampled token: updates output, logprobs, detokenized text and stop conditions
   * (stop strings first, then stop ids / EOS / length). Finishes the sequence when one hits.
   */
  appendToken(r: SampleResult): SeqDelta {
    const out = this.output;
    out.tokenIds.push(r.token);
    this.tokens.push(r.token);
    if (out.cumulativeLogprob !== null) out.cumulativeLogprob += r.logprob;
    let logprobs: TokenLogprobs | null = null;
    if (out.logprobs) {
      logprobs = new Map([[r.token, { logprob: r.logprob, rank: r.rank }]]);
      for (const t of r.topLogprobs ?? []) if (!logprobs.has(t.token)) logprobs.set(t.token, { logprob: t.logprob, rank: t.rank });
      out.logprobs.push(logprobs);
    }
    // ids past the tokenizer's vocabulary (a model's padded embedding rows) have no text
    const feed = this.stops.feed(this.detok && r.token < this.tokenizerVocab ? this.detok.push(r.token) : "");
    out.text += feed.emit;
    if (feed.stopped) return { token: r.token, text: feed.emit + this.finish("stop", feed.stopReason), logprobs };
    const n = out.tokenIds.length;
    let stop = checkTokenStop({ ...this.params, maxTokens: this.maxTokens }, r.token, n);
    if (!stop && !this.params.ignoreEos && n >= this.params.minTokens && this.extraEos.has(r.token)) {
      stop = { finishReason: "stop", stopReason: null };
    }
    const tail = stop ? this.finish(stop.finishReason, stop.stopReason) : "";
    return { token: r.token, text: feed.emit + tail, logprobs };
  }

  /**
   * Ends the sequence. Unless a stop string ended it, flushes the detokenizer's partial character
   * and the held-back text; returns that tail. State goes to GENERATION_TO_COMPLETE.
   */
  finish(reason: FinishReason, stopReason: string | number | null): string {
    if (this.finished) return "";
    let tail = "";
    if (!(reason === "stop" && typeof stopReason === "string")) {
      tail = this.stops.feed(this.detok ? this.detok.flush() : "").emit + this.stops.flush();
      this.output.text += tail;
    }
    this.output.finishReason = reason;
    this.output.stopReason = stopReason;
    this.state = RequestState.GENERATION_TO_COMPLETE;
    return tail;
  }
}

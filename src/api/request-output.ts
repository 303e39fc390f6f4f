// RequestOutput / CompletionOutput: TensorRT-LLM's output objects (tensorrt_llm/executor/result.py)
// with camelCase field names: request_id -> requestId, prompt_token_ids -> promptTokenIds,
// token_ids -> tokenIds, cumulative_logprob -> cumulativeLogprob, finish_reason -> finishReason,
// stop_reason -> stopReason. The HTTP server maps them back to OpenAI's snake_case bodies.

export type FinishReason = "stop" | "length" | "cancelled";

/** One logprob entry, as TensorRT-LLM's `Logprob{logprob, rank}` (rank 1 = most likely). */
export interface Logprob {
  logprob: number;
  rank: number;
}

/** Per output token: token id -> Logprob for the sampled token and the requested top-k. */
export type TokenLogprobs = Map<number, Logprob>;

export interface CompletionOutput {
  /** position among the request's n outputs */
  index: number;
  /** detokenized text of tokenIds (stop string excluded unless includeStopStrInOutput) */
  text: string;
  tokenIds: number[];
  /** sum of the sampled tokens' raw log-probabilities (natural log); null unless logprobs were
   *  requested or bestOf > n (then outputs are ranked by it) */
  cumulativeLogprob: number | null;
  /** per output token, when SamplingParams.logprobs was set; null otherwise */
  logprobs: TokenLogprobs[] | null;
  /** null while running */
  finishReason: FinishReason | null;
  /** the stop string or stop token id that ended the sequence; null for EOS, length, cancel */
  stopReason: string | number | null;
}

export interface RequestOutput {
  requestId: number;
  /** null when the request was given as token ids */
  prompt: string | null;
  promptTokenIds: number[];
  outputs: CompletionOutput[];
  finished: boolean;
  /**
   * SamplingParams.promptLogprobs (TensorRT-LLM's prompt_logprobs): one entry per prompt token,
   * entry i = log P(prompt[i] | prompt[<i]) of the raw model distribution with its rank, plus the
   * top-k alternatives (k = promptLogprobs); entry 0 is null (nothing precedes it). null when not
   * requested. Requests asking for it never take prefix-cache hits (every prompt row is computed).
   */
  promptLogprobs: (TokenLogprobs | null)[] | null;
}

/** `length` of a completion, as TensorRT-LLM's CompletionOutput.length */
export function completionLength(c: CompletionOutput): number {
  return c.tokenIds.length;
}

// The resolved per-request sampling parameters, in the shape the sampler consumes. The user-facing
// input type, its validation and default resolution live in src/api/sampling-params.ts (which
// re-exports these types); they are declared here so that src/sampling never imports src/api.

/**
 * Per-request logits processor (TensorRT-LLM `LogitsProcessor`). It modifies `logits` (one row,
 * [vocab] f32) in place. `tokenIds` are prompt + output tokens so far; `ctx.step` is the number of
 * output tokens already generated.
 */
export type LogitsProcessorFn = (
  logits: Float32Array,
  tokenIds: readonly number[],
  ctx: { requestId: string | number | undefined; step: number },
) => void;

/** Guided decoding (exactly one guide may be set); consumed by the grammar backend, later. */
export interface GuidedDecodingParams {
  json?: string | object;
  regex?: string;
  grammar?: string;
  jsonObject?: boolean;
  structuralTag?: string | object;
}

/** Sparse additive logit bias: bias[ids[i]] += values[i]. */
export interface SparseBias {
  ids: Int32Array;
  values: Float32Array;
}

/**
 * 'greedy': argmax. 'sample': temperature / min_p / top_k / top_p sampling. 'beam': beam search
 * (width = bestOf), done by the beam-search module (later), not by `Sampler.sample`.
 */
export type SamplingStrategy = "greedy" | "sample" | "beam";

/** Every field settled: request > generation_config.json defaults > built-in defaults. */
export interface ResolvedSamplingParams {
  strategy: SamplingStrategy;
  maxTokens: number;
  /** EOS and stop-token ids are banned while output length < minTokens (0: never) */
  minTokens: number;
  /** EOS id; undefined until the executor fills it in from the tokenizer */
  endId: number | undefined;
  padId: number | undefined;
  n: number;
  bestOf: number;
  useBeamSearch: boolean;
  /** 0 = whole vocabulary. Greedy rows carry 1. */
  topK: number;
  /** 1 = off */
  topP: number;
  /** top-p decay: p_t = max(topPMin, topP · topPDecay^k), k = tokens since the last topPResetIds token */
  topPMin: number;
  topPResetIds: number | undefined;
  topPDecay: number;
  /** undefined: the RNG key comes from a process-wide counter (see rng.ts) */
  seed: number | undefined;
  /** > 0 for 'sample'; 0 for greedy */
  temperature: number;
  /** 0 = off */
  minP: number;
  repetitionPenalty: number;
  presencePenalty: number;
  frequencyPenalty: number;
  promptIgnoreLength: number;
  /** 0 = off */
  noRepeatNgramSize: number;
  lengthPenalty: number;
  earlyStopping: number;
  /** top-k logprobs per output token; 0 = sampled token only; null = none */
  logprobs: number | null;
  promptLogprobs: number | null;
  stop: string[];
  stopTokenIds: number[];
  includeStopStrInOutput: boolean;
  ignoreEos: boolean;
  /** strings banned from the output; the executor tokenizes them into SamplingRow.badWordsIds */
  bad: string[];
  badTokenIds: number[];
  /** dense [vocab] f32 or sparse; added to the logits first */
  embeddingBias: Float32Array | SparseBias | undefined;
  logitsProcessors: LogitsProcessorFn[];
  guidedDecoding: GuidedDecodingParams | undefined;
  detokenize: boolean;
  addSpecialTokens: boolean;
  truncatePromptTokens: number | undefined;
  skipSpecialTokens: boolean;
  spacesBetweenSpecialTokens: boolean;
  returnContextLogits: boolean;
  returnGenerationLogits: boolean;
  excludeInputFromOutput: boolean;
}

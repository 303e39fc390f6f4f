// The step loop's public types: its limits, what it accepts (a tokenized, validated submission) and
// what one step returns (token deltas, finished outputs, per-request errors, iteration stats).
import type { SamplingParams } from "../api/sampling-params.js";
import type { DeltaMsg, FinalOutput } from "./messages.js";
import type { IterationStats } from "./stats.js";

export interface CoreLimits {
  maxBatchSize: number;
  maxSeqLen: number;
  maxInputLen: number;
  maxNumTokens: number;
  enableChunkedPrefill: boolean;
  maxUtilization: boolean;
  /** prompt-logprob rows per step and request (each is a [vocab] f32 logits row); a longer prompt
   *  chunk is cut to this many tokens. Default: what fits 256 MiB, in whole KV blocks. */
  maxPromptLogitRows?: number;
}

/** logits floats a prompt-logprobs chunk may produce in one step (256 MiB) */
export const PROMPT_LOGITS_BUDGET = 2 ** 26;

/** A request ready for the loop: tokenized, its params resolved and checked against the vocabulary. */
export interface Submission {
  requestId: number;
  prompt: string | null;
  promptTokenIds: number[];
  params: SamplingParams;
  badWordsIds: number[][];
  streaming: boolean;
  cacheSalt?: string | undefined;
  priority?: number | undefined;
}

export interface StepOutput {
  deltas: DeltaMsg[];
  finals: FinalOutput[];
  /** requests failed this step (an error in their own processing) */
  errors: { requestId: number; error: unknown }[];
  stats: IterationStats;
}

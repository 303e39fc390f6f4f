// Log-softmax and top-k logprobs over one logits row [vocab] f32, accumulated in float64.
// Logprobs are those of the RAW model distribution: log_softmax of the logits as the model produced
// them, before bias, penalties, temperature and the top-k/top-p/min-p filters. This is TensorRT-LLM's
// PyTorch-backend default (LogprobMode.RAW) and vLLM's default ("raw_logprobs").
import { selectTopK } from "./draw.js";
import { logSumExpRank } from "./select.js";

export interface TopLogprob {
  token: number;
  logprob: number;
  /** 1 = most likely token */
  rank: number;
}

const stats = { lse: 0, rank: 0 };

/**
 * log Σ exp(row[i]) over the row, stable (running max), in one pass; -Infinity if every entry is
 * -Infinity. NaN entries are skipped.
 */
export function logSumExp(row: Float32Array, vocab: number): number {
  logSumExpRank(row, vocab, Infinity, stats);
  return stats.lse;
}

/** logprob (row[token] - logSumExp) and rank (see rankOf) of `token`, in one pass over the row. */
export function logprobAndRank(row: Float32Array, vocab: number, token: number): { logprob: number; rank: number; lse: number } {
  logSumExpRank(row, vocab, row[token], stats);
  return { logprob: row[token] - stats.lse, rank: stats.rank, lse: stats.lse };
}

/** log_softmax of a whole row into `out` (float64 [vocab]); for tests and prompt logprobs. */
export function logSoftmax(row: Float32Array, vocab: number, out: Float64Array): Float64Array {
  const lse = logSumExp(row, vocab);
  for (let i = 0; i < vocab; i++) out[i] = row[i] - lse;
  return out;
}

/** 1 + the number of tokens whose logit is strictly larger (vLLM's and TRT-LLM's rank). */
export function rankOf(row: Float32Array, vocab: number, token: number): number {
  const x = row[token];
  let r = 1;
  for (let i = 0; i < vocab; i++) if (row[i] > x) r++;
  return r;
}

/** Reusable scratch for topLogprobs (grown on demand). */
export class LogprobScratch {
  idx = new Int32Array(0);
  val = new Float32Array(0);
  ensure(k: number): void {
    if (this.idx.length < k) {
      this.idx = new Int32Array(k);
      this.val = new Float32Array(k);
    }
  }
}

/** The k most likely tokens with their logprobs and ranks 1..k (ties: lower id first). */
export function topLogprobs(
  row: Float32Array, vocab: number, k: number, lse: number, scratch: LogprobScratch,
): TopLogprob[] {
  if (k <= 0) return [];
  scratch.ensure(k);
  const n = selectTopK(row, vocab, k, scratch.idx, scratch.val);
  const out: TopLogprob[] = new Array(n);
  for (let r = 0; r < n; r++) out[r] = { token: scratch.idx[r], logprob: scratch.val[r] - lse, rank: r + 1 };
  return out;
}

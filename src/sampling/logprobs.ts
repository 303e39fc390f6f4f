// Log-softmax and top-k logprobs over one logits row [vocab] f32, accumulated in float64.
// Logprobs are those of the RAW model distribution: log_softmax of the logits as the model produced
// them, before bias, penalties, temperature and the top-k/top-p/min-p filters. This is TensorRT-LLM's
// PyTorch-backend default (LogprobMode.RAW) and vLLM's default ("raw_logprobs").
import { selectTopK } from "./select.js";

export interface TopLogprob {
  token: number;
  logprob: number;
  /** 1 = most likely token */
  rank: number;
}

/** log Σ exp(row[i]) over the row, stable (max-shifted); -Infinity if every entry is -Infinity. */
export function logSumExp(row: Float32Array, vocab: number): number {
  let m = -Infinity;
  for (let i = 0; i < vocab; i++) if (row[i] > m) m = row[i];
  if (m === -Infinity) return -Infinity;
  let s = 0;
  for (let i = 0; i < vocab; i++) s += Math.exp(row[i] - m);
  return m + Math.log(s);
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

// Logprobs of one token from one logits row (prompt logprobs): the raw model distribution
// (log_softmax of the logits as produced, as for output logprobs, see src/sampling/logprobs.ts).
import type { TokenLogprobs } from "../api/request-output.js";
import { logSumExp, rankOf, topLogprobs, type LogprobScratch } from "../sampling/logprobs.js";

/** {token: its logprob and rank} plus the k most likely tokens (rank 1 = most likely). */
export function tokenLogprobs(row: Float32Array, vocab: number, token: number, k: number, scratch: LogprobScratch): TokenLogprobs {
  const lse = logSumExp(row, vocab);
  const out: TokenLogprobs = new Map([[token, { logprob: row[token]! - lse, rank: rankOf(row, vocab, token) }]]);
  for (const t of topLogprobs(row, vocab, k, lse, scratch)) if (!out.has(t.token)) out.set(t.token, { logprob: t.logprob, rank: t.rank });
  return out;
}

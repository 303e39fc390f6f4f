// The logit-modifying steps of the pipeline, each on one row [vocab] f32 in place. Token sequences
// are "prompt + output so far" (TensorRT-LLM keeps both in one output_ids buffer); ids outside
// [0, vocab) are ignored. Every step is a no-op when its parameters are neutral, and the sampler
// skips calling it then.
import type { SparseBias } from "./params.js";

/** Read-only view of prompt + output as one sequence, without concatenating. */
export class TokenSeq {
  prompt: ArrayLike<number> = [];
  output: ArrayLike<number> = [];
  set(prompt: ArrayLike<number>, output: ArrayLike<number>): this {
    this.prompt = prompt;
    this.output = output;
    return this;
  }
  get length(): number {
    return this.prompt.length + this.output.length;
  }
  at(i: number): number {
    const p = this.prompt.length;
    return i < p ? this.prompt[i] : this.output[i - p];
  }
}

/** Step 1, logit bias: row += bias (dense [vocab] or sparse {ids, values}). */
export function applyBias(row: Float32Array, vocab: number, bias: Float32Array | SparseBias): void {
  if (bias instanceof Float32Array) {
    const n = Math.min(vocab, bias.length);
    for (let i = 0; i < n; i++) row[i] += bias[i];
    return;
  }
  for (let j = 0; j < bias.ids.length; j++) {
    const t = bias.ids[j];
    if (t < vocab) row[t] += bias.values[j];
  }
}

function ban(row: Float32Array, vocab: number, t: number): void {
  if (t >= 0 && t < vocab) row[t] = -Infinity;
}

/**
 * Step 2, bad words: single ids are always banned; a multi-token bad word w[0..m-1] bans w[m-1]
 * when the sequence ends with w[0..m-2].
 */
export function applyBadWords(
  row: Float32Array, vocab: number, seq: TokenSeq,
  badTokenIds: readonly number[], badWords: readonly (readonly number[])[],
): void {
  for (const t of badTokenIds) ban(row, vocab, t);
  const len = seq.length;
  for (const w of badWords) {
    const m = w.length;
    if (m === 0 || m - 1 > len) continue;
    let match = true;
    for (let j = 0; j < m - 1 && match; j++) match = seq.at(len - (m - 1) + j) === w[j];
    if (match) ban(row, vocab, w[m - 1]);
  }
}

/** Step 3, min_tokens: while output length < minTokens, EOS (unless ignoreEos) and stop ids are banned. */
export function applyMinTokens(
  row: Float32Array, vocab: number, endId: number | undefined, stopTokenIds: readonly number[],
): void {
  if (endId !== undefined) ban(row, vocab, endId);
  for (const t of stopTokenIds) ban(row, vocab, t);
}

/** Reusable per-vocab scratch for the penalty counts (reset sparsely through `touched`). */
export class PenaltyScratch {
  counts = new Int32Array(0);
  seen = new Uint8Array(0);
  touched = new Int32Array(1024);
  numTouched = 0;
  ensure(vocab: number): void {
    if (this.counts.length !== vocab) {
      this.counts = new Int32Array(vocab);
      this.seen = new Uint8Array(vocab);
    }
  }
  touch(t: number): void {
    if (this.numTouched === this.touched.length) {
      const grown = new Int32Array(this.touched.length * 2);
      grown.set(this.touched);
      this.touched = grown;
    }
    this.touched[this.numTouched++] = t;
  }
  reset(): void {
    for (let j = 0; j < this.numTouched; j++) {
      const t = this.touched[j];
      this.counts[t] = 0;
      this.seen[t] = 0;
    }
    this.numTouched = 0;
  }
}

export interface Penalties {
  repetition: number;
  presence: number;
  frequency: number;
  promptIgnoreLength: number;
}

/**
 * Step 4, penalties, over the distinct tokens of the sequence:
 *   repetition r (tokens of prompt + output): x > 0 ? x / r : x * r;
 *   presence p and frequency f: x -= p + f · count, where count is the token's occurrences in
 *   prompt[promptIgnoreLength:] + output. TensorRT-LLM counts prompt tokens here (that is what
 *   prompt_ignore_length exists for); OpenAI/vLLM count output tokens only, which is
 *   promptIgnoreLength >= prompt length.
 * Applied in that order per token (repetition first), as TensorRT-LLM's penalty kernel does.
 */
export function applyPenalties(
  row: Float32Array, vocab: number, seq: TokenSeq, pen: Penalties, s: PenaltyScratch,
): void {
  s.ensure(vocab);
  const len = seq.length;
  const ignore = Math.min(pen.promptIgnoreLength, seq.prompt.length);
  for (let i = 0; i < len; i++) {
    const t = seq.at(i);
    if (!(t >= 0 && t < vocab)) continue;
    if (s.seen[t] === 0) {
      s.seen[t] = 1;
      s.touch(t);
    }
    if (i >= ignore) s.counts[t]++;
  }
  for (let j = 0; j < s.numTouched; j++) {
    const t = s.touched[j];
    let x = row[t];
    if (pen.repetition !== 1) x = x > 0 ? x / pen.repetition : x * pen.repetition;
    const c = s.counts[t];
    if (c > 0) x -= pen.presence + pen.frequency * c;
    row[t] = x;
  }
  s.reset();
}

/**
 * Step 5, no_repeat_ngram_size n: with the sequence's last n-1 tokens as prefix, every token that
 * followed an earlier occurrence of that prefix is banned (n = 1 bans every token already seen).
 */
export function applyNoRepeatNgram(row: Float32Array, vocab: number, seq: TokenSeq, n: number): void {
  const len = seq.length;
  if (len < n) return; // the candidate n-gram would be the first of its length
  const pre = len - (n - 1);
  for (let j = 0; j + n - 1 < len; j++) {
    let match = true;
    for (let q = 0; q < n - 1 && match; q++) match = seq.at(j + q) === seq.at(pre + q);
    if (match) ban(row, vocab, seq.at(j + n - 1));
  }
}

// Applying a grammar's token bitmask to one logits row. Bitmask layout (XGrammar's): Int32Array of
// ceil(vocab / 32) words; token t is allowed iff bit (t % 32) of word floor(t / 32) is set.
// With the addon built the mask is applied natively (native/sampling_mask.inc; the Sampler's batched
// step applies every row's mask in its one native call, batch.ts).
import { applyMaskNative } from "../select.js";

/** Words needed for a bitmask over `vocab` tokens. */
export function bitmaskWords(vocab: number): number {
  return Math.ceil(vocab / 32);
}

/** Whether token `t` is allowed by `mask`. */
export function isAllowed(mask: Int32Array, t: number): boolean {
  return ((mask[t >>> 5]! >>> (t & 31)) & 1) === 1;
}

/**
 * row[t] = -Infinity for every disallowed t < vocab (tokens past the mask's words are disallowed).
 * Words that allow all 32 tokens (-1) are skipped, so a mostly-open mask costs ~vocab/32 reads.
 * If no allowed token keeps a finite logit (another step, e.g. min_tokens or bad words, banned
 * every token the grammar allows), the allowed tokens are set to 0 instead: the grammar wins, and
 * the draw is uniform over what it allows. Returns the number of allowed tokens.
 */
export function applyTokenBitmask(row: Float32Array, vocab: number, mask: Int32Array): number {
  const n = applyMaskNative(row, vocab, mask);
  return n >= 0 ? n : applyMaskJs(row, vocab, mask);
}

/** applyTokenBitmask's JS loop (no addon, TLLM_SAMPLING_JS=1): the same writes and count as the addon's. */
export function applyMaskJs(row: Float32Array, vocab: number, mask: Int32Array): number {
  const words = Math.min(bitmaskWords(vocab), mask.length);
  let allowed = 0;
  let finite = false;
  for (let w = 0; w < words; w++) {
    const m = mask[w]!;
    const base = w << 5;
    const end = Math.min(32, vocab - base);
    if (m === -1 && end === 32) {
      allowed += 32;
      if (!finite) for (let b = 0; b < 32 && !finite; b++) finite = row[base + b]! > -Infinity;
      continue;
    }
    for (let b = 0; b < end; b++) {
      if ((m >>> b) & 1) {
        allowed++;
        if (!finite) finite = row[base + b]! > -Infinity;
      } else {
        row[base + b] = -Infinity;
      }
    }
  }
  for (let t = words << 5; t < vocab; t++) row[t] = -Infinity;
  if (!finite && allowed > 0) {
    for (let t = 0; t < words << 5 && t < vocab; t++) if (isAllowed(mask, t)) row[t] = 0;
  }
  return allowed;
}

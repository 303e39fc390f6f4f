// Logprobs in each API's shape, for whole outputs and for streamed chunks.
//
// Streaming rule (as vLLM): a chunk carries the logprobs of the tokens whose text it carries. A token
// whose text is held back (an incomplete UTF-8 character, or text that may start a stop string)
// waits and goes out with the chunk that releases its text; tokens whose text is never released
// (the stop string itself) go out with the choice's final chunk. Concatenating a choice's chunk
// logprobs therefore gives exactly the non-streaming logprobs (same tokens, values and offsets).
//
// The per-token logprobs come with each StreamEvent when LLM provides them (`ev.logprobs`, the
// token's TokenLogprobs). An LLM whose events lack the field still gets correct chunks: they are
// held and sent, with the same boundaries, once the final output (which has every token's
// logprobs) is known.
import type { StreamEvent } from "../api/llm.js";
import type { CompletionOutput, RequestOutput, TokenLogprobs } from "../api/request-output.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";

const utf8 = new TextDecoder("utf-8", { fatal: false });
export const tokenText = (tok: Tokenizer, id: number): string => utf8.decode(tok.tokenBytes(id));

/** One output token: its id, position in the output, and logprobs (null until known). */
export interface TokenSlot { pos: number; id: number; lp: TokenLogprobs | null }

/** Sorted top entries of one position's logprobs (rank order), at most k. */
function topOf(lp: TokenLogprobs, k: number): [number, number][] {
  return [...lp.entries()].sort((a, b) => a[1].rank - b[1].rank).slice(0, k).map(([id, l]) => [id, l.logprob]);
}

/** The slots of a whole output (non-streaming). */
export function slotsOf(c: CompletionOutput): TokenSlot[] {
  return c.tokenIds.map((id, pos) => ({ pos, id, lp: c.logprobs?.[pos] ?? null }));
}

/** The prompt tokens of an output with their logprobs (SamplingParams.promptLogprobs; entry 0 is null). */
export function promptSlots(o: RequestOutput): TokenSlot[] {
  return o.promptTokenIds.map((id, pos) => ({ pos, id, lp: o.promptLogprobs?.[pos] ?? null }));
}

/** Completions API shape; `offset` (characters into the choice's text) advances past each token.
 *  A token without logprobs (the first prompt token under echo) gets null, as OpenAI sends. */
export function completionLogprobs(tok: Tokenizer, slots: TokenSlot[], k: number, offset: { at: number }): unknown {
  const tokens: string[] = [], lps: (number | null)[] = [], tops: (Record<string, number> | null)[] = [], offsets: number[] = [];
  for (const s of slots) {
    const m = s.lp;
    const t = tokenText(tok, s.id);
    tokens.push(t);
    lps.push(m?.get(s.id)?.logprob ?? null);
    tops.push(m ? Object.fromEntries(topOf(m, k).map(([tid, l]) => [tokenText(tok, tid), l])) : null);
    offsets.push(offset.at);
    offset.at += t.length;
  }
  return { tokens, token_logprobs: lps, top_logprobs: tops, text_offset: offsets };
}

/** Chat API shape: `{content: [{token, logprob, bytes, top_logprobs}]}`. */
export function chatLogprobs(tok: Tokenizer, slots: TokenSlot[], k: number): unknown {
  const entry = (id: number, logprob: number) => ({ token: tokenText(tok, id), logprob, bytes: [...tok.tokenBytes(id)] });
  return {
    content: slots.map((s) => {
      const m = s.lp ?? new Map();
      return { ...entry(s.id, m.get(s.id)?.logprob ?? NaN), top_logprobs: topOf(m, k).map(([tid, l]) => entry(tid, l)) };
    }),
  };
}

/** the slots of a chunk without logprobs (shared, never written to) */
const NO_SLOTS: TokenSlot[] = Object.freeze([]) as unknown as TokenSlot[];

interface Held { key: number; text: string; slots: TokenSlot[] }

/**
 * Splits one request's stream into chunks of (choice key, text, token slots). `send` is called in
 * stream order; with `wanted` false no slots are kept and every chunk goes out at once.
 */
export class ChunkedLogprobs {
  private readonly pending = new Map<number, TokenSlot[]>();
  private readonly seen = new Map<number, number>();
  private readonly held: Held[] = [];
  /** whether events carry their logprobs (decided by the first event) */
  private live: boolean | null;

  /** `hold`: send nothing before flush() (the caller has chunks of its own to send first). */
  constructor(private readonly wanted: boolean, private readonly send: (key: number, text: string, slots: TokenSlot[]) => void, hold = false) {
    this.live = hold ? false : wanted ? null : true;
  }

  /** One StreamEvent of the choice `key`. */
  event(key: number, ev: StreamEvent): void {
    if (!this.wanted && this.live === true) { // the per-token path of most streams: no bookkeeping, no allocation
      if (ev.textDelta) this.send(key, ev.textDelta, NO_SLOTS);
      return;
    }
    if (this.wanted && ev.token >= 0) {
      const lp = (ev as StreamEvent & { logprobs?: TokenLogprobs | null }).logprobs;
      this.live ??= lp !== undefined;
      const pos = this.seen.get(key) ?? 0;
      this.seen.set(key, pos + 1);
      let p = this.pending.get(key);
      if (!p) this.pending.set(key, (p = []));
      p.push({ pos, id: ev.token, lp: lp ?? null });
    }
    if (!ev.textDelta) return;
    const slots = this.pending.get(key) ?? [];
    this.pending.delete(key);
    if (this.live !== false) this.send(key, ev.textDelta, slots);
    else this.held.push({ key, text: ev.textDelta, slots });
  }

  /** Sends the held chunks with their logprobs filled from the final outputs (`out(key)`). */
  flush(out: (key: number) => CompletionOutput | undefined): void {
    for (const h of this.held.splice(0)) {
      const c = out(h.key);
      for (const s of h.slots) s.lp ??= c?.logprobs?.[s.pos] ?? null;
      this.send(h.key, h.text, h.slots);
    }
  }

  /** The choice's tokens not yet sent (held back text, the stop string, any not streamed), filled from `c`. */
  rest(key: number, c: CompletionOutput): TokenSlot[] {
    if (!this.wanted) return [];
    const slots = this.pending.get(key) ?? [];
    this.pending.delete(key);
    for (let pos = this.seen.get(key) ?? 0; pos < c.tokenIds.length; pos++) slots.push({ pos, id: c.tokenIds[pos]!, lp: null });
    this.seen.set(key, c.tokenIds.length);
    for (const s of slots) s.lp ??= c.logprobs?.[s.pos] ?? null;
    return slots;
  }
}

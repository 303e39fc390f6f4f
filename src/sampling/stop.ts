// Stop conditions, as TensorRT-LLM reports them in CompletionOutput:
//   finish_reason 'stop'   : EOS (stop_reason null), a stop token id (stop_reason = the id) or a
//                            stop string (stop_reason = the string);
//   finish_reason 'length' : max_tokens reached (stop_reason null).
// Stop strings are matched on detokenized text by StopStringMatcher, fed text deltas. It holds back
// every tail of the text that is a prefix of some stop string, so a stream never emits text that
// later turns out to start a stop string; a stop string split over several tokens is found when
// its last piece arrives.
import type { ResolvedSamplingParams } from "./params.js";

export type FinishReason = "stop" | "length";

export interface StopCheck {
  finishReason: FinishReason;
  /** the stop string or stop token id that matched; null for EOS and length */
  stopReason: string | number | null;
}

/**
 * Token-level stop after `token` was appended (`numOutputTokens` counts it). Stop ids and EOS count
 * only once min_tokens is reached (the sampler bans them before, but a logits processor may not);
 * EOS is ignored with ignoreEos. A stop token on the last allowed position reports 'stop'.
 */
export function checkTokenStop(
  p: Pick<ResolvedSamplingParams, "stopTokenIds" | "endId" | "ignoreEos" | "maxTokens" | "minTokens">,
  token: number,
  numOutputTokens: number,
): StopCheck | null {
  if (numOutputTokens >= p.minTokens) {
    if (p.stopTokenIds.includes(token)) return { finishReason: "stop", stopReason: token };
    if (!p.ignoreEos && p.endId !== undefined && token === p.endId) return { finishReason: "stop", stopReason: null };
  }
  if (numOutputTokens >= p.maxTokens) return { finishReason: "length", stopReason: null };
  return null;
}

export interface StopFeed {
  /** text that is now safe to send to the client (may be "") */
  emit: string;
  stopped: boolean;
  /** the stop string that matched, when stopped */
  stopReason: string | null;
  /** when stopped: the whole output text, cut before the stop string (or after it with include) */
  truncatedText: string | null;
}

export class StopStringMatcher {
  private readonly stops: readonly string[];
  private readonly maxLen: number;
  private emitted = "";
  private pending = "";
  private done = false;

  constructor(stops: readonly string[], private readonly includeStopStrInOutput: boolean) {
    this.stops = stops.filter((s) => s.length > 0);
    this.maxLen = this.stops.reduce((m, s) => Math.max(m, s.length), 0);
  }

  /** The output text emitted so far (the held-back tail excluded). */
  get text(): string {
    return this.emitted;
  }

  /** Feeds the next detokenized delta. After a stop, further feeds emit nothing. */
  feed(delta: string): StopFeed {
    if (this.done) return { emit: "", stopped: true, stopReason: null, truncatedText: this.emitted };
    const buf = this.pending + delta;
    const hit = this.firstMatch(buf);
    if (hit) {
      const end = hit.at + (this.includeStopStrInOutput ? hit.stop.length : 0);
      const emit = buf.slice(0, end);
      this.emitted += emit;
      this.pending = "";
      this.done = true;
      return { emit, stopped: true, stopReason: hit.stop, truncatedText: this.emitted };
    }
    const hold = this.heldTail(buf);
    const emit = buf.slice(0, buf.length - hold);
    this.pending = buf.slice(buf.length - hold);
    this.emitted += emit;
    return { emit, stopped: false, stopReason: null, truncatedText: null };
  }

  /** Releases the held-back tail when the output ends for another reason (EOS, length, abort). */
  flush(): string {
    if (this.done) return "";
    const rest = this.pending;
    this.emitted += rest;
    this.pending = "";
    this.done = true;
    return rest;
  }

  /** Earliest occurrence of any stop string in buf (ties: the one listed first). */
  private firstMatch(buf: string): { at: number; stop: string } | null {
    let best: { at: number; stop: string } | null = null;
    for (const stop of this.stops) {
      const at = buf.indexOf(stop);
      if (at >= 0 && (best === null || at < best.at)) best = { at, stop };
    }
    return best;
  }

  /** Length of the longest tail of buf that is a proper prefix of some stop string. */
  private heldTail(buf: string): number {
    for (let len = Math.min(this.maxLen - 1, buf.length); len > 0; len--) {
      const tail = buf.slice(buf.length - len);
      if (this.stops.some((s) => s.length > len && s.startsWith(tail))) return len;
    }
    return 0;
  }
}

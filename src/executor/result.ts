// GenerationResult: what generateAsync returns. Awaitable for the final output, async-iterable for
// streamed snapshots (one per step that touched the request; each CompletionOutput carries the
// step's textDiff / tokenIdsDiff, as TensorRT-LLM's RequestOutput.outputs[i].text_diff), with
// abort(). Without streaming the iteration yields the final output once.
import type { CompletionOutput, TokenLogprobs } from "../api/request-output.js";
import type { DeltaMsg, FinalOutput, RequestMetrics } from "./messages.js";

export interface StreamCompletion extends CompletionOutput {
  /** text added since the previous snapshot */
  textDiff: string;
  /** token ids added since the previous snapshot */
  tokenIdsDiff: number[];
  /** logprobs of tokenIdsDiff (null when not requested) */
  logprobsDiff: TokenLogprobs[] | null;
}

export interface StreamOutput extends Omit<FinalOutput, "outputs" | "metrics"> {
  outputs: StreamCompletion[];
  /** present on the last snapshot */
  metrics?: RequestMetrics;
}

export class GenerationResult implements PromiseLike<FinalOutput>, AsyncIterable<StreamOutput> {
  readonly promise: Promise<FinalOutput>;
  private resolveFinal!: (o: FinalOutput) => void;
  private rejectFinal!: (e: unknown) => void;
  private promptTokenIds: number[] = [];
  /** set by the first delta that carries them (streaming), else by the final output */
  private promptLogprobs: (TokenLogprobs | null)[] | null = null;
  private readonly outs = new Map<number, CompletionOutput>();
  private readonly queue: StreamOutput[] = [];
  private wake: (() => void) | null = null;
  private error: unknown = null;
  private ended = false;
  private lastFinished = false;

  constructor(readonly requestId: number, readonly prompt: string | null, readonly streaming: boolean, private readonly onAbort: (id: number) => void) {
    this.promise = new Promise<FinalOutput>((ok, fail) => {
      this.resolveFinal = ok;
      this.rejectFinal = fail;
    });
    this.promise.catch(() => {}); // surfaced through then() / iteration, never as an unhandled rejection
  }

  /** Requests cancellation: unfinished outputs end with finishReason 'cancelled'. */
  abort(): void {
    if (!this.ended) this.onAbort(this.requestId);
  }

  get done(): boolean {
    return this.ended;
  }

  then<A = FinalOutput, B = never>(onOk?: ((v: FinalOutput) => A | PromiseLike<A>) | null, onErr?: ((e: unknown) => B | PromiseLike<B>) | null): Promise<A | B> {
    return this.promise.then(onOk, onErr);
  }

  catch<B = never>(onErr?: ((e: unknown) => B | PromiseLike<B>) | null): Promise<FinalOutput | B> {
    return this.promise.catch(onErr);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<StreamOutput> {
    for (;;) {
      const next = this.queue.shift();
      if (next) {
        yield next;
        continue;
      }
      if (this.error !== null) throw this.error;
      if (this.ended) return;
      await new Promise<void>((ok) => { this.wake = ok; });
    }
  }

  // ---- fed by the proxy ----

  /** @internal */
  accepted(promptTokenIds: number[]): void {
    this.promptTokenIds = promptTokenIds;
  }

  /** @internal the deltas of one step for this request (one or more output indices) */
  deltas(ds: DeltaMsg[]): void {
    const diffs = new Map<number, DeltaMsg>();
    for (const d of ds) {
      if (d.promptLogprobs) this.promptLogprobs = d.promptLogprobs;
      const o = this.outs.get(d.index) ?? this.newOutput(d.index, d.logprobs !== null);
      o.text += d.text;
      o.tokenIds.push(...d.tokenIds);
      if (o.logprobs && d.logprobs) o.logprobs.push(...d.logprobs);
      o.cumulativeLogprob = d.cumulativeLogprob;
      o.finishReason = d.finishReason;
      o.stopReason = d.stopReason;
      diffs.set(d.index, d);
    }
    if (!this.streaming) return; // the final output carries everything: no per-step snapshot copies
    const outputs: StreamCompletion[] = [];
    for (const o of this.outs.size === 1 ? this.outs.values() : [...this.outs.values()].sort((a, b) => a.index - b.index)) {
      const d = diffs.get(o.index);
      outputs.push(snapshot(o, d?.text ?? "", d?.tokenIds ?? [], d?.logprobs ?? (o.logprobs ? [] : null)));
    }
    this.lastFinished = outputs.every((o) => o.finishReason !== null);
    this.push({
      requestId: this.requestId, prompt: this.prompt, promptTokenIds: this.promptTokenIds, outputs, finished: false,
      promptLogprobs: this.promptLogprobs,
    });
  }

  /** @internal */
  final(f: FinalOutput): void {
    if (this.ended) return;
    const outputs = f.outputs.map((o) => {
      const seen = this.streaming ? this.outs.get(o.index) : undefined; // non-streaming: one diff of everything
      const nTok = seen?.tokenIds.length ?? 0;
      return {
        ...o, textDiff: o.text.slice(seen?.text.length ?? 0), tokenIdsDiff: o.tokenIds.slice(nTok),
        logprobsDiff: o.logprobs ? o.logprobs.slice(nTok) : null,
      };
    });
    const changed = !this.lastFinished || outputs.some((o) => o.textDiff !== "" || o.tokenIdsDiff.length > 0) || !this.streaming;
    if (changed || this.queue.length === 0) this.push({ ...f, outputs });
    else this.queue[this.queue.length - 1] = { ...this.queue[this.queue.length - 1]!, finished: true, metrics: f.metrics };
    this.ended = true;
    this.resolveFinal(f);
    this.wakeUp();
  }

  /** @internal */
  fail(e: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.error = e;
    this.rejectFinal(e);
    this.wakeUp();
  }

  private newOutput(index: number, logprobs: boolean): CompletionOutput {
    const o: CompletionOutput = { index, text: "", tokenIds: [], cumulativeLogprob: 0, logprobs: logprobs ? [] : null, finishReason: null, stopReason: null };
    this.outs.set(index, o);
    return o;
  }

  private push(s: StreamOutput): void {
    if (!this.streaming && !s.finished) return;
    this.queue.push(s);
    this.wakeUp();
  }

  private wakeUp(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }
}

/** A snapshot of `o` now. tokenIds and logprobs are views of the growing lists cut at today's length,
 *  copied only when read: copying them on every step made streaming O(output length²). */
function snapshot(o: CompletionOutput, textDiff: string, tokenIdsDiff: number[], logprobsDiff: TokenLogprobs[] | null): StreamCompletion {
  const n = o.tokenIds.length, all = o.tokenIds, lps = o.logprobs;
  let ids: number[] | null = null, lp: TokenLogprobs[] | null = null;
  const s = { ...o, textDiff, tokenIdsDiff, logprobsDiff } as StreamCompletion;
  Object.defineProperty(s, "tokenIds", { enumerable: true, configurable: true, get: () => (ids ??= all.slice(0, n)) });
  if (lps) Object.defineProperty(s, "logprobs", { enumerable: true, configurable: true, get: () => (lp ??= lps.slice(0, n)) });
  return s;
}

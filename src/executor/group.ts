// A client request inside the worker: its bestOf sequences, its prompt, and what it reports
// (streamed deltas while running; one FinalOutput when every sequence is done).
import type { CompletionOutput, TokenLogprobs } from "../api/request-output.js";
import type { SamplingParams } from "../api/sampling-params.js";
import { ValidationError } from "../errors.js";
import { GuidedDecoder } from "../sampling/guided/decoder.js";
import type { BeamRun } from "./beam-group.js";
import type { FinalOutput, DeltaMsg } from "./messages.js";
import type { Request, SeqDelta } from "./request.js";

export class RequestGroup {
  readonly seqs: Request[] = [];
  firstScheduledTime: number | null = null;
  firstTokenTime: number | null = null;
  lastTokenTime: number | null = null;
  numPreemptions = 0;
  /** entry i: logprobs of prompt token i (entry 0 stays null); null unless promptLogprobs is set */
  readonly promptLogprobs: (TokenLogprobs | null)[] | null;
  /** beam search state (useBeamSearch), else null */
  beam: BeamRun | null = null;
  /** whether a streamed delta already carried promptLogprobs */
  private promptLogprobsSent = false;

  constructor(
    readonly requestId: number,
    readonly prompt: string | null,
    readonly promptTokenIds: number[],
    readonly streaming: boolean,
    readonly arrivalTime: number,
    wantPromptLogprobs = false,
  ) {
    this.promptLogprobs = wantPromptLogprobs ? promptTokenIds.map(() => null) : null;
  }

  /** registers each sequence's grammar matcher (compiled at submission, see setup.ts) */
  addGuides(guided: GuidedDecoder | null, extraEos: ReadonlySet<number>): void {
    const p = this.seqs[0]!.params;
    if (!GuidedDecoder.wants(p.guidedDecoding)) return;
    if (!guided) throw new ValidationError("guidedDecoding", p.guidedDecoding, "the grammar engine was not prepared for this request");
    try {
      for (const s of this.seqs) guided.addSync(s.id, p.guidedDecoding, endIdsOf(p, extraEos));
    } catch (e) {
      for (const s of this.seqs) guided.remove(s.id);
      throw e;
    }
  }

  get n(): number {
    return this.seqs[0]!.params.n;
  }

  get done(): boolean {
    return this.seqs.every((s) => s.finished);
  }

  /** stream deltas only when every sequence is returned (bestOf > n picks winners at the end) */
  get streamsDeltas(): boolean {
    return this.streaming && this.seqs.length === this.n && this.beam === null;
  }

  delta(seq: Request, d: SeqDelta): DeltaMsg {
    const o = seq.output;
    const m: DeltaMsg = {
      requestId: this.requestId, index: seq.index, tokenIds: [d.token], text: d.text,
      logprobs: d.logprobs ? [d.logprobs] : null, cumulativeLogprob: o.cumulativeLogprob,
      finishReason: o.finishReason, stopReason: o.stopReason,
    };
    if (this.promptLogprobs && !this.promptLogprobsSent && seq.index === 0) {
      m.promptLogprobs = this.promptLogprobs; // complete: output 0 computes them and samples only after its whole prompt
      this.promptLogprobsSent = true;
    }
    return m;
  }

  /** The final output: the beams' n best hypotheses (beam search), else the n best of bestOf by cumulative logprob (re-indexed), else index order. */
  final(now: number): FinalOutput {
    let outs: CompletionOutput[] = this.beam ? this.beam.outputs() : this.seqs.map((s) => ({ ...s.output }));
    if (!this.beam && outs.length > this.n) {
      outs = outs.sort((a, b) => (b.cumulativeLogprob ?? 0) - (a.cumulativeLogprob ?? 0)).slice(0, this.n);
      outs.forEach((o, i) => { o.index = i; });
    }
    const first = this.seqs[0]!;
    return {
      requestId: this.requestId, prompt: this.prompt, promptTokenIds: this.promptTokenIds, outputs: outs,
      finished: outs.every((o) => o.finishReason !== null), promptLogprobs: this.promptLogprobs,
      metrics: {
        numPromptTokens: this.promptTokenIds.length, numCachedTokens: first.numCachedTokens ?? 0,
        numGeneratedTokens: this.seqs.reduce((a, s) => a + s.output.tokenIds.length, 0),
        arrivalTime: this.arrivalTime, firstScheduledTime: this.firstScheduledTime, firstTokenTime: this.firstTokenTime,
        lastTokenTime: this.lastTokenTime, finishTime: now, numPreemptions: this.numPreemptions,
      },
    };
  }
}

/** the token ids that end a sequence: EOS (and the tokenizer's other EOS ids) unless ignoreEos, then stopTokenIds */
export function endIdsOf(p: SamplingParams, extraEos: ReadonlySet<number>): number[] {
  return [...(p.ignoreEos || p.endId === undefined ? [] : [p.endId, ...extraEos]), ...p.stopTokenIds];
}

// The core's generation loop, kept small and isolated so that the executor worker (in-flight
// batching, paged KV with reuse) can replace it. Sequences run in waves that fit maxBatchSize and
// the KV budget; in each wave:
//   prefill : every prompt of the wave packed into forwards of <= maxNumTokens tokens, the logits
//             of each prompt's last token sampled;
//   decode  : one token per active sequence per step, batched; stop on EOS / stop token ids /
//             stop strings / maxTokens / maxSeqLen; text detokenized incrementally (whole UTF-8
//             characters only) and held back while it could still start a stop string.
import type { AttnSeq } from "../backends/backend.js";
import type { ModelConfig } from "../config/model-config.js";
import { SimpleKvCache } from "../engine/simple-kv-cache.js";
import type { ForwardBatch } from "../engine/types.js";
import type { LlamaModel } from "../models/llama.js";
import { Sampler, type SamplingRow } from "../sampling/sampler.js";
import { checkTokenStop, StopStringMatcher } from "../sampling/stop.js";
import { rngKeyForSeed } from "../sampling/rng.js";
import { IncrementalDetokenizer } from "../tokenizer/detokenizer.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import type { SamplingParams } from "./sampling-params.js";
import type { CompletionOutput, TokenLogprobs } from "./request-output.js";

export interface RunnerLimits {
  maxBatchSize: number;
  maxNumTokens: number;
  maxSeqLen: number;
  tokensPerBlock: number;
  kvDtype: "f32" | "f16" | "int8";
  /** KV budget in tokens per wave (null: no cap) */
  kvMaxTokens: number | null;
}

/** Called after each step with the text a sequence completed ("" possible) and its new token. */
export type DeltaCallback = (seq: RunnerSeq, textDelta: string, token: number) => void;

/** One sequence: a request's prompt and one of its n outputs. */
export class RunnerSeq {
  readonly rows: SamplingRow;
  readonly detok: IncrementalDetokenizer | null;
  readonly stops: StopStringMatcher;
  readonly output: CompletionOutput;
  /** the tokenizer's vocabulary size */
  readonly vocabSize: number;

  constructor(readonly requestId: number, readonly index: number, readonly promptTokenIds: number[],
    readonly params: SamplingParams, tokenizer: Tokenizer, readonly extraEos: ReadonlySet<number>) {
    this.output = {
      index, text: "", tokenIds: [], cumulativeLogprob: needLogprob(params) ? 0 : null,
      logprobs: params.logprobs !== null ? [] : null,
      finishReason: null, stopReason: null,
    };
    this.rows = {
      params, rng: rngKeyForSeed(params.seed, index), promptTokenIds, outputTokenIds: this.output.tokenIds,
      needLogprob: needLogprob(params), requestId,
    };
    this.vocabSize = tokenizer.vocabSize;
    this.detok = params.detokenize ? new IncrementalDetokenizer(tokenizer, { skipSpecialTokens: params.skipSpecialTokens }) : null;
    this.stops = new StopStringMatcher(params.stop, params.includeStopStrInOutput);
  }

  get finished(): boolean {
    return this.output.finishReason !== null;
  }
  /** KV positions this sequence may need: prompt + all output tokens, within maxSeqLen */
  reserve(maxSeqLen: number): number {
    return Math.min(maxSeqLen, this.promptTokenIds.length + this.params.maxTokens);
  }
}

export class SimpleRunner {
  private readonly sampler = new Sampler();
  private nextSeqId = 1;

  constructor(private readonly model: LlamaModel, private readonly config: ModelConfig, private readonly limits: RunnerLimits) {}

  /** Runs every sequence to completion. `shouldAbort` is polled between steps. */
  async run(seqs: RunnerSeq[], onDelta?: DeltaCallback, shouldAbort?: () => boolean): Promise<void> {
    for (const wave of this.waves(seqs)) {
      await this.runWave(wave, onDelta, shouldAbort);
    }
  }

  private waves(seqs: RunnerSeq[]): RunnerSeq[][] {
    const { maxBatchSize, maxSeqLen, kvMaxTokens } = this.limits;
    const out: RunnerSeq[][] = [];
    let cur: RunnerSeq[] = [];
    let tokens = 0;
    for (const s of seqs) {
      const need = s.reserve(maxSeqLen);
      if (cur.length > 0 && (cur.length >= maxBatchSize || (kvMaxTokens !== null && tokens + need > kvMaxTokens))) {
        out.push(cur);
        cur = [];
        tokens = 0;
      }
      cur.push(s);
      tokens += need;
    }
    if (cur.length > 0) out.push(cur);
    return out;
  }

  private async runWave(wave: RunnerSeq[], onDelta?: DeltaCallback, shouldAbort?: () => boolean): Promise<void> {
    const c = this.config, tpb = this.limits.tokensPerBlock;
    const ids = new Map<RunnerSeq, number>(wave.map((s) => [s, this.nextSeqId++]));
    const blocks = wave.reduce((a, s) => a + Math.ceil(s.reserve(this.limits.maxSeqLen) / tpb), 1);
    const kv = new SimpleKvCache({
      numLayers: c.numLayers, numKvHeads: c.numKvHeads, headDim: c.headDim, numBlocks: blocks, tokensPerBlock: tpb,
      dtype: this.limits.kvDtype,
    });
    for (const s of wave) kv.allocSeq(ids.get(s)!, s.reserve(this.limits.maxSeqLen));
    for (const group of this.prefillGroups(wave)) {
      if (shouldAbort?.()) break;
      const logits = this.model.forward(this.packPrefill(group, kv, ids), kv.layers);
      this.sampleAndUpdate(group, logits, onDelta);
      await yieldToEventLoop();
    }
    for (;;) {
      const active = wave.filter((s) => !s.finished);
      if (active.length === 0) break;
      if (shouldAbort?.()) {
        for (const s of active) this.finish(s, "cancelled", null, onDelta);
        break;
      }
      const logits = this.model.forward(this.packDecode(active, kv, ids), kv.layers);
      this.sampleAndUpdate(active, logits, onDelta);
      await yieldToEventLoop();
    }
  }

  /** Prompts packed in order into groups of <= maxNumTokens tokens (a longer prompt goes alone). */
  private prefillGroups(wave: RunnerSeq[]): RunnerSeq[][] {
    const groups: RunnerSeq[][] = [];
    let cur: RunnerSeq[] = [];
    let n = 0;
    for (const s of wave) {
      const len = s.promptTokenIds.length;
      if (cur.length > 0 && n + len > this.limits.maxNumTokens) {
        groups.push(cur);
        cur = [];
        n = 0;
      }
      cur.push(s);
      n += len;
    }
    if (cur.length > 0) groups.push(cur);
    return groups;
  }

  private packPrefill(group: RunnerSeq[], kv: SimpleKvCache, ids: Map<RunnerSeq, number>): ForwardBatch {
    const T = group.reduce((a, s) => a + s.promptTokenIds.length, 0);
    const tokens = new Int32Array(T), positions = new Int32Array(T), slots = new Int32Array(T);
    const logitRows = new Int32Array(group.length);
    const seqs: AttnSeq[] = [];
    let at = 0;
    group.forEach((s, i) => {
      const len = s.promptTokenIds.length, id = ids.get(s)!;
      tokens.set(s.promptTokenIds, at);
      for (let p = 0; p < len; p++) positions[at + p] = p;
      slots.set(kv.slotsFor(id, 0, len), at);
      seqs.push({ qStart: at, qLen: len, kvLen: len, blockTable: kv.blockTable(id) });
      logitRows[i] = at + len - 1;
      at += len;
    });
    return { tokens, positions, seqs, slots, logitRows };
  }

  private packDecode(active: RunnerSeq[], kv: SimpleKvCache, ids: Map<RunnerSeq, number>): ForwardBatch {
    const B = active.length;
    const tokens = new Int32Array(B), positions = new Int32Array(B), slots = new Int32Array(B);
    const seqs: AttnSeq[] = [];
    active.forEach((s, i) => {
      const out = s.output.tokenIds, id = ids.get(s)!;
      const pos = s.promptTokenIds.length + out.length - 1; // the last sampled token is not in KV yet
      tokens[i] = out[out.length - 1]!;
      positions[i] = pos;
      slots[i] = kv.slotsFor(id, pos, 1)[0]!;
      seqs.push({ qStart: i, qLen: 1, kvLen: pos + 1, blockTable: kv.blockTable(id) });
    });
    return { tokens, positions, seqs, slots, logitRows: Int32Array.from({ length: B }, (_, i) => i) };
  }

  private sampleAndUpdate(seqs: RunnerSeq[], logits: Float32Array, onDelta?: DeltaCallback): void {
    const results = this.sampler.sample(logits, seqs.map((s) => s.rows), this.config.vocabSize);
    seqs.forEach((s, i) => {
      const r = results[i]!;
      const out = s.output;
      out.tokenIds.push(r.token);
      if (out.cumulativeLogprob !== null) out.cumulativeLogprob += r.logprob;
      if (out.logprobs) {
        const m: TokenLogprobs = new Map([[r.token, { logprob: r.logprob, rank: r.rank }]]);
        for (const t of r.topLogprobs ?? []) if (!m.has(t.token)) m.set(t.token, { logprob: t.logprob, rank: t.rank });
        out.logprobs.push(m);
      }
      this.afterToken(s, r.token, onDelta);
    });
  }

  /** Detokenizes, matches stop strings, checks token stops; finishes the sequence when one hits. */
  private afterToken(s: RunnerSeq, token: number, onDelta?: DeltaCallback): void {
    const out = s.output, n = out.tokenIds.length;
    // ids past the tokenizer's vocabulary (a model's padded rows) have no text
    const piece = s.detok && token < s.vocabSize ? s.detok.push(token) : "";
    const feed = s.stops.feed(piece);
    out.text += feed.emit;
    if (feed.stopped) return this.finish(s, "stop", feed.stopReason, onDelta, feed.emit, token);
    let stop = checkTokenStop(s.params, token, n);
    if (!stop && !s.params.ignoreEos && n >= s.params.minTokens && s.extraEos.has(token)) stop = { finishReason: "stop", stopReason: null };
    if (!stop && s.promptTokenIds.length + n >= this.limits.maxSeqLen) stop = { finishReason: "length", stopReason: null };
    if (stop) return this.finish(s, stop.finishReason, stop.stopReason, onDelta, feed.emit, token);
    onDelta?.(s, feed.emit, token);
  }

  private finish(s: RunnerSeq, reason: "stop" | "length" | "cancelled", stopReason: string | number | null,
    onDelta?: DeltaCallback, pending = "", token = -1): void {
    let tail = "";
    if (!(reason === "stop" && typeof stopReason === "string")) {
      // flush the detokenizer's partial character and the stop matcher's held-back text
      tail = s.stops.feed(s.detok ? s.detok.flush() : "").emit + s.stops.flush();
      s.output.text += tail;
    }
    s.output.finishReason = reason;
    s.output.stopReason = stopReason;
    onDelta?.(s, pending + tail, token);
  }
}

/** Logprobs cost two extra passes over the vocabulary per token: only when asked for, or when
 *  bestOf > n outputs must be ranked by cumulative logprob. */
function needLogprob(p: SamplingParams): boolean {
  return p.logprobs !== null || p.bestOf > p.n;
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((ok) => setImmediate(ok));
}

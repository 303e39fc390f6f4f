// The model runner: a scheduled step in, the logits the sampler needs out. It packs the step
// (BatchBuffers), runs the model's forward over the paged KV pool, and returns only the rows of
// sequences that sample this step (last token of a finished prompt, or a generation token), plus
// every prompt row of sequences that asked for prompt logprobs (StepSeq.promptLogitsEnd).
import type { KvLayer } from "../backends/backend.js";
import { BatchBuffers, type StepSeq } from "./batch.js";
import type { KvPool } from "./kv-pool.js";
import type { ForwardBatch } from "./types.js";

/** What the runner needs of a model (LlamaModel implements it). */
export interface ForwardModel {
  readonly config: { readonly vocabSize: number };
  /** `out`, when the model takes it: a buffer to write the logits into (returned as a view of it) */
  forward(batch: ForwardBatch, kv: readonly KvLayer[], out?: Float32Array<ArrayBuffer>): Float32Array;
}

/** 8M floats (32 MiB): e.g. 64 rows of a 128K vocabulary */
const REUSE_MAX_LOGITS = 8 * 1024 * 1024;

export interface StepLogits {
  /** [rowSeq.length, vocab] f32; a view of the runner's buffer, valid until the next run() */
  logits: Float32Array;
  /** per logits row: index of its sequence in the step's list */
  rowSeq: number[];
  /** per logits row: position of its token in the sequence (the row scores the token at pos + 1) */
  rowPos: number[];
  /** packed tokens in the step */
  numTokens: number;
}

export class ModelRunner {
  private readonly buffers: BatchBuffers;
  /** logits of the last step, reused (grows to the largest step's rows x vocab) */
  private logitsBuf = new Float32Array(0);

  constructor(readonly model: ForwardModel, readonly pool: KvPool) {
    this.buffers = new BatchBuffers(pool.shape.tokensPerBlock);
  }

  get vocabSize(): number {
    return this.model.config.vocabSize;
  }

  /** Runs one forward over `seqs` (context chunks first, then generation tokens, by convention). */
  run(seqs: readonly StepSeq[]): StepLogits {
    const { batch, rowSeq, rowPos } = this.buffers.pack(seqs);
    if (batch.tokens.length === 0) return { logits: new Float32Array(0), rowSeq, rowPos, numTokens: 0 };
    // reused up to REUSE_MAX_LOGITS elements (a decode step of many sequences); rarer, larger steps
    // (prompt logprobs: a row per prompt token) get a fresh array that is not kept
    const n = batch.logitRows.length * this.vocabSize;
    if (this.logitsBuf.length < n && n <= REUSE_MAX_LOGITS) this.logitsBuf = new Float32Array(Math.min(REUSE_MAX_LOGITS, Math.max(n, this.logitsBuf.length * 2)));
    const logits = this.model.forward(batch, this.pool.layers, n <= this.logitsBuf.length ? this.logitsBuf : undefined);
    return { logits, rowSeq, rowPos, numTokens: batch.tokens.length };
  }
}

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
  forward(batch: ForwardBatch, kv: readonly KvLayer[]): Float32Array;
}

export interface StepLogits {
  /** [rowSeq.length, vocab] f32 */
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
    const logits = this.model.forward(batch, this.pool.layers);
    return { logits, rowSeq, rowPos, numTokens: batch.tokens.length };
  }
}

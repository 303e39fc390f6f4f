// What the model runner hands to a model's forward pass: one step's tokens packed over sequences.
import type { AttnSeq } from "../backends/backend.js";

export interface ForwardBatch {
  /** [T] token ids, packed sequence after sequence (each sequence's tokens are contiguous) */
  readonly tokens: Int32Array;
  /** [T] absolute position of each token in its sequence */
  readonly positions: Int32Array;
  /** per sequence: where its queries start in the packed rows, its lengths and block table */
  readonly seqs: readonly AttnSeq[];
  /** [T] KV-cache slot (block * tokensPerBlock + offset) each token's K/V is written to */
  readonly slots: Int32Array;
  /** indices into [0, T) whose logits are returned, in this order */
  readonly logitRows: Int32Array;
}

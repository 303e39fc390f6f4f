// Packs one scheduled step into the flat buffers a forward pass reads (no padding): token ids,
// positions, KV slots ([T] each) and per-sequence attention metadata. Sequences are packed in the
// order given (the executor puts context chunks first, then generation tokens). Buffers grow to
// the largest step seen and are reused; the ForwardBatch holds views into them, valid until the
// next pack().
import type { AttnSeq } from "../backends/backend.js";
import { ValidationError } from "../errors.js";
import type { ForwardBatch } from "./types.js";

/** One sequence's share of a step. */
export interface StepSeq {
  /** all known token ids of the sequence (prompt then outputs); tokens[start .. start+numTokens) are fed */
  readonly tokens: ArrayLike<number>;
  /** position of the first fed token (= tokens whose KV already exists) */
  readonly start: number;
  /** tokens fed this step (>= 1) */
  readonly numTokens: number;
  /** block ids covering positions [0, start + numTokens) */
  readonly blockTable: Int32Array;
  /** whether the logits of the last fed token are wanted (false for a non-final prompt chunk) */
  readonly wantLogits: boolean;
  /** also return the logits of every fed position < this (prompt logprobs: row p scores token p+1);
   *  default 0 (none). Rows of a sequence come in position order; the last-token row stays last. */
  readonly promptLogitsEnd?: number;
}

export class BatchBuffers {
  private tokens = new Int32Array(0);
  private positions = new Int32Array(0);
  private slots = new Int32Array(0);
  private logitRows = new Int32Array(0);

  constructor(readonly tokensPerBlock: number) {
    if (!Number.isInteger(tokensPerBlock) || tokensPerBlock < 1 || (tokensPerBlock & (tokensPerBlock - 1)) !== 0) {
      throw new ValidationError("tokensPerBlock", tokensPerBlock, "must be a power of two >= 1");
    }
  }

  /** Packs `seqs`; returns the batch and, per logits row, the index of its sequence in `seqs` and the
   *  position of the row's token in that sequence. */
  pack(seqs: readonly StepSeq[]): { batch: ForwardBatch; rowSeq: number[]; rowPos: number[] } {
    const T = seqs.reduce((a, s) => a + s.numTokens, 0);
    this.reserve(T, seqs.reduce((a, s) => a + numRows(s), 0));
    const tpb = this.tokensPerBlock, shift = Math.log2(tpb);
    const attn: AttnSeq[] = [];
    const rowSeq: number[] = [];
    const rowPos: number[] = [];
    let at = 0;
    seqs.forEach((s, i) => {
      const end = s.start + s.numTokens;
      checkSeq(s, i, tpb);
      for (let p = s.start; p < end; p++, at++) {
        this.tokens[at] = s.tokens[p]!;
        this.positions[at] = p;
        this.slots[at] = s.blockTable[p >> shift]! * tpb + (p & (tpb - 1));
      }
      const qStart = at - s.numTokens;
      attn.push({ qStart, qLen: s.numTokens, kvLen: end, blockTable: s.blockTable });
      // prompt-logprob rows (positions < promptLogitsEnd), then the last token's row when wanted
      const extraEnd = Math.min(s.wantLogits ? end - 1 : end, s.promptLogitsEnd ?? 0);
      for (let p = s.start; p < extraEnd; p++) this.addRow(qStart + p - s.start, i, p, rowSeq, rowPos);
      if (s.wantLogits) this.addRow(at - 1, i, end - 1, rowSeq, rowPos);
    });
    const batch: ForwardBatch = {
      tokens: this.tokens.subarray(0, T), positions: this.positions.subarray(0, T), slots: this.slots.subarray(0, T),
      seqs: attn, logitRows: this.logitRows.subarray(0, rowSeq.length),
    };
    return { batch, rowSeq, rowPos };
  }

  private addRow(row: number, seq: number, pos: number, rowSeq: number[], rowPos: number[]): void {
    this.logitRows[rowSeq.length] = row;
    rowSeq.push(seq);
    rowPos.push(pos);
  }

  private reserve(T: number, numRows: number): void {
    if (this.tokens.length < T) {
      const cap = Math.max(T, this.tokens.length * 2);
      this.tokens = new Int32Array(cap);
      this.positions = new Int32Array(cap);
      this.slots = new Int32Array(cap);
    }
    if (this.logitRows.length < numRows) this.logitRows = new Int32Array(Math.max(numRows, this.logitRows.length * 2));
  }
}

/** logits rows a sequence asks for (upper bound used to size the row buffer) */
function numRows(s: StepSeq): number {
  return Math.max(0, Math.min(s.start + s.numTokens, s.promptLogitsEnd ?? 0) - s.start) + 1;
}

function checkSeq(s: StepSeq, i: number, tpb: number): void {
  const end = s.start + s.numTokens;
  if (!Number.isInteger(s.numTokens) || s.numTokens < 1) throw new ValidationError(`seqs[${i}].numTokens`, s.numTokens, "must be an integer >= 1");
  if (!Number.isInteger(s.start) || s.start < 0 || end > s.tokens.length) {
    throw new ValidationError(`seqs[${i}].start`, s.start, `feeding ${s.numTokens} tokens overruns the ${s.tokens.length} known tokens`);
  }
  if (s.blockTable.length * tpb < end) {
    throw new ValidationError(`seqs[${i}].blockTable`, s.blockTable.length, `blocks cover ${s.blockTable.length * tpb} positions, need ${end}`);
  }
}

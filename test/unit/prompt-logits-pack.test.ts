// BatchBuffers.pack with StepSeq.promptLogitsEnd (prompt logprobs): which logits rows a step
// returns and the position each one scores, written out by hand.
import { test } from "node:test";
import assert from "node:assert/strict";
import { BatchBuffers } from "../../src/engine/batch.js";

test("a middle chunk returns every fed row; the final chunk its prompt rows then the sampling row", () => {
  const b = new BatchBuffers(4);
  const tokens = [10, 11, 12, 13, 14, 15, 16];
  const blockTable = Int32Array.of(3, 5);
  // middle chunk: positions 0..3 fed, prompt rows wanted below position 6 -> rows 0..3
  const mid = b.pack([{ tokens, start: 0, numTokens: 4, blockTable, wantLogits: false, promptLogitsEnd: 6 }]);
  assert.deepEqual([...mid.batch.logitRows], [0, 1, 2, 3]);
  assert.deepEqual(mid.rowPos, [0, 1, 2, 3]);
  assert.deepEqual(mid.rowSeq, [0, 0, 0, 0]);
  // final chunk (positions 4..6) next to a decode token: rows 4, 5 (prompt) then 6 (sampling), then the decode row
  const fin = b.pack([
    { tokens, start: 4, numTokens: 3, blockTable, wantLogits: true, promptLogitsEnd: 6 },
    { tokens: [1, 2], start: 1, numTokens: 1, blockTable: Int32Array.of(7), wantLogits: true },
  ]);
  assert.deepEqual([...fin.batch.logitRows], [0, 1, 2, 3]);
  assert.deepEqual(fin.rowPos, [4, 5, 6, 1]);
  assert.deepEqual(fin.rowSeq, [0, 0, 0, 1]);
});

test("a recompute past the prompt returns prompt rows below promptLogitsEnd and the last row only", () => {
  const b = new BatchBuffers(4);
  const tokens = [1, 2, 3, 4, 5, 6]; // prompt of 3 (promptLogitsEnd 2), then 3 outputs, recomputed at once
  const r = b.pack([{ tokens, start: 0, numTokens: 6, blockTable: Int32Array.of(1, 2), wantLogits: true, promptLogitsEnd: 2 }]);
  assert.deepEqual(r.rowPos, [0, 1, 5]);
  assert.deepEqual([...r.batch.logitRows], [0, 1, 5]);
  const none = b.pack([{ tokens, start: 0, numTokens: 6, blockTable: Int32Array.of(1, 2), wantLogits: true }]);
  assert.deepEqual(none.rowPos, [5]);
});

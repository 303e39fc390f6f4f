// The engine's packing (BatchBuffers), KV pool, and model runner row selection, on hand-built
// inputs: expected tokens, positions and slots are written out from the block tables by hand.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { KvLayer } from "../../src/backends/backend.js";
import { BatchBuffers } from "../../src/engine/batch.js";
import { createKvPool, KvPool } from "../../src/engine/kv-pool.js";
import { ModelRunner } from "../../src/engine/model-runner.js";
import type { ForwardBatch } from "../../src/engine/types.js";
import { ValidationError } from "../../src/errors.js";

describe("BatchBuffers.pack", () => {
  test("packs a prompt chunk then a decode token: tokens, positions, slots, seqs, logit rows", () => {
    const b = new BatchBuffers(4);
    // seq A: tokens 10..15, positions 2..4 fed (a middle chunk, no logits); blocks [7, 3]
    // seq B: 3 known tokens, the last one fed (decode); blocks [5]
    const { batch, rowSeq } = b.pack([
      { tokens: [10, 11, 12, 13, 14, 15], start: 2, numTokens: 3, blockTable: Int32Array.of(7, 3), wantLogits: false },
      { tokens: [20, 21, 22], start: 2, numTokens: 1, blockTable: Int32Array.of(5), wantLogits: true },
    ]);
    assert.deepEqual([...batch.tokens], [12, 13, 14, 22]);
    assert.deepEqual([...batch.positions], [2, 3, 4, 2]);
    // A: pos 2,3 in block 7 (slots 28+2, 28+3), pos 4 in block 3 (slot 12); B: pos 2 in block 5 (slot 22)
    assert.deepEqual([...batch.slots], [30, 31, 12, 22]);
    assert.deepEqual(batch.seqs.map((s) => [s.qStart, s.qLen, s.kvLen]), [[0, 3, 5], [3, 1, 3]]);
    assert.deepEqual([...batch.logitRows], [3]);
    assert.deepEqual(rowSeq, [1]);
  });

  test("buffers are reused: a smaller second step is a view of the same memory", () => {
    const b = new BatchBuffers(2);
    const big = b.pack([{ tokens: [1, 2, 3, 4, 5], start: 0, numTokens: 5, blockTable: Int32Array.of(1, 2, 3), wantLogits: true }]);
    const small = b.pack([{ tokens: [9], start: 0, numTokens: 1, blockTable: Int32Array.of(4), wantLogits: true }]);
    assert.equal(small.batch.tokens.buffer, big.batch.tokens.buffer);
    assert.deepEqual([...small.batch.tokens], [9]);
    assert.deepEqual([...small.batch.slots], [8]);
  });

  test("bad sequences get typed errors naming the field", () => {
    const b = new BatchBuffers(4);
    const seq = { tokens: [1, 2, 3], start: 0, numTokens: 3, blockTable: Int32Array.of(1), wantLogits: true };
    assert.throws(() => b.pack([{ ...seq, numTokens: 0 }]), (e: unknown) => e instanceof ValidationError && e.field === "seqs[0].numTokens");
    assert.throws(() => b.pack([{ ...seq, start: 1 }]), (e: unknown) => e instanceof ValidationError && e.field === "seqs[0].start");
    assert.throws(() => b.pack([{ ...seq, tokens: [1, 2, 3, 4, 5], numTokens: 5 }]),
      (e: unknown) => e instanceof ValidationError && e.field === "seqs[0].blockTable");
    assert.throws(() => new BatchBuffers(3), ValidationError);
  });
});

describe("KvPool", () => {
  const shape = { numLayers: 2, numKvHeads: 2, headDim: 4, tokensPerBlock: 8, dtype: "f16" as const };

  test("one layer per model layer, [numBlocks, 2, kvHeads, tpb, headDim] elements of the dtype", () => {
    const p = new KvPool(shape, 5);
    assert.equal(p.layers.length, 2);
    assert.ok(p.layers[0]!.data instanceof Uint16Array);
    assert.equal(p.layers[0]!.data.length, 5 * 2 * 2 * 8 * 4);
    assert.equal(p.bytes, 5 * 2 * 2 * 8 * 4 * 2 * 2);
    const f32 = new KvPool({ ...shape, dtype: "f32" }, 3);
    assert.ok(f32.layers[1]!.data instanceof Float32Array);
  });

  test("copyBlock copies one block in every layer and nothing else", () => {
    const p = new KvPool({ ...shape, dtype: "f32" }, 4);
    const e = p.blockElements;
    for (const l of p.layers) for (let i = 0; i < l.data.length; i++) l.data[i] = i;
    p.copyBlock(1, 3);
    for (const l of p.layers) {
      for (let i = 0; i < e; i++) assert.equal(l.data[3 * e + i], e + i);
      assert.equal(l.data[2 * e], 2 * e);
    }
  });

  test("sized from maxTokens or memory, whichever is smaller; the reason says which", () => {
    // bytes per token: 2 (K,V) * 2 layers * 2 heads * 4 dims * 2 bytes = 64; per block of 8: 512
    const byTokens = createKvPool({ ...shape, maxTokens: 80, freeMemoryFraction: 0.5, availableBytes: 1 << 20 });
    assert.equal(byTokens.pool.numBlocks, 80 / 8 + 1);
    assert.match(byTokens.reason, /maxTokens=80/);
    const byMem = createKvPool({ ...shape, maxTokens: null, freeMemoryFraction: 0.5, availableBytes: 512 * 12 });
    assert.equal(byMem.pool.numBlocks, 6); // floor(0.5 * 6144 / 512)
    assert.match(byMem.reason, /available/);
    assert.throws(() => createKvPool({ ...shape, maxTokens: null, freeMemoryFraction: 0.5, availableBytes: 512 }), ValidationError);
  });
});

describe("ModelRunner", () => {
  test("forwards the packed batch over the pool's layers and maps logits rows to sequences", () => {
    const pool = new KvPool({ numLayers: 1, numKvHeads: 1, headDim: 2, tokensPerBlock: 2, dtype: "f32" }, 4);
    let seen: { batch: ForwardBatch; kv: readonly KvLayer[] } | null = null;
    const V = 3;
    const model = {
      config: { vocabSize: V },
      forward(batch: ForwardBatch, kv: readonly KvLayer[]) {
        seen = { batch, kv };
        // logits row r = [token, position, r] of the selected row
        const out = new Float32Array(batch.logitRows.length * V);
        batch.logitRows.forEach((row, r) => out.set([batch.tokens[row]!, batch.positions[row]!, r], r * V));
        return out;
      },
    };
    const runner = new ModelRunner(model, pool);
    const res = runner.run([
      { tokens: [5, 6, 7], start: 0, numTokens: 3, blockTable: Int32Array.of(1, 2), wantLogits: true },
      { tokens: [8, 9], start: 0, numTokens: 1, blockTable: Int32Array.of(3), wantLogits: false },
      { tokens: [4], start: 0, numTokens: 1, blockTable: Int32Array.of(3), wantLogits: true },
    ]);
    assert.equal(seen!.kv, pool.layers);
    assert.equal(res.numTokens, 5);
    assert.deepEqual(res.rowSeq, [0, 2]);
    assert.deepEqual([...res.logits], [7, 2, 0, 4, 0, 1]);
    assert.equal(runner.vocabSize, V);
  });
});

describe("createKvPool caps", () => {
  const shape = { numLayers: 2, numKvHeads: 2, headDim: 4, tokensPerBlock: 8, dtype: "f16" as const };

  test("memory-based sizing stops at maxUsefulTokens (maxBatchSize x maxSeqLen); an explicit smaller maxTokens wins", () => {
    // 512 bytes per block; 1 GiB available would give ~1.9M blocks
    const big = createKvPool({ ...shape, maxTokens: null, freeMemoryFraction: 0.9, availableBytes: 2 ** 30, maxUsefulTokens: 4 * 64 });
    assert.equal(big.pool.numBlocks, 4 * 64 / 8 + 1);
    assert.match(big.reason, /maxBatchSize x maxSeqLen=256/);
    const explicit = createKvPool({ ...shape, maxTokens: 80, freeMemoryFraction: 0.9, availableBytes: 2 ** 30, maxUsefulTokens: 256 });
    assert.equal(explicit.pool.numBlocks, 11);
    assert.match(explicit.reason, /maxTokens=80/);
  });
});

// KVCacheManager pieces beam search uses: reassign (beams take shared copies of their parents'
// block tables, swaps included), copy-on-write of the shared partial block, and pendingForks in
// neededBlocks. Expected block ids and reference counts are worked out by hand from the pool's
// FIFO free queue (block 1 is handed out first).
import { test } from "node:test";
import assert from "node:assert/strict";
import { KVCacheManager, type KvRequest } from "../../src/kvcache/kv-cache-manager.js";
import { ValidationError } from "../../src/errors.js";

function req(id: string, tokens: number[], numComputedTokens: number, extra: Partial<KvRequest> = {}): KvRequest {
  return { id, tokens, numComputedTokens, ...extra };
}

test("reassign shares tables (ref-counted), copy-on-write splits the written block, swaps read the old tables", () => {
  const kv = new KVCacheManager({ numBlocks: 10, tokensPerBlock: 4, enableBlockReuse: false });
  const a = req("a", [1, 2, 3, 4, 5, 6], 0);
  assert.ok(kv.allocateSlots(a, 6));
  assert.deepEqual([...kv.getBlockTable("a")], [1, 2]);
  kv.reassign([{ dst: "a", src: "a" }, { dst: "b", src: "a" }, { dst: "c", src: "a" }]);
  for (const id of ["a", "b", "c"]) assert.deepEqual([...kv.getBlockTable(id)], [1, 2]);
  assert.equal(kv.refCount(1), 3);
  assert.equal(kv.refCount(2), 3);
  assert.equal(kv.numFreeBlocks, 7);
  // b writes position 6 (block index 1, shared): gets block 3, a copy of block 2
  assert.deepEqual(kv.copyOnWrite(req("b", [1, 2, 3, 4, 5, 6, 7], 6)), { src: 2, dst: 3 });
  assert.deepEqual([...kv.getBlockTable("b")], [1, 3]);
  assert.equal(kv.refCount(2), 2);
  // a writes position 8: a block not allocated yet, nothing to copy
  assert.equal(kv.copyOnWrite(req("a", [1, 2, 3, 4, 5, 6, 7, 8, 9], 8)), null);
  // swap a and b, c takes b's: tables as before the call
  kv.reassign([{ dst: "a", src: "b" }, { dst: "b", src: "a" }, { dst: "c", src: "b" }]);
  assert.deepEqual([...kv.getBlockTable("a")], [1, 3]);
  assert.deepEqual([...kv.getBlockTable("b")], [1, 2]);
  assert.deepEqual([...kv.getBlockTable("c")], [1, 3]);
  assert.equal(kv.refCount(1), 3);
  assert.equal(kv.refCount(2), 1);
  assert.equal(kv.refCount(3), 2);
  for (const id of ["a", "b", "c"]) kv.free(id);
  assert.equal(kv.numFreeBlocks, 9, "every block back in the free queue");
  assert.throws(() => kv.reassign([{ dst: "x", src: "nobody" }]), ValidationError);
});

test("pendingForks books each future beam's blocks beyond the shared full prompt blocks", () => {
  const kv = new KVCacheManager({ numBlocks: 20, tokensPerBlock: 4 });
  const prompt = [1, 2, 3, 4, 5, 6]; // 1 full block + 2 tokens
  const plain = req("p", prompt, 0);
  const beam = req("q", prompt, 0, { pendingForks: 2, forkSharedTokens: 6 });
  assert.equal(kv.neededBlocks(plain, 14), 4);
  // each of 2 forks needs ceil(14/4) - 1 = 3 blocks of its own
  assert.equal(kv.neededBlocks(beam, 14), 4 + 2 * 3);
  // next step only (MAX_UTILIZATION books numTokens = 6): the forks' copies of the partial block
  assert.equal(kv.neededBlocks(beam, 6), 2 + 2 * 1);
});

// KV cache manager: exact block ids, prefix reuse, LRU eviction order, ref counts, salts, stats.
import { test } from "node:test";
import assert from "node:assert/strict";
import { FreeBlockQueue, KVCacheManager, kvBytesPerToken, kvPoolBlocks, type KvRequest } from "../../src/kvcache/index.js";
import { ValidationError } from "../../src/errors.js";

/** a mutable request view: tokens and computed count */
function req(id: string, tokens: number[], extra: { cacheSalt?: string; loraId?: number } = {}) {
  return { id, tokens, numComputedTokens: 0, ...extra } satisfies KvRequest;
}
const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

test("free queue: FIFO order, O(1) middle removal, front insertion, errors on misuse", () => {
  const q = new FreeBlockQueue(6);
  for (const id of [3, 1, 4, 5]) q.pushBack(id);
  q.remove(1);
  q.pushFront(2);
  assert.deepEqual(q.toArray(), [2, 3, 4, 5]);
  assert.equal(q.size, 4);
  assert.equal(q.popFront(), 2);
  q.remove(5);
  assert.deepEqual(q.toArray(), [3, 4]);
  assert.equal(q.has(4), true);
  assert.equal(q.has(5), false);
  assert.throws(() => q.pushBack(3), ValidationError);
  assert.throws(() => q.remove(5), ValidationError);
  assert.throws(() => q.pushBack(6), ValidationError);
  assert.equal(q.popFront(), 3);
  assert.equal(q.popFront(), 4);
  assert.equal(q.popFront(), -1);
});

test("block ids handed out in order, prefix hit shares blocks, free order puts chain tails first", () => {
  const m = new KVCacheManager({ numBlocks: 11, tokensPerBlock: 4 });
  assert.equal(m.numFreeBlocks, 10); // block 0 is the null block
  const a = req("a", range(0, 10));
  assert.equal(m.allocatePrompt(a), 0);
  assert.equal(m.allocateSlots(a, 10), true);
  assert.deepEqual([...m.getBlockTable("a")], [1, 2, 3]);
  a.numComputedTokens = 10;
  assert.equal(m.cacheFullBlocks(a), 2); // tokens 0..7; block 3 is partial
  assert.equal(m.blockHash(3), null);

  const b = req("b", [...range(0, 8), 100, 101, 102]);
  assert.deepEqual(m.findCachedPrefix(b), [1, 2]);
  assert.equal(m.neededBlocks(b, 11), 1); // 3 blocks, 2 shared with a (in use)
  assert.equal(m.allocatePrompt(b), 8);
  assert.equal(m.numCachedTokens("b"), 8);
  assert.deepEqual([m.refCount(1), m.refCount(2), m.refCount(3)], [2, 2, 1]);
  b.numComputedTokens = 8;
  assert.equal(m.allocateSlots(b, 3), true);
  assert.deepEqual([...m.getBlockTable("b")], [1, 2, 4]);

  const s = m.stats();
  // a looked up 2 full blocks (tokens 0..8 may be cached), missed both; b hit both
  assert.deepEqual([s.allocated, s.reused, s.missed, s.hitRate, s.numUsedBlocks, s.numCachedBlocks], [4, 2, 2, 0.5, 4, 2]);

  assert.equal(m.free(a), 1); // only block 3 drops to ref 0
  assert.deepEqual(m.freeBlockIds(), [5, 6, 7, 8, 9, 10, 3]);
  assert.equal(m.free(b), 3);
  assert.deepEqual(m.freeBlockIds(), [5, 6, 7, 8, 9, 10, 3, 4, 2, 1]);
  assert.deepEqual([m.refCount(1), m.refCount(2), m.refCount(4)], [0, 0, 0]);

  // a freed block keeps its hash: a new request revives 1 and 2 from the middle of the queue
  const c = req("c", range(0, 9));
  assert.equal(m.neededBlocks(c, 9), 3); // hits are free blocks: they still come out of the pool
  assert.equal(m.allocatePrompt(c), 8);
  assert.deepEqual(m.freeBlockIds(), [5, 6, 7, 8, 9, 10, 3, 4]);
  assert.equal(m.free("c"), 2);
  assert.deepEqual(m.freeBlockIds(), [5, 6, 7, 8, 9, 10, 3, 4, 2, 1]);
});

test("LRU eviction drops the hash of the evicted block only", () => {
  const m = new KVCacheManager({ numBlocks: 11, tokensPerBlock: 4 });
  const a = req("a", range(0, 12));
  m.allocatePrompt(a);
  m.allocateSlots(a, 12); // blocks 1,2,3
  a.numComputedTokens = 12;
  assert.equal(m.cacheFullBlocks(a), 3);
  m.free(a); // free order: 4..10, 3, 2, 1
  const e = req("e", range(500, 532));
  m.allocatePrompt(e);
  assert.equal(m.allocateSlots(e, 32), true); // 8 blocks: 4..10 then 3 (evicting a's tail block)
  assert.deepEqual([...m.getBlockTable("e")], [4, 5, 6, 7, 8, 9, 10, 3]);
  assert.equal(m.stats().evicted, 1);
  assert.equal(m.stats().numCachedBlocks, 2);
  const f = req("f", range(0, 13));
  assert.deepEqual(m.findCachedPrefix(f), [1, 2]); // block 3's hash is gone, 1 and 2 survive
  assert.equal(m.allocateSlots(req("g", range(0, 9)), 9), false); // needs 3, only 2 free
  assert.equal(m.isAllocated("g"), false);
  assert.equal(m.numFreeBlocks, 2);
});

test("the last prompt token is always recomputed: a fully cached prompt leaves one block", () => {
  const m = new KVCacheManager({ numBlocks: 8, tokensPerBlock: 4 });
  const a = req("a", range(0, 8));
  m.allocateSlots(a, 8);
  a.numComputedTokens = 8;
  m.cacheFullBlocks(a);
  const b = req("b", range(0, 8));
  assert.equal(m.allocatePrompt(b), 4);
  const c = req("c", range(0, 9));
  assert.equal(m.allocatePrompt(c), 8);
});

test("ref counts under a shared prefix", () => {
  const m = new KVCacheManager({ numBlocks: 16, tokensPerBlock: 4 });
  const base = req("r0", range(0, 9));
  m.allocateSlots(base, 9);
  base.numComputedTokens = 9;
  m.cacheFullBlocks(base); // blocks 1, 2 hashed; 3 partial
  for (const id of ["r1", "r2"]) assert.equal(m.allocatePrompt(req(id, [...range(0, 8), 42, 43])), 8);
  assert.deepEqual([m.refCount(1), m.refCount(2), m.refCount(3)], [3, 3, 1]);
  m.free("r1");
  assert.deepEqual([m.refCount(1), m.refCount(2)], [2, 2]);
  m.free("r0");
  m.free("r2");
  assert.deepEqual([m.refCount(1), m.refCount(2), m.refCount(3)], [0, 0, 0]);
  assert.equal(m.numFreeBlocks, 15);
});

test("cache salt and LoRA id separate reuse; disabled reuse never hits", () => {
  const m = new KVCacheManager({ numBlocks: 16, tokensPerBlock: 4 });
  const a = req("a", range(0, 9), { cacheSalt: "s1" });
  m.allocateSlots(a, 9);
  a.numComputedTokens = 9;
  m.cacheFullBlocks(a);
  assert.deepEqual(m.findCachedPrefix(req("b", range(0, 9), { cacheSalt: "s2" })), []);
  assert.deepEqual(m.findCachedPrefix(req("c", range(0, 9))), []);
  assert.deepEqual(m.findCachedPrefix(req("d", range(0, 9), { cacheSalt: "s1", loraId: 3 })), []);
  assert.deepEqual(m.findCachedPrefix(req("e", range(0, 9), { cacheSalt: "s1" })), [1, 2]);

  const off = new KVCacheManager({ numBlocks: 16, tokensPerBlock: 4, enableBlockReuse: false });
  const x = req("x", range(0, 9));
  off.allocateSlots(x, 9);
  x.numComputedTokens = 9;
  assert.equal(off.cacheFullBlocks(x), 0);
  assert.equal(off.allocatePrompt(req("y", range(0, 9))), 0);
  assert.equal(off.stats().hitRate, 0);
});

test("fork shares blocks; copy-on-write replaces the shared block being written", () => {
  const m = new KVCacheManager({ numBlocks: 8, tokensPerBlock: 4 });
  const a = req("a", range(0, 6));
  m.allocateSlots(a, 6); // blocks 1, 2
  a.numComputedTokens = 6;
  m.fork("a", "a2");
  assert.deepEqual([m.refCount(1), m.refCount(2)], [2, 2]);
  const a2 = { ...a, id: "a2" };
  assert.deepEqual(m.copyOnWrite(a2), { src: 2, dst: 3 });
  assert.deepEqual([...m.getBlockTable("a2")], [1, 3]);
  assert.deepEqual([m.refCount(1), m.refCount(2), m.refCount(3)], [2, 1, 1]);
  assert.equal(m.copyOnWrite(a), null); // a is now the only owner of block 2
  assert.deepEqual([...m.slotsFor("a2", 2, 4)], [6, 7, 12, 13]);
  assert.throws(() => m.slotsFor("a2", 6, 3), ValidationError);
  assert.throws(() => m.fork("a", "a2"), ValidationError);
  assert.throws(() => m.allocatePrompt(a), ValidationError);
  m.free("a");
  m.free("a2");
  assert.equal(m.numFreeBlocks, 7);
});

test("bad options and arguments get typed errors", () => {
  assert.throws(() => new KVCacheManager({ numBlocks: 8, tokensPerBlock: 3 }), (e: unknown) => e instanceof ValidationError && e.field === "tokensPerBlock");
  assert.throws(() => new KVCacheManager({ numBlocks: 1 }), (e: unknown) => e instanceof ValidationError && e.field === "numBlocks");
  const m = new KVCacheManager({ numBlocks: 8 });
  assert.throws(() => m.allocateSlots(req("a", [1]), -1), (e: unknown) => e instanceof ValidationError && e.field === "numNewTokens");
});

test("kvBytesPerToken per dtype", () => {
  // Llama-3-8B shape: 32 layers, 8 KV heads, head dim 128: 2 (K,V) * 32 * 8 * 128 elements per token
  assert.equal(kvBytesPerToken(32, 8, 128, "f16"), 131072);
  assert.equal(kvBytesPerToken(32, 8, 128, "f32"), 262144);
  assert.equal(kvBytesPerToken(32, 8, 128, "int8"), 2 * 32 * 8 * (128 + 4));
  assert.throws(() => kvBytesPerToken(0, 8, 128, "f16"), ValidationError);
});

test("kvPoolBlocks: the smaller of the token cap and the memory fraction wins", () => {
  const MiB = 2 ** 20;
  const byTok = kvPoolBlocks({ maxTokens: 1000, freeMemoryFraction: 0.5, availableBytes: 1024 * MiB, bytesPerBlock: 4 * MiB, tokensPerBlock: 32 });
  assert.equal(byTok.numBlocks, 33); // ceil(1000 / 32) + null block; memory would give 128
  assert.match(byTok.reason, /maxTokens=1000 -> 33 blocks \(smaller than 0.5 x 1024.0 MiB available -> 128 blocks\)/);
  const byMem = kvPoolBlocks({ maxTokens: 100000, availableBytes: 100 * MiB, bytesPerBlock: 4 * MiB, tokensPerBlock: 32 });
  assert.equal(byMem.numBlocks, 22); // floor(0.9 * 100 / 4)
  assert.match(byMem.reason, /^KV cache: 22 blocks x 32 tokens = 672 usable tokens/);
  assert.equal(kvPoolBlocks({ availableBytes: 64 * MiB, freeMemoryFraction: 1, bytesPerBlock: MiB, tokensPerBlock: 16 }).numBlocks, 64);
  assert.throws(() => kvPoolBlocks({ bytesPerBlock: MiB, tokensPerBlock: 32 }), ValidationError);
  assert.throws(() => kvPoolBlocks({ maxTokens: 10, freeMemoryFraction: 0, bytesPerBlock: MiB, tokensPerBlock: 32 }),
    (e: unknown) => e instanceof ValidationError && e.field === "freeMemoryFraction");
  assert.throws(() => kvPoolBlocks({ availableBytes: MiB, bytesPerBlock: MiB, tokensPerBlock: 32 }),
    (e: unknown) => e instanceof ValidationError && e.field === "availableBytes");
});

// Randomized KV cache test: 1000 requests with random prompts over shared prefixes, random salts,
// aborts, forks (copy-on-write) and evictions. A shadow KV pool records which (salt, token) was
// "written" at every slot; every request must always read back exactly its own tokens, whether its
// blocks were computed, reused from the prefix cache or shared by a fork. At the end nothing leaks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { KVCacheManager } from "../../src/kvcache/index.js";
import { rng } from "./test-rng.js";

/** deterministic PRNG (mulberry32) so failures reproduce */

interface R {
  id: number;
  tokens: number[];
  numComputedTokens: number;
  cacheSalt: string | undefined;
}

const TPB = 4;
const NUM_BLOCKS = 48;

test("1000 random requests: reads always match writes, every block returns, ref counts end at zero", () => {
  const rand = rng(12345);
  const int = (n: number) => Math.floor(rand() * n);
  const m = new KVCacheManager({ numBlocks: NUM_BLOCKS, tokensPerBlock: TPB });
  const shadow: (string | null)[] = new Array(NUM_BLOCKS * TPB).fill(null);
  const prefixes = Array.from({ length: 4 }, () => Array.from({ length: 24 }, () => int(50)));
  const salts = [undefined, "a", "b"];
  const active = new Map<number, R>();
  let created = 0, nextId = 0, hits = 0, forks = 0, cows = 0, aborts = 0;
  const key = (r: R, pos: number) => `${r.cacheSalt ?? ""}|${r.tokens[pos]}`;

  const verify = (r: R) => {
    const slots = m.slotsFor(r.id, 0, r.numComputedTokens);
    for (let p = 0; p < slots.length; p++) assert.equal(shadow[slots[p]!], key(r, p), `req ${r.id} pos ${p}`);
  };
  const drop = (r: R) => {
    m.free(r);
    active.delete(r.id);
  };
  const compute = (r: R) => {
    if (r.numComputedTokens === r.tokens.length) r.tokens.push(int(50)); // "sample" one token
    if (m.numFreeBlocks === 0) return drop(r); // copy-on-write may need a block: treat as preempted
    const cow = m.copyOnWrite(r);
    if (cow) {
      cows++;
      for (let o = 0; o < TPB; o++) shadow[cow.dst * TPB + o] = shadow[cow.src * TPB + o]!;
    }
    const n = r.tokens.length - r.numComputedTokens;
    if (!m.allocateSlots(r, n)) return drop(r); // out of blocks: treat as preempted
    const slots = m.slotsFor(r.id, r.numComputedTokens, n);
    for (let i = 0; i < n; i++) shadow[slots[i]!] = key(r, r.numComputedTokens + i);
    r.numComputedTokens += n;
    m.cacheFullBlocks(r);
    if (r.tokens.length > 44) drop(r);
  };

  for (let tick = 0; created < 1000 || active.size > 0; tick++) {
    if (created < 1000 && active.size < 10 && rand() < 0.5) {
      const pre = prefixes[int(4)]!.slice(0, int(25));
      const r: R = { id: nextId++, tokens: [...pre, ...Array.from({ length: 1 + int(10) }, () => int(50))], numComputedTokens: 0, cacheSalt: salts[int(3)] };
      created++;
      active.set(r.id, r);
      r.numComputedTokens = m.allocatePrompt(r);
      if (r.numComputedTokens > 0) hits++;
      assert.ok(r.numComputedTokens < r.tokens.length && r.numComputedTokens % TPB === 0);
      verify(r); // prefix-cache blocks hold exactly this request's (salt, tokens)
      continue;
    }
    const all = [...active.values()];
    if (all.length === 0) continue;
    const r = all[int(all.length)]!;
    const u = rand();
    if (u < 0.08) {
      aborts++;
      drop(r);
    } else if (u < 0.12 && r.numComputedTokens > 0 && active.size < 12) {
      const child: R = { id: nextId++, tokens: r.tokens.slice(0, r.numComputedTokens), numComputedTokens: r.numComputedTokens, cacheSalt: r.cacheSalt };
      m.fork(r.id, child.id);
      active.set(child.id, child);
      forks++;
    } else {
      compute(r);
    }
    for (const a of active.values()) verify(a);
    if (tick % 50 === 0) checkRefCounts(m, active);
  }
  assert.equal(m.numFreeBlocks, NUM_BLOCKS - 1);
  assert.deepEqual([...m.freeBlockIds()].sort((a, b) => a - b), Array.from({ length: NUM_BLOCKS - 1 }, (_, i) => i + 1));
  for (let b = 0; b < NUM_BLOCKS; b++) assert.equal(m.refCount(b), 0, `block ${b}`);
  const st = m.stats();
  // the random walk must actually exercise reuse, forks, copy-on-write, eviction and aborts
  assert.ok(hits > 50 && forks > 20 && cows > 5 && aborts > 20 && st.evicted > 50, JSON.stringify({ hits, forks, cows, aborts, st }));
  assert.equal(st.reused > 0 && st.hitRate > 0 && st.hitRate < 1, true);
});

/** every block's ref count equals the number of active block tables that hold it */
function checkRefCounts(m: KVCacheManager, active: Map<number, R>): void {
  const held = new Int32Array(NUM_BLOCKS);
  for (const r of active.values()) for (const b of m.getBlockTable(r.id)) held[b]!++;
  for (let b = 1; b < NUM_BLOCKS; b++) assert.equal(m.refCount(b), held[b], `block ${b}`);
  const inUse = held.reduce((n, h, b) => n + (b > 0 && h > 0 ? 1 : 0), 0);
  assert.equal(m.numFreeBlocks, NUM_BLOCKS - 1 - inUse);
}

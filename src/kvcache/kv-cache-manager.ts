// KV cache manager: per-request block tables over the BlockPool, with hash-chained prefix reuse.
// Pure integer bookkeeping: the engine turns block tables and slot ids into tensor indices.
//
// Lifecycle of a request (driven by the scheduler / executor):
//   allocatePrompt(req)        attach the longest cached prefix (ref++), returns cached tokens
//   allocateSlots(req, n)      make the block table cover numComputedTokens + n tokens
//   ... forward writes KV at slotsFor(req.id, pos, n) ...
//   cacheFullBlocks(req)       after numComputedTokens advanced: hash newly full blocks for reuse
//   free(req)                  release blocks (tail first, so chain tails are evicted first)

import { TllmError, ValidationError } from "../errors.js";
import { type BlockHash, type ExtraKeys, extendBlockHashes, extraKeyString } from "./block-hash.js";
import { BlockPool } from "./block-pool.js";

export type RequestId = number | string;

/** What the manager reads from a request. */
export interface KvRequest extends ExtraKeys {
  readonly id: RequestId;
  /** all known token ids, prompt then outputs; append-only over the request's life */
  readonly tokens: ArrayLike<number>;
  /** tokens whose KV is computed (or attached from the prefix cache) */
  readonly numComputedTokens: number;
  /** never attach cached blocks (the request needs every prompt row computed, e.g. prompt
   *  logprobs); its own full blocks are still registered for others. Default false. */
  readonly skipPrefixCache?: boolean;
  /** beam search: sequences still to be forked from this one (default 0). neededBlocks books each
   *  of them as needing the blocks of totalTokens beyond the full blocks of its first
   *  forkSharedTokens tokens (the prompt blocks they will share). */
  readonly pendingForks?: number;
  readonly forkSharedTokens?: number;
}

export interface KvCacheManagerOptions {
  /** total blocks in the pool, including the null block 0 */
  numBlocks: number;
  /** tokens per block (page size), a power of two; default 32 */
  tokensPerBlock?: number;
  /** prefix caching across requests; default true */
  enableBlockReuse?: boolean;
}

export interface KvCacheStats {
  numBlocks: number;
  numFreeBlocks: number;
  numUsedBlocks: number;
  /** blocks carrying a hash (in use or reusable) */
  numCachedBlocks: number;
  /** fresh blocks handed out by allocateSlots / copyOnWrite */
  allocated: number;
  /** prompt blocks served from the prefix cache */
  reused: number;
  /** full prompt blocks looked up without a hit */
  missed: number;
  /** reused / (reused + missed); 0 before any lookup */
  hitRate: number;
  /** cached blocks whose hash was dropped to hold new content */
  evicted: number;
}

interface ReqState {
  /** block table: block ids in position order */
  blocks: number[];
  /** number of leading blocks registered (or found) under their hash */
  numHashed: number;
  /** prompt tokens attached from the prefix cache at allocatePrompt */
  cachedTokens: number;
}

export class KVCacheManager {
  readonly tokensPerBlock: number;
  readonly numBlocks: number;
  readonly enableBlockReuse: boolean;
  private readonly pool: BlockPool;
  private readonly reqs = new Map<RequestId, ReqState>();
  /** per request: hash chain of its full blocks computed so far (lookups, then caching) */
  private readonly chains = new Map<RequestId, BlockHash[]>();
  private numAllocated = 0;
  private numReused = 0;
  private numMissed = 0;

  constructor(opts: KvCacheManagerOptions) {
    const tpb = opts.tokensPerBlock ?? 32;
    if (!Number.isInteger(tpb) || tpb < 1 || (tpb & (tpb - 1)) !== 0) {
      throw new ValidationError("tokensPerBlock", tpb, "must be a power of two >= 1");
    }
    this.tokensPerBlock = tpb;
    this.pool = new BlockPool(opts.numBlocks);
    this.numBlocks = opts.numBlocks;
    this.enableBlockReuse = opts.enableBlockReuse ?? true;
  }

  get numFreeBlocks(): number {
    return this.pool.numFree;
  }

  /** blocks needed to hold `numTokens` tokens */
  blocksFor(numTokens: number): number {
    return Math.ceil(numTokens / this.tokensPerBlock);
  }

  isAllocated(id: RequestId): boolean {
    return this.reqs.has(id);
  }

  numHeldBlocks(id: RequestId): number {
    return this.reqs.get(id)?.blocks.length ?? 0;
  }

  /** prompt tokens served from the prefix cache (OpenAI `cached_tokens`); 0 if not allocated */
  numCachedTokens(id: RequestId): number {
    return this.reqs.get(id)?.cachedTokens ?? 0;
  }

  /**
   * Block ids of the longest cached prefix of `req.tokens`. Never covers the last token: at least
   * one token is left to compute so the model produces logits. No side effects on the pool.
   */
  findCachedPrefix(req: KvRequest): number[] {
    if (!this.enableBlockReuse || req.skipPrefixCache === true) return [];
    const chain = this.chainOf(req, req.tokens.length - 1);
    const limit = Math.floor((req.tokens.length - 1) / this.tokensPerBlock);
    const out: number[] = [];
    for (let b = 0; b < limit; b++) {
      const id = this.pool.lookup(chain[b]!);
      if (id < 0) break;
      out.push(id);
    }
    return out;
  }

  /**
   * Free blocks that must be taken for the request to hold `totalTokens` tokens. For a request not
   * yet allocated, prefix hits on blocks in use by others cost nothing; hits on free blocks do.
   */
  neededBlocks(req: KvRequest, totalTokens: number): number {
    const forks = req.pendingForks ?? 0;
    const extra = forks > 0 ? forks * Math.max(0, this.blocksFor(totalTokens) - Math.floor((req.forkSharedTokens ?? 0) / this.tokensPerBlock)) : 0;
    const st = this.reqs.get(req.id);
    if (st) return Math.max(0, this.blocksFor(totalTokens) - st.blocks.length) + extra;
    let shared = 0;
    for (const id of this.findCachedPrefix(req)) if (this.pool.refCount[id]! > 0) shared++;
    return Math.max(0, this.blocksFor(totalTokens) - shared) + extra;
  }

  /** Attach the cached prefix to a new request (ref++). Returns the number of cached tokens. */
  allocatePrompt(req: KvRequest): number {
    if (this.reqs.has(req.id)) throw new ValidationError("request.id", req.id, "already holds KV blocks");
    const hits = this.findCachedPrefix(req);
    for (const id of hits) this.pool.touch(id);
    const cachedTokens = hits.length * this.tokensPerBlock;
    this.reqs.set(req.id, { blocks: hits, numHashed: hits.length, cachedTokens });
    if (this.enableBlockReuse && req.skipPrefixCache !== true) {
      const lookedUp = Math.floor((req.tokens.length - 1) / this.tokensPerBlock);
      this.numReused += hits.length;
      this.numMissed += Math.max(0, lookedUp - hits.length);
    }
    return cachedTokens;
  }

  /**
   * Grow the block table to cover numComputedTokens + numNewTokens tokens. Returns false, changing
   * nothing, when the free pool is too small. Registers the request if it holds no blocks yet.
   */
  allocateSlots(req: KvRequest, numNewTokens: number): boolean {
    if (!Number.isInteger(numNewTokens) || numNewTokens < 0) {
      throw new ValidationError("numNewTokens", numNewTokens, "must be an integer >= 0");
    }
    let st = this.reqs.get(req.id);
    const need = this.blocksFor(req.numComputedTokens + numNewTokens) - (st?.blocks.length ?? 0);
    if (need > this.pool.numFree) return false;
    if (!st) {
      st = { blocks: [], numHashed: 0, cachedTokens: 0 };
      this.reqs.set(req.id, st);
    }
    for (let i = 0; i < need; i++) st.blocks.push(this.pool.allocate());
    if (need > 0) this.numAllocated += need;
    return true;
  }

  /**
   * Register the request's newly full, computed blocks under their chained hash so later requests
   * can reuse them. Call after numComputedTokens advanced. Returns the number of blocks registered.
   */
  cacheFullBlocks(req: KvRequest): number {
    const st = this.reqs.get(req.id);
    if (!st || !this.enableBlockReuse) return 0;
    const limit = Math.min(req.numComputedTokens, req.tokens.length);
    const numFull = Math.min(Math.floor(limit / this.tokensPerBlock), st.blocks.length);
    if (numFull <= st.numHashed) return 0;
    const chain = this.chainOf(req, limit);
    let registered = 0;
    for (let b = st.numHashed; b < numFull; b++) if (this.pool.setHash(st.blocks[b]!, chain[b]!)) registered++;
    st.numHashed = numFull;
    return registered;
  }

  /**
   * Release the request's blocks, last block first (so chain tails are evicted before their
   * parents), and forget its hash chain. Safe for requests that hold nothing (waiting, aborted).
   * Returns the number of blocks that went back to the free queue.
   */
  free(req: KvRequest | RequestId): number {
    const id = typeof req === "object" ? req.id : req;
    this.chains.delete(id);
    const st = this.reqs.get(id);
    if (!st) return 0;
    this.reqs.delete(id);
    let freed = 0;
    for (let i = st.blocks.length - 1; i >= 0; i--) if (this.pool.release(st.blocks[i]!)) freed++;
    return freed;
  }

  /** Share `src`'s blocks with a new request `dst` (ref++ each), for beam search / n > 1. */
  fork(src: RequestId, dst: RequestId): void {
    const st = this.reqs.get(src);
    if (!st) throw new ValidationError("src", src, "holds no KV blocks");
    if (this.reqs.has(dst)) throw new ValidationError("dst", dst, "already holds KV blocks");
    for (const id of st.blocks) this.pool.touch(id);
    this.reqs.set(dst, { blocks: st.blocks.slice(), numHashed: st.numHashed, cachedTokens: 0 });
    const chain = this.chains.get(src);
    if (chain) this.chains.set(dst, chain.slice(0, st.numHashed));
  }

  /**
   * Beam search: each pair's dst gets a shared copy of its src's block table (ref++ on src's blocks,
   * then ref-- on dst's previous ones). All pairs read the tables as they were before the call, so
   * a request may be both a src and a dst (beams swap parents). A dst may hold nothing before.
   */
  reassign(pairs: readonly { dst: RequestId; src: RequestId }[]): void {
    const snap = pairs.map(({ src }) => {
      const st = this.reqs.get(src);
      if (!st) throw new ValidationError("src", src, "holds no KV blocks");
      return { blocks: st.blocks.slice(), numHashed: st.numHashed, chain: this.chains.get(src)?.slice(0, st.numHashed) };
    });
    for (const s of snap) for (const id of s.blocks) this.pool.touch(id);
    pairs.forEach(({ dst }, i) => {
      const old = this.reqs.get(dst);
      if (old) for (let b = old.blocks.length - 1; b >= 0; b--) this.pool.release(old.blocks[b]!);
      const s = snap[i]!;
      this.reqs.set(dst, { blocks: s.blocks, numHashed: s.numHashed, cachedTokens: old?.cachedTokens ?? 0 });
      if (s.chain) this.chains.set(dst, s.chain);
      else this.chains.delete(dst);
    });
  }

  /**
   * Copy-on-write before writing at position numComputedTokens: if that block is shared, give this
   * request a fresh block in its place. Returns {src, dst} for the engine to copy KV, or null.
   */
  copyOnWrite(req: KvRequest): { src: number; dst: number } | null {
    const st = this.reqs.get(req.id);
    if (!st) return null;
    const b = Math.floor(req.numComputedTokens / this.tokensPerBlock);
    const src = st.blocks[b];
    if (src === undefined || this.pool.refCount[src]! <= 1) return null;
    const dst = this.pool.allocate();
    if (dst < 0) throw new TllmError(`out of KV blocks for copy-on-write of request ${String(req.id)}`);
    this.numAllocated++;
    this.pool.release(src);
    st.blocks[b] = dst;
    return { src, dst };
  }

  /** block table of a request, in position order (empty when it holds nothing) */
  getBlockTable(id: RequestId): Int32Array {
    return Int32Array.from(this.reqs.get(id)?.blocks ?? []);
  }

  /** slot ids (block * tokensPerBlock + offset) of positions startPos .. startPos+count-1 */
  slotsFor(id: RequestId, startPos: number, count: number): Int32Array {
    const blocks = this.reqs.get(id)?.blocks ?? [];
    const tpb = this.tokensPerBlock;
    if (!Number.isInteger(startPos) || startPos < 0) throw new ValidationError("startPos", startPos, "must be an integer >= 0");
    if (!Number.isInteger(count) || count < 0 || startPos + count > blocks.length * tpb) {
      throw new ValidationError("count", count, `positions ${startPos}+${count} exceed the ${blocks.length * tpb} allocated slots of request ${String(id)}`);
    }
    const out = new Int32Array(count);
    for (let i = 0; i < count; i++) {
      const pos = startPos + i;
      out[i] = blocks[(pos / tpb) | 0]! * tpb + (pos & (tpb - 1));
    }
    return out;
  }

  /** references to a block (tests, debugging) */
  refCount(blockId: number): number {
    return this.pool.refCount[blockId]!;
  }

  /** free block ids, front (evicted first) to back */
  freeBlockIds(): number[] {
    return this.pool.freeOrder();
  }

  /** the hash a block carries, or null */
  blockHash(blockId: number): BlockHash | null {
    return this.pool.hashOfBlock(blockId);
  }

  stats(): KvCacheStats {
    const looked = this.numReused + this.numMissed;
    return {
      numBlocks: this.numBlocks,
      numFreeBlocks: this.pool.numFree,
      numUsedBlocks: this.numBlocks - 1 - this.pool.numFree,
      numCachedBlocks: this.pool.numCached,
      allocated: this.numAllocated,
      reused: this.numReused,
      missed: this.numMissed,
      hitRate: looked === 0 ? 0 : this.numReused / looked,
      evicted: this.pool.numEvicted,
    };
  }

  /** the request's hash chain extended over its full blocks below `limit` tokens */
  private chainOf(req: KvRequest, limit: number): BlockHash[] {
    let chain = this.chains.get(req.id);
    if (!chain) {
      chain = [];
      this.chains.set(req.id, chain);
    }
    return extendBlockHashes(chain, req.tokens, limit, this.tokensPerBlock, extraKeyString(req));
  }
}

// Block pool: integer block ids with reference counts, the free LRU queue and the hash -> block map.
// Block 0 is the permanent null block: never handed out, never freed (padding in block tables).
// A block is in exactly one of two states: in use (refCount > 0, not in the free queue) or free
// (refCount 0, in the free queue). A free block keeps its hash, so a later request with the same
// prefix can revive it, until it reaches the front of the queue and is evicted (hash dropped).

import { ValidationError } from "../errors.js";
import type { BlockHash } from "./block-hash.js";
import { FreeBlockQueue } from "./free-queue.js";

export const NULL_BLOCK = 0;

export class BlockPool {
  /** references per block id (requests whose block table holds it) */
  readonly refCount: Int32Array;
  /** the block's key while it holds a full hashed block, else null */
  private readonly hashOf: (BlockHash | null)[];
  private readonly byHash = new Map<BlockHash, number>();
  private readonly free: FreeBlockQueue;
  /** cached blocks whose hash was dropped to reuse them for new content */
  numEvicted = 0;

  /** @param numBlocks total blocks including the null block 0; ids 1..numBlocks-1 are usable */
  constructor(readonly numBlocks: number) {
    if (!Number.isInteger(numBlocks) || numBlocks < 2) {
      throw new ValidationError("numBlocks", numBlocks, "must be an integer >= 2 (block 0 is the null block)");
    }
    this.refCount = new Int32Array(numBlocks);
    this.hashOf = new Array<BlockHash | null>(numBlocks).fill(null);
    this.free = new FreeBlockQueue(numBlocks);
    for (let id = 1; id < numBlocks; id++) this.free.pushBack(id);
  }

  get numFree(): number {
    return this.free.size;
  }

  /** number of blocks that currently carry a hash (reusable or in use) */
  get numCached(): number {
    return this.byHash.size;
  }

  /** free block ids, front (evicted first) to back */
  freeOrder(): number[] {
    return this.free.toArray();
  }

  /** take the least recently used free block for new content (evicting its hash); -1 if none */
  allocate(): number {
    const id = this.free.popFront();
    if (id < 0) return -1;
    const h = this.hashOf[id];
    if (h !== null && h !== undefined) {
      this.byHash.delete(h);
      this.hashOf[id] = null;
      this.numEvicted++;
    }
    this.refCount[id] = 1;
    return id;
  }

  /** add a reference to a block found by hash; revives it from the free queue when unused */
  touch(id: number): void {
    if (this.refCount[id] === 0) this.free.remove(id);
    this.refCount[id]!++;
  }

  /** drop a reference; returns true when the block became free (appended at the back) */
  release(id: number): boolean {
    if (id === NULL_BLOCK) return false;
    const rc = this.refCount[id]!;
    if (rc <= 0) throw new ValidationError("blockId", id, "released more times than referenced");
    this.refCount[id] = rc - 1;
    if (rc > 1) return false;
    this.free.pushBack(id);
    return true;
  }

  /** block id holding this hash, or -1 */
  lookup(hash: BlockHash): number {
    return this.byHash.get(hash) ?? -1;
  }

  hashOfBlock(id: number): BlockHash | null {
    return this.hashOf[id] ?? null;
  }

  /**
   * Register a full block under its hash. Returns false (and leaves the block unhashed) when another
   * block already holds that hash: block tables are append-only, so duplicates are not merged.
   */
  setHash(id: number, hash: BlockHash): boolean {
    if (this.byHash.has(hash) || this.hashOf[id] !== null) return false;
    this.byHash.set(hash, id);
    this.hashOf[id] = hash;
    return true;
  }
}

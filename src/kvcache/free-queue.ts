// Free-block queue: an intrusive doubly linked list over block ids, stored in typed arrays.
// It is also the LRU eviction order: the front is evicted first, freed blocks go to the back.
// Removal from the middle is O(1) (a prefix hit revives a free block that still holds its hash),
// and no objects are allocated per operation.

import { ValidationError } from "../errors.js";

export class FreeBlockQueue {
  /** capacity: block ids are 0..capacity-1; index `capacity` is the sentinel (head and tail) */
  private readonly next: Int32Array;
  private readonly prev: Int32Array;
  /** 1 where the block is in the queue */
  private readonly inQueue: Uint8Array;
  private readonly sentinel: number;
  private count = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 0) throw new ValidationError("capacity", capacity, "must be an integer >= 0");
    this.next = new Int32Array(capacity + 1);
    this.prev = new Int32Array(capacity + 1);
    this.inQueue = new Uint8Array(capacity);
    this.sentinel = capacity;
    this.next[capacity] = capacity;
    this.prev[capacity] = capacity;
  }

  /** number of blocks in the queue */
  get size(): number {
    return this.count;
  }

  has(id: number): boolean {
    return this.inQueue[id] === 1;
  }

  /** append at the back (most recently used: evicted last) */
  pushBack(id: number): void {
    this.check(id, false);
    const last = this.prev[this.sentinel]!;
    this.link(last, id, this.sentinel);
  }

  /** insert at the front (evicted first) */
  pushFront(id: number): void {
    this.check(id, false);
    const first = this.next[this.sentinel]!;
    this.link(this.sentinel, id, first);
  }

  /** remove and return the front block (least recently used), or -1 when empty */
  popFront(): number {
    const id = this.next[this.sentinel]!;
    if (id === this.sentinel) return -1;
    this.remove(id);
    return id;
  }

  /** the front block without removing it, or -1 when empty */
  peekFront(): number {
    const id = this.next[this.sentinel]!;
    return id === this.sentinel ? -1 : id;
  }

  /** unlink a block from anywhere in the queue, O(1) */
  remove(id: number): void {
    this.check(id, true);
    const p = this.prev[id]!;
    const n = this.next[id]!;
    this.next[p] = n;
    this.prev[n] = p;
    this.inQueue[id] = 0;
    this.count--;
  }

  /** ids front (evicted first) to back; O(size), for tests and debugging */
  toArray(): number[] {
    const out: number[] = [];
    for (let id = this.next[this.sentinel]!; id !== this.sentinel; id = this.next[id]!) out.push(id);
    return out;
  }

  private link(p: number, id: number, n: number): void {
    this.next[p] = id;
    this.prev[id] = p;
    this.next[id] = n;
    this.prev[n] = id;
    this.inQueue[id] = 1;
    this.count++;
  }

  private check(id: number, shouldBeIn: boolean): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.capacity) {
      throw new ValidationError("blockId", id, `must be an integer in [0, ${this.capacity})`);
    }
    if ((this.inQueue[id] === 1) !== shouldBeIn) {
      throw new ValidationError("blockId", id, shouldBeIn ? "is not in the free queue" : "is already in the free queue");
    }
  }
}

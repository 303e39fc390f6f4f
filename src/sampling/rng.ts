// Seeded, counter-based RNG: Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as
// 1, 2, 3", SC'11; the generator behind cuRAND's and PyTorch's CUDA RNG). A draw is a pure function
// of (key, counter), so there is no mutable stream state:
//   key     = the request's 64-bit seed (k0 = low 32 bits, k1 = high 32 bits);
//   counter = [step lo, step hi, stream, flags] where step = the number of output tokens already
//             generated, stream = the sequence index (n / bestOf), flags = 1 for unseeded requests.
// Hence the same seed gives the same tokens whatever else is in the batch, in whatever order rows
// run, and after a preempted request is recomputed. Unseeded requests get k0 = a process-wide
// counter (0, 1, 2, ... in admission order) and flags = 1, so they differ from each other and never
// collide with a seeded request, while a whole run stays reproducible.

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

export interface RngKey {
  /** low / high 32 bits of the seed (unsigned) */
  k0: number;
  k1: number;
  /** sequence index within the request (0 for n = 1) */
  stream: number;
  /** 1 for unseeded requests (separates their key space from seeded ones) */
  flags: number;
}

let unseededCounter = 0;

/** The RNG key of one sequence of a request; `seed` undefined takes the next process-wide key. */
export function rngKeyForSeed(seed: number | undefined, stream = 0): RngKey {
  if (seed === undefined) {
    const k0 = unseededCounter++ >>> 0;
    return { k0, k1: 0, stream, flags: 1 };
  }
  return { k0: seed >>> 0, k1: Math.floor(seed / 4294967296) >>> 0, stream, flags: 0 };
}

/** High 32 bits of the 64-bit product of two u32 (exact: 16-bit halves keep products < 2^32). */
function mulhi32(a: number, b: number): number {
  const al = a & 0xffff;
  const ah = a >>> 16;
  const bl = b & 0xffff;
  const bh = b >>> 16;
  const lh = al * bh;
  const hl = ah * bl;
  const mid = ((al * bl) >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  return (ah * bh + (lh >>> 16) + (hl >>> 16) + Math.floor(mid / 65536)) >>> 0;
}

/** Philox4x32-10 of counter (c0..c3) under key (k0, k1); writes 4 u32 into `out`. */
export function philox4x32(
  c0: number, c1: number, c2: number, c3: number, k0: number, k1: number, out: Uint32Array,
): void {
  for (let r = 0; r < 10; r++) {
    if (r > 0) {
      k0 = (k0 + W0) >>> 0;
      k1 = (k1 + W1) >>> 0;
    }
    const hi0 = mulhi32(M0, c0);
    const lo0 = Math.imul(M0, c0) >>> 0;
    const hi1 = mulhi32(M1, c2);
    const lo1 = Math.imul(M1, c2) >>> 0;
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

const block = new Uint32Array(4);

/**
 * The uniform draw in [0, 1) of `key` at output step `step` (53 random bits from words 0 and 1).
 * `draw` selects further independent values at the same step (word pair 2,3 or a later counter).
 */
export function uniformAt(key: RngKey, step: number, draw = 0): number {
  const c3 = (key.flags | (draw >>> 1) << 1) >>> 0;
  philox4x32(step >>> 0, Math.floor(step / 4294967296) >>> 0, key.stream >>> 0, c3, key.k0, key.k1, block);
  const w = (draw & 1) === 0 ? 0 : 2;
  const hi = block[w] >>> 5; // 27 bits
  const lo = block[w + 1] >>> 6; // 26 bits
  return (hi * 67108864 + lo) / 9007199254740992;
}

// Row primitives over one logits row [vocab] f32: argmax / max, a table-driven exp and the
// whole-vocabulary weight passes built on it (top-k heap selection is in draw.ts). Ties go to the
// lower token id; NaN never wins; -Infinity (banned) has weight 0.
//
// Every loop over the vocabulary that calls exp lives in this file, next to expIndex/expAt, so the
// exp is always inlined into it: called through another module's import binding it was not in a
// measurement (a script loaded through tsx's CommonJS interop: 15 ms instead of 2 ms per
// 152k-token pass).
//
// The hot passes (rowMax, sumWeightBlocks, scanWeightBlocks, sumWeightsGather, gatherUpTo,
// logSumExpRank; and the whole step's passes in one call, batch.ts) run in the native addon when it is built (native/sampling.cc: AVX2, the same exp
// and bins bit for bit; only sums differ by rounding, their lanes are added in another order); the
// loops here are the fallback (no addon, or TLLM_SAMPLING_JS=1) and the reference its test checks.
import { loadAddon, type TllmAddon } from "../backends/native/addon.js";

// ---- exp(y) for y <= 0, ~3x faster than Math.exp in V8 (which is an out-of-line call) ----
// y = k·ln2/64 + r with k = round(y·64/ln2) and |r| <= ln2/128; exp(y) = 2^(k>>6) · 2^((k&63)/64)
// · e^r, e^r by its degree-5 Taylor polynomial (truncation r^6/720 < 4e-17). ln2/64 is split
// Cody-Waite style (fdlibm's ln2_hi has 32 significant bits, so k·LN2_HI is exact for |k| < 2^21).
// Relative error <= 2 ulp (checked against Math.exp over [-745, 0] in sampling-distribution.test.ts).
// k is also the bin of the top-p histogram (64 bins per octave of weight).
/** exp arguments below this give 0 (Math.exp underflows below ~-745.13) */
export const EXP_MIN_ARG = -745;
const EXP_INV_STEP = 64 / Math.LN2;
const LN2_HI_64 = 6.93147180369123816490e-1 / 64;
const LN2_LO_64 = 1.90821492927058770002e-10 / 64;
const ROUND_SHIFT = 6755399441055744; // 1.5·2^52: (v + S) - S rounds v to the nearest integer
const EXP_FRAC = Float64Array.from({ length: 64 }, (_, j) => Math.pow(2, j / 64));
const EXP_POW2 = Float64Array.from({ length: 1100 }, (_, m) => Math.pow(2, -m)); // 2^-m, subnormals included

type NativeSampling = Required<Pick<TllmAddon, "sampleRowMax" | "sampleArgmax" | "sampleTopK" | "sampleSplitByBin" | "sampleSumBlocks" | "sampleScanBlocks"
  | "sampleSumGather" | "sampleGatherUpTo" | "sampleLseRank">> & Pick<TllmAddon, "sampleBatch" | "sampleApplyMask">;
const nativeAvailable = openNative();
let native: NativeSampling | null = null; // set after primeFeedback (the JS loops get their feedback first)
const nativeCount = new Int32Array(1);
const nativeCount2 = new Int32Array(2);
const nativeLse = new Float64Array(2);

function openNative(): NativeSampling | null {
  if (process.env.TLLM_SAMPLING_JS === "1") return null;
  const a = loadAddon();
  if (!a || typeof a.sampleArgmax !== "function" || typeof a.sampleSetExpTable !== "function") return null; // older build
  a.sampleSetExpTable(EXP_FRAC);
  return a as NativeSampling;
}

/** Native passes on (when the addon has them) or off (the JS loops); returns whether they are on. For tests and benches. */
export function setNativeSampling(on: boolean): boolean {
  native = on ? nativeAvailable : null;
  return native !== null;
}

/** k = round(y · 64 / ln2) for EXP_MIN_ARG <= y <= 0 (an int32, <= 0). */
function expIndex(y: number): number {
  return ((y * EXP_INV_STEP + ROUND_SHIFT) - ROUND_SHIFT) | 0;
}

/** exp(y) for EXP_MIN_ARG <= y <= 0, given k = expIndex(y). */
function expAt(y: number, k: number): number {
  const r = (y - k * LN2_HI_64) - k * LN2_LO_64;
  const r2 = r * r;
  const p = (1 + r) + r2 * ((0.5 + r * (1 / 6)) + r2 * (1 / 24 + r * (1 / 120))); // Estrin: shorter dependency chain than Horner
  return EXP_POW2[0 - (k >> 6)] * EXP_FRAC[k & 63] * p; // 0 - j, not -j: -0 is not an array index (deopt)
}

/** exp(y) for y <= 0; 0 below EXP_MIN_ARG (and for -Infinity / NaN). */
export function expNonPos(y: number): number {
  return y >= EXP_MIN_ARG ? expAt(y, expIndex(y)) : 0;
}

/** w = exp((x - xmax) · invT) for x <= xmax (0 when it underflows). */
export function weightOf(x: number, xmax: number, invT: number): number {
  return expNonPos((x - xmax) * invT);
}

// ---- whole-vocabulary weight passes (kept tokens: x >= floor, a finite number) ----

/** Token ids per block of sumWeightBlocks: the draw rescans one block, not the vocabulary. */
export const WEIGHT_BLOCK = 2048;

/**
 * Σw over the kept tokens in id order, as the running sum of per-block sums (block j = ids
 * [j·WEIGHT_BLOCK, (j+1)·WEIGHT_BLOCK), its sum into blockSums[j], which holds ceil(vocab/block)).
 */
export function sumWeightBlocks(
  row: Float32Array, vocab: number, xmax: number, floor: number, invT: number, blockSums: Float64Array,
): number {
  if (native !== null) return native.sampleSumBlocks(row, vocab, xmax, floor, invT, blockSums);
  let total = 0;
  for (let j = 0, start = 0; start < vocab; j++, start += WEIGHT_BLOCK) {
    const end = Math.min(vocab, start + WEIGHT_BLOCK);
    let sum = 0;
    for (let i = start; i < end; i++) {
      const x = row[i];
      if (x >= floor) sum += expNonPos((x - xmax) * invT);
    }
    blockSums[j] = sum;
    total += sum;
  }
  return total;
}

/**
 * The first kept token (id order) at which the cumulative weight exceeds t (0 <= t < Σw), with the
 * block sums of sumWeightBlocks: the running sum over blocks finds the block, which alone is
 * rescanned. If rounding leaves that block's own running sum short of t, its last positive-weight
 * token is returned; -1 only when no block reaches t (t >= Σw).
 */
export function scanWeightBlocks(
  row: Float32Array, vocab: number, xmax: number, floor: number, invT: number, blockSums: Float64Array, t: number,
): number {
  if (native !== null) return native.sampleScanBlocks(row, vocab, xmax, floor, invT, blockSums, t);
  let acc = 0;
  for (let j = 0, start = 0; start < vocab; j++, start += WEIGHT_BLOCK) {
    if (!(acc + blockSums[j] > t)) {
      acc += blockSums[j];
      continue;
    }
    const end = Math.min(vocab, start + WEIGHT_BLOCK);
    let last = -1;
    for (let i = start; i < end; i++) {
      const x = row[i];
      if (!(x >= floor)) continue;
      const w = expNonPos((x - xmax) * invT);
      if (w > 0) last = i;
      acc += w;
      if (acc > t) return i;
    }
    return last;
  }
  return -1;
}

/** A list of tokens with their weights (id order unless stated); arrays hold vocab entries. */
export interface WeightList {
  idx: Int32Array;
  w: Float64Array;
  /** histogram bin of each listed token (binOfIndex) */
  bin: Int32Array;
  numKeep: number;
  /** tokens of the cut bin (splitByBin): ids and logits */
  cid: Int32Array;
  cx: Float32Array;
  numCand: number;
}

/** Count of the list written by the last sumWeightsGather (see there why not a field). */
let gathered = 0;

/** Every SUBSAMPLE-th token (ids multiple of it) feeds the coarse histogram of sumWeightsGather. */
export const SUBSAMPLE = 32; // a power of two (the pass tests i & (SUBSAMPLE - 1))

/**
 * Σw over the kept tokens (id order); tokens with x >= xlist also go, with their weight, into
 * idx/w (vocab entries; the count is then gatheredCount()), and the weights of the other tokens
 * whose id is a multiple of SUBSAMPLE are binned into `sub` [WEIGHT_BINS] (not reset here): with
 * the list's exact histogram, an estimate of the whole histogram for rows whose nucleus reaches
 * past the list. Rarely taken branches: see primeFeedback.
 */
export function sumWeightsGather(
  row: Float32Array, vocab: number, xmax: number, floor: number, invT: number, xlist: number,
  idx: Int32Array, w: Float64Array, bin: Int32Array, sub: Float64Array,
): number {
  if (native !== null) {
    const total = native.sampleSumGather(row, vocab, xmax, floor, invT, xlist, idx, w, bin, sub, nativeCount);
    gathered = nativeCount[0];
    return total;
  }
  let n = 0;
  let sum = 0;
  for (let i = 0; i < vocab; i++) {
    const x = row[i];
    if (!(x >= floor)) continue;
    const y = (x - xmax) * invT;
    if (!(y >= EXP_MIN_ARG)) continue;
    const k = expIndex(y);
    const wi = expAt(y, k);
    sum += wi;
    if (x >= xlist) {
      idx[n] = i;
      bin[n] = binOfIndex(k);
      w[n++] = wi;
    } else if ((i & (SUBSAMPLE - 1)) === 0) {
      sub[binOfIndex(k)] += wi;
    }
  }
  gathered = n;
  return sum;
}

/**
 * Tokens of bins 0..bmax with their weights and bins into idx/w/bin (id order), their weights also
 * added into `bins` (the caller resets it); returns the count. x >= xlo is a superset of "bin <=
 * bmax", so the exact bin is computed only for the tokens near the top.
 */
export function gatherUpTo(
  row: Float32Array, vocab: number, xmax: number, floor: number, invT: number, bmax: number,
  idx: Int32Array, w: Float64Array, bin: Int32Array, bins: Float64Array,
): number {
  const xlo = binFloor(xmax, floor, invT, bmax);
  if (native !== null) return native.sampleGatherUpTo(row, vocab, xmax, xlo, invT, bmax, idx, w, bin, bins);
  let n = 0;
  for (let i = 0; i < vocab; i++) {
    const x = row[i];
    if (!(x >= xlo)) continue;
    const y = (x - xmax) * invT;
    if (!(y >= EXP_MIN_ARG)) continue;
    const k = expIndex(y);
    const b = binOfIndex(k);
    if (b > bmax) continue;
    const wi = expAt(y, k);
    idx[n] = i;
    bin[n] = b;
    w[n++] = wi;
    bins[b] += wi;
  }
  return n;
}

/** A logit below which every token is in a bin > b (half a bin of slack; floor for the last bin). */
function binFloor(xmax: number, floor: number, invT: number, b: number): number {
  // bin <= b  <=>  round((x - xmax)·invT·64/ln2) >= -b  =>  (x - xmax)·invT >= -(b + 0.5)·ln2/64
  return b >= WEIGHT_BINS - 1 ? floor : Math.max(floor, xmax - ((b + 1) * Math.LN2) / (64 * invT));
}

/** The list length of the last sumWeightsGather call. */
export function gatheredCount(): number {
  return gathered;
}

/** Bins of listHistogram: bin = -expIndex(y), 64 per octave of weight; the last also takes all below 2^-64. */
export const WEIGHT_BINS = 64 * 64;

function binOf(y: number): number {
  return binOfIndex(expIndex(y));
}

function binOfIndex(k: number): number {
  const b = 0 - k; // not -k: -0 is not an array index
  return b < WEIGHT_BINS - 1 ? b : WEIGHT_BINS - 1;
}

/** Weight of each bin over the listed tokens into `bins` [WEIGHT_BINS] (reset here). */
export function listHistogram(l: WeightList, bins: Float64Array): void {
  bins.fill(0);
  const { bin, w } = l;
  for (let j = 0; j < l.numKeep; j++) bins[bin[j]] += w[j];
}

/**
 * Splits the list in place: tokens of bins < b stay in l.idx/l.w (order kept), tokens of bin b go to
 * l.cid/l.cx (order kept), the rest are dropped.
 */
export function splitByBin(row: Float32Array, b: number, l: WeightList): void {
  if (native !== null) {
    native.sampleSplitByBin(row, b, l.idx, l.w, l.bin, l.numKeep, l.cid, l.cx, nativeCount2);
    l.numKeep = nativeCount2[0];
    l.numCand = nativeCount2[1];
    return;
  }
  splitLoop(row, b, l);
  l.numKeep = splitKeep;
  l.numCand = splitCand;
}

let splitKeep = 0;
let splitCand = 0;

function splitLoop(row: Float32Array, b: number, l: WeightList): number {
  const { idx, w, bin, cid, cx } = l;
  let nKeep = 0;
  let nCand = 0;
  for (let j = 0; j < l.numKeep; j++) {
    const bj = bin[j];
    if (bj < b) {
      idx[nKeep] = idx[j];
      w[nKeep++] = w[j];
    } else if (bj === b) {
      cid[nCand] = idx[j];
      cx[nCand++] = row[idx[j]];
    }
  }
  splitKeep = nKeep;
  splitCand = nCand;
  return 0;
}

/** Σw over the kept tokens and the weight of each bin into `bins` [WEIGHT_BINS] (reset here). */
export function weightHistogram(
  row: Float32Array, vocab: number, xmax: number, floor: number, invT: number, bins: Float64Array,
): number {
  bins.fill(0);
  let sum = 0;
  for (let i = 0; i < vocab; i++) {
    const x = row[i];
    if (!(x >= floor)) continue;
    const y = (x - xmax) * invT;
    if (!(y >= EXP_MIN_ARG)) continue;
    const k = expIndex(y);
    const w = expAt(y, k);
    sum += w;
    const bin = 0 - k; // not -k: -0 is not an array index
    bins[bin < WEIGHT_BINS - 1 ? bin : WEIGHT_BINS - 1] += w;
  }
  return sum;
}

/**
 * Tokens of bins < b into l.idx/l.w, tokens of bin b into l.cid/l.cx (id order), as splitByBin
 * does for a list, over the whole row. x >= xlo is a superset of "bin <= b" (half a bin of slack),
 * so the exact bin is computed only for the tokens near the top.
 */
export function gatherBins(
  row: Float32Array, vocab: number, xmax: number, floor: number, invT: number, b: number, l: WeightList,
): void {
  const xlo = binFloor(xmax, floor, invT, b);
  gatherLoop(row, vocab, xmax, xlo, invT, b, l.idx, l.w, l.cid, l.cx);
  l.numKeep = splitKeep;
  l.numCand = splitCand;
}

function gatherLoop(
  row: Float32Array, vocab: number, xmax: number, xlo: number, invT: number, b: number,
  idx: Int32Array, w: Float64Array, cid: Int32Array, cx: Float32Array,
): number {
  let nKeep = 0;
  let nCand = 0;
  for (let i = 0; i < vocab; i++) {
    const x = row[i];
    if (!(x >= xlo)) continue;
    const y = (x - xmax) * invT;
    if (!(y >= EXP_MIN_ARG)) continue;
    const k = expIndex(y);
    const bin = binOfIndex(k);
    if (bin < b) {
      idx[nKeep] = i;
      w[nKeep++] = expAt(y, k);
    } else if (bin === b) {
      cid[nCand] = i;
      cx[nCand++] = x;
    }
  }
  splitKeep = nKeep;
  splitCand = nCand;
  return 0;
}

// Results of the last lseScan (module variables: see sumWeightsGather for why not fields).
let scanMax = 0;
let scanSum = 0;
let scanAbove = 0;

/**
 * log Σ exp(row[i]) in one pass (running max: the sum is rescaled when a larger value appears), and
 * rank = 1 + the number of entries strictly above `x0`. -Infinity and NaN entries add nothing; a
 * row without a finite entry gives -Infinity. Writes out.lse and out.rank.
 */
export function logSumExpRank(row: Float32Array, vocab: number, x0: number, out: { lse: number; rank: number }): void {
  if (native !== null && Math.fround(x0) === x0) { // the native count compares in float32
    native.sampleLseRank(row, vocab, x0, nativeLse);
    out.lse = nativeLse[0];
    out.rank = nativeLse[1];
    return;
  }
  lseScan(row, vocab, x0);
  out.lse = scanMax === -Infinity ? -Infinity : scanMax + Math.log(scanSum);
  out.rank = 1 + scanAbove;
}

function lseScan(row: Float32Array, vocab: number, x0: number): number {
  let m = Number.NEGATIVE_INFINITY;
  let sum = 0;
  let above = 0;
  for (let i = 0; i < vocab; i++) {
    const x = row[i];
    above += x > x0 ? 1 : 0;
    if (x > m) {
      sum = sum * expNonPos(m - x) + 1;
      m = x;
    } else {
      sum += expNonPos(x - m);
    }
  }
  scanMax = m;
  scanSum = sum;
  scanAbove = above;
  return 0;
}

/** native/sampling_batch.inc sampleBatch (see batch.ts for the layout). */
export type SampleBatchFn = NonNullable<TllmAddon["sampleBatch"]>;

/** The addon's batched step, or null when the native passes are off (or the addon predates it). */
export function nativeBatchFn(): SampleBatchFn | null {
  return native?.sampleBatch ?? null;
}

/** guided/mask.ts applyTokenBitmask in the addon: the allowed count, or -1 when the native passes are off. */
export function applyMaskNative(row: Float32Array, vocab: number, mask: Int32Array): number {
  const f = native?.sampleApplyMask;
  return f ? f(row, vocab, mask) : -1;
}

/** draw.ts selectTopK in the addon (k >= 1): the count, or -1 when the native passes are off. */
export function selectTopKNative(row: Float32Array, vocab: number, k: number, outIdx: Int32Array, outVal: Float32Array): number {
  return native !== null ? native.sampleTopK(row, vocab, k, outIdx, outVal) : -1;
}

/** Index of the largest value (ties: lowest id). A row of all -Infinity/NaN returns 0. */
export function argmax(row: Float32Array, vocab: number): number {
  if (native !== null) return native.sampleArgmax(row, vocab);
  let best = 0;
  let bestVal = -Infinity;
  for (let i = 0; i < vocab; i++) {
    const x = row[i];
    if (x > bestVal) {
      bestVal = x;
      best = i;
    }
  }
  return best;
}

/** Largest value of the row (-Infinity when every entry is banned). */
export function rowMax(row: Float32Array, vocab: number): number {
  if (native !== null) return native.sampleRowMax(row, vocab);
  let m = -Infinity;
  for (let i = 0; i < vocab; i++) if (row[i] > m) m = row[i];
  return m;
}

/**
 * V8 compiles a long loop on-stack (OSR) while its first call is still running, and caches that
 * code per loop. Code after the loop or in a branch not yet taken has no type feedback then; if it
 * needs some (a field store, a call, a typed-array store), the cached OSR code deoptimizes there on
 * every later call, which then re-runs in the interpreter until it re-enters the same code
 * (measured: 3-5x slower passes). So every hot loop here returns plain locals (other results go
 * through module variables, whose stores need no feedback), and this runs each pass once at load
 * on a tiny row that takes every branch, so the feedback exists before any real call.
 */
function primeFeedback(): void {
  const row = Float32Array.of(1, -Infinity, 0.5, -800, Number.NaN, 3, 2.9);
  const n = row.length;
  const idx = new Int32Array(n);
  const w = new Float64Array(n);
  const blocks = new Float64Array(1);
  const xmax = 3;
  sumWeightBlocks(row, n, xmax, -Number.MAX_VALUE, 1, blocks);
  scanWeightBlocks(row, n, xmax, -Number.MAX_VALUE, 1, blocks, 0.5 * blocks[0]);
  const bins = new Float64Array(WEIGHT_BINS);
  const bin = new Int32Array(n);
  sumWeightsGather(row, n, xmax, -Number.MAX_VALUE, 1, 2.95, idx, w, bin, bins);
  gatherUpTo(row, n, xmax, -Number.MAX_VALUE, 1, 4, idx, w, bin, bins);
  const l: WeightList = { idx, w, bin, numKeep: gathered, cid: new Int32Array(n), cx: new Float32Array(n), numCand: 0 };
  listHistogram(l, bins);
  splitByBin(row, 4, l);
  weightHistogram(row, n, xmax, -Number.MAX_VALUE, 1, bins);
  gatherBins(row, n, xmax, -Number.MAX_VALUE, 1, 4, l);
  logSumExpRank(row, n, 1, { lse: 0, rank: 0 });
  argmax(row, n);
  rowMax(row, n);
}
primeFeedback();
setNativeSampling(true);

// Steps 8-12 of the pipeline (see sampler.ts): temperature, min_p, top_k, top_p and the draw, on
// one processed row [vocab] f32. Weights are w_i = exp((x_i - x_max) · invT) in float64, never
// written back to the row. Nothing vocab-sized is allocated per call: DrawScratch is reused.
//
// Cost per row (V = vocab): top_k: one compare-mostly pass (heap select) + k exps. Without top_k:
// one max pass and one pass computing w_i (table-driven exp, select.ts) for the tokens min_p keeps,
// which also records per-block sums (no top_p: the draw rescans a single 2048-id block) or lists
// the tokens near the top (top_p: the nucleus is resolved within that list, see drawNucleus).
// The vocabulary passes themselves are in select.ts (see there why they sit next to the exp); with
// the addon built they run natively (native/sampling.cc, same weights and bins bit for bit).
import {
  argmax, gatherBins, selectTopKNative, gatherUpTo, gatheredCount, listHistogram, rowMax, scanWeightBlocks, splitByBin, sumWeightBlocks, sumWeightsGather,
  SUBSAMPLE, WEIGHT_BINS, WEIGHT_BLOCK, weightHistogram, weightOf,
} from "./select.js";

export interface Filters {
  /** 1 / temperature */
  invT: number;
  /** T · ln(min_p): tokens with x_i < x_max + logMinP are dropped; -Infinity = off */
  logMinP: number;
  /** 1 = off */
  topP: number;
}

/** Cut bins with at most this many tokens are insertion-sorted; larger ones go through a packed sort. */
const SMALL_SORT = 32;
/** Width of the first top-p list beyond ln(topP / (1 - topP)), in nats of weight (see drawNucleus). */
const LIST_NATS = 6;
/** Bins (1/64 octave each) listed past the subsample's estimate of the cut: 3/8 octave of weight. */
const NUCLEUS_SLACK = 24;
/** Packed sort keys hold the token id in their low 21 bits (vocabularies up to 2 097 152). */
const ID_RANGE = 2 ** 21;
// Local copies of select.ts constants read in per-bin loops: under tsx's CommonJS interop every read of an
// imported binding is a getter call (measured: 0.2 ms per flat top_p row for the 4096-bin loops).
const NBINS = WEIGHT_BINS;
const SUB = SUBSAMPLE;

/** Reusable scratch: ids/values (top-k) or kept ids/weights (nucleus), cut-bin candidates, histogram. */
export class DrawScratch {
  idx = new Int32Array(0);
  val = new Float32Array(0);
  w = new Float64Array(0);
  /** histogram bin of each listed token */
  bin = new Int32Array(0);
  /** per-block weight sums (select.ts sumWeightBlocks) */
  blocks = new Float64Array(0);
  /** cut-bin candidates of the nucleus: ids, logits (and their bits), packed sort keys */
  cid = new Int32Array(0);
  cx = new Float32Array(0);
  cbits = new Uint32Array(0);
  ckey = new Float64Array(0);
  numKeep = 0;
  numCand = 0;
  /** top-p histogram (select.ts listHistogram): 64 bins per octave of weight, bin 0 the heaviest */
  bins = new Float64Array(NBINS);
  /** subsampled weight histogram of the tokens outside the first top-p list */
  sub = new Float64Array(NBINS);
  ensureK(k: number): void {
    if (this.idx.length < k) this.idx = new Int32Array(k);
    if (this.val.length < k) this.val = new Float32Array(k);
  }
  ensureVocab(vocab: number): void {
    if (this.w.length < vocab) this.w = new Float64Array(vocab);
    if (this.blocks.length < Math.ceil(vocab / WEIGHT_BLOCK)) this.blocks = new Float64Array(Math.ceil(vocab / WEIGHT_BLOCK));
    if (this.idx.length < vocab) this.idx = new Int32Array(vocab);
    if (this.bin.length < vocab) this.bin = new Int32Array(vocab);
    if (this.cid.length < vocab) {
      this.cid = new Int32Array(vocab);
      this.cx = new Float32Array(vocab);
      this.cbits = new Uint32Array(this.cx.buffer);
      this.ckey = new Float64Array(vocab);
    }
  }
}

/** top_k > 0: select k candidates (sorted), cut by min_p, weight, cut by top_p, draw. */
export function drawTopK(row: Float32Array, vocab: number, k: number, f: Filters, u: number, s: DrawScratch): number {
  s.ensureK(k);
  return drawSelected(s.idx, s.val, selectTopK(row, vocab, k, s.idx, s.val), f, u, s);
}

/** drawTopK after the selection: ids/vals[0..n) sorted (value desc, id asc); s.w is the weight scratch. */
export function drawSelected(idx: Int32Array, val: Float32Array, n: number, f: Filters, u: number, s: DrawScratch): number {
  if (n === 0) return 0; // every token banned
  const xmax = val[0];
  if (xmax === Infinity) return idx[0];
  const floor = xmax + f.logMinP;
  while (n > 1 && val[n - 1] < floor) n--;
  if (s.w.length < n) s.w = new Float64Array(Math.max(n, s.w.length * 2));
  let sum = 0;
  for (let j = 0; j < n; j++) sum += s.w[j] = Math.exp((val[j] - xmax) * f.invT);
  if (f.topP < 1) {
    const target = f.topP * sum;
    let cum = 0;
    let m = 0;
    while (m < n && cum < target) cum += s.w[m++];
    n = Math.max(1, m);
    sum = cum > 0 ? cum : s.w[0];
  }
  return idx[pick(s.w, n, u * sum)];
}

/** Index j of the first cumulative weight exceeding `target` among w[0..n-1] (last positive if none). */
function pick(w: Float64Array, n: number, target: number): number {
  let cum = 0;
  let last = 0;
  for (let j = 0; j < n; j++) {
    if (w[j] > 0) last = j;
    cum += w[j];
    if (cum > target) return j;
  }
  return last;
}

/** top_k = 0: min_p, then top_p or a direct draw, over the whole vocabulary. */
export function drawFull(row: Float32Array, vocab: number, f: Filters, u: number, s: DrawScratch): number {
  const xmax = rowMax(row, vocab);
  if (xmax === -Infinity) return 0; // every token banned
  if (xmax === Infinity) return argmax(row, vocab); // w would be NaN: the first +inf token
  // kept: x >= floor (min_p). The clamp keeps -Infinity (banned) out when min_p is off; NaN fails too.
  const floor = Math.max(xmax + f.logMinP, -Number.MAX_VALUE);
  s.ensureVocab(vocab);
  if (f.topP < 1) return drawNucleus(row, vocab, f, u, xmax, floor, s);
  const sum = sumWeightBlocks(row, vocab, xmax, floor, f.invT, s.blocks);
  const token = scanWeightBlocks(row, vocab, xmax, floor, f.invT, s.blocks, u * sum);
  return token >= 0 ? token : argmax(row, vocab);
}

/**
 * Exact top-p without sorting the vocabulary. The nucleus is the shortest prefix of the kept tokens
 * ordered by (logit desc, id asc) — i.e. by probability — whose mass reaches target = topP · Σw.
 * Weights are binned 64 bins per octave (bin 0 the heaviest); with b the first bin at which the
 * mass of bins 0..b reaches target, the nucleus is bins 0..b-1 plus the shortest prefix of bin b,
 * sorted, that reaches it. Only bin b is sorted (its weights are within a factor 2^(1/64)).
 * Any list of exactly the tokens above some logit whose mass reaches target contains the nucleus,
 * so the bins need only be built over such a list:
 *  1. One exp pass sums w, lists the tokens whose weight is within e^-Y of the max (x >= x1,
 *     Y = ln(topP / (1 - topP)) + LIST_NATS: a handful for a peaked row), and bins the weight of
 *     every SUBSAMPLE-th other token.
 *  2. If the list's mass falls short (a flat row), the list's bins plus SUBSAMPLE x the subsampled
 *     bins locate the cut approximately (b_est); one compare-prefiltered pass lists bins
 *     0..b_est + NUCLEUS_SLACK.
 *  3. If even that falls short (the estimate was off), the whole row is binned (one more exp pass).
 * The draw scans bins < b in list (id) order, then the sorted prefix of bin b.
 */
function drawNucleus(
  row: Float32Array, vocab: number, f: Filters, u: number, xmax: number, floor: number, s: DrawScratch,
): number {
  s.sub.fill(0);
  const sum = sumWeightsGather(row, vocab, xmax, floor, f.invT, listFloor(f, xmax, floor), s.idx, s.w, s.bin, s.sub);
  s.numKeep = gatheredCount();
  return drawNucleusFrom(row, vocab, f, u, xmax, floor, sum, s);
}

/** Nats of weight the first top-p list spans: ln(topP / (1 - topP)) + LIST_NATS (see drawNucleus). */
export function listNats(topP: number): number {
  return Math.log(topP / (1 - topP)) + LIST_NATS;
}

/** x1 of drawNucleus: the first list holds the kept tokens with x >= x1. */
function listFloor(f: Filters, xmax: number, floor: number): number {
  return Math.max(floor, xmax - listNats(f.topP) / f.invT);
}

/**
 * drawNucleus after its first pass: s.idx/w/bin[0..s.numKeep) hold the first list, s.sub the
 * subsampled histogram, `sum` = Σw (from sumWeightsGather, or the addon's batched step).
 */
function drawNucleusFrom(
  row: Float32Array, vocab: number, f: Filters, u: number, xmax: number, floor: number, sum: number, s: DrawScratch,
): number {
  const invT = f.invT;
  const bins = s.bins;
  const sub = s.sub;
  const x1 = listFloor(f, xmax, floor);
  const target = f.topP * sum;
  listHistogram(s, bins);
  if (listedMass(s.w, s.numKeep) < target && x1 > floor) {
    // estimated histogram: the list's exact bins + SUBSAMPLE x the subsampled bins of the rest
    for (let j = 0; j < NBINS; j++) bins[j] += SUB * sub[j];
    const bmax = Math.min(NBINS - 1, cutBin(bins, target) + NUCLEUS_SLACK);
    bins.fill(0);
    s.numKeep = gatherUpTo(row, vocab, xmax, floor, invT, bmax, s.idx, s.w, s.bin, bins);
    if (listedMass(s.w, s.numKeep) < target && bmax < NBINS - 1) {
      weightHistogram(row, vocab, xmax, floor, invT, bins);
      gatherBins(row, vocab, xmax, floor, invT, cutBin(bins, target), s);
      return drawCut(row, vocab, target, u, xmax, invT, s);
    }
  }
  splitByBin(row, cutBin(bins, target), s);
  return drawCut(row, vocab, target, u, xmax, invT, s);
}

function drawCut(row: Float32Array, vocab: number, target: number, u: number, xmax: number, invT: number, s: DrawScratch): number {
  sortCandidates(row, vocab, s);
  return drawKept(target, u, xmax, invT, s);
}

/** Σ w[0..n) */
function listedMass(w: Float64Array, n: number): number {
  let mass = 0;
  for (let j = 0; j < n; j++) mass += w[j];
  return mass;
}

/** The first bin at which the mass of bins 0..b reaches target (the last bin if none does). */
function cutBin(bins: Float64Array, target: number): number {
  let b = 0;
  let before = 0;
  while (b < NBINS - 1 && before + bins[b] < target) before += bins[b++];
  return b;
}


/**
 * Appends the shortest prefix of the sorted cut bin that brings the kept mass to `target` (at least
 * one token overall), then draws: t = u · Σ kept w, scanned in list order (the total is summed in
 * that same order, so the scan always ends on a kept token). The loops are separate functions
 * returning locals (see select.ts primeFeedback).
 */
function drawKept(target: number, u: number, xmax: number, invT: number, s: DrawScratch): number {
  const nKeep = appendPrefix(s.numKeep, target, xmax, invT, s.idx, s.w, s.cid, s.cx, s.numCand);
  if (nKeep === 0) return 0; // unreachable: bin b holds the first kept token when bins < b are empty
  return s.idx[pick(s.w, nKeep, u * listedMass(s.w, nKeep))];
}

/** Appends cut-bin tokens (sorted) to idx/w[nKeep..] while the kept mass is short of target; returns the count. */
function appendPrefix(
  nKeep: number, target: number, xmax: number, invT: number,
  idx: Int32Array, w: Float64Array, cid: Int32Array, cx: Float32Array, numCand: number,
): number {
  let acc = listedMass(w, nKeep);
  for (let m = 0; m < numCand && (acc < target || nKeep === 0); m++) {
    const wm = weightOf(cx[m], xmax, invT);
    idx[nKeep] = cid[m];
    w[nKeep++] = wm;
    acc += wm;
  }
  return nKeep;
}

/** Sorts the cut-bin candidates s.cid/s.cx[0..numCand) by (logit desc, id asc); they arrive in id order. */
function sortCandidates(row: Float32Array, vocab: number, s: DrawScratch): void {
  const n = s.numCand;
  const ids = s.cid;
  const xs = s.cx;
  if (n <= SMALL_SORT) {
    // stable insertion sort on x desc (equal logits keep id order)
    for (let a = 1; a < n; a++) {
      const i = ids[a];
      const x = xs[a];
      let c = a - 1;
      while (c >= 0 && xs[c] < x) {
        ids[c + 1] = ids[c];
        xs[c + 1] = xs[c];
        c--;
      }
      ids[c + 1] = i;
      xs[c + 1] = x;
    }
    return;
  }
  if (vocab > ID_RANGE) ids.subarray(0, n).sort((a, c) => row[c] - row[a] || a - c);
  else packedSort(n, s);
  for (let j = 0; j < n; j++) xs[j] = row[ids[j]];
}

/** One native numeric sort of keys (descending-logit key)·2^21 + id: 32 + 21 bits, exact in f64. */
function packedSort(n: number, s: DrawScratch): void {
  const bits = s.cbits;
  const keys = s.ckey;
  const ids = s.cid;
  for (let j = 0; j < n; j++) {
    const v = bits[j] === 0x80000000 ? 0 : bits[j]; // -0 sorts as +0
    const asc = v & 0x80000000 ? ~v >>> 0 : (v | 0x80000000) >>> 0; // increases with x
    keys[j] = (0xffffffff - asc) * ID_RANGE + ids[j];
  }
  keys.subarray(0, n).sort();
  for (let j = 0; j < n; j++) ids[j] = keys[j] % ID_RANGE;
}

// ---- top-k selection (also used by logprobs.ts for the top logprobs) ----
// Order convention: higher value first, equal values by lower token id first; NaN and -Infinity
// (banned) are never selected.

/**
 * Top-k by a bounded min-heap in one pass (O(V) compares, O(log k) per accepted element; most of a
 * 152k vocab fails the first compare against the heap root). Writes the selected ids and values into
 * outIdx/outVal sorted (value desc, id asc) and returns how many (≤ k; fewer when fewer than k
 * tokens are above -Infinity). Scratch arrays must hold k entries.
 */
export function selectTopK(
  row: Float32Array, vocab: number, k: number, outIdx: Int32Array, outVal: Float32Array,
): number {
  const n = k > 0 ? selectTopKNative(row, vocab, k, outIdx, outVal) : -1;
  if (n >= 0) return n;
  const size = heapSelect(row, vocab, k, outIdx, outVal);
  sortDesc(outIdx, outVal, size);
  return size;
}

/** The selection loop of selectTopK (nothing after the loop but a return: see select.ts primeFeedback). */
function heapSelect(row: Float32Array, vocab: number, k: number, outIdx: Int32Array, outVal: Float32Array): number {
  let size = 0;
  let thr = -Infinity; // a candidate must beat this: -Infinity until the heap is full, then its root
  for (let i = 0; i < vocab; i++) {
    const x = row[i];
    if (!(x > thr)) continue;
    if (size < k) {
      heapPush(outIdx, outVal, size++, i, x);
      if (size === k) thr = outVal[0];
    } else {
      // a tie with the root loses: the root has the lower id (ids are scanned in increasing order)
      outIdx[0] = i;
      outVal[0] = x;
      siftDown(outIdx, outVal, size, 0);
      thr = outVal[0];
    }
  }
  return size;
}

/** heap order: a is "worse" (nearer the root) than b when lower value, or equal value and higher id */
function worse(va: number, ia: number, vb: number, ib: number): boolean {
  return va < vb || (va === vb && ia > ib);
}

function heapPush(idx: Int32Array, val: Float32Array, pos: number, i: number, x: number): void {
  while (pos > 0) {
    const parent = (pos - 1) >> 1;
    if (!worse(x, i, val[parent], idx[parent])) break;
    idx[pos] = idx[parent];
    val[pos] = val[parent];
    pos = parent;
  }
  idx[pos] = i;
  val[pos] = x;
}

function siftDown(idx: Int32Array, val: Float32Array, size: number, pos: number): void {
  const i0 = idx[pos];
  const x0 = val[pos];
  for (;;) {
    let c = 2 * pos + 1;
    if (c >= size) break;
    if (c + 1 < size && worse(val[c + 1], idx[c + 1], val[c], idx[c])) c++;
    if (!worse(val[c], idx[c], x0, i0)) break;
    idx[pos] = idx[c];
    val[pos] = val[c];
    pos = c;
  }
  idx[pos] = i0;
  val[pos] = x0;
}

/** Insertion sort for small k, else heap-extract; (value desc, id asc). In place. */
function sortDesc(idx: Int32Array, val: Float32Array, n: number): void {
  if (n <= 64) {
    for (let a = 1; a < n; a++) {
      const i = idx[a];
      const x = val[a];
      let b = a - 1;
      while (b >= 0 && worse(val[b], idx[b], x, i)) {
        idx[b + 1] = idx[b];
        val[b + 1] = val[b];
        b--;
      }
      idx[b + 1] = i;
      val[b + 1] = x;
    }
    return;
  }
  // idx/val already form a min-heap on `worse`: pop the worst to the back repeatedly
  for (let end = n - 1; end > 0; end--) {
    const ti = idx[0];
    const tx = val[0];
    idx[0] = idx[end];
    val[0] = val[end];
    idx[end] = ti;
    val[end] = tx;
    siftDown(idx, val, end, 0);
  }
}

// Steps 8-12 of the pipeline (see sampler.ts): temperature, min_p, top_k, top_p and the draw, on
// one processed row [vocab] f32. Weights are w_i = exp((x_i - x_max) · invT) in float64.
import { rowMax, selectTopK } from "./select.js";

export interface Filters {
  /** 1 / temperature */
  invT: number;
  /** T · ln(min_p): tokens with x_i < x_max + logMinP are dropped; -Infinity = off */
  logMinP: number;
  /** 1 = off */
  topP: number;
}

/** Histogram of (x_max - x)·invT for the no-top-k top-p cut: BINS_PER_NAT bins per nat. */
const BINS_PER_NAT = 16;
const NUM_BINS = 32 * BINS_PER_NAT; // the last bin also takes everything below e^-32 of p_max

/** Reusable scratch: candidate ids/logits (top-k), weights [vocab], histogram. */
export class DrawScratch {
  idx = new Int32Array(0);
  val = new Float32Array(0);
  w = new Float64Array(0);
  bins = new Float64Array(NUM_BINS);
  ensureK(k: number): void {
    if (this.idx.length < k) this.idx = new Int32Array(k);
    if (this.val.length < k) this.val = new Float32Array(k);
  }
  ensureVocab(vocab: number): void {
    if (this.w.length < vocab) this.w = new Float64Array(vocab);
    if (this.idx.length < vocab) this.idx = new Int32Array(vocab);
  }
}

/** top_k > 0: select k candidates (sorted), cut by min_p, weight, cut by top_p, draw. */
export function drawTopK(row: Float32Array, vocab: number, k: number, f: Filters, u: number, s: DrawScratch): number {
  s.ensureK(k);
  let n = selectTopK(row, vocab, k, s.idx, s.val);
  if (n === 0) return 0; // every token banned
  const xmax = s.val[0];
  const floor = xmax + f.logMinP;
  while (n > 1 && s.val[n - 1] < floor) n--;
  if (s.w.length < n) s.w = new Float64Array(Math.max(n, s.w.length * 2));
  let sum = 0;
  for (let j = 0; j < n; j++) sum += s.w[j] = Math.exp((s.val[j] - xmax) * f.invT);
  if (f.topP < 1) {
    const target = f.topP * sum;
    let cum = 0;
    let m = 0;
    while (m < n && cum < target) cum += s.w[m++];
    n = Math.max(1, m);
    sum = cum > 0 ? cum : s.w[0];
  }
  return s.idx[pick(s.w, n, u * sum)];
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

/** top_k = 0: weights over the whole vocabulary (min_p applied), then top_p or a direct draw. */
export function drawFull(row: Float32Array, vocab: number, f: Filters, u: number, s: DrawScratch): number {
  const xmax = rowMax(row, vocab);
  if (xmax === -Infinity) return 0; // every token banned
  s.ensureVocab(vocab);
  const floor = xmax + f.logMinP;
  const w = s.w;
  let sum = 0;
  const useBins = f.topP < 1;
  if (useBins) s.bins.fill(0);
  for (let i = 0; i < vocab; i++) {
    const x = row[i];
    const wi = x >= floor ? Math.exp((x - xmax) * f.invT) : 0;
    w[i] = wi;
    sum += wi;
    if (useBins && wi > 0) s.bins[binOf(x, xmax, f.invT)] += wi;
  }
  if (!useBins) return pick(w, vocab, u * sum);
  return drawNucleus(row, vocab, f, u, sum, xmax, s);
}

function binOf(x: number, xmax: number, invT: number): number {
  const b = Math.floor((xmax - x) * invT * BINS_PER_NAT);
  return b < NUM_BINS - 1 ? b : NUM_BINS - 1;
}

/**
 * Exact top-p without sorting the vocabulary. Bins are ordered by weight (bin 0 holds the largest),
 * so with b the first bin at which the mass of bins 0..b reaches topP·Σw, the nucleus is every
 * token of bins 0..b-1 plus the shortest prefix of bin b, sorted by weight, that reaches topP·Σw.
 * Only bin b is gathered and sorted. The draw scans bins < b in id order, then that prefix.
 */
function drawNucleus(
  row: Float32Array, vocab: number, f: Filters, u: number, sum: number, xmax: number, s: DrawScratch,
): number {
  const target = f.topP * sum;
  let b = 0;
  let before = 0; // mass of bins 0..b-1
  while (b < NUM_BINS - 1 && before + s.bins[b] < target) before += s.bins[b++];
  const ids = s.idx;
  const w = s.w;
  let n = 0;
  for (let i = 0; i < vocab; i++) if (w[i] > 0 && binOf(row[i], xmax, f.invT) === b) ids[n++] = i;
  ids.subarray(0, n).sort((a, c) => w[c] - w[a] || a - c);
  let cum = before;
  let m = 0;
  while (m < n && cum < target) cum += w[ids[m++]];
  if (m === 0 && before === 0) m = Math.min(1, n);
  const t = u * cum;
  if (t < before) {
    let acc = 0;
    for (let i = 0; i < vocab; i++) {
      if (w[i] > 0 && binOf(row[i], xmax, f.invT) < b) {
        acc += w[i];
        if (acc > t) return i;
      }
    }
  }
  let acc = before;
  for (let j = 0; j < m; j++) {
    acc += w[ids[j]];
    if (acc > t) return ids[j];
  }
  return m > 0 ? ids[m - 1] : argmaxW(w, vocab);
}

/** Fallback for rounding corner cases: the heaviest token. */
function argmaxW(w: Float64Array, vocab: number): number {
  let best = 0;
  for (let i = 1; i < vocab; i++) if (w[i] > w[best]) best = i;
  return best;
}

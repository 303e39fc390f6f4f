// Sorting-free selection over one logits row [vocab] f32. Order convention everywhere: higher value
// first, equal values by lower token id first. NaN never wins; -Infinity (banned) is never selected
// by selectTopK.

/** Index of the largest value (ties: lowest id). A row of all -Infinity/NaN returns 0. */
export function argmax(row: Float32Array, vocab: number): number {
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
  let m = -Infinity;
  for (let i = 0; i < vocab; i++) if (row[i] > m) m = row[i];
  return m;
}

/**
 * Top-k by a bounded min-heap in one pass (O(V) compares, O(log k) per accepted element; most of a
 * 152k vocab fails the first compare against the heap root). Writes the selected ids and values into
 * outIdx/outVal sorted (value desc, id asc) and returns how many (≤ k; fewer when fewer than k
 * tokens are above -Infinity). Scratch arrays must hold k entries.
 */
export function selectTopK(
  row: Float32Array, vocab: number, k: number, outIdx: Int32Array, outVal: Float32Array,
): number {
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
  sortDesc(outIdx, outVal, size);
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

/** Sorts ids in place by (weight desc, id asc); `weights` is indexed by token id. */
export function sortIdsByWeight(ids: Int32Array, n: number, weights: Float32Array): void {
  ids.subarray(0, n).sort((a, b) => weights[b] - weights[a] || a - b);
}

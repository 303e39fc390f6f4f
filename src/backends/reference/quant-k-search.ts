// Scale searches used by the K quantizers, after ggml-quants.c's make_qkx2_quants (affine fit with
// a min, Q4_K/Q5_K) and make_qx_quants (symmetric fit, Q6_K). Every operation is rounded to f32
// (Math.fround) in C's evaluation order, so the chosen levels and scales are the ones ggml's
// reference quantizer picks (built without fused multiply-add): rounding sums in double instead
// changes the choice in ~5% of blocks.

const fr = Math.fround;

/** ggml's nearest_int: round to nearest, ties to even (exact for |v| < 2^51; ggml needs |v| < 2^22). */
export function nearestInt(v: number): number {
  // adding 1.5 * 2^52 leaves no fraction bits in a double, so the FPU rounds (ties to even)
  return v + 6755399441055744 - 6755399441055744;
}

/** Result of makeQkx2Quants: x ~= scale * L + (-min). Reused object: copy before the next call. */
export interface AffineFit {
  scale: number;
  /** positive offset: the fit is scale * L - min */
  min: number;
}
const fit: AffineFit = { scale: 0, min: 0 };

/** Weighted error sum_i w_i * (scale * L_i + min - x_i)^2 over x[xo..xo+n). */
function fitError(n: number, x: Float32Array, xo: number, w: Float32Array, Lv: Uint8Array, lo: number,
  scale: number, min: number): number {
  let err = 0;
  for (let i = 0; i < n; i++) {
    const diff = fr(fr(fr(scale * Lv[lo + i]!) + min) - x[xo + i]!);
    err = fr(err + fr(w[i]! * fr(diff * diff)));
  }
  return err;
}

/** x - min per element (f32), for the current min of makeQkx2Quants; n <= 32. */
const shifted = new Float32Array(32);

function shift(n: number, x: Float32Array, xo: number, min: number): void {
  for (let i = 0; i < n; i++) shifted[i] = x[xo + i]! - min;
}

/** Candidate of makeQkx2Quants: least-squares refit on levels Laux. Reused object. */
const cand = { scale: 0, min: 0 };

/**
 * Levels Laux = clamp(round(iscale * shifted), 0, nmax) and the weighted least-squares (scale, min)
 * for them (min forced <= 0) into `cand`; false when the fit is degenerate (determinant <= 0).
 */
function refit(n: number, nmax: number, x: Float32Array, xo: number, w: Float32Array, Laux: Uint8Array,
  iscale: number, sumW: number, sumX: number): boolean {
  let sumL = 0, sumL2 = 0, sumXL = 0;
  for (let i = 0; i < n; i++) {
    const l = Math.max(0, Math.min(nmax, nearestInt(fr(iscale * shifted[i]!))));
    Laux[i] = l;
    const wl = fr(w[i]! * l);
    sumL = fr(sumL + wl);
    sumL2 = fr(sumL2 + fr(wl * l));
    sumXL = fr(sumXL + fr(wl * x[xo + i]!));
  }
  const D = fr(fr(sumW * sumL2) - fr(sumL * sumL));
  if (!(D > 0)) return false;
  cand.scale = fr(fr(fr(sumW * sumXL) - fr(sumX * sumL)) / D);
  cand.min = fr(fr(fr(sumL2 * sumX) - fr(sumL * sumXL)) / D);
  if (cand.min > 0) {
    cand.min = 0;
    cand.scale = fr(sumXL / sumL2);
  }
  return true;
}

/**
 * Fits x[xo..xo+n) ~= scale * L - min with L in 0..nmax (min <= 0 offsets only), weights w, trying
 * nstep+1 candidate inverse scales (rmin + rdelta*is + nmax) / (max - min) and keeping the
 * least-squares refit with the smallest weighted squared error. Writes L at L[lo..lo+n); n <= 32.
 */
export function makeQkx2Quants(n: number, nmax: number, x: Float32Array, xo: number, w: Float32Array,
  L: Uint8Array, lo: number, Laux: Uint8Array, rmin: number, rdelta: number, nstep: number): AffineFit {
  let min = x[xo]!;
  let max = x[xo]!;
  let sumW = w[0]!;
  let sumX = fr(sumW * x[xo]!);
  for (let i = 1; i < n; i++) {
    const v = x[xo + i]!;
    if (v < min) min = v;
    if (v > max) max = v;
    sumW = fr(sumW + w[i]!);
    sumX = fr(sumX + fr(w[i]! * v));
  }
  if (min > 0) min = 0;
  fit.scale = 0;
  if (max === min) {
    L.fill(0, lo, lo + n);
    fit.min = -min;
    return fit;
  }
  const iscale = fr(nmax / fr(max - min));
  fit.scale = fr(1 / iscale);
  shift(n, x, xo, min);
  for (let i = 0; i < n; i++) L[lo + i] = Math.max(0, Math.min(nmax, nearestInt(fr(iscale * shifted[i]!))));
  let bestError = fitError(n, x, xo, w, L, lo, fit.scale, min);
  for (let is = 0; is <= nstep; is++) {
    const iscaleIs = fr(fr(fr(rmin + fr(fr(rdelta) * is)) + nmax) / fr(max - min));
    if (!refit(n, nmax, x, xo, w, Laux, iscaleIs, sumW, sumX)) continue;
    const curError = fitError(n, x, xo, w, Laux, 0, cand.scale, cand.min);
    if (curError < bestError) {
      for (let i = 0; i < n; i++) L[lo + i] = Laux[i]!;
      bestError = curError;
      fit.scale = cand.scale;
      if (min !== cand.min) shift(n, x, xo, cand.min); // later candidates use the new min, as in ggml
      min = cand.min;
    }
  }
  fit.min = -min;
  return fit;
}

/**
 * make_qx_quants with rmse_type 1 (weights x^2), no importance: symmetric fit x ~= scale * (L - nmax)
 * with L in 0..2*nmax-1, over 19 candidate scales around -nmax / max (max = signed abs-max).
 * Writes L at L[lo..lo+n); returns the scale (its sign follows the abs-max element's sign).
 */
export function makeQxQuants(n: number, nmax: number, x: Float32Array, xo: number, L: Int8Array,
  lo: number): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[xo + i]!);
    if (ax > amax) {
      amax = ax;
      max = x[xo + i]!;
    }
  }
  if (amax < 1e-15) {
    L.fill(0, lo, lo + n);
    return 0;
  }
  let best = 0;
  let scale = 0;
  for (let is = 0; is <= 19; is++) {
    // is = 0 is ggml's first pass (iscale = -nmax / max, always taken); 1..19 are its is = -9..9, no 0.
    if (is === 10) continue;
    const iscale = is === 0 ? fr(-nmax / max) : fr(-fr(nmax + fr(fr(0.1) * (is - 10))) / max);
    let sumLX = 0, sumL2 = 0;
    for (let i = 0; i < n; i++) {
      const v = x[xo + i]!;
      const l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(fr(iscale * v))));
      const w = fr(v * v);
      sumLX = fr(sumLX + fr(fr(w * v) * l));
      sumL2 = fr(sumL2 + fr(fr(w * l) * l));
    }
    const take = is === 0 ? true : sumL2 > 0 && fr(sumLX * sumLX) > fr(best * sumL2);
    if (!take) continue;
    for (let i = 0; i < n; i++) {
      L[lo + i] = nmax + Math.max(-nmax, Math.min(nmax - 1, nearestInt(fr(iscale * x[xo + i]!))));
    }
    scale = sumL2 ? fr(sumLX / sumL2) : 0;
    best = fr(scale * sumLX);
  }
  return scale;
}

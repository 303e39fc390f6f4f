// Confidence intervals for eval scores (95% unless z is given) and a wall-clock timer.
//  - accuracies: Wilson score interval (good at small n and near 0/1), or the normal approximation
//    p ± z sqrt(p(1-p)/n) that lm-eval prints as stderr;
//  - means (per-token NLL, KLD): standard error of the mean, sd / sqrt(n) with the n-1 sd;
//  - perplexity: exp(mean NLL ± z se), the interval of the mean NLL mapped through exp;
//  - any statistic: percentile bootstrap, seeded.
import { Prng } from "../bench/prng.js";

export const Z95 = 1.959963984540054;

export interface Interval {
  lo: number;
  hi: number;
}

/** Wilson score interval for k successes in n trials. */
export function wilsonInterval(k: number, n: number, z = Z95): Interval {
  if (n === 0) return { lo: 0, hi: 1 };
  const p = k / n;
  const z2 = z * z;
  const den = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / den;
  const half = (z / den) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  return { lo: Math.max(0, centre - half), hi: Math.min(1, centre + half) };
}

/** Normal-approximation interval p ± z sqrt(p(1-p)/n), clamped to [0, 1]. */
export function normalInterval(k: number, n: number, z = Z95): Interval {
  if (n === 0) return { lo: 0, hi: 1 };
  const p = k / n;
  const half = z * Math.sqrt((p * (1 - p)) / n);
  return { lo: Math.max(0, p - half), hi: Math.min(1, p + half) };
}

export interface MeanStats {
  mean: number;
  /** sample standard deviation (n - 1) */
  sd: number;
  /** standard error of the mean, sd / sqrt(n) */
  se: number;
  n: number;
}

export function meanStats(xs: ArrayLike<number>): MeanStats {
  const n = xs.length;
  if (n === 0) return { mean: NaN, sd: NaN, se: NaN, n: 0 };
  let s = 0;
  for (let i = 0; i < n; i++) s += xs[i]!;
  const mean = s / n;
  let v = 0;
  for (let i = 0; i < n; i++) v += (xs[i]! - mean) ** 2;
  const sd = n > 1 ? Math.sqrt(v / (n - 1)) : 0;
  return { mean, sd, se: sd / Math.sqrt(n), n };
}

/** Perplexity and its interval from per-token negative log-likelihoods (nats). */
export function perplexityInterval(nll: ArrayLike<number>, z = Z95): { ppl: number; lo: number; hi: number; se: number } {
  const m = meanStats(nll);
  return { ppl: Math.exp(m.mean), lo: Math.exp(m.mean - z * m.se), hi: Math.exp(m.mean + z * m.se), se: m.se };
}

/** Percentile bootstrap of `stat` over resamples of xs (default 1000 resamples, seed 0). */
export function bootstrapInterval(
  xs: readonly number[], stat: (sample: number[]) => number, opts: { iterations?: number; seed?: number; level?: number } = {},
): Interval {
  const it = opts.iterations ?? 1000;
  const rng = new Prng(opts.seed ?? 0);
  const vals: number[] = [];
  const buf = new Array<number>(xs.length);
  for (let b = 0; b < it; b++) {
    for (let i = 0; i < xs.length; i++) buf[i] = xs[rng.intBelow(xs.length)]!;
    vals.push(stat(buf));
  }
  vals.sort((a, b) => a - b);
  const alpha = (1 - (opts.level ?? 0.95)) / 2;
  return { lo: vals[Math.floor(alpha * (it - 1))]!, hi: vals[Math.ceil((1 - alpha) * (it - 1))]! };
}

/** Runs fn and reports its wall time in seconds. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ result: T; seconds: number }> {
  const t0 = process.hrtime.bigint();
  const result = await fn();
  return { result, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}

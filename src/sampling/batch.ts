// The native batched step (native/sampling_batch.inc sampleBatch): for every row of a step, in ONE
// addon call spread over the addon's thread pool, the grammar mask, the raw log-sum-exp and top
// logprobs, and the draw (argmax; the no-top_p and the top_p draws whole, sampling_nucleus.inc being
// draw.ts's nucleus line for line; the top-k selection, whose few exps sampler.ts does in JS: C++
// has no bit-exact Math.exp). Each row runs the same native functions as the per-row calls of
// select.ts, so the results are bit-identical to the per-row path whatever the thread count.
// Unavailable (null) without the addon or with TLLM_SAMPLING_JS=1 / setNativeSampling(false).
import type { TopLogprob } from "./logprobs.js";
import type { Sampler, SampleResult, SamplingRow } from "./sampler.js";
import { nativeBatchFn, type SampleBatchFn } from "./select.js";

/** Plan row layout (Float64Array, PLAN per row). */
export const PLAN = 11;
export const P_OP = 0, P_LSE = 1, P_K = 2, P_INVT = 3, P_LOGMINP = 4, P_TOPP = 5, P_LISTNATS = 6, P_U = 7, P_X0 = 8, P_LPK = 9, P_ROW = 10;
/** Out row layout (Float64Array, OUT per row). */
export const OUT = 10;
export const O_TOKEN = 0, O_ALLOWED = 1, O_LSE = 2, O_COUNT = 3, O_KIND = 7, O_RANK = 8, O_LPCOUNT = 9;

/** P_OP values (0: the row is skipped) */
export const OP_ARGMAX = 1, OP_SAMPLE = 2, OP_RANK = 3;
/** O_KIND values: token final; top-k selected (ids/vals, O_COUNT of them); k above the capacity (not drawn) */
export const KIND_DONE = 1, KIND_TOPK = 2, KIND_TOO_BIG = 4;

/** Top logprobs per row the batch returns (rows asking for more go through the per-row path). */
export const LP_CAP = 64;
/** Top-k entries per row (rows with a larger top_k go through the per-row path; grammar masks use <= 2048). */
export const TOPK_CAP = 4096;

let batchedOn = true;

/** The batched step on (default) or off (every row through the per-row path); for tests and benches. */
export function setBatchedSampling(on: boolean): void {
  batchedOn = on;
}

/** Whether Sampler.sample takes the batched step (the toggle is on and the native passes are). */
export function batchedSampling(): boolean {
  return batchedOn && nativeBatchFn() !== null;
}

/** Reusable buffers of the batched call; grown on demand, never shrunk. */
export class NativeBatch {
  plan = new Float64Array(0);
  out = new Float64Array(0);
  /** per row TOPK_CAP entries: the top-k selection (ids, values) */
  idx = new Int32Array(0);
  val = new Float32Array(0);
  /** per row LP_CAP entries: the top logprobs (ids, raw logits) */
  lpIdx = new Int32Array(0);
  lpVal = new Float32Array(0);
  private rows = 0;
  private readonly masks: (Int32Array | undefined)[] = [];

  private constructor(private readonly fn: SampleBatchFn) {}

  /** The batch runner, or null when the native passes are off. */
  static create(): NativeBatch | null {
    const fn = nativeBatchFn();
    return fn ? new NativeBatch(fn) : null;
  }

  /** Sizes the buffers for n rows and clears the plan (every row skipped) and the masks. */
  reset(n: number): void {
    if (n > this.rows) this.grow(n);
    this.clearPlan(n);
    this.masks.length = n;
    this.masks.fill(undefined);
  }

  clearPlan(n: number): void {
    this.plan.fill(0, 0, n * PLAN);
  }

  setMask(i: number, mask: Int32Array | undefined): void {
    this.masks[i] = mask;
  }

  /** Runs the plan's rows [0, n) of `logits` ([n, vocab], masks applied in place). */
  run(logits: Float32Array, vocab: number, n: number, withMasks: boolean): void {
    const m = withMasks ? this.masks : [];
    this.fn(logits, vocab, n, this.plan, m, this.out, TOPK_CAP, this.idx, this.val, LP_CAP, this.lpIdx, this.lpVal);
  }

  private grow(n: number): void {
    this.rows = n;
    this.plan = new Float64Array(n * PLAN);
    this.out = new Float64Array(n * OUT);
    this.idx = new Int32Array(n * TOPK_CAP);
    this.val = new Float32Array(n * TOPK_CAP);
    this.lpIdx = new Int32Array(n * LP_CAP);
    this.lpVal = new Float32Array(n * LP_CAP);
  }
}

/** A row of Sampler.sampleEach whose processing threw (a logits processor, bad parameters): its error. */
export interface SampleFailure {
  error: unknown;
}

/**
 * Sampler.sampleEach with the native passes on: (1) per row in JS, steps 0-6 and the row's plan
 * (Sampler.prepareBatchRow); (2) one native call: masks, raw lse and top logprobs, the draws, rows
 * over the pool; (3) per row in JS, the top-k draw's exps (Sampler.finishBatchRow); (4) one more
 * native call for the ranks of the sampled tokens (logprob rows only). Entry i samples logits row
 * rowIdx[i] (distinct rows). Same results as the per-row path, bit for bit; a row that throws gets
 * its error, the others are unaffected.
 */
export function sampleBatched(
  s: Sampler, b: NativeBatch, logits: Float32Array, rowIdx: readonly number[], rows: readonly SamplingRow[], vocab: number,
): (SampleResult | SampleFailure)[] {
  const n = rows.length;
  b.reset(n);
  const out: (SampleResult | SampleFailure | null)[] = new Array(n);
  const rowOf = (i: number): Float32Array => logits.subarray(rowIdx[i] * vocab, (rowIdx[i] + 1) * vocab);
  for (let i = 0; i < n; i++) {
    b.plan[i * PLAN + P_ROW] = rowIdx[i];
    try {
      out[i] = s.prepareBatchRow(rowOf(i), rows[i], vocab, b, i);
    } catch (error) {
      out[i] = { error };
    }
  }
  b.run(logits, vocab, n, true);
  const lse = new Float64Array(n);
  const top: (TopLogprob[] | undefined)[] = new Array(n);
  let ranks = false;
  for (let i = 0; i < n; i++) {
    if (out[i] !== null) continue;
    const token = s.finishBatchRow(rowOf(i), rows[i], vocab, b, i);
    out[i] = { token, logprob: NaN, rank: 0 };
    if (b.plan[i * PLAN + P_LSE] === 0) continue;
    lse[i] = b.out[i * OUT + O_LSE];
    top[i] = topOf(b, i, lse[i]);
    ranks = true;
  }
  if (ranks) rankPass(b, logits, vocab, out as (SampleResult | SampleFailure)[], lse, top);
  return out as (SampleResult | SampleFailure)[];
}

/** The row's top logprobs from the batch's lists (logprobs.ts topLogprobs: value - lse, ranks 1..k); undefined when none asked. */
function topOf(b: NativeBatch, i: number, lse: number): TopLogprob[] | undefined {
  if (b.plan[i * PLAN + P_LPK] === 0) return undefined;
  const n = b.out[i * OUT + O_LPCOUNT];
  const res: TopLogprob[] = new Array(n);
  for (let r = 0; r < n; r++) res[r] = { token: b.lpIdx[i * LP_CAP + r], logprob: b.lpVal[i * LP_CAP + r] - lse, rank: r + 1 };
  return res;
}

/** Phase 4: rank = 1 + #(x > x_token) for every logprob row (rows of `top`/`lse` set in phase 3). */
function rankPass(
  b: NativeBatch, logits: Float32Array, vocab: number, out: (SampleResult | SampleFailure)[], lse: Float64Array, top: (TopLogprob[] | undefined)[],
): void {
  const n = out.length;
  const wanted = Array.from({ length: n }, (_, i) => b.plan[i * PLAN + P_LSE] !== 0 && b.plan[i * PLAN + P_OP] !== 0);
  const at = Array.from({ length: n }, (_, i) => b.plan[i * PLAN + P_ROW] * vocab + (wanted[i] ? (out[i] as SampleResult).token : 0));
  const rowIdx = Array.from({ length: n }, (_, i) => b.plan[i * PLAN + P_ROW]);
  b.clearPlan(n);
  for (let i = 0; i < n; i++) {
    if (!wanted[i]) continue;
    b.plan[i * PLAN + P_OP] = OP_RANK;
    b.plan[i * PLAN + P_ROW] = rowIdx[i];
    b.plan[i * PLAN + P_X0] = logits[at[i]];
  }
  b.run(logits, vocab, n, false);
  for (let i = 0; i < n; i++) {
    if (!wanted[i]) continue;
    const r: SampleResult = { token: (out[i] as SampleResult).token, logprob: logits[at[i]] - lse[i], rank: b.out[i * OUT + O_RANK] };
    if (top[i]) r.topLogprobs = top[i];
    out[i] = r;
  }
}

// Chi-square goodness of fit of sampled frequencies against the target distribution of each filter,
// at fixed seeds (so the test is deterministic). The expected distribution is computed here in
// plain float64 code (Math.exp softmax, full sort, cumulative sum), independently of the library's
// selection heap, table-driven exp and histogram. Threshold: the chi-square quantile at p = 0.001
// (Wilson-Hilferty); tokens with zero expected probability must never be drawn (exact). Also the
// top-p paths a small vocabulary does not reach: a cut bin of tied / near-tied logits (sorted by
// packed keys), a vocabulary past 2^21 ids (comparator sort), and model-like 20k-token rows.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createSamplingParams, type SamplingParamsInput } from "../../src/api/sampling-params.js";
import { Sampler, type SamplingRow } from "../../src/sampling/sampler.js";
import { rngKeyForSeed } from "../../src/sampling/rng.js";
import { expNonPos } from "../../src/sampling/select.js";
import { drawFull, drawTopK, DrawScratch } from "../../src/sampling/draw.js";
import { rng } from "./test-rng.js";

let DRAWS = 20000; // lowered by tests over large vocabularies (see withDraws)
const BATCH = 500;

/** Target distribution in float64: softmax(x/T) -> min_p -> top_k -> top_p, renormalized. */
function expected(logits: number[], o: { t: number; k?: number; p?: number; minP?: number }): number[] {
  const xmax = Math.max(...logits);
  let probs = logits.map((x) => Math.exp((x - xmax) / o.t));
  const z = probs.reduce((a, b) => a + b, 0);
  probs = probs.map((q) => q / z);
  const pmax = Math.max(...probs);
  let keep = probs.map((q) => !(o.minP && q < o.minP * pmax));
  const order = probs.map((_, i) => i).filter((i) => keep[i]).sort((a, b) => probs[b] - probs[a] || a - b);
  let kept = o.k ? order.slice(0, o.k) : order;
  if (o.p !== undefined && o.p < 1) {
    const mass = kept.reduce((a, i) => a + probs[i], 0);
    let cum = 0;
    let m = 0;
    while (m < kept.length && cum < o.p * mass) cum += probs[kept[m++]];
    kept = kept.slice(0, Math.max(1, m));
  }
  const keptSet = new Set(kept);
  keep = probs.map((_, i) => keptSet.has(i));
  const mass = kept.reduce((a, i) => a + probs[i], 0);
  return probs.map((q, i) => (keep[i] ? q / mass : 0));
}

/** Draws DRAWS tokens for one logits vector: one row per draw, each with its own seed. */
function drawCounts(logits: number[], input: SamplingParamsInput, seedBase: number): number[] {
  const vocab = logits.length;
  const params = createSamplingParams(input);
  const sampler = new Sampler();
  const counts = new Array<number>(vocab).fill(0);
  const buf = new Float32Array(BATCH * vocab);
  for (let start = 0; start < DRAWS; start += BATCH) {
    for (let r = 0; r < BATCH; r++) buf.set(logits, r * vocab);
    const rows: SamplingRow[] = [];
    for (let r = 0; r < BATCH; r++) {
      rows.push({ params, rng: rngKeyForSeed(seedBase + start + r), promptTokenIds: [1, 2], outputTokenIds: [] });
    }
    for (const res of sampler.sample(buf, rows, vocab)) counts[res.token]++;
  }
  return counts;
}

/** chi-square quantile at upper tail 0.001 (Wilson-Hilferty approximation, z = 3.0902). */
function chi2Crit(df: number): number {
  const a = 2 / (9 * df);
  return df * Math.pow(1 - a + 3.0902 * Math.sqrt(a), 3);
}

/** Pools categories with expected count < 5 into one; returns [statistic, df]. */
function chiSquare(counts: number[], probs: number[]): [number, number] {
  let stat = 0;
  let df = -1;
  let poolObs = 0;
  let poolExp = 0;
  for (let i = 0; i < counts.length; i++) {
    const e = probs[i] * DRAWS;
    if (probs[i] === 0) {
      assert.equal(counts[i], 0, `token ${i} has zero target probability but was drawn ${counts[i]} times`);
      continue;
    }
    if (e < 5) {
      poolObs += counts[i];
      poolExp += e;
      continue;
    }
    stat += (counts[i] - e) ** 2 / e;
    df++;
  }
  if (poolExp > 0) {
    stat += (poolObs - poolExp) ** 2 / poolExp;
    df++;
  }
  return [stat, df];
}

function check(logits: number[], input: SamplingParamsInput, o: Parameters<typeof expected>[1], seed: number): void {
  const probs = expected(logits, o);
  const counts = drawCounts(logits, input, seed);
  const [stat, df] = chiSquare(counts, probs);
  if (df === 0) {
    assert.equal(counts[probs.indexOf(1)], DRAWS);
    return;
  }
  assert.ok(stat < chi2Crit(df), `chi2 ${stat.toFixed(2)} >= ${chi2Crit(df).toFixed(2)} (df ${df}) for ${JSON.stringify(input)}`);
}

// 12 tokens, distinct logits, some near-ties, one banned-in-effect (-30)
const SMALL = [2.0, 1.5, 1.4, 0.3, -0.2, 0.0, 1.0, -1.0, 2.2, 0.9, -30, 0.5];

test("temperature alone: softmax(x / T)", () => {
  check(SMALL, { temperature: 1 }, { t: 1 }, 1000);
  check(SMALL, { temperature: 0.5 }, { t: 0.5 }, 2000);
  check(SMALL, { temperature: 2.5 }, { t: 2.5 }, 3000);
});

test("top_k", () => {
  check(SMALL, { temperature: 1, topK: 3 }, { t: 1, k: 3 }, 4000);
  check(SMALL, { temperature: 0.8, topK: 7 }, { t: 0.8, k: 7 }, 5000);
});

test("top_p (full-vocabulary histogram path)", () => {
  check(SMALL, { temperature: 1, topP: 0.5 }, { t: 1, p: 0.5 }, 6000);
  check(SMALL, { temperature: 1.3, topP: 0.9 }, { t: 1.3, p: 0.9 }, 7000);
});

test("min_p", () => {
  check(SMALL, { temperature: 1, minP: 0.3 }, { t: 1, minP: 0.3 }, 8000);
  check(SMALL, { temperature: 0.7, minP: 0.05 }, { t: 0.7, minP: 0.05 }, 9000);
});

test("combined: min_p -> top_k -> top_p with temperature", () => {
  check(SMALL, { temperature: 0.9, topK: 6, topP: 0.8 }, { t: 0.9, k: 6, p: 0.8 }, 10000);
  check(SMALL, { temperature: 1.2, topK: 8, topP: 0.85, minP: 0.1 }, { t: 1.2, k: 8, p: 0.85, minP: 0.1 }, 11000);
  check(SMALL, { temperature: 1.1, topP: 0.7, minP: 0.2 }, { t: 1.1, p: 0.7, minP: 0.2 }, 12000);
});

test("larger vocabulary (3000 tokens): top_p and top_k + top_p", () => {
  // deterministic pseudo-random logits (LCG), spread ~N(0, 3) by a sum of uniforms
  let s = 12345;
  const rnd = (): number => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296);
  const logits = Array.from({ length: 3000 }, () => (rnd() + rnd() + rnd() + rnd() - 2) * 5);
  check(logits, { temperature: 1, topP: 0.6 }, { t: 1, p: 0.6 }, 13000);
  check(logits, { temperature: 0.8, topK: 40, topP: 0.9 }, { t: 0.8, k: 40, p: 0.9 }, 14000);
  check(logits, { temperature: 1, topK: 0, minP: 0.02 }, { t: 1, minP: 0.02 }, 15000);
});

test("the test itself can fail: a wrong target distribution is rejected", () => {
  const probs = expected(SMALL, { t: 1, k: 3 });
  const counts = drawCounts(SMALL, { temperature: 1, topK: 4 }, 4000);
  assert.throws(() => chiSquare(counts, probs), /zero target probability/);
  const shifted = expected(SMALL, { t: 1.3, k: 3 });
  const [stat, df] = chiSquare(drawCounts(SMALL, { temperature: 1, topK: 3 }, 4000), shifted);
  assert.ok(stat > chi2Crit(df), `chi2 ${stat} should exceed ${chi2Crit(df)} for T 1 vs 1.3`);
});

/** Runs fn with DRAWS = n (chiSquare and drawCounts read it). */
function withDraws(n: number, fn: () => void): void {
  const saved = DRAWS;
  DRAWS = n;
  try {
    fn();
  } finally {
    DRAWS = saved;
  }
}

test("the table-driven exp is within 2 ulp of Math.exp over [-745, 0] and monotone", () => {
  const r = rng(7);
  let worst = 0;
  for (let i = 0; i < 200000; i++) {
    const y = -r() * [745, 40, 1, 0.01][i % 4];
    const want = Math.exp(y);
    if (want < 2.3e-308) continue; // subnormal results carry fewer bits
    worst = Math.max(worst, Math.abs(expNonPos(y) / want - 1));
  }
  // 2 ulp of 1 = 4.4e-16: the table entries, the polynomial and two products each round once
  assert.ok(worst <= 4.5e-16, `max relative error ${worst}`);
  assert.equal(expNonPos(0), 1);
  assert.equal(expNonPos(-Infinity), 0);
  assert.equal(expNonPos(Number.NaN), 0);
  let prev = Infinity;
  for (let y = 0; y > -20; y -= 1 / 4096) {
    const v = expNonPos(y);
    assert.ok(v <= prev, `not monotone at ${y}`);
    prev = v;
  }
});

test("top_p with a cut bin of tied and near-tied logits: exactly the sorted prefix", () => {
  // 5 strong tokens, 200 near-ties (0 + j·1e-5, scattered ids), 400 exact ties at 0: all 600 weak
  // tokens share one histogram bin, more than the insertion-sort limit, so the packed sort orders
  // them: near-ties by value, then exact ties by id.
  const r = rng(11);
  const logits = new Array<number>(605).fill(0);
  const ids = Array.from({ length: 605 }, (_, i) => i).sort(() => r() - 0.5);
  ids.slice(0, 5).forEach((t) => (logits[t] = 3));
  ids.slice(5, 205).forEach((t, j) => (logits[t] = Math.fround((j + 1) * 1e-5)));
  check(logits, { temperature: 1, topP: 0.5 }, { t: 1, p: 0.5 }, 16000);
  check(logits, { temperature: 0.7, topP: 0.35 }, { t: 0.7, p: 0.35 }, 17000);
});

test("top_p over a vocabulary past 2^21 ids (comparator sort of the cut bin)", () => {
  const vocab = 2 ** 21 + 64;
  const row = new Float32Array(vocab).fill(-Infinity);
  for (let j = 0; j < 100; j++) row[vocab - 1 - 5 * j] = 0; // 100 tied tokens, highest ids
  const params = createSamplingParams({ temperature: 1, topP: 0.3 });
  const nucleus = new Set(Array.from({ length: 30 }, (_, j) => vocab - 1 - 5 * (99 - j))); // 30 lowest ids
  const sampler = new Sampler();
  const seen = new Set<number>();
  for (let seed = 0; seed < 40; seed++) {
    const [res] = sampler.sample(row, [{ params, rng: rngKeyForSeed(seed), promptTokenIds: [], outputTokenIds: [] }], vocab);
    assert.ok(nucleus.has(res.token), `token ${res.token} is outside the 30 lowest-id tied tokens`);
    seen.add(res.token);
  }
  assert.ok(seen.size >= 10, `40 draws over 30 equally likely tokens hit only ${seen.size}`);
});

test("model-like 8k-token rows: top_p with a narrow and a wide nucleus", () => {
  // ~N(0, 2) noise plus 12 strong candidates, as the benchmark's logits
  const r = rng(5);
  const logits = Array.from({ length: 8000 }, () => Math.fround((r() + r() + r() - 1.5) * 4));
  for (let j = 0; j < 12; j++) logits[Math.floor(r() * 8000)] = Math.fround(7 + r() * 4);
  withDraws(3000, () => {
    check(logits, { temperature: 0.8, topP: 0.95 }, { t: 0.8, p: 0.95 }, 18000);
    check(logits, { temperature: 2, topP: 0.6 }, { t: 2, p: 0.6 }, 19000); // the cut falls in the noise
  });
});

test("top_p whose nucleus reaches past the first list (two strong tokens over 6000 weak ones)", () => {
  // the strong pair holds 78% of the mass at T = 1: top_p 0.8 needs weak tokens far below the first
  // list's threshold (drawNucleus steps 2-3; each path is checked exactly by the stratified test)
  const r = rng(9);
  const logits = Array.from({ length: 6000 }, () => Math.fround((r() + r() + r() - 1.5) * 2));
  logits[1234] = 10;
  logits[4321] = 9.5;
  withDraws(3000, () => check(logits, { temperature: 1, topP: 0.8 }, { t: 1, p: 0.8 }, 23000));
});

/**
 * Stratified draws: u = (j + 0.5) / N for j < N. The draw maps u to tokens through one cumulative
 * scan in a fixed order, so every token owns one interval of u of length p (its probability) and
 * is drawn floor(N·p) or ceil(N·p) times; 2 allows for rounding at the interval ends. Exact,
 * deterministic, and sensitive to a token missing from (or added to) the nucleus however small.
 */
function checkStratified(logits: number[], o: { t: number; k?: number; p?: number; minP?: number }, n: number): void {
  const probs = expected(logits, o);
  const row = Float32Array.from(logits);
  const s = new DrawScratch();
  const f = { invT: 1 / o.t, logMinP: o.minP ? o.t * Math.log(o.minP) : -Infinity, topP: o.p ?? 1 };
  const counts = new Array<number>(logits.length).fill(0);
  for (let j = 0; j < n; j++) {
    const u = (j + 0.5) / n;
    counts[o.k ? drawTopK(row, row.length, o.k, f, u, s) : drawFull(row, row.length, f, u, s)]++;
  }
  for (let i = 0; i < logits.length; i++) {
    assert.ok(Math.abs(counts[i] - n * probs[i]) <= 2, `${JSON.stringify(o)}: token ${i} drawn ${counts[i]} times, expected ${(n * probs[i]).toFixed(2)}`);
  }
}

test("stratified u: every top_p path, temperature, min_p and top_k give exactly the target masses", () => {
  const r = rng(9);
  const weak = Array.from({ length: 6000 }, () => Math.fround((r() + r() + r() - 1.5) * 2));
  const peaked = weak.map((x) => x);
  peaked[1234] = 10;
  peaked[4321] = 9.5;
  const hidden = peaked.map((x, i) => (i % 32 === 0 ? -30 : x));
  hidden[64] = 10;
  checkStratified(peaked, { t: 0.8, p: 0.9 }, 4000); // the first list holds the nucleus
  checkStratified(peaked, { t: 1, p: 0.95 }, 10000); // the subsampled estimate places the cut
  checkStratified(hidden, { t: 1, p: 0.9 }, 4000); // the estimate falls short: the whole row is binned
  checkStratified(weak, { t: 1.3 }, 4000);
  checkStratified(weak, { t: 1, minP: 0.3 }, 4000);
  checkStratified(weak, { t: 0.9, k: 40, p: 0.8 }, 4000);
});

// The Sampler's batched native step (src/sampling/batch.ts, native/sampling_batch.inc: every row of a
// step in one addon call over the thread pool) against the per-row path (setBatchedSampling(false))
// on a mixed batch: greedy, temperature, top_k, narrow and flat top_p (all three stages of the
// nucleus search, see makeLogits), min_p, penalties, logprobs, grammar masks (few allowed: the
// top-k path; many allowed; every allowed token banned by bad words: the grammar wins), and rows the
// batch hands back to the per-row path (logprobs of a masked row, top_k above the capacity, more top
// logprobs than LP_CAP). Each row runs the same native functions either way, so results AND the
// processed logits must be identical bit for bit, on every kernel path and with 1 or 2 pool threads.
// Also: the native mask step vs its JS loop (guided/mask.ts) on awkward sizes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { batchedSampling, LP_CAP, setBatchedSampling } from "../../src/sampling/batch.js";
import { setNativeSampling } from "../../src/sampling/select.js";
import { Sampler, type SamplingRow } from "../../src/sampling/sampler.js";
import { rngKeyForSeed } from "../../src/sampling/rng.js";
import { applyMaskJs, applyTokenBitmask, bitmaskWords } from "../../src/sampling/guided/mask.js";
import { createSamplingParams, type SamplingParamsInput } from "../../src/api/sampling-params.js";
import { loadAddon } from "../../src/backends/native/addon.js";
import { nativeInfo } from "../../src/backends/native/index.js";
import { paths, rng, SEED, withPath } from "./native-helpers.js";

const PATHS = paths();
const SKIP = PATHS.length === 0 || !setNativeSampling(true) || !batchedSampling() ? "native addon (with sampleBatch) not built" : false;
const VOCAB = 151_936;

/** A random mask over VOCAB allowing each token with probability `density` (tail bits past VOCAB set too). */
function randomMask(r: () => number, density: number): Int32Array {
  const m = new Int32Array(bitmaskWords(VOCAB));
  for (let t = 0; t < m.length * 32; t++) if (r() < density) m[t >>> 5] |= 1 << (t & 31);
  return m;
}

/**
 * Row kinds: model-like (noise + a few strong tokens); flat (wide uniform: the nucleus reaches far past
 * its first list); aliased (one token at 12, ids % 32 == 0 at 2, the rest at -1: the subsampled
 * histogram overestimates the mass near the top, so the second list falls short and the whole row
 * is binned, draw.ts drawNucleus step 3).
 */
type RowKind = "model" | "flat" | "aliased";
interface Case { input: SamplingParamsInput; mask?: Int32Array; kind?: RowKind; numLogprobs?: number; bad?: number[][] }

function cases(r: () => number): Case[] {
  const few = randomMask(r, 0.005); // ~760 allowed: drawn through top-k
  const many = randomMask(r, 0.6);
  const banned = new Int32Array(bitmaskWords(VOCAB));
  banned[3] = 0b1011; // tokens 96, 97, 99 allowed, all three banned below: the grammar wins
  return [
    { input: { temperature: 0 } }, { input: { temperature: 0.8 } }, { input: { temperature: 1, topK: 50 } },
    { input: { temperature: 0.8, topP: 0.95 } }, { input: { temperature: 1.5, topP: 0.9 }, kind: "flat" }, { input: { temperature: 1, topP: 0.9 }, kind: "aliased" },
    { input: { temperature: 1, minP: 0.05 } }, { input: { temperature: 1, topK: 50, topP: 0.9, logprobs: 3 } },
    { input: { temperature: 1, topP: 0.9, repetitionPenalty: 1.3, presencePenalty: 0.5, frequencyPenalty: 0.2 } },
    { input: { temperature: 0, logprobs: 5 } }, { input: { temperature: 0.8, topP: 0.95, logprobs: 0 } },
    { input: { temperature: 0.7, topP: 0.9 }, mask: few }, { input: { temperature: 0.7, topP: 0.9 }, mask: many },
    { input: { temperature: 0 }, mask: many }, { input: { temperature: 1 }, mask: banned, bad: [[96], [97], [99]] },
    { input: { temperature: 1, logprobs: 2 }, mask: many }, { input: { temperature: 1, topK: 30_000 } },
    { input: { temperature: 1 }, numLogprobs: LP_CAP + 1 }, { input: { temperature: 1e-31 } },
  ];
}

function makeLogits(r: () => number, cs: Case[]): Float32Array {
  const logits = new Float32Array(cs.length * VOCAB);
  cs.forEach((c, b) => {
    const row = logits.subarray(b * VOCAB, (b + 1) * VOCAB);
    if (c.kind === "aliased") {
      for (let i = 0; i < VOCAB; i++) row[i] = i % 32 === 0 ? 2 : -1;
      row[1 + Math.floor(r() * (VOCAB - 1))] = 12;
      return;
    }
    for (let i = 0; i < VOCAB; i++) row[i] = (r() * 2 - 1) * (c.kind === "flat" ? 9 : 4);
    if (c.kind !== "flat") for (let j = 0; j < 30; j++) row[Math.floor(r() * VOCAB)] = 8 + r() * 4;
  });
  return logits;
}

function runSteps(cs: Case[], logits: Float32Array, steps: number): { results: unknown[]; processed: Float32Array[] } {
  const sampler = new Sampler();
  const outs: number[][] = cs.map(() => []);
  const results: unknown[] = [];
  const processed: Float32Array[] = [];
  for (let step = 0; step < steps; step++) {
    const rows: SamplingRow[] = cs.map((c, i) => ({
      params: createSamplingParams(c.input), rng: rngKeyForSeed(11, i), promptTokenIds: [5, 6, 7], outputTokenIds: outs[i]!,
      tokenBitmask: c.mask, numLogprobs: c.numLogprobs, badWordsIds: c.bad,
    }));
    const work = logits.slice();
    const res = sampler.sample(work, rows, VOCAB);
    res.forEach((x, i) => outs[i]!.push(x.token));
    results.push(res);
    processed.push(work);
  }
  return { results, processed };
}

test("the batched native step gives the per-row path's tokens, logprobs and processed logits bit for bit", { skip: SKIP }, () => {
  const r = rng(SEED);
  const cs = cases(r);
  const logits = makeLogits(r, cs);
  const addon = loadAddon()!;
  const threads = nativeInfo().threads;
  try {
    for (const path of PATHS) {
      setBatchedSampling(false);
      const ref = withPath(path, () => runSteps(cs, logits, 3));
      setBatchedSampling(true);
      for (const t of [1, 2]) {
        addon.setThreads!(t);
        const got = withPath(path, () => runSteps(cs, logits, 3));
        assert.deepEqual(got.results, ref.results, `seed ${SEED} ${path} threads ${t}: results`);
        got.processed.forEach((w, s) => assert.ok(Buffer.from(w.buffer).equals(Buffer.from(ref.processed[s]!.buffer)), `seed ${SEED} ${path} threads ${t} step ${s}: processed logits`));
      }
    }
  } finally {
    setBatchedSampling(true);
    addon.setThreads!(threads);
  }
});

test("the batched step's results are the draws of the rows' own cases (not another row's)", { skip: SKIP }, () => {
  const r = rng(SEED ^ 0x77);
  const cs = cases(r);
  const logits = makeLogits(r, cs);
  const res = runSteps(cs, logits, 1).results[0] as Array<{ token: number; topLogprobs?: unknown[] }>;
  cs.forEach((c, i) => {
    const t = res[i]!.token;
    if (c.mask) assert.equal((c.mask[t >>> 5]! >>> (t & 31)) & 1, 1, `row ${i}: token ${t} is allowed by its mask`);
    const want = c.numLogprobs ?? (typeof c.input.logprobs === "number" ? c.input.logprobs : 0);
    assert.equal(res[i]!.topLogprobs?.length ?? 0, want, `row ${i}: top logprobs`);
  });
  assert.equal(res[0]!.token, argmaxOf(logits.subarray(0, VOCAB)), "greedy row: its own argmax");
});

function argmaxOf(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

test("native mask step matches the JS loop (writes and allowed count) on awkward sizes", { skip: SKIP }, () => {
  const r = rng(SEED ^ 0x3a5c);
  for (const vocab of [1, 31, 32, 33, 95, 4099]) {
    for (const density of [0, 0.02, 0.5, 1]) {
      for (const short of [false, true]) {
        const words = Math.max(1, bitmaskWords(vocab) - (short ? 1 : 0));
        const mask = new Int32Array(words);
        for (let t = 0; t < words * 32; t++) if (r() < density) mask[t >>> 5] |= 1 << (t & 31);
        const row = Float32Array.from({ length: vocab }, () => (r() < 0.1 ? -Infinity : (r() * 2 - 1) * 5));
        if (density === 0.02) row.fill(-Infinity); // every allowed token banned: set to 0 instead
        const a = row.slice(), b = row.slice();
        const na = applyTokenBitmask(a, vocab, mask);
        const nb = applyMaskJs(b, vocab, mask);
        const what = `seed ${SEED} vocab ${vocab} density ${density} short ${short}`;
        assert.equal(na, nb, `${what}: allowed`);
        assert.ok(Buffer.from(a.buffer).equals(Buffer.from(b.buffer)), `${what}: row`);
      }
    }
  }
});

test("sampleEach: rows picked out of a larger logits buffer, a throwing row isolated, batched and per-row alike", { skip: SKIP }, () => {
  const r = rng(SEED ^ 0x5e1);
  const cs = cases(r);
  const logits = makeLogits(r, cs);
  const n = cs.length;
  // entry i samples logits row perm[i] of a buffer with two unused rows (0 and n + 1)
  const perm = Array.from({ length: n }, (_, i) => 1 + ((i * 7) % n));
  const big = new Float32Array((n + 2) * VOCAB);
  perm.forEach((row, i) => big.set(logits.subarray(i * VOCAB, (i + 1) * VOCAB), row * VOCAB));
  const boom = new Error("processor failed");
  const rowsOf = (): SamplingRow[] => cs.map((c, i) => ({
    params: createSamplingParams(i === 2 ? { ...c.input, logitsProcessor: () => { throw boom; } } : c.input),
    rng: rngKeyForSeed(11, i), promptTokenIds: [5, 6, 7], outputTokenIds: [], tokenBitmask: c.mask, numLogprobs: c.numLogprobs, badWordsIds: c.bad,
  }));
  const expected = new Sampler().sample(logits.slice(), rowsOf().map((row, i) => (i === 2 ? { ...row, params: createSamplingParams(cs[2]!.input) } : row)), VOCAB);
  try {
    for (const on of [true, false]) {
      setBatchedSampling(on);
      const got = new Sampler().sampleEach(big.slice(), perm, rowsOf(), VOCAB);
      got.forEach((g, i) => {
        if (i === 2) assert.deepEqual(g, { error: boom }, `batched ${on}: row 2 fails alone`);
        else assert.deepEqual(g, expected[i], `seed ${SEED} batched ${on}: row ${i} (logits row ${perm[i]})`);
      });
    }
  } finally {
    setBatchedSampling(true);
  }
  assert.throws(() => new Sampler().sampleEach(big, [1, 1], rowsOf().slice(0, 2), VOCAB), /rowIdx/);
});

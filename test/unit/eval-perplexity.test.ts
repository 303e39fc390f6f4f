// Perplexity over sliding windows equals exp(mean NLL) computed here from the same logprobs; the
// KLD base file round-trips, gives 0 against itself and the hand-computed KLD against a perturbed
// distribution (full vocabulary and top-K-plus-residual coarsening).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run, slidingWindows } from "../../src/eval/perplexity.js";
import { decodeKld, encodeKld, topKOf } from "../../src/eval/kld-file.js";
import type { EvalModel } from "../../src/eval/model.js";
import { CheckpointError, ValidationError } from "../../src/errors.js";

/** A bigram model: P(next | prev) = table[prev]; windows are recorded. */
function bigramModel(table: number[][], calls: number[][] = []): EvalModel {
  const logs = table.map((row) => Float32Array.from(row, Math.log));
  return {
    tokenize: async (s) => [...s].map((c) => c.charCodeAt(0) % table.length),
    loglikelihood: async () => ({ logprob: 0 }),
    generate: async () => "",
    logprobsOfTokens: async (tokens, opts) => {
      calls.push([...tokens]);
      const lp: number[] = [];
      const dists: Float32Array[] = [];
      for (let i = 0; i + 1 < tokens.length; i++) {
        lp.push(logs[tokens[i]!]![tokens[i + 1]!]!);
        dists.push(logs[tokens[i]!]!);
      }
      return opts?.distributions ? { logprobs: lp, distributions: dists } : { logprobs: lp };
    },
  };
}

const P = [
  [0.5, 0.3, 0.15, 0.05],
  [0.1, 0.2, 0.3, 0.4],
  [0.25, 0.25, 0.25, 0.25],
  [0.7, 0.1, 0.1, 0.1],
];
// Q perturbs rows 0 and 1 only.
const Q = [
  [0.4, 0.35, 0.2, 0.05],
  [0.1, 0.3, 0.3, 0.3],
  [0.25, 0.25, 0.25, 0.25],
  [0.7, 0.1, 0.1, 0.1],
];
const TOKENS = [0, 1, 2, 3, 0, 0, 1, 1, 3, 2, 0, 2, 1, 0];

test("sliding windows follow the HF recipe", () => {
  // n = 10, context 4, stride 2: windows [0,4) [2,6) [4,8) [6,10); targets 1-3, 4-5, 6-7, 8-9.
  assert.deepEqual(slidingWindows(10, 4, 2), [
    { begin: 0, end: 4, firstTarget: 1 }, { begin: 2, end: 6, firstTarget: 4 },
    { begin: 4, end: 8, firstTarget: 6 }, { begin: 6, end: 10, firstTarget: 8 },
  ]);
  // stride = context: disjoint windows, each window's first token is context only (so the last
  // window [6, 7) scores nothing: HF's recipe loses one token per window).
  assert.deepEqual(slidingWindows(7, 3, 3), [{ begin: 0, end: 3, firstTarget: 1 }, { begin: 3, end: 6, firstTarget: 4 }, { begin: 6, end: 7, firstTarget: 7 }]);
  assert.throws(() => slidingWindows(10, 4, 5), (e: unknown) => e instanceof ValidationError && e.field === "stride");
  assert.throws(() => slidingWindows(10, 1, 1), (e: unknown) => e instanceof ValidationError && e.field === "contextLength");
});

test("perplexity = exp(mean NLL) over every token after the first", async () => {
  const calls: number[][] = [];
  const r = await run(bigramModel(P, calls), { tokens: TOKENS, contextLength: 5, stride: 3 });
  let nll = 0;
  for (let j = 1; j < TOKENS.length; j++) nll -= Math.log(P[TOKENS[j - 1]!]![TOKENS[j]!]!);
  const expected = Math.exp(nll / (TOKENS.length - 1));
  assert.equal(r.numTokensScored, TOKENS.length - 1);
  assert.ok(Math.abs(r.ppl - expected) < 1e-6 * expected, `${r.ppl} vs ${expected}`); // f32 log table: ~1e-7 relative
  assert.deepEqual(calls.map((c) => c.length), [5, 5, 5, 5]); // windows [0,5) [3,8) [6,11) [9,14)
  assert.equal(r.numWindows, 4);
  assert.ok(r.ci95.lo < r.ppl && r.ppl < r.ci95.hi);
});

test("disjoint windows skip each window's first token", async () => {
  const r = await run(bigramModel(P), { tokens: TOKENS, contextLength: 4, stride: 4 });
  // windows [0,4) [4,8) [8,12) [12,14): targets 1-3, 5-7, 9-11, 13
  const targets = [1, 2, 3, 5, 6, 7, 9, 10, 11, 13];
  const nll = targets.reduce((s, j) => s - Math.log(P[TOKENS[j - 1]!]![TOKENS[j]!]!), 0);
  assert.equal(r.numTokensScored, targets.length);
  assert.ok(Math.abs(r.ppl - Math.exp(nll / targets.length)) < 1e-6 * r.ppl);
});

test("text is tokenized with the model; bad options are typed errors", async () => {
  const r = await run(bigramModel(P), { text: "abcd", contextLength: 8 });
  assert.equal(r.numTokensScored, 3);
  await assert.rejects(run(bigramModel(P), { tokens: [1], contextLength: 4 }), (e: unknown) => e instanceof ValidationError && e.field === "tokens.length");
  await assert.rejects(run(bigramModel(P), { tokens: TOKENS, contextLength: 4, klDivergence: true }), (e: unknown) => e instanceof ValidationError && e.field === "klDivergence");
});

function kl(p: number[], q: number[]): number {
  return p.reduce((s, pi, i) => s + (pi > 0 ? pi * Math.log(pi / q[i]!) : 0), 0);
}

test("KLD: base file against itself is 0, against a perturbed model the hand-computed KLD", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tllm-kld-"));
  try {
    const base = join(dir, "base.tkld");
    const o = { tokens: TOKENS, contextLength: 6, stride: 3, klDivergenceBase: base };
    const saved = await run(bigramModel(P), { ...o, topK: 4 });
    assert.equal(saved.savedBase, base);
    assert.equal(statSync(base).size, 32 + (TOKENS.length - 1) * (12 + 8 * 4)); // header + P records of 12 + 8K bytes
    const self = await run(bigramModel(P), { ...o, klDivergence: true });
    assert.ok(Math.abs(self.kld!.meanKld) < 1e-6, `self KLD ${self.kld!.meanKld}`);
    assert.equal(self.kld!.top1Agreement, 1);
    assert.ok(Math.abs(self.kld!.deltaPpl) < 1e-5);

    const pert = await run(bigramModel(Q), { ...o, klDivergence: true });
    // Each scored position j predicts TOKENS[j] from row TOKENS[j - 1]: KL(P[row] || Q[row]).
    const rows = TOKENS.slice(0, -1);
    const expected = rows.reduce((s, r) => s + kl(P[r]!, Q[r]!), 0) / rows.length;
    assert.ok(Math.abs(pert.kld!.meanKld - expected) < 1e-6, `${pert.kld!.meanKld} vs ${expected}`);
    // top-1: row 0 argmax 0 in both, row 1: P -> 3, Q -> 1 (ties 1,2,3 at 0.3: lowest id); rows 2 (tie -> 0) and 3 agree.
    const agree = rows.filter((r) => r !== 1).length / rows.length;
    assert.equal(pert.kld!.top1Agreement, agree);
    let lnRatio = 0;
    for (let j = 1; j < TOKENS.length; j++) lnRatio += Math.log(P[TOKENS[j - 1]!]![TOKENS[j]!]! / Q[TOKENS[j - 1]!]![TOKENS[j]!]!);
    assert.ok(Math.abs(pert.kld!.meanLnPplRatio - lnRatio / rows.length) < 1e-6);
    assert.ok(Math.abs(pert.kld!.deltaPpl - (pert.ppl - self.ppl)) < 1e-5);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("KLD with top-2 + residual is the KL of the 3-bin coarsening", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tllm-kld-"));
  try {
    const base = join(dir, "base.tkld");
    const toks = [0, 1, 0];
    await run(bigramModel(P), { tokens: toks, contextLength: 3, stride: 3, klDivergenceBase: base, topK: 2 });
    const r = await run(bigramModel(Q), { tokens: toks, contextLength: 3, stride: 3, klDivergenceBase: base, klDivergence: true });
    // row 0: P's top-2 = ids {0, 1}: bins P (0.5, 0.3, 0.2) vs Q (0.4, 0.35, 0.25)
    // row 1: P's top-2 = ids {3, 2}: bins P (0.4, 0.3, 0.3) vs Q (0.3, 0.3, 0.4)
    const k0 = kl([0.5, 0.3, 0.2], [0.4, 0.35, 0.25]);
    const k1 = kl([0.4, 0.3, 0.3], [0.3, 0.3, 0.4]);
    assert.ok(Math.abs(r.kld!.meanKld - (k0 + k1) / 2) < 1e-6, `${r.kld!.meanKld}`);
    assert.ok(Math.abs(r.kld!.maxKld - Math.max(k0, k1)) < 1e-6);
    const file = decodeKld(readFileSync(base));
    assert.deepEqual([...file.positions[1]!.ids], [3, 2]);
    assert.ok(Math.abs(Math.exp(file.positions[1]!.residual) - 0.3) < 1e-6);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("topKOf keeps the K most probable ids (ties: lower id first) and the residual mass", () => {
  const r = topKOf(Float32Array.from([0.1, 0.4, 0.2, 0.2, 0.1], Math.log), 3);
  assert.deepEqual([...r.ids], [1, 2, 3]);
  assert.ok(Math.abs(Math.exp(r.residual) - 0.2) < 1e-7);
  assert.equal(topKOf(Float32Array.from([0.5, 0.5], Math.log), 2).residual, -Infinity);
  // a 150k vocabulary: one linear pass
  const big = new Float32Array(150_000).fill(Math.log(0.5 / 149_990));
  for (let i = 0; i < 10; i++) big[1000 * i + 7] = Math.log(0.05);
  const t0 = process.hrtime.bigint();
  const b = topKOf(big, 32);
  assert.ok(Number(process.hrtime.bigint() - t0) < 1e9);
  assert.deepEqual([...b.ids.slice(0, 11)], [7, 1007, 2007, 3007, 4007, 5007, 6007, 7007, 8007, 9007, 0]);
  assert.ok(Math.abs(Math.exp(b.residual) - 0.5 * (149_990 - 22) / 149_990) < 1e-6);
});

test("KLD file: encode/decode round trip and typed errors for bad files and mismatched runs", async () => {
  const pos = [{ token: 3, tokenLogprob: -1.5, ids: Int32Array.from([3, 1]), logprobs: Float32Array.from([-0.5, -1.5]), residual: -2 }];
  const h = { k: 2, nVocab: 4, nPositions: 1, contextLength: 8, stride: 4, nTokens: 2 };
  const buf = encodeKld(h, pos);
  const back = decodeKld(buf);
  assert.deepEqual(back.header, h);
  assert.deepEqual(back.positions, pos);
  assert.throws(() => decodeKld(Buffer.from("GGUF0000")), (e: unknown) => e instanceof CheckpointError && e.field === "magic");
  assert.throws(() => decodeKld(buf.subarray(0, buf.length - 1)), (e: unknown) => e instanceof CheckpointError && e.field === "size");
  const dir = mkdtempSync(join(tmpdir(), "tllm-kld-"));
  try {
    const base = join(dir, "b.tkld");
    await run(bigramModel(P), { tokens: TOKENS, contextLength: 6, stride: 3, klDivergenceBase: base });
    await assert.rejects(run(bigramModel(P), { tokens: TOKENS, contextLength: 6, stride: 2, klDivergenceBase: base, klDivergence: true }),
      (e: unknown) => e instanceof ValidationError && e.field === "stride");
    const other = [...TOKENS];
    other[5] = (other[5]! + 1) % 4;
    await assert.rejects(run(bigramModel(P), { tokens: other, contextLength: 6, stride: 3, klDivergenceBase: base, klDivergence: true }),
      (e: unknown) => e instanceof ValidationError && e.field === "tokens[4]");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

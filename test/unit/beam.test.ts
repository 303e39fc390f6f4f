// Beam search (src/sampling/beam.ts) against exhaustive search on a tiny fake "model": a vocab of
// 5 tokens whose log-probabilities are a fixed deterministic function of the prefix. With width
// >= V^(L-1) every length L-1 prefix survives, so beam search must be exact; with smaller widths it
// must match a naive reference beam search; end ids, length penalty and early stopping are checked
// on the same fixture.
import { test } from "node:test";
import assert from "node:assert/strict";
import { BeamSearch, kvForkPlan, selectBestOf, type Hypothesis } from "../../src/sampling/beam.js";
import { ValidationError } from "../../src/errors.js";

const V = 5;

/** log-softmax of pseudo-random logits seeded by the prefix (and a model seed). */
function model(prefix: readonly number[], seed: number): Float64Array {
  let h = 2166136261 ^ seed;
  for (const t of [...prefix, 99]) h = Math.imul(h ^ t, 16777619) >>> 0;
  const x = new Float64Array(V);
  for (let t = 0; t < V; t++) {
    h = Math.imul(h ^ (h >>> 13), 0x5bd1e995) >>> 0;
    x[t] = ((h % 10000) / 10000) * 4;
  }
  const m = Math.max(...x);
  const lse = m + Math.log(x.reduce((s, v) => s + Math.exp(v - m), 0));
  return x.map((v) => v - lse);
}

/** Runs the search, feeding rows built from each live beam's prefix. */
function runBeam(bs: BeamSearch, seed: number): { hyps: Hypothesis[]; steps: number } {
  let steps = 0;
  while (!bs.done) {
    const live = bs.beams;
    const rows = new Float32Array(live.length * V);
    live.forEach((b, i) => rows.set(model(b.tokens, seed), i * V));
    const before = live.map((b) => b.tokens);
    const st = bs.step(rows, V);
    // parents/tokens describe exactly how the new live beams extend the old ones
    bs.beams.forEach((b, i) => assert.deepEqual(b.tokens, [...before[st.parents[i]!]!, st.tokens[i]!]));
    steps++;
  }
  return { hyps: bs.result(), steps };
}

interface Seq { tokens: number[]; cum: number; score: number }

/** Every sequence: ends at the first end id, or at length L. */
function exhaustive(L: number, seed: number, endIds: number[], lp: number): Seq[] {
  const out: Seq[] = [];
  const rec = (prefix: number[], cum: number): void => {
    const row = model(prefix, seed);
    for (let t = 0; t < V; t++) {
      const s = [...prefix, t];
      const c = cum + Math.fround(row[t]!);
      if (endIds.includes(t) || s.length === L) out.push({ tokens: s, cum: c, score: c / Math.pow(s.length, lp) });
      else rec(s, c);
    }
  };
  rec([], 0);
  return out.sort((a, b) => b.score - a.score);
}

const close = (a: number, b: number) => Math.abs(a - b) < 1e-9;

test("width V^(L-1), no end ids: the top beams are exactly the exhaustive top sequences of length L", () => {
  for (const seed of [1, 2, 3]) {
    const L = 3, W = V ** (L - 1);
    const { hyps } = runBeam(new BeamSearch({ beamWidth: W, maxTokens: L }), seed);
    const ex = exhaustive(L, seed, [], 0).slice(0, W);
    assert.equal(hyps.length, W);
    hyps.forEach((h, i) => {
      assert.deepEqual(h.tokens, ex[i]!.tokens, `seed ${seed} rank ${i}`);
      assert.ok(close(h.cumLogprob, ex[i]!.cum));
      assert.ok(close(h.cumLogprob, h.logprobs.reduce((s, x) => s + x, 0)));
      assert.equal(h.finished, false);
    });
  }
});

test("end ids + length penalty + earlyStopping 'never' (2), width V^L: exact top hypotheses over all lengths", () => {
  for (const lp of [0, 1, -0.5, 2]) {
    for (const seed of [4, 5]) {
      const L = 3, W = V ** L;
      const bs = new BeamSearch({ beamWidth: W, numReturn: 10, maxTokens: L, endIds: [0], lengthPenalty: lp, earlyStopping: 2 });
      const { hyps } = runBeam(bs, seed);
      const ex = exhaustive(L, seed, [0], lp).slice(0, 10);
      assert.deepEqual(hyps.map((h) => h.tokens), ex.map((e) => e.tokens), `lp ${lp} seed ${seed}`);
      hyps.forEach((h, i) => {
        assert.ok(close(h.score, ex[i]!.score));
        assert.equal(h.finished, h.tokens.at(-1) === 0);
      });
    }
  }
});

/** Naive reference: keep the W best prefixes by cum logprob at every step (no end ids). */
function naiveBeam(W: number, L: number, seed: number): Seq[] {
  let beams: Seq[] = [{ tokens: [], cum: 0, score: 0 }];
  for (let s = 0; s < L; s++) {
    const all: Seq[] = [];
    for (const b of beams) {
      const row = model(b.tokens, seed);
      for (let t = 0; t < V; t++) all.push({ tokens: [...b.tokens, t], cum: b.cum + Math.fround(row[t]!), score: 0 });
    }
    beams = all.sort((a, b) => b.cum - a.cum).slice(0, W);
  }
  return beams;
}

test("small widths match a naive reference beam search step for step", () => {
  for (const W of [1, 2, 3, 4]) {
    for (const seed of [6, 7, 8]) {
      const { hyps } = runBeam(new BeamSearch({ beamWidth: W, maxTokens: 6 }), seed);
      assert.deepEqual(hyps.map((h) => h.tokens), naiveBeam(W, 6, seed).map((b) => b.tokens), `W ${W} seed ${seed}`);
    }
  }
});

test("width 1 is greedy decoding", () => {
  const { hyps } = runBeam(new BeamSearch({ beamWidth: 1, maxTokens: 5 }), 9);
  const greedy: number[] = [];
  for (let s = 0; s < 5; s++) {
    const row = model(greedy, 9);
    greedy.push(row.indexOf(Math.max(...row)));
  }
  assert.deepEqual(hyps[0]!.tokens, greedy);
});

test("earlyStopping 1 stops as soon as beamWidth hypotheses are finished; 2 keeps searching and is never worse", () => {
  let sawDifference = false;
  for (let seed = 10; seed < 40; seed++) {
    const opts = { beamWidth: 2, maxTokens: 8, endIds: [0, 1], lengthPenalty: 1 };
    const bs1 = new BeamSearch({ ...opts, earlyStopping: 1 });
    const r1 = runBeam(bs1, seed);
    const r2 = runBeam(new BeamSearch({ ...opts, earlyStopping: 2 }), seed);
    if (r1.steps < 8) assert.ok(r1.hyps.every((h) => h.finished), "stopped early only with 2 finished hypotheses");
    assert.ok(r2.steps >= r1.steps);
    assert.ok(r2.hyps[0]!.score >= r1.hyps[0]!.score - 1e-12, `seed ${seed}`);
    if (r2.hyps[0]!.score > r1.hyps[0]!.score + 1e-9) sawDifference = true;
  }
  assert.ok(sawDifference, "the fixture has a case where searching on finds a better hypothesis");
});

test("kvForkPlan: forks from parents, frees unreferenced beams; bad input is a ValidationError", () => {
  const plan = kvForkPlan(Int32Array.from([0, 0, 2]), 4);
  assert.deepEqual([...plan.fork], [0, 0, 2]);
  assert.deepEqual(plan.freed, [1, 3]);
  assert.throws(() => kvForkPlan(Int32Array.from([4]), 4), ValidationError);
  assert.throws(() => new BeamSearch({ beamWidth: 0, maxTokens: 4 }), ValidationError);
  assert.throws(() => new BeamSearch({ beamWidth: 2, numReturn: 3, maxTokens: 4 }), ValidationError);
  assert.throws(() => new BeamSearch({ beamWidth: 2, maxTokens: 4, earlyStopping: 3 }), ValidationError);
  const bs = new BeamSearch({ beamWidth: 2, maxTokens: 1 });
  assert.throws(() => bs.step(new Float32Array(2), 5), ValidationError, "rows shorter than beams x vocab");
  bs.step(new Float32Array(5), 5);
  assert.throws(() => bs.step(new Float32Array(10), 5), ValidationError, "step after done");
});

test("selectBestOf: the n highest cumulative logprobs, best first, ties to the lower index", () => {
  assert.deepEqual(selectBestOf([-3, -1, -2, -1, -7], 3), [1, 3, 2]);
  assert.deepEqual(selectBestOf([-3, -1], 2), [1, 0]);
  assert.throws(() => selectBestOf([-1, -2], 3), ValidationError);
  assert.throws(() => selectBestOf([-1, NaN], 1), ValidationError);
});

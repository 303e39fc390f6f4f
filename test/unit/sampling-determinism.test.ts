// Seeded determinism: a request's tokens depend only on its seed, its logits and its own history,
// not on the batch around it or on what the sampler ran before. Also the Philox4x32-10 known-answer
// vectors (Random123's kat_vectors) and the unseeded key space.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createSamplingParams, type SamplingParamsInput } from "../../src/api/sampling-params.js";
import { Sampler, type SamplingRow } from "../../src/sampling/sampler.js";
import { philox4x32, rngKeyForSeed, uniformAt } from "../../src/sampling/rng.js";

test("Philox4x32-10 matches the Random123 known-answer vectors", () => {
  const out = new Uint32Array(4);
  const hex = (): string[] => [...out].map((x) => x.toString(16).padStart(8, "0"));
  philox4x32(0, 0, 0, 0, 0, 0, out);
  assert.deepEqual(hex(), ["6627e8d5", "e169c58d", "bc57ac4c", "9b00dbd8"]);
  const f = 0xffffffff;
  philox4x32(f, f, f, f, f, f, out);
  assert.deepEqual(hex(), ["408f276d", "41c83b0e", "a20bc7c6", "6d5451fd"]);
  philox4x32(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, out);
  assert.deepEqual(hex(), ["d16cfe09", "94fdcceb", "5001e420", "24126ea1"]);
});

test("uniformAt is a pure function of (seed, stream, step) in [0, 1)", () => {
  const a = rngKeyForSeed(42);
  assert.equal(uniformAt(a, 5), uniformAt(rngKeyForSeed(42), 5));
  assert.notEqual(uniformAt(a, 5), uniformAt(a, 6));
  assert.notEqual(uniformAt(a, 5), uniformAt(rngKeyForSeed(42, 1), 5));
  assert.notEqual(uniformAt(a, 5), uniformAt(rngKeyForSeed(43), 5));
  assert.notEqual(uniformAt(rngKeyForSeed(1), 0), uniformAt(rngKeyForSeed(1 + 2 ** 32), 0), "high seed bits count");
  let sum = 0;
  for (let s = 0; s < 10000; s++) {
    const u = uniformAt(a, s);
    assert.ok(u >= 0 && u < 1);
    sum += u;
  }
  // mean of 10000 U(0,1): sd = sqrt(1/12/10000) = 0.0029; 5 sd
  assert.ok(Math.abs(sum / 10000 - 0.5) < 0.0145, `mean ${sum / 10000}`);
  const u1 = rngKeyForSeed(undefined);
  const u2 = rngKeyForSeed(undefined);
  assert.notDeepEqual(u1, u2, "unseeded requests get distinct keys");
  assert.equal(u1.flags, 1);
  assert.notEqual(uniformAt(u1, 0), uniformAt({ ...u1, flags: 0 }, 0), "unseeded keys never equal a seeded key");
});

const VOCAB = 1000;

/** Deterministic logits for (row tag, step): what a model would produce, independent of the batch. */
function logitsFor(tag: number, step: number, out: Float32Array): void {
  let s = (tag * 7919 + step * 104729 + 1) >>> 0;
  for (let i = 0; i < VOCAB; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 4294967296) * 8 - 4;
  }
}

interface Seq {
  tag: number;
  input: SamplingParamsInput;
  out: number[];
}

/** Generates `steps` tokens for every sequence of the batch, feeding tokens back each step. */
function generate(sampler: Sampler, seqs: Seq[], steps: number): void {
  const buf = new Float32Array(seqs.length * VOCAB);
  const params = seqs.map((q) => createSamplingParams(q.input));
  const keys = seqs.map((q) => rngKeyForSeed(q.input.seed ?? undefined));
  for (let step = 0; step < steps; step++) {
    seqs.forEach((q, i) => logitsFor(q.tag, step, buf.subarray(i * VOCAB, (i + 1) * VOCAB)));
    const rows: SamplingRow[] = seqs.map((q, i) => ({ params: params[i], rng: keys[i], promptTokenIds: [5, 6, 7], outputTokenIds: q.out }));
    sampler.sample(buf, rows, VOCAB).forEach((r, i) => seqs[i].out.push(r.token));
  }
}

const TARGET: SamplingParamsInput = { temperature: 0.9, topK: 50, topP: 0.95, seed: 1234, repetitionPenalty: 1.1 };

function others(n: number): Seq[] {
  const kinds: SamplingParamsInput[] = [
    { temperature: 0 }, { temperature: 1.5 }, { topP: 0.5, seed: 9 }, { topK: 5, temperature: 0.3, seed: 1234 },
    { minP: 0.2, temperature: 1 }, { temperature: 1, frequencyPenalty: 0.5, logprobs: 3 }, { temperature: 0.7, noRepeatNgramSize: 2 },
  ];
  return Array.from({ length: n }, (_, i) => ({ tag: 100 + i, input: { ...kinds[i % kinds.length] }, out: [] }));
}

test("same seed, same tokens: alone, inside a batch of 16, after other rows ran first", () => {
  const alone: Seq = { tag: 1, input: TARGET, out: [] };
  generate(new Sampler(), [alone], 40);
  assert.equal(new Set(alone.out).size > 5, true, "the test sequence actually samples (not a constant)");

  const batch = others(16);
  const inBatch: Seq = { tag: 1, input: TARGET, out: [] };
  batch.splice(7, 1, inBatch);
  generate(new Sampler(), batch, 40);
  assert.deepEqual(inBatch.out, alone.out);

  const warm = new Sampler();
  generate(warm, others(5), 13);
  const after: Seq = { tag: 1, input: TARGET, out: [] };
  generate(warm, [...others(3), after], 40);
  assert.deepEqual(after.out, alone.out);

  const otherSeed: Seq = { tag: 1, input: { ...TARGET, seed: 1235 }, out: [] };
  generate(new Sampler(), [otherSeed], 40);
  assert.notDeepEqual(otherSeed.out, alone.out, "a different seed gives a different sequence");
});

test("logits given as a subarray view of a larger buffer sample the same as a fresh array", () => {
  const params = createSamplingParams({ temperature: 1, topP: 0.8, seed: 77 });
  const big = new Float32Array(5 * VOCAB);
  const fresh = new Float32Array(2 * VOCAB);
  for (let r = 0; r < 2; r++) {
    logitsFor(50 + r, 0, big.subarray((r + 3) * VOCAB, (r + 4) * VOCAB));
    logitsFor(50 + r, 0, fresh.subarray(r * VOCAB, (r + 1) * VOCAB));
  }
  const rows: SamplingRow[] = [0, 1].map((i) => ({ params, rng: rngKeyForSeed(77, i), promptTokenIds: [], outputTokenIds: [] }));
  const a = new Sampler().sample(big.subarray(3 * VOCAB), rows, VOCAB).map((r) => r.token);
  const b = new Sampler().sample(fresh, rows, VOCAB).map((r) => r.token);
  assert.deepEqual(a, b);
});

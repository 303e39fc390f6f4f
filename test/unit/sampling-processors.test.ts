// The logit-modifying steps, checked on hand-computed cases through Sampler.sample (which leaves
// the processed logits in the row). All inputs and expected values are exactly representable in
// f32, so equality is exact. Also: greedy ties, raw logprobs and ranks, pipeline order.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createSamplingParams, type SamplingParamsInput } from "../../src/api/sampling-params.js";
import { Sampler, effectiveTopP, type SamplingRow } from "../../src/sampling/sampler.js";
import { rngKeyForSeed } from "../../src/sampling/rng.js";

const NEG = -Infinity;

/** Runs one greedy row and returns the processed logits and the result. */
function run(
  logits: number[], input: SamplingParamsInput, prompt: number[], output: number[], extra: Partial<SamplingRow> = {},
) {
  const row = Float32Array.from(logits);
  const params = createSamplingParams({ temperature: 0, ...input }); // callers may override temperature
  const res = new Sampler().sample(row, [{ params, rng: rngKeyForSeed(0), promptTokenIds: prompt, outputTokenIds: output, ...extra }], logits.length);
  return { row: [...row], res: res[0] };
}

test("embedding bias: dense and sparse are added first", () => {
  const dense = Float32Array.from([0.5, 0, -1, 2, 0]);
  assert.deepEqual(run([1, 2, 3, 4, 5], { embeddingBias: dense }, [], []).row, [1.5, 2, 2, 6, 5]);
  const { row, res } = run([1, 2, 3, 4, 5], { embeddingBias: { 0: 10, 4: NEG } }, [], []);
  assert.deepEqual(row, [11, 2, 3, 4, NEG]);
  assert.equal(res.token, 0);
});

test("bad token ids and multi-token bad words (prefix over prompt + output)", () => {
  const logits = [1, 1, 1, 1, 1, 1, 1, 1];
  const p = { badTokenIds: [2] };
  const words = [[5, 6], [3, 4, 7], [1]];
  assert.deepEqual(run(logits, p, [0], [5], { badWordsIds: words }).row, [1, NEG, NEG, 1, 1, 1, NEG, 1]);
  assert.deepEqual(run(logits, p, [3], [4], { badWordsIds: words }).row, [1, NEG, NEG, 1, 1, 1, 1, NEG]);
  assert.deepEqual(run(logits, p, [0, 3, 4], [], { badWordsIds: words }).row, [1, NEG, NEG, 1, 1, 1, 1, NEG]);
  assert.deepEqual(run(logits, p, [0], [4], { badWordsIds: words }).row, [1, NEG, NEG, 1, 1, 1, 1, 1]);
});

test("min_tokens bans EOS and stop ids until reached; ignoreEos keeps EOS", () => {
  const logits = [1, 2, 3, 9, 8];
  const p = { endId: 3, stopTokenIds: [4], minTokens: 2 };
  const early = run(logits, p, [0], [1]);
  assert.deepEqual(early.row, [1, 2, 3, NEG, NEG]);
  assert.equal(early.res.token, 2);
  assert.deepEqual(run(logits, p, [0], [1, 2]).row, logits);
  assert.deepEqual(run(logits, { ...p, ignoreEos: true }, [0], [1]).row, [1, 2, 3, 9, NEG]);
});

test("repetition / presence / frequency penalties (hand-computed)", () => {
  const logits = [1, -2, 0.5, 3, 0];
  const pen = { repetitionPenalty: 2, presencePenalty: 0.5, frequencyPenalty: 0.25 };
  // prompt [0, 1], output [3, 3, 1]: counts 0:1, 1:2, 3:2
  // t0: 1/2 - 0.5 - 0.25 = -0.25; t1: -2*2 - 0.5 - 0.5 = -5; t3: 3/2 - 0.5 - 0.5 = 0.5
  assert.deepEqual(run(logits, pen, [0, 1], [3, 3, 1]).row, [-0.25, -5, 0.5, 0.5, 0]);
  // promptIgnoreLength 2: presence/frequency count output only (1:1, 3:2); repetition still sees t0
  assert.deepEqual(run(logits, { ...pen, promptIgnoreLength: 2 }, [0, 1], [3, 3, 1]).row, [0.5, -4.75, 0.5, 0.5, 0]);
  assert.deepEqual(run(logits, { repetitionPenalty: 0.5 }, [2], [4]).row, [1, -2, 1, 3, 0]);
  assert.deepEqual(run(logits, { frequencyPenalty: -1 }, [], [2, 2]).row, [1, -2, 2.5, 3, 0]);
});

test("no_repeat_ngram_size bans the continuation of an earlier n-gram", () => {
  const logits = [1, 1, 1, 1, 1];
  assert.deepEqual(run(logits, { noRepeatNgramSize: 2 }, [1, 2, 3], [1]).row, [1, 1, NEG, 1, 1]);
  assert.deepEqual(run(logits, { noRepeatNgramSize: 3 }, [1, 2, 3], [1, 2]).row, [1, 1, 1, NEG, 1]);
  assert.deepEqual(run(logits, { noRepeatNgramSize: 3 }, [1, 2, 3], [4, 2]).row, logits);
  assert.deepEqual(run(logits, { noRepeatNgramSize: 1 }, [0], [4]).row, [NEG, 1, 1, 1, NEG]);
  assert.deepEqual(run(logits, { noRepeatNgramSize: 2 }, [1, 2, 1, 4], [1]).row, [1, 1, NEG, 1, NEG]);
});

test("logits processors run after penalties, in order, with prompt+output ids and step", () => {
  const seen: unknown[] = [];
  const p1 = (l: Float32Array, ids: readonly number[], ctx: { requestId: unknown; step: number }): void => {
    seen.push([l[3], [...ids], ctx.step, ctx.requestId]);
    l[0] = 100;
  };
  const p2 = (l: Float32Array): void => {
    seen.push(l[0]);
    l[0] = NEG;
  };
  const { row, res } = run([1, 2, 3, 4], { logitsProcessor: [p1, p2], repetitionPenalty: 2 }, [9], [3], { requestId: "r1" });
  assert.deepEqual(seen, [[2, [9, 3], 1, "r1"], 100]);
  assert.deepEqual(row, [NEG, 2, 3, 2]);
  assert.equal(res.token, 2);
});

test("greedy ties go to the lowest id; NaN never wins", () => {
  assert.equal(run([1, 5, 5, 2], {}, [], []).res.token, 1);
  assert.equal(run([Number.NaN, 1, 7, 7], {}, [], []).res.token, 2);
});

test("logprobs are of the raw distribution, with ranks and top-k", () => {
  const logits = [1, 3, 2, 0.5];
  const lse = Math.log(logits.reduce((a, x) => a + Math.exp(x), 0));
  // the bias makes token 0 the greedy pick; its logprob stays that of the raw logits
  const { res } = run(logits, { embeddingBias: { 0: 5 }, logprobs: 2 }, [], []);
  assert.equal(res.token, 0);
  assert.ok(Math.abs(res.logprob - (1 - lse)) < 1e-12, `${res.logprob} vs ${1 - lse}`);
  assert.equal(res.rank, 3);
  assert.deepEqual(res.topLogprobs?.map((t) => [t.token, t.rank]), [[1, 1], [2, 2]]);
  assert.ok(Math.abs(res.topLogprobs![0].logprob - (3 - lse)) < 1e-12);
  const none = run(logits, {}, [], []).res;
  assert.ok(Number.isNaN(none.logprob) && none.rank === 0 && none.topLogprobs === undefined);
  const ranked = run(logits, { n: 1, bestOf: 2, temperature: 1, seed: 3 }, [], []).res;
  assert.ok(Math.abs(ranked.logprob - (logits[ranked.token] - lse)) < 1e-12, "bestOf > n always computes the logprob");
  const only = run(logits, { logprobs: 0 }, [], []).res;
  assert.ok(Math.abs(only.logprob - (3 - lse)) < 1e-12 && only.rank === 1 && only.topLogprobs === undefined);
});

test("top-p decay: p_t = max(topPMin, topP * decay^k), reset by topPResetIds", () => {
  const p = createSamplingParams({ topP: 0.8, topPDecay: 0.5, topPMin: 0.15, topPResetIds: 7 });
  assert.equal(effectiveTopP(p, []), 0.8);
  assert.equal(effectiveTopP(p, [1]), 0.4);
  assert.equal(effectiveTopP(p, [1, 2]), 0.2);
  assert.equal(effectiveTopP(p, [1, 2, 3]), 0.15);
  assert.equal(effectiveTopP(p, [1, 2, 7]), 0.8);
  assert.equal(effectiveTopP(p, [1, 7, 3]), 0.4);
});

test("bad input: beam rows and short logits are typed errors", () => {
  const s = new Sampler();
  const params = createSamplingParams({ useBeamSearch: true, bestOf: 2 });
  assert.throws(() => s.sample(new Float32Array(4), [{ params, rng: rngKeyForSeed(0), promptTokenIds: [], outputTokenIds: [] }], 4),
    /useBeamSearch/);
  const g = createSamplingParams({});
  const row = { params: g, rng: rngKeyForSeed(0), promptTokenIds: [], outputTokenIds: [] };
  assert.throws(() => s.sample(new Float32Array(7), [row, row], 4), /logits/);
});

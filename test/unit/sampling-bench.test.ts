// Micro-benchmark (prints, does not gate on time): one sampling step for a batch of 64 rows over a
// 152064-token vocabulary (Qwen2's), for greedy, top_k=50 + top_p=0.9, top_p=0.9 alone (whole-
// vocabulary path) and top_k=50 + top_p=0.9 with 5 logprobs (the last two, each a full exp pass
// over the vocabulary, only with SAMPLING_BENCH_FULL=1; npm run bench:sampling is the real bench). Prints the median ms per step of SAMPLING_BENCH_STEPS steps (default 3).
// Asserts only that the tokens are right for greedy and lie in the top 50 for top-k.
//   SAMPLING_BENCH_FULL=1 SAMPLING_BENCH_STEPS=7 node --import tsx --test test/unit/sampling-bench.test.ts
import { test } from "node:test";
import assert from "node:assert/strict";
import { createSamplingParams, type SamplingParamsInput } from "../../src/api/sampling-params.js";
import { Sampler, type SamplingRow } from "../../src/sampling/sampler.js";
import { rngKeyForSeed } from "../../src/sampling/rng.js";

const VOCAB = 152064;
const BATCH = 64;
const STEPS = Number(process.env.SAMPLING_BENCH_STEPS ?? 3);

/** Model-like logits: ~N(0, 2) noise plus a few dozen strong candidates per row. */
function fillLogits(buf: Float32Array): void {
  let s = 2024;
  const rnd = (): number => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
  for (let i = 0; i < buf.length; i++) buf[i] = (rnd() + rnd() + rnd() - 1.5) * 4;
  for (let r = 0; r < BATCH; r++) {
    for (let j = 0; j < 40; j++) buf[r * VOCAB + Math.floor(rnd() * VOCAB)] = 12 + rnd() * 6;
  }
}

function bench(name: string, input: SamplingParamsInput, logits: Float32Array): number[] {
  const params = createSamplingParams(input);
  const sampler = new Sampler();
  const out: number[] = [];
  const rows: SamplingRow[] = Array.from({ length: BATCH }, (_, i) => ({
    params, rng: rngKeyForSeed(i), promptTokenIds: [1, 2, 3], outputTokenIds: out,
  }));
  sampler.sample(logits, rows, VOCAB); // warm-up (JIT, scratch allocation)
  const times: number[] = [];
  let tokens: number[] = [];
  for (let s = 0; s < STEPS; s++) {
    const t0 = process.hrtime.bigint();
    tokens = sampler.sample(logits, rows, VOCAB).map((r) => r.token);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  times.sort((a, b) => a - b);
  const med = times[Math.floor(times.length / 2)];
  console.log(`sampling ${BATCH}x${VOCAB} ${name}: ${med.toFixed(2)} ms/step (median of ${STEPS}), ${(med / BATCH).toFixed(3)} ms/row`);
  return tokens;
}

test("sampling micro-benchmark, 64 rows x 152064 vocab", () => {
  const logits = new Float32Array(BATCH * VOCAB);
  fillLogits(logits);
  const greedy = bench("greedy", { temperature: 0 }, logits);
  for (let r = 0; r < BATCH; r++) {
    const row = logits.subarray(r * VOCAB, (r + 1) * VOCAB);
    let best = 0;
    for (let i = 1; i < VOCAB; i++) if (row[i] > row[best]) best = i;
    assert.equal(greedy[r], best);
  }
  const topk = bench("top_k=50 top_p=0.9", { temperature: 1, topK: 50, topP: 0.9 }, logits);
  if (process.env.SAMPLING_BENCH_FULL === "1") {
    bench("top_p=0.9 (whole vocab)", { temperature: 1, topP: 0.9 }, logits);
    bench("top_k=50 top_p=0.9 + 5 logprobs", { temperature: 1, topK: 50, topP: 0.9, logprobs: 5 }, logits);
  }
  for (let r = 0; r < BATCH; r++) {
    const row = logits.subarray(r * VOCAB, (r + 1) * VOCAB);
    const x = row[topk[r]];
    let above = 0;
    for (let i = 0; i < VOCAB; i++) if (row[i] > x) above++;
    assert.ok(above < 50, `row ${r}: token ${topk[r]} has ${above} tokens above it`);
  }
});

// SamplingParams.promptLogprobs through the executor (and LLM.generate): entry i of
// RequestOutput.promptLogprobs must be log_softmax(logits after prompt[<i])[prompt[i]] with its rank
// and the top-k alternatives, entry 0 null. The reference is computed here independently: one
// full-prompt forward of the reference backend over a simple contiguous KV cache with a logits row
// for every position, then log-softmax in f64.
// Tolerance 1e-4 on logprobs: both sides are the same f32 reference kernels, but the executor
// computes the prompt over a paged cache, in chunks when chunked prefill is on (the attention
// softmax then sums keys in another grouping); the logits have std ~4, so f32 rounding differences
// stay around 1e-6. Ranks and top-k ids must match exactly (random weights: no ties).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { GgmlType } from "../../src/backends/dtypes.js";
import { ReferenceBackend } from "../../src/backends/reference/index.js";
import { ensureFixture, type RandomModelSpec } from "../../src/checkpoint/random-model.js";
import { SimpleKvCache } from "../../src/engine/simple-kv-cache.js";
import { LLM } from "../../src/api/llm.js";
import type { Logprob, TokenLogprobs } from "../../src/api/request-output.js";
import { WorkerExecutor, type ExecutorConfig } from "../../src/executor/index.js";
import { loadModel } from "../../src/models/loader.js";

const ROOT = resolve(import.meta.dirname, "../..");
const SPEC: RandomModelSpec = {
  arch: "llama", vocab: join(ROOT, "test/fixtures/vocab/ggml-vocab-llama-spm.gguf"), hidden: 64, layers: 2, heads: 4,
  kvHeads: 2, headDim: 16, ffn: 128, tieEmbeddings: false, qkvBias: false, qkNorm: false, ropeTheta: 10000,
  rmsEps: 1e-5, maxPositions: 512, seed: 4242, weightTypes: GgmlType.Q8_0,
};
const TOL = 1e-4;
const K = 3;
let model = "";

/** per position p: log_softmax (f64) of the logits after prompt[0..p] */
function referenceRows(prompt: number[]): Float64Array[] {
  const { config, model: m, checkpoint } = loadModel(model, new ReferenceBackend());
  try {
    const T = prompt.length, tpb = 16, V = config.vocabSize;
    const kv = new SimpleKvCache({
      numLayers: config.numLayers, numKvHeads: config.numKvHeads, headDim: config.headDim,
      numBlocks: Math.ceil(T / tpb) + 1, tokensPerBlock: tpb, dtype: "f32",
    });
    kv.allocSeq(0, T);
    const logits = m.forward({
      tokens: Int32Array.from(prompt), positions: Int32Array.from({ length: T }, (_, i) => i),
      seqs: [{ qStart: 0, qLen: T, kvLen: T, blockTable: kv.blockTable(0) }], slots: kv.slotsFor(0, 0, T),
      logitRows: Int32Array.from({ length: T }, (_, i) => i),
    }, kv.layers);
    return Array.from({ length: T }, (_, p) => {
      const row = logits.subarray(p * V, (p + 1) * V);
      let max = -Infinity;
      for (const v of row) if (v > max) max = v;
      let s = 0;
      for (const v of row) s += Math.exp(v - max);
      const lse = max + Math.log(s);
      return Float64Array.from(row, (v) => v - lse);
    });
  } finally {
    checkpoint.close();
  }
}

/** compares promptLogprobs with the reference rows: token logprob, rank, top-K ids and values */
function checkAgainstReference(got: (TokenLogprobs | null)[] | null, prompt: number[], ref: Float64Array[], k = K): number {
  assert.ok(got, "promptLogprobs present");
  assert.equal(got.length, prompt.length);
  assert.equal(got[0], null);
  let worst = 0;
  for (let i = 1; i < prompt.length; i++) {
    const e: TokenLogprobs | null | undefined = got[i];
    assert.ok(e, `entry ${i} present`);
    const row = ref[i - 1]!;
    const tok = prompt[i]!;
    const mine: Logprob | undefined = e.get(tok);
    assert.ok(mine, `entry ${i} has the prompt token ${tok}`);
    let rank = 1;
    for (const v of row) if (v > row[tok]!) rank++;
    assert.equal(mine.rank, rank, `rank of prompt token ${i}`);
    worst = Math.max(worst, Math.abs(mine.logprob - row[tok]!));
    const top = [...row.keys()].sort((a, b) => row[b]! - row[a]!).slice(0, k);
    for (const [r, t] of top.entries()) {
      const x = e.get(t);
      assert.ok(x, `entry ${i} has top-${r + 1} token ${t}`);
      assert.equal(x.rank, r + 1);
      worst = Math.max(worst, Math.abs(x.logprob - row[t]!));
    }
    const expectedSize: number = top.includes(tok) ? k : k + 1;
    assert.equal(e.size, expectedSize, `entry ${i}: the prompt token plus the top ${k}`);
  }
  assert.ok(worst <= TOL, `max |Δlogprob| ${worst} <= ${TOL}`);
  return worst;
}

function prompt(len: number, seed: number): number[] {
  let x = seed;
  return Array.from({ length: len }, () => {
    x = (x * 1103515245 + 12345) >>> 0;
    return 3 + (x % 31000);
  });
}

before(async () => {
  model = (await ensureFixture(SPEC, join(tmpdir(), "tllm-test-fixtures"))).gguf;
});

describe("promptLogprobs (executor, reference backend)", () => {
  const base = (extra: Partial<ExecutorConfig>): ExecutorConfig =>
    ({ model, backend: "reference", log: false, kvCacheConfig: { maxTokens: 2048, tokensPerBlock: 16 }, ...extra });
  let whole: WorkerExecutor, chunked: WorkerExecutor;
  before(async () => {
    whole = await WorkerExecutor.create(base({}));
    chunked = await WorkerExecutor.create(base({ enableChunkedPrefill: true, maxNumTokens: 16 }));
  });
  after(async () => {
    await whole?.shutdown();
    await chunked?.shutdown();
  });

  test("equal a full-prompt reference forward, without and with chunked prefill (45 tokens over chunks of 16)", async () => {
    const p = prompt(45, 1);
    const ref = referenceRows(p);
    const a = await whole.generateAsync(p, { maxTokens: 2, promptLogprobs: K });
    const b = await chunked.generateAsync(p, { maxTokens: 2, promptLogprobs: K });
    const wa = checkAgainstReference(a.promptLogprobs, p, ref);
    const wb = checkAgainstReference(b.promptLogprobs, p, ref);
    process.stdout.write(`# max |Δlogprob| vs reference: whole ${wa.toExponential(2)}, chunked ${wb.toExponential(2)}\n`);
    const stats = await chunked.getStats();
    assert.ok(stats.filter((s) => s.inflightBatchingStats.numCtxTokens > 0).length >= 3, "the chunked run prefilled in >= 3 steps");
  });

  test("a request asking for them takes no prefix-cache hit, yet a second plain request does", async () => {
    const p = prompt(40, 2);
    const warm = await whole.generateAsync(p, { maxTokens: 1 });
    assert.equal(warm.promptLogprobs, null);
    const withLp = await whole.generateAsync(p, { maxTokens: 1, promptLogprobs: 0 });
    assert.equal(withLp.metrics.numCachedTokens, 0);
    const ref = referenceRows(p);
    assert.ok(withLp.promptLogprobs);
    for (let i = 1; i < p.length; i++) {
      const e: TokenLogprobs = withLp.promptLogprobs[i]!;
      assert.equal(e.size, 1, "promptLogprobs 0: the prompt token only");
      assert.ok(Math.abs(e.get(p[i]!)!.logprob - ref[i - 1]![p[i]!]!) <= TOL);
    }
    const again = await whole.generateAsync(p, { maxTokens: 1 });
    assert.equal(again.metrics.numCachedTokens, 32, "two full blocks of 16 reused");
  });

  test("streaming: a snapshot carries them from the first token on; a 1-token prompt gives [null]", async () => {
    const p = prompt(20, 3);
    const r = whole.generateAsync(p, { maxTokens: 3, promptLogprobs: 1 }, { streaming: true });
    const snaps = [];
    for await (const s of r) snaps.push(s);
    assert.ok(snaps.length >= 2);
    assert.deepEqual(snaps[0]!.promptLogprobs, (await r).promptLogprobs);
    checkAgainstReference((await r).promptLogprobs, p, referenceRows(p), 1);
    const one = await whole.generateAsync([p[0]!], { maxTokens: 1, promptLogprobs: 2 });
    assert.deepEqual(one.promptLogprobs, [null]);
  });
});

describe("promptLogprobs through LLM.generate", () => {
  test("the RequestOutput carries them (entry 0 null), equal to the reference", async () => {
    const llm = await LLM.create({ model, backend: "reference", kvCacheConfig: { maxTokens: 1024 } });
    try {
      const p = prompt(12, 4);
      const out = await llm.generate(p, { maxTokens: 1, promptLogprobs: 2 });
      checkAgainstReference(out.promptLogprobs, p, referenceRows(p), 2);
      const plain = await llm.generate(p, { maxTokens: 1 });
      assert.equal(plain.promptLogprobs, null);
    } finally {
      await llm.shutdown();
    }
  });
});

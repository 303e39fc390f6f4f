// Beam search through LLM.generate (executor worker, paged KV with shared prompt blocks and
// copy-on-write) on a random-weight Llama over a 6-token vocabulary written here. References are
// computed independently with the reference backend: one full forward of prompt + prefix per
// prefix (own contiguous KV cache), log_softmax in f64.
//   (1) exhaustive: with width W = V^(L-1) every length L-1 prefix survives, so the n best beams
//       must be exactly the n best of all V^L sequences (tokens, and cum logprob within 1e-4);
//   (2) a narrow search (W=3, EOS and stop id 0 live, lengthPenalty 1, 6 steps: beams swap parents, KV blocks
//       are forked and copied many times) must equal the pure BeamSearch module fed the same
//       reference rows;
//   (3) KV: beams share the prompt's full block (usedNumBlocks = 1 + W right after the fork, not
//       2W) and every block is free again afterwards.
// Tolerance 1e-4: both sides run the reference backend's f32 kernels; the executor's rows come from
// a paged cache and batched steps, the references from one-sequence forwards, so f32 rounding may
// differ in the last bits (logits std ~4); 1e-4 leaves room over 3-6 summed terms.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LLM } from "../../src/api/llm.js";
import type { RequestOutput } from "../../src/api/request-output.js";
import { GgmlType } from "../../src/backends/dtypes.js";
import { ReferenceBackend } from "../../src/backends/reference/index.js";
import { writeGguf } from "../../src/checkpoint/gguf-writer.js";
import { ensureFixture, type RandomModelSpec } from "../../src/checkpoint/random-model.js";
import { SimpleKvCache } from "../../src/engine/simple-kv-cache.js";
import { ValidationError } from "../../src/errors.js";
import { loadModel } from "../../src/models/loader.js";
import { BeamSearch } from "../../src/sampling/beam.js";

const DIR = join(tmpdir(), "tllm-test-fixtures", "beam");
const PIECES = ["<unk>", "<s>", "</s>", "▁a", "▁b", "c"];
const V = PIECES.length;
const EOS = 2;
const TOL = 1e-4;
const PROMPT = [1, 3, 4, 5, 3, 4]; // 6 tokens: one full block of 4 + a partial block of 2
let model = "";
let llm: LLM;

function writeTinyVocab(path: string): void {
  writeGguf(path, {
    metadata: [
      ["general.architecture", "string", "llama"],
      ["tokenizer.ggml.model", "string", "llama"],
      ["tokenizer.ggml.tokens", { array: "string" }, PIECES],
      ["tokenizer.ggml.scores", { array: "f32" }, PIECES.map((_, i) => -i)],
      ["tokenizer.ggml.token_type", { array: "i32" }, [2, 3, 3, 1, 1, 1]],
      ["tokenizer.ggml.bos_token_id", "u32", 1],
      ["tokenizer.ggml.eos_token_id", "u32", EOS],
      ["tokenizer.ggml.unknown_token_id", "u32", 0],
    ],
    tensors: [],
  });
}

/** log_softmax (f64) of the next-token logits after `tokens`, one fresh forward each call */
function makeOracle(): { next: (tokens: number[]) => Float64Array; close: () => void } {
  const { config, model: m, checkpoint } = loadModel(model, new ReferenceBackend());
  const memo = new Map<string, Float64Array>();
  const next = (tokens: number[]): Float64Array => {
    const key = tokens.join(",");
    const hit = memo.get(key);
    if (hit) return hit;
    const T = tokens.length;
    const kv = new SimpleKvCache({ numLayers: config.numLayers, numKvHeads: config.numKvHeads, headDim: config.headDim, numBlocks: Math.ceil(T / 16) + 1, tokensPerBlock: 16, dtype: "f32" });
    kv.allocSeq(0, T);
    const logits = m.forward({
      tokens: Int32Array.from(tokens), positions: Int32Array.from({ length: T }, (_, i) => i),
      seqs: [{ qStart: 0, qLen: T, kvLen: T, blockTable: kv.blockTable(0) }], slots: kv.slotsFor(0, 0, T), logitRows: Int32Array.of(T - 1),
    }, kv.layers);
    const max = Math.max(...logits);
    const lse = max + Math.log(logits.reduce((s, v) => s + Math.exp(v - max), 0));
    const out = Float64Array.from(logits, (v) => v - lse);
    memo.set(key, out);
    return out;
  };
  return { next, close: () => checkpoint.close() };
}

before(async () => {
  mkdirSync(DIR, { recursive: true });
  const vocab = join(DIR, "ggml-vocab-tiny6.gguf");
  writeTinyVocab(vocab);
  const spec: RandomModelSpec = {
    arch: "llama", vocab, hidden: 32, layers: 2, heads: 2, kvHeads: 1, headDim: 16, ffn: 64, tieEmbeddings: false,
    qkvBias: false, qkNorm: false, ropeTheta: 10000, rmsEps: 1e-5, maxPositions: 64, seed: 77, weightTypes: GgmlType.F32,
  };
  model = (await ensureFixture(spec, DIR)).gguf;
  llm = await LLM.create({ model, backend: "reference", maxBeamWidth: 64, kvCacheConfig: { tokensPerBlock: 4, maxTokens: 1024 } });
});
after(async () => {
  await llm?.shutdown();
});

describe("beam search through LLM.generate", () => {
  test("(1) W = V^(L-1): the n best beams are the n best of all V^L sequences", async () => {
    const L = 3, W = V ** (L - 1), n = 4;
    const oracle = makeOracle();
    const all: { tokens: number[]; cum: number }[] = [];
    const rec = (prefix: number[], cum: number): void => {
      const row = oracle.next([...PROMPT, ...prefix]);
      for (let t = 0; t < V; t++) {
        const s = [...prefix, t];
        if (s.length === L) all.push({ tokens: s, cum: cum + row[t]! });
        else rec(s, cum + row[t]!);
      }
    };
    rec([], 0);
    oracle.close();
    all.sort((a, b) => b.cum - a.cum);
    await llm.getStats(); // drop earlier iterations
    const out = await llm.generate(PROMPT, { useBeamSearch: true, bestOf: W, n, maxTokens: L, ignoreEos: true, logprobs: 0 });
    assert.equal(out.outputs.length, n);
    out.outputs.forEach((o, i) => {
      const want = all[i]!;
      assert.equal(o.index, i);
      assert.deepEqual(o.tokenIds, want.tokens, `beam ${i}`);
      assert.ok(Math.abs(o.cumulativeLogprob! - want.cum) <= TOL, `beam ${i}: cum ${o.cumulativeLogprob} vs ${want.cum}`);
      assert.equal(o.finishReason, "length");
      const lp = o.logprobs!.map((m, j) => m.get(o.tokenIds[j]!)!.logprob);
      assert.ok(Math.abs(lp.reduce((a, b) => a + b, 0) - o.cumulativeLogprob!) <= 1e-9, "token logprobs sum to the cum logprob");
    });
    assert.equal(out.outputs[0]!.text, out.outputs[0]!.tokenIds.map((t) => PIECES[t]!.replace("▁", " ")).join("").replace(/^ /, "")
      .replace(/<s>|<\/s>|<unk>/g, ""), "text of the best beam is its tokens' pieces (specials skipped)");
    // (3) KV: the prompt's full block is shared by all W beams, its partial block copied per beam
    const stats = await llm.getStats();
    const used = stats.map((s) => s.kvCacheStats.usedNumBlocks);
    assert.equal(Math.max(...used), 1 + W, `max used blocks ${Math.max(...used)} (no sharing would be ${2 * W})`);
    const snap = await llm.snapshot();
    assert.equal(snap.kvCacheStats.usedNumBlocks, 0);
    assert.equal(snap.kvCacheStats.freeNumBlocks, snap.kvCacheStats.maxNumBlocks);
  });

  test("(2) W=3 over 6 steps with end ids (EOS, stop id 0) and lengthPenalty 1 equals BeamSearch fed reference rows", async () => {
    const W = 3, n = 2, maxTokens = 6;
    const oracle = makeOracle();
    const bs = new BeamSearch({ beamWidth: W, numReturn: n, lengthPenalty: 1, earlyStopping: 1, endIds: [EOS, 0], maxTokens });
    while (!bs.done) {
      const rows = new Float32Array(bs.beams.length * V);
      bs.beams.forEach((b, i) => rows.set(Float32Array.from(oracle.next([...PROMPT, ...b.tokens])), i * V));
      bs.step(rows, V);
    }
    oracle.close();
    const want = bs.result();
    assert.ok(want.some((h) => h.finished), "the fixture finishes a hypothesis by an end id");
    const out = await llm.generate(PROMPT, { useBeamSearch: true, bestOf: W, n, maxTokens, lengthPenalty: 1, stopTokenIds: [0] });
    assert.equal(out.outputs.length, want.length);
    out.outputs.forEach((o, i) => {
      assert.deepEqual(o.tokenIds, want[i]!.tokens, `beam ${i}`);
      assert.ok(Math.abs(o.cumulativeLogprob! - want[i]!.cumLogprob) <= TOL);
      assert.equal(o.finishReason, want[i]!.finished ? "stop" : "length");
      assert.equal(o.stopReason, want[i]!.finished && o.tokenIds.at(-1) === 0 ? 0 : null);
    });
    const snap = await llm.snapshot();
    assert.equal(snap.kvCacheStats.usedNumBlocks, 0, "every block back in the free queue");
  });

  test("beam requests next to sampled ones; unsupported combinations are typed errors", async () => {
    const [beam, plain] = await Promise.all([
      llm.generate(PROMPT, { useBeamSearch: true, bestOf: 2, maxTokens: 4, ignoreEos: true }),
      llm.generate(PROMPT, { maxTokens: 4, ignoreEos: true }),
    ]);
    assert.equal(beam.outputs.length, 1);
    assert.equal(beam.outputs[0]!.tokenIds.length, 4);
    assert.equal(plain.outputs[0]!.tokenIds.length, 4);
    await assert.rejects(llm.generate(PROMPT, { useBeamSearch: true, bestOf: 2, stop: "a" }), (e: unknown) => e instanceof ValidationError && e.field === "stop");
    await assert.rejects(llm.generate(PROMPT, { useBeamSearch: true, bestOf: 2, logprobs: 2 }), (e: unknown) => e instanceof ValidationError && e.field === "logprobs");
    // beam width above LlmArgs.maxBeamWidth (64 here), as TensorRT-LLM's max_beam_width
    await assert.rejects(llm.generate(PROMPT, { useBeamSearch: true, bestOf: 65, maxTokens: 2 }),
      (e: unknown) => e instanceof ValidationError && e.field === "bestOf" && /maxBeamWidth \(64\)/.test(e.message));
    const snap = await llm.snapshot();
    assert.equal(snap.kvCacheStats.usedNumBlocks, 0);
  });

  test("MAX_UTILIZATION, tight pool, maxBatchSize 4: beams preempted, recomputed and split over steps, same beams as alone", async () => {
    const params = { useBeamSearch: true, bestOf: 3, n: 3, maxTokens: 8, ignoreEos: true };
    const prompts = [PROMPT, [1, 4, 4, 3, 5], [1, 5, 3, 3, 4, 5, 4]];
    const alone: RequestOutput[] = [];
    for (const p of prompts) alone.push(await llm.generate(p, params));
    const tight = await LLM.create({
      model, backend: "reference", maxBeamWidth: 8, kvCacheConfig: { tokensPerBlock: 4, maxTokens: 40, enableBlockReuse: false }, maxBatchSize: 4,
      schedulerConfig: { capacitySchedulerPolicy: "MAX_UTILIZATION" },
    });
    try {
      const outs = await tight.generate(prompts, params);
      const stats = await tight.getStats();
      assert.ok(stats.some((s) => s.inflightBatchingStats.numPausedRequests > 0), "some beam was preempted");
      assert.ok(stats.some((s) => s.numActiveRequests > 4), "more live beams than maxBatchSize: a group's beams were split over steps");
      outs.forEach((o, i) => {
        assert.deepEqual(o.outputs.map((c) => c.tokenIds), alone[i]!.outputs.map((c) => c.tokenIds), `prompt ${i}`);
        o.outputs.forEach((c, j) => assert.ok(Math.abs(c.cumulativeLogprob! - alone[i]!.outputs[j]!.cumulativeLogprob!) <= TOL));
      });
      assert.equal((await tight.snapshot()).kvCacheStats.usedNumBlocks, 0);
    } finally {
      await tight.shutdown();
    }
  });

  test("aborting a beam request ends it 'cancelled' with its best beams so far; no block leaks", async () => {
    const ac = new AbortController();
    // the abort is raised from the caller's thread while step 3 runs (logitsProcessor callback)
    const out = await llm.generate(PROMPT, {
      useBeamSearch: true, bestOf: 3, n: 2, maxTokens: 40, ignoreEos: true,
      logitsProcessor: (_row, _ids, ctx) => { if (ctx.step === 3) ac.abort(); },
    }, { signal: ac.signal });
    assert.equal(out.outputs.length, 2);
    for (const o of out.outputs) {
      assert.equal(o.finishReason, "cancelled");
      assert.ok(o.tokenIds.length >= 4 && o.tokenIds.length < 40, `cancelled after step 3 (${o.tokenIds.length} tokens)`);
    }
    assert.ok(out.outputs[0]!.cumulativeLogprob! >= out.outputs[1]!.cumulativeLogprob!, "best first");
    assert.equal((await llm.snapshot()).kvCacheStats.usedNumBlocks, 0);
  });
});

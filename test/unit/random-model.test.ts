// Random-weight model generator (src/checkpoint/random-model.ts): determinism, GGUF metadata, and
// that a GGUF file and its HF twin hold the same weights (GGUF dequantized, llama Q/K rows put back
// in HF order with src/models/weights.ts's unpermuteQkRows, an independent implementation).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GgmlType } from "../../src/backends/dtypes.js";
import { f32ArrayToF16 } from "../../src/backends/reference/f16.js";
import { dequantize, quantizeRow } from "../../src/backends/reference/quant.js";
import { fastQuantize } from "../../src/checkpoint/random-model-quant.js";
import { openGguf, readGgufMetadata } from "../../src/checkpoint/gguf.js";
import { openSafetensorsDir } from "../../src/checkpoint/safetensors.js";
import { readHfConfig } from "../../src/checkpoint/hf-dir.js";
import {
  GENERATOR_VERSION, ensureFixture, fillNormal, planTensors, qkRowOrder, writeRandomGguf, writeRandomHfDir, type RandomModelSpec,
} from "../../src/checkpoint/random-model.js";
import { permuteQkRows, unpermuteQkRows } from "../../src/models/weights.js";
import { configFromGguf } from "../../src/models/config-from-gguf.js";
import { configFromHf } from "../../src/models/config-from-hf.js";

const dir = mkdtempSync(join(tmpdir(), "tllm-rand-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const VOCAB = (n: string) => `test/fixtures/vocab/ggml-vocab-${n}.gguf`;

/** llama, GQA, a Q4_K/Q6_K mix on the layer matrices (Q8_0 for the vocabulary-sized ones, to stay fast). */
const LLAMA: RandomModelSpec = {
  arch: "llama", vocab: VOCAB("llama-spm"), hidden: 256, layers: 1, heads: 4, kvHeads: 2, headDim: 64, ffn: 256,
  tieEmbeddings: false, qkvBias: false, qkNorm: false, ropeTheta: 10000, rmsEps: 1e-5, maxPositions: 512, seed: 7,
  weightTypes: { default: GgmlType.Q4_K, attnV: GgmlType.Q6_K, ffnDown: GgmlType.Q6_K, embedding: GgmlType.Q8_0, output: GgmlType.Q8_0 },
};
/** qwen3: head_dim * heads != hidden, q/k norms, tied embeddings, F16, GPT-2 vocabulary. */
const QWEN3: RandomModelSpec = {
  arch: "qwen3", vocab: VOCAB("gpt-2"), hidden: 64, layers: 2, heads: 4, kvHeads: 1, headDim: 32, ffn: 96,
  tieEmbeddings: true, qkvBias: false, qkNorm: true, ropeTheta: 1e6, rmsEps: 1e-6, maxPositions: 256, seed: 3,
  weightTypes: GgmlType.F16, hfDtype: "F16",
};

const sha = (p: string) => createHash("sha256").update(readFileSync(p)).digest("hex");

test("fillNormal: N(mean, std^2) statistics and determinism per (seed, name)", () => {
  const n = 1 << 20;
  const a = new Float32Array(n);
  fillNormal(a, 1, "w", 0.5, 2);
  let s = 0, s2 = 0;
  for (const v of a) { s += v; s2 += v * v; }
  const mean = s / n, std = Math.sqrt(s2 / n - mean * mean);
  // standard errors: mean 2/sqrt(n) = 0.002, std 2/sqrt(2n) = 0.0014; allow 5 of them
  assert.ok(Math.abs(mean - 0.5) < 0.01, `mean ${mean}`);
  assert.ok(Math.abs(std - 2) < 0.007, `std ${std}`);
  const b = new Float32Array(n);
  fillNormal(b, 1, "w", 0.5, 2);
  assert.deepEqual(b, a);
  fillNormal(b, 2, "w", 0.5, 2);
  assert.notDeepEqual(b, a);
});

test("fastQuantize Q4_K/Q6_K: valid blocks whose error is close to the reference quantizer's", () => {
  const rows = 16, cols = 512, n = rows * cols;
  const w = new Float32Array(n);
  fillNormal(w, 5, "q", 0, 1);
  w.fill(0, 0, 256); // an all-zero block: scales 0, must dequantize to exactly 0
  w.fill(0.75, 256, 512); // a constant positive block: the min is clamped to 0 as in ggml
  const rmse = (a: Float32Array) => { let s = 0; for (let i = 0; i < n; i++) s += (a[i]! - w[i]!) ** 2; return Math.sqrt(s / n); };
  for (const type of [GgmlType.Q4_K, GgmlType.Q6_K]) {
    const fast = fastQuantize(type, w, rows, cols)!;
    const ref = new Uint8Array(fast.length);
    const rb = fast.length / rows;
    for (let r = 0; r < rows; r++) ref.set(quantizeRow(type, w.subarray(r * cols, (r + 1) * cols), cols), r * rb);
    const df = dequantize(type, fast, n), dr = dequantize(type, ref, n);
    // The reference searches for scales; ours takes them from the range: allow 1.5x its RMS error
    // (measured 1.1x for both types). Absolute: N(0,1) data, Q4_K RMSE ~0.07, Q6_K ~0.018.
    assert.ok(rmse(df) < 1.5 * rmse(dr), `${type}: ${rmse(df)} vs reference ${rmse(dr)}`);
    assert.ok(rmse(df) < (type === GgmlType.Q4_K ? 0.1 : 0.03), `${type}: ${rmse(df)}`);
    assert.ok(df.subarray(0, 256).every((v) => v === 0), "zero block");
    for (let i = 256; i < 512; i++) assert.ok(Math.abs(df[i]! - 0.75) < 0.75 / 31, `constant block [${i}] = ${df[i]}`);
  }
  assert.equal(fastQuantize(GgmlType.Q8_0, w, rows, cols), undefined);
});

test("qkRowOrder agrees with weights.ts permuteQkRows / unpermuteQkRows", () => {
  const rows = 12, cols = 3, nHead = 2;
  const w = new Float32Array(rows * cols).map((_, i) => i);
  const order = qkRowOrder(rows, nHead);
  const mine = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) mine.set(w.subarray(order[r]! * cols, (order[r]! + 1) * cols), r * cols);
  assert.deepEqual(mine, permuteQkRows(w, rows, cols, nHead));
  assert.deepEqual(unpermuteQkRows(mine, rows, cols, nHead), w);
  // row 1 of head 0 in GGUF is the first row of the second half of head 0 in HF (hd = 6)
  assert.equal(order[1], 3);
});

test("same spec and seed -> identical GGUF bytes; another seed -> different weights", () => {
  const p1 = join(dir, "a.gguf"), p2 = join(dir, "b.gguf"), p3 = join(dir, "c.gguf");
  writeRandomGguf(QWEN3, p1);
  writeRandomGguf(QWEN3, p2);
  assert.equal(sha(p1), sha(p2));
  writeRandomGguf({ ...QWEN3, seed: 4 }, p3);
  const a = openGguf(p1), c = openGguf(p3);
  try {
    assert.notDeepEqual(c.tensors.get("token_embd.weight")!.data(), a.tensors.get("token_embd.weight")!.data());
    assert.deepEqual(c.tensors.get("token_embd.weight")!.shape, a.tensors.get("token_embd.weight")!.shape);
  } finally {
    a.close();
    c.close();
  }
});

test("GGUF metadata: llama.cpp's keys for the architecture, tokenizer copied from the vocab", () => {
  const p = join(dir, "meta.gguf");
  writeRandomGguf({ ...LLAMA, arch: "mistral", slidingWindow: 128 }, p);
  const md = readGgufMetadata(p);
  const vocab = readGgufMetadata(LLAMA.vocab);
  assert.equal(md.get("general.architecture"), "llama"); // llama.cpp converts Mistral to `llama`
  const want: Record<string, unknown> = {
    "llama.embedding_length": 256, "llama.block_count": 1, "llama.feed_forward_length": 256, "llama.context_length": 512,
    "llama.attention.head_count": 4, "llama.attention.head_count_kv": 2, "llama.attention.key_length": 64,
    "llama.attention.value_length": 64, "llama.rope.dimension_count": 64, "llama.rope.freq_base": 10000,
    "llama.vocab_size": 32000, "general.quantization_version": 2,
  };
  for (const [k, v] of Object.entries(want)) assert.equal(md.get(k), v, k);
  assert.ok(Math.abs((md.get("llama.attention.layer_norm_rms_epsilon") as number) - 1e-5) < 1e-11); // stored as f32
  for (const [k, v] of vocab) if (k.startsWith("tokenizer.")) assert.deepEqual(md.get(k), v, k);
});

/** Asserts every HF tensor equals its GGUF twin dequantized (exactly, or as f16 bits for an F16 twin). */
function assertTwins(spec: RandomModelSpec, gguf: string, hfDir: string): void {
  const g = openGguf(gguf), h = openSafetensorsDir(hfDir);
  try {
    const plan = planTensors(spec, g.tensors.get("token_embd.weight")!.shape[0]!);
    assert.equal(h.tensors.size, plan.length);
    assert.equal(g.tensors.size, plan.length);
    for (const p of plan) {
      const gt = g.tensors.get(p.gguf)!, ht = h.tensors.get(p.hf)!;
      assert.ok(gt && ht, `${p.gguf} / ${p.hf} present`);
      assert.deepEqual(ht.shape, gt.shape, p.hf);
      const n = p.shape.reduce((a, b) => a * b, 1);
      let v = gt.dtype === GgmlType.F32 ? new Float32Array(gt.data().slice().buffer) : dequantize(gt.dtype, gt.data(), n);
      if (p.permuteHeads !== undefined) v = unpermuteQkRows(v, p.shape[0]!, p.shape[1]!, p.permuteHeads);
      if (spec.hfDtype === "F16") {
        const bits = new Uint16Array(n);
        f32ArrayToF16(v, bits);
        assert.deepEqual(ht.data(), new Uint8Array(bits.buffer), p.hf);
      } else {
        assert.deepEqual(new Float32Array(ht.data().slice().buffer), v, p.hf);
      }
    }
  } finally {
    g.close();
    h.close();
  }
}

test("llama (Q4_K/Q6_K/Q8_0, permuted Q/K): the HF twin holds exactly the GGUF's dequantized weights", () => {
  const p = join(dir, "llama.gguf"), d = join(dir, "llama-hf");
  writeRandomGguf(LLAMA, p);
  writeRandomHfDir(LLAMA, d);
  assertTwins(LLAMA, p, d);
  const g = openGguf(p);
  assert.equal(g.tensors.get("blk.0.attn_q.weight")!.dtype, GgmlType.Q4_K);
  assert.equal(g.tensors.get("blk.0.ffn_down.weight")!.dtype, GgmlType.Q6_K);
  assert.equal(g.tensors.get("output.weight")!.dtype, GgmlType.Q8_0);
  assert.equal(g.tensors.get("blk.0.attn_norm.weight")!.dtype, GgmlType.F32);
  g.close();
});

test("qwen3 (F16, tied, q/k norms) twin, and both configs describe the same model", () => {
  const p = join(dir, "qwen3.gguf"), d = join(dir, "qwen3-hf");
  writeRandomGguf(QWEN3, p);
  writeRandomHfDir(QWEN3, d);
  assertTwins(QWEN3, p, d);
  const h = openSafetensorsDir(d);
  assert.ok(!h.tensors.has("lm_head.weight"));
  assert.deepEqual(h.tensors.get("model.layers.1.self_attn.q_norm.weight")!.shape, [32]);
  h.close();
  const cfg = readHfConfig(d);
  assert.deepEqual(cfg["architectures"], ["Qwen3ForCausalLM"]);
  assert.equal(cfg["vocab_size"], 50257);
  const fromHf = configFromHf(cfg, join(d, "config.json"));
  const g = openGguf(p);
  const fromGguf = configFromGguf(g.metadata, p, g.tensors);
  g.close();
  for (const k of ["hiddenSize", "numLayers", "numHeads", "numKvHeads", "headDim", "intermediateSize", "vocabSize",
    "tieWordEmbeddings", "qkNorm", "attentionBias", "ropeTheta", "maxPositionEmbeddings", "bosTokenId"] as const) {
    assert.deepEqual(fromGguf[k], fromHf[k], k);
  }
  for (const f of ["tokenizer.json", "tokenizer_config.json", "generation_config.json"]) assert.ok(statSync(join(d, f)).size > 2, f);
});

test("spec validation names the field", () => {
  assert.throws(() => planTensors({ ...LLAMA, arch: "qwen2" }, 32000), { name: "ValidationError", message: /qkvBias/ });
  assert.throws(() => planTensors({ ...LLAMA, qkNorm: true }, 32000), { name: "ValidationError", message: /qkNorm/ });
  assert.throws(() => planTensors({ ...LLAMA, kvHeads: 3 }, 32000), { name: "ValidationError", message: /kvHeads=3/ });
  assert.throws(() => planTensors({ ...QWEN3, weightTypes: GgmlType.Q4_K }, 50257), { name: "ValidationError", message: /token_embd.weight has rows of 64/ });
  assert.throws(() => planTensors({ ...QWEN3, weightTypes: GgmlType.Q8_1 }, 50257), { name: "ValidationError", message: /weightTypes=9/ });
  assert.throws(() => writeRandomGguf({ ...QWEN3, vocab: join(dir, "none.gguf") }, join(dir, "x.gguf")), { name: "CheckpointError" });
});

test("ensureFixture writes once and reuses the cached files; the key follows the spec", async () => {
  const cache = join(dir, "cache");
  const a = await ensureFixture(QWEN3, cache, { hf: true });
  assert.ok(a.hfDir && statSync(join(a.hfDir, "model.safetensors")).isFile());
  const mtime = statSync(a.gguf).mtimeMs;
  const b = await ensureFixture(QWEN3, cache, { hf: true });
  assert.deepEqual(b, a);
  assert.equal(statSync(b.gguf).mtimeMs, mtime);
  assertTwins(QWEN3, a.gguf, a.hfDir!); // the shared quantization memo keeps the twins identical
  // a fixture of another generator version is removed when a new fixture is written
  const stale = join(cache, "qwen3-ggml-vocab-gpt-2-v0-0123456789abcdef");
  mkdirSync(stale);
  const c = await ensureFixture({ ...QWEN3, seed: 99 }, cache);
  assert.notEqual(c.gguf, a.gguf);
  assert.equal(c.hfDir, undefined);
  assert.equal(existsSync(stale), false);
  assert.equal(existsSync(a.gguf), true);
  assert.match(c.gguf, new RegExp(`qwen3-ggml-vocab-gpt-2-v${GENERATOR_VERSION}-[0-9a-f]{16}/model\\.gguf$`));
});

// LlamaModel invariants on tiny random models built in memory (F32 WeightTensors), plus a check
// against an independent dense f64 forward written here in the HF formulation (rotate_half rope,
// repeat_kv GQA, no paging), and the weight loader's shape/missing/tied handling.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ReferenceBackend } from "../../src/backends/reference/index.js";
import { GgmlType } from "../../src/backends/dtypes.js";
import type { AttnSeq, WeightTensor } from "../../src/backends/backend.js";
import type { ModelConfig } from "../../src/config/model-config.js";
import type { Checkpoint, TensorInfo } from "../../src/checkpoint/types.js";
import { LlamaModel } from "../../src/models/llama.js";
import { GGUF_NAMES, HF_NAMES, loadLlamaWeights, permuteQkRows, type LayerWeights, type LlamaWeights } from "../../src/models/weights.js";
import { loadModel } from "../../src/models/loader.js";
import { writeSafetensors } from "../../src/checkpoint/safetensors.js";
import { writeGguf, type GgufKv } from "../../src/checkpoint/gguf-writer.js";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SimpleKvCache } from "../../src/engine/simple-kv-cache.js";
import { CheckpointError, ShapeMismatchError, ValidationError } from "../../src/errors.js";

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 2 ** 32 * 2 - 1; };
}

function config(over: Partial<ModelConfig> = {}): ModelConfig {
  return {
    architecture: "llama", hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 8, intermediateSize: 48,
    vocabSize: 50, maxPositionEmbeddings: 128, rmsNormEps: 1e-5, ropeTheta: 10000, ropeScaling: { type: "none" },
    ropeStyle: "neox", ropeDim: 8, tieWordEmbeddings: false, attentionBias: false, qkNorm: false, slidingWindow: null,
    bosTokenId: 1, eosTokenIds: [2], ...over,
  };
}

const VARIANTS: Record<string, Partial<ModelConfig>> = {
  "llama (GQA 4/2)": {},
  "mistral (sliding window 3)": { architecture: "mistral", slidingWindow: 3 },
  "qwen2 (qkv bias, MHA)": { architecture: "qwen2", attentionBias: true, numKvHeads: 4 },
  "qwen3 (q/k norm, headDim 16 != hidden/heads)": { architecture: "qwen3", qkNorm: true, headDim: 16, ropeDim: 16 },
  "gguf llama (norm rope)": { ropeStyle: "norm" },
};

/** Random weights: matrices ~ U(-1, 1) / sqrt(cols) * 2, norms ~ 1 ± 0.2, biases ~ ±0.3. */
function randomWeights(c: ModelConfig, seed = 1): LlamaWeights {
  const r = rng(seed);
  const mat = (name: string, rows: number, cols: number): WeightTensor => {
    const a = Float32Array.from({ length: rows * cols }, () => (r() * 2) / Math.sqrt(cols));
    return { name, dtype: GgmlType.F32, rows, cols, data: new Uint8Array(a.buffer) };
  };
  const vec = (n: number, base: number, amp: number) => Float32Array.from({ length: n }, () => base + amp * r());
  const H = c.hiddenSize, q = c.numHeads * c.headDim, kv = c.numKvHeads * c.headDim, I = c.intermediateSize;
  const layers: LayerWeights[] = [];
  for (let l = 0; l < c.numLayers; l++) {
    layers.push({
      attnNorm: vec(H, 1, 0.2), wq: mat("wq", q, H), wk: mat("wk", kv, H), wv: mat("wv", kv, H), wo: mat("wo", H, q),
      bq: c.attentionBias ? vec(q, 0, 0.3) : null, bk: c.attentionBias ? vec(kv, 0, 0.3) : null,
      bv: c.attentionBias ? vec(kv, 0, 0.3) : null, bo: null,
      qNorm: c.qkNorm ? vec(c.headDim, 1, 0.2) : null, kNorm: c.qkNorm ? vec(c.headDim, 1, 0.2) : null,
      ffnNorm: vec(H, 1, 0.2), wGate: mat("wg", I, H), wUp: mat("wu", I, H), wDown: mat("wd", H, I),
    });
  }
  const embed = mat("emb", c.vocabSize, H);
  return { embed, layers, finalNorm: vec(H, 1, 0.2), lmHead: mat("head", c.vocabSize, H), ropeFreqs: null };
}

function setup(c: ModelConfig, dtype: "f32" | "f16" = "f32") {
  const model = new LlamaModel(c, randomWeights(c), new ReferenceBackend());
  const cache = new SimpleKvCache({ numLayers: c.numLayers, numKvHeads: c.numKvHeads, headDim: c.headDim, numBlocks: 24, tokensPerBlock: 4, dtype });
  return { model, cache };
}

interface Chunk { seqId: number; tokens: number[]; start: number }

/** One forward step over chunks (each a sequence's tokens at positions start..); logits for every row. */
function step(model: LlamaModel, cache: SimpleKvCache, chunks: Chunk[]): Float32Array {
  const tokens: number[] = [], positions: number[] = [], slots: number[] = [], seqs: AttnSeq[] = [];
  for (const ch of chunks) {
    seqs.push({ qStart: tokens.length, qLen: ch.tokens.length, kvLen: ch.start + ch.tokens.length, blockTable: cache.blockTable(ch.seqId) });
    ch.tokens.forEach((t, i) => { tokens.push(t); positions.push(ch.start + i); });
    slots.push(...cache.slotsFor(ch.seqId, ch.start, ch.tokens.length));
  }
  return model.forward({
    tokens: Int32Array.from(tokens), positions: Int32Array.from(positions), seqs, slots: Int32Array.from(slots),
    logitRows: Int32Array.from(tokens, (_, i) => i),
  }, cache.layers);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const PROMPT = [1, 7, 23, 4, 49, 0, 12, 33, 5];

/** Dense HF-style forward in f64 for one sequence: logits [n, vocab]. Independent of the backend. */
function denseForward(c: ModelConfig, w: LlamaWeights, tokens: number[]): number[][] {
  const mat = (t: WeightTensor) => new Float32Array(t.data.buffer, t.data.byteOffset, t.rows * t.cols);
  const mv = (t: WeightTensor, x: number[]) => Array.from({ length: t.rows }, (_, j) => {
    const m = mat(t); let s = 0; for (let i = 0; i < t.cols; i++) s += m[j * t.cols + i]! * x[i]!; return s;
  });
  const rms = (x: number[], g: ArrayLike<number>) => { const r = Math.sqrt(x.reduce((a, v) => a + v * v, 0) / x.length + c.rmsNormEps); return x.map((v, i) => (v / r) * g[i]!); };
  const hd = c.headDim, half = hd / 2, group = c.numHeads / c.numKvHeads;
  const rot = (v: number[], pos: number) => { // HF rotate_half ("neox") or interleaved ("norm") pairs
    const o = v.slice();
    for (let i = 0; i < half; i++) {
      const th = pos * Math.pow(c.ropeTheta, -(2 * i) / hd);
      const [a, b] = c.ropeStyle === "neox" ? [i, i + half] : [2 * i, 2 * i + 1];
      o[a] = v[a]! * Math.cos(th) - v[b]! * Math.sin(th); o[b] = v[b]! * Math.cos(th) + v[a]! * Math.sin(th);
    }
    return o;
  };
  let xs = tokens.map((t) => Array.from(mat(w.embed).subarray(t * c.hiddenSize, (t + 1) * c.hiddenSize)));
  for (const L of w.layers) {
    const heads = (v: number[], n: number, norm: Float32Array | null, pos: number) =>
      Array.from({ length: n }, (_, h) => rot(norm ? rms(v.slice(h * hd, (h + 1) * hd), norm) : v.slice(h * hd, (h + 1) * hd), pos));
    const add = (v: number[], b: Float32Array | null) => (b ? v.map((x, i) => x + b[i]!) : v);
    const Q: number[][][] = [], K: number[][][] = [], V: number[][][] = [];
    xs.forEach((x, p) => {
      const h = rms(x, L.attnNorm);
      Q.push(heads(add(mv(L.wq, h), L.bq), c.numHeads, L.qNorm, p));
      K.push(heads(add(mv(L.wk, h), L.bk), c.numKvHeads, L.kNorm, p));
      const v = add(mv(L.wv, h), L.bv);
      V.push(Array.from({ length: c.numKvHeads }, (_, kh) => v.slice(kh * hd, (kh + 1) * hd)));
    });
    xs = xs.map((x, p) => {
      const att: number[] = [];
      for (let h = 0; h < c.numHeads; h++) {
        const kh = Math.floor(h / group), lo = c.slidingWindow ? Math.max(0, p - c.slidingWindow + 1) : 0;
        const sc: number[] = [];
        for (let j = lo; j <= p; j++) sc.push(Q[p]![h]!.reduce((a, q, d) => a + q * K[j]![kh]![d]!, 0) / Math.sqrt(hd));
        const mx = Math.max(...sc), e = sc.map((s) => Math.exp(s - mx)), z = e.reduce((a, b) => a + b, 0);
        for (let d = 0; d < hd; d++) att.push(e.reduce((a, wgt, jj) => a + (wgt / z) * V[lo + jj]![kh]![d]!, 0));
      }
      const o = mv(L.wo, att);
      const x1 = x.map((v, i) => v + o[i]!);
      const h2 = rms(x1, L.ffnNorm), g = mv(L.wGate, h2), u = mv(L.wUp, h2);
      const act = g.map((gv, i) => (gv / (1 + Math.exp(-gv))) * u[i]!);
      const dn = mv(L.wDown, act);
      return x1.map((v, i) => v + dn[i]!);
    });
  }
  return xs.map((x) => mv(w.lmHead, rms(x, w.finalNorm)));
}

for (const [name, over] of Object.entries(VARIANTS)) {
  test(`${name}: matches a dense f64 HF-style forward`, () => {
    const c = config(over);
    const { model, cache } = setup(c);
    cache.allocSeq(0, 16);
    const got = step(model, cache, [{ seqId: 0, tokens: PROMPT, start: 0 }]);
    const want = denseForward(c, model.weights, PROMPT).flat();
    // f32 activations vs f64: logits are O(1-10); observed error ~1e-6, allow 1e-4
    assert.ok(maxAbsDiff(got, want) < 1e-4, `max diff ${maxAbsDiff(got, want)}`);
  });

  test(`${name}: packed prefill == token-by-token decode`, () => {
    const c = config(over);
    const { model, cache } = setup(c);
    cache.allocSeq(0, 16);
    cache.allocSeq(1, 16);
    const prefill = step(model, cache, [{ seqId: 0, tokens: PROMPT, start: 0 }]);
    const decode: number[] = [];
    PROMPT.forEach((t, i) => decode.push(...step(model, cache, [{ seqId: 1, tokens: [t], start: i }])));
    // same ops in the same order per row: identical up to f32 rounding; the task fixes 1e-5
    assert.ok(maxAbsDiff(prefill, decode) < 1e-5, `max diff ${maxAbsDiff(prefill, decode)}`);
    // chunked prefill (4 + 5) too
    cache.freeSeq(1); cache.allocSeq(1, 16);
    const a = step(model, cache, [{ seqId: 1, tokens: PROMPT.slice(0, 4), start: 0 }]);
    const b = step(model, cache, [{ seqId: 1, tokens: PROMPT.slice(4), start: 4 }]);
    assert.ok(maxAbsDiff(prefill, [...a, ...b]) < 1e-5);
  });

  test(`${name}: two sequences packed in one batch == each alone`, () => {
    const c = config(over);
    const { model, cache } = setup(c);
    const other = [3, 3, 8, 41, 17];
    [0, 1, 2, 3].forEach((id) => cache.allocSeq(id, 16));
    const alone0 = step(model, cache, [{ seqId: 0, tokens: PROMPT, start: 0 }]);
    const alone1 = step(model, cache, [{ seqId: 1, tokens: other, start: 0 }]);
    const packed = step(model, cache, [{ seqId: 2, tokens: PROMPT, start: 0 }, { seqId: 3, tokens: other, start: 0 }]);
    assert.ok(maxAbsDiff(packed, [...alone0, ...alone1]) < 1e-5);
    // mixed step: seq 2 decodes one token while seq 3 prefills... seq 3 continues with 2 tokens
    const mixed = step(model, cache, [{ seqId: 2, tokens: [9], start: PROMPT.length }, { seqId: 3, tokens: [10, 11], start: other.length }]);
    const ref0 = step(model, cache, [{ seqId: 0, tokens: [9], start: PROMPT.length }]);
    const ref1 = step(model, cache, [{ seqId: 1, tokens: [10, 11], start: other.length }]);
    assert.ok(maxAbsDiff(mixed, [...ref0, ...ref1]) < 1e-5);
  });
}

test("f16 KV cache stays within 2e-2 of f32 logits", () => {
  const c = config();
  const f32 = setup(c, "f32"), f16 = setup(c, "f16");
  f32.cache.allocSeq(0, 16); f16.cache.allocSeq(0, 16);
  const a = step(f32.model, f32.cache, [{ seqId: 0, tokens: PROMPT, start: 0 }]);
  const b = step(f16.model, f16.cache, [{ seqId: 0, tokens: PROMPT, start: 0 }]);
  // K/V rounded to 11-bit mantissas (rel. error <= 2^-11 ≈ 4.9e-4) through 2 layers; logits are O(1-10)
  const d = maxAbsDiff(a, b);
  assert.ok(d < 2e-2, `max diff ${d}`);
  assert.ok(d > 0, "f16 rounding should change something");
});

test("sliding window changes the logits only past the window", () => {
  const c = config({ slidingWindow: 3 });
  const w = randomWeights(c);
  const run = (cfg: ModelConfig) => {
    const m = new LlamaModel(cfg, w, new ReferenceBackend());
    const kv = new SimpleKvCache({ numLayers: 2, numKvHeads: 2, headDim: 8, numBlocks: 8, tokensPerBlock: 4, dtype: "f32" });
    kv.allocSeq(0, 16);
    return step(m, kv, [{ seqId: 0, tokens: PROMPT, start: 0 }]);
  };
  const win = run(c), full = run({ ...c, slidingWindow: null }), V = c.vocabSize;
  assert.ok(maxAbsDiff(win.subarray(0, 3 * V), full.subarray(0, 3 * V)) < 1e-6, "positions 0..2 see < 3 tokens either way");
  assert.ok(maxAbsDiff(win.subarray(3 * V), full.subarray(3 * V)) > 1e-3, "later positions must differ");
});

test("logitRows selects rows in the given order", () => {
  const c = config();
  const { model, cache } = setup(c);
  cache.allocSeq(0, 16);
  const all = step(model, cache, [{ seqId: 0, tokens: PROMPT.slice(0, 4), start: 0 }]);
  cache.freeSeq(0); cache.allocSeq(0, 16);
  const sel = model.forward({
    tokens: Int32Array.from(PROMPT.slice(0, 4)), positions: Int32Array.from([0, 1, 2, 3]),
    seqs: [{ qStart: 0, qLen: 4, kvLen: 4, blockTable: cache.blockTable(0) }], slots: cache.slotsFor(0, 0, 4),
    logitRows: Int32Array.from([3, 1]),
  }, cache.layers);
  const V = c.vocabSize;
  assert.equal(sel.length, 2 * V);
  assert.deepEqual([...sel.subarray(0, V)], [...all.subarray(3 * V, 4 * V)]);
  assert.deepEqual([...sel.subarray(V)], [...all.subarray(V, 2 * V)]);
});

/** An in-memory HF-named checkpoint from LlamaWeights (F32 tensors). */
function fakeCheckpoint(c: ModelConfig, w: LlamaWeights, drop: string[] = [], reshape: Record<string, number[]> = {}): Checkpoint {
  const tensors = new Map<string, TensorInfo>();
  const put = (name: string, shape: number[], bytes: Uint8Array) => {
    if (drop.includes(name)) return;
    tensors.set(name, { name, dtype: GgmlType.F32, shape: reshape[name] ?? shape, file: "mem", data: () => bytes });
  };
  const m = (name: string, t: WeightTensor) => put(name, [t.rows, t.cols], t.data);
  const v = (name: string, a: Float32Array | null) => { if (a) put(name, [a.length], new Uint8Array(a.buffer)); };
  m(HF_NAMES.embed, w.embed); v(HF_NAMES.finalNorm, w.finalNorm);
  if (!c.tieWordEmbeddings) m(HF_NAMES.lmHead, w.lmHead);
  w.layers.forEach((L, i) => {
    const n = (r: Parameters<typeof HF_NAMES.layer>[1]) => HF_NAMES.layer(i, r);
    v(n("attnNorm"), L.attnNorm); v(n("ffnNorm"), L.ffnNorm); v(n("bq"), L.bq); v(n("bk"), L.bk); v(n("bv"), L.bv);
    v(n("qNorm"), L.qNorm); v(n("kNorm"), L.kNorm);
    m(n("wq"), L.wq); m(n("wk"), L.wk); m(n("wv"), L.wv); m(n("wo"), L.wo); m(n("wGate"), L.wGate); m(n("wUp"), L.wUp); m(n("wDown"), L.wDown);
  });
  return { format: "safetensors", path: "mem", metadata: new Map(), tensors, close: () => {} };
}

test("loadLlamaWeights maps HF names, keeps matrices as views, ties the head to the embedding", () => {
  const c = config({ attentionBias: true, qkNorm: true });
  const w = randomWeights(c);
  const got = loadLlamaWeights(fakeCheckpoint(c, w), c);
  const sameBytes = (a: Uint8Array, b: Uint8Array) => a.buffer === b.buffer && a.byteOffset === b.byteOffset && a.length === b.length;
  assert.ok(sameBytes(got.layers[1]!.wq.data, w.layers[1]!.wq.data), "matrix is a view of the checkpoint's bytes, not a copy");
  assert.deepEqual([...got.layers[0]!.bk!], [...w.layers[0]!.bk!]);
  assert.deepEqual([...got.layers[0]!.kNorm!], [...w.layers[0]!.kNorm!]);
  assert.ok(sameBytes(got.lmHead.data, w.lmHead.data));
  const tied = config({ tieWordEmbeddings: true });
  const gt = loadLlamaWeights(fakeCheckpoint(tied, randomWeights(tied)), tied);
  assert.equal(gt.lmHead, gt.embed);
});

test("loadLlamaWeights: wrong shape -> ShapeMismatchError, missing -> CheckpointError naming the tensor", () => {
  const c = config();
  const w = randomWeights(c);
  assert.throws(() => loadLlamaWeights(fakeCheckpoint(c, w, [], { "model.layers.1.self_attn.k_proj.weight": [32, 16] }), c),
    (e: unknown) => e instanceof ShapeMismatchError && e.field === "model.layers.1.self_attn.k_proj.weight" && /expected \[16, 32\]/.test(e.message));
  assert.throws(() => loadLlamaWeights(fakeCheckpoint(c, w, ["model.layers.0.mlp.up_proj.weight"]), c),
    (e: unknown) => e instanceof CheckpointError && e.field === "model.layers.0.mlp.up_proj.weight");
  assert.throws(() => loadLlamaWeights(fakeCheckpoint(c, w, ["lm_head.weight"]), c),
    (e: unknown) => e instanceof CheckpointError && e.field === "lm_head.weight");
  const biased = config({ attentionBias: true });
  assert.throws(() => loadLlamaWeights(fakeCheckpoint(biased, w), biased),
    (e: unknown) => e instanceof CheckpointError && e.field === "model.layers.0.self_attn.q_proj.bias");
});

/** Writes `w` as an HF directory and as the GGUF twin llama.cpp's converter would produce
 *  (Q/K rows permuted, llama.* keys); returns both paths. */
function writeTwins(dir: string, c: ModelConfig, w: LlamaWeights): { hf: string; gguf: string } {
  const f32 = (t: WeightTensor) => new Float32Array(t.data.buffer, t.data.byteOffset, t.rows * t.cols);
  const bytes = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const hf: { name: string; dtype: string; shape: number[]; data: Uint8Array }[] = [];
  const gg: { name: string; dtype: GgmlType; shape: number[]; data: Uint8Array }[] = [];
  const put = (hfName: string, ggName: string, shape: number[], a: Float32Array, perm = 0) => {
    hf.push({ name: hfName, dtype: "F32", shape, data: bytes(a) });
    const g = perm ? permuteQkRows(a, shape[0]!, shape[1]!, perm) : a;
    gg.push({ name: ggName, dtype: GgmlType.F32, shape, data: bytes(g) });
  };
  put(HF_NAMES.embed, GGUF_NAMES.embed, [c.vocabSize, c.hiddenSize], f32(w.embed));
  put(HF_NAMES.lmHead, GGUF_NAMES.lmHead, [c.vocabSize, c.hiddenSize], f32(w.lmHead));
  put(HF_NAMES.finalNorm, GGUF_NAMES.finalNorm, [c.hiddenSize], w.finalNorm);
  w.layers.forEach((L, i) => {
    const both = (r: Parameters<typeof HF_NAMES.layer>[1], t: WeightTensor | Float32Array, perm = 0) =>
      t instanceof Float32Array ? put(HF_NAMES.layer(i, r), GGUF_NAMES.layer(i, r), [t.length], t)
        : put(HF_NAMES.layer(i, r), GGUF_NAMES.layer(i, r), [t.rows, t.cols], f32(t), perm);
    both("attnNorm", L.attnNorm); both("ffnNorm", L.ffnNorm);
    both("wq", L.wq, c.numHeads); both("wk", L.wk, c.numKvHeads); both("wv", L.wv); both("wo", L.wo);
    both("wGate", L.wGate); both("wUp", L.wUp); both("wDown", L.wDown);
  });
  const hfDir = join(dir, "hf");
  mkdirSync(hfDir);
  writeFileSync(join(hfDir, "config.json"), JSON.stringify({
    architectures: ["LlamaForCausalLM"], hidden_size: c.hiddenSize, intermediate_size: c.intermediateSize,
    num_attention_heads: c.numHeads, num_key_value_heads: c.numKvHeads, num_hidden_layers: c.numLayers,
    max_position_embeddings: c.maxPositionEmbeddings, rms_norm_eps: c.rmsNormEps, rope_theta: c.ropeTheta,
    vocab_size: c.vocabSize, tie_word_embeddings: false, bos_token_id: 1, eos_token_id: 2,
  }));
  writeSafetensors(join(hfDir, "model.safetensors"), hf);
  const a = "llama";
  const md: GgufKv[] = [
    ["general.architecture", "string", a], [`${a}.embedding_length`, "u32", c.hiddenSize], [`${a}.block_count`, "u32", c.numLayers],
    [`${a}.attention.head_count`, "u32", c.numHeads], [`${a}.attention.head_count_kv`, "u32", c.numKvHeads],
    [`${a}.feed_forward_length`, "u32", c.intermediateSize], [`${a}.context_length`, "u32", c.maxPositionEmbeddings],
    [`${a}.attention.layer_norm_rms_epsilon`, "f32", c.rmsNormEps], [`${a}.rope.freq_base`, "f32", c.ropeTheta],
    [`${a}.rope.dimension_count`, "u32", c.headDim],
  ];
  const ggPath = join(dir, "model.gguf");
  writeGguf(ggPath, { metadata: md, tensors: gg });
  return { hf: hfDir, gguf: ggPath };
}

test("loadModel: an HF directory and its permuted GGUF twin (norm rope) give the same logits", () => {
  const c = config();
  const w = randomWeights(c, 5);
  const dir = mkdtempSync(join(tmpdir(), "tllm-llama-"));
  try {
    const paths = writeTwins(dir, c, w);
    const be = new ReferenceBackend();
    const hf = loadModel(paths.hf, be), gg = loadModel(paths.gguf, be);
    try {
      assert.equal(hf.config.ropeStyle, "neox");
      assert.equal(gg.config.ropeStyle, "norm");
      assert.equal(gg.config.vocabSize, c.vocabSize, "vocab from token_embd.weight");
      const run = (m: LlamaModel) => {
        const kv = new SimpleKvCache({ numLayers: c.numLayers, numKvHeads: c.numKvHeads, headDim: c.headDim, numBlocks: 8, tokensPerBlock: 4, dtype: "f32" });
        kv.allocSeq(0, 16);
        return step(m, kv, [{ seqId: 0, tokens: PROMPT, start: 0 }]);
      };
      const a = run(hf.model), b = run(gg.model);
      // same weights, q·k summed in another order and eps stored as f32 in GGUF: ~1e-6
      assert.ok(maxAbsDiff(a, b) < 1e-5, `max diff ${maxAbsDiff(a, b)}`);
      // and without the permutation the GGUF file would be wrong: the test can fail
      const unpermuted = loadLlamaWeights(hf.checkpoint, { ...c, ropeStyle: "norm" });
      const wrong = run(new LlamaModel({ ...c, ropeStyle: "norm" }, unpermuted, be));
      assert.ok(maxAbsDiff(a, wrong) > 1e-3);
    } finally {
      hf.checkpoint.close();
      gg.checkpoint.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("SimpleKvCache: contiguous first-fit blocks after the null block, slots, free and reuse", () => {
  const kv = new SimpleKvCache({ numLayers: 2, numKvHeads: 1, headDim: 2, numBlocks: 6, tokensPerBlock: 4, dtype: "f16" });
  assert.equal(kv.layers.length, 2);
  assert.ok(kv.layers[0]!.data instanceof Uint16Array);
  assert.equal(kv.layers[0]!.data.length, 6 * 2 * 1 * 4 * 2);
  kv.allocSeq(7, 5); // 2 blocks: 1, 2
  kv.allocSeq(8, 8); // 2 blocks: 3, 4
  assert.deepEqual([...kv.blockTable(7)], [1, 2]);
  assert.deepEqual([...kv.blockTable(8)], [3, 4]);
  assert.deepEqual([...kv.slotsFor(7, 3, 2)], [7, 8]);
  assert.deepEqual([...kv.slotsFor(8, 0, 2)], [12, 13]);
  assert.equal(kv.freeBlocks, 1);
  assert.throws(() => kv.allocSeq(9, 5), (e: unknown) => e instanceof ValidationError && e.field === "maxTokens");
  assert.throws(() => kv.slotsFor(7, 4, 2), (e: unknown) => e instanceof ValidationError && e.field === "positions");
  assert.throws(() => kv.allocSeq(8, 1), (e: unknown) => e instanceof ValidationError && e.field === "seqId");
  kv.freeSeq(7); // free: 1, 2 and 5; no run of 3
  assert.throws(() => kv.allocSeq(9, 12), ValidationError);
  kv.allocSeq(9, 8);
  assert.deepEqual([...kv.blockTable(9)], [1, 2]);
  kv.freeSeq(8);
  kv.allocSeq(10, 12); // 3, 4, 5 are now a run
  assert.deepEqual([...kv.blockTable(10)], [3, 4, 5]);
  assert.throws(() => kv.blockTable(8), ValidationError);
});

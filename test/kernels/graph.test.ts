// The native step graph (native/graph.cc, LlamaModel's fused path) against the op-by-op path on
// the same NativeBackend: logits and every KV-cache byte must be bit-identical (same kernels, same
// order), on both kernel paths, over packed multi-sequence prefill + decode steps with unordered
// logit rows, f16 and f32 KV, biases (qwen2), q/k norm (qwen3), GQA, tied and untied heads, a
// sliding window, ggml's f32 rope cache and (yarn) f64 rope angles; and bad input must throw typed
// errors, not touch memory.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ensureFixture } from "../../src/checkpoint/random-model.js";
import { NativeBackend, isNativeAvailable } from "../../src/backends/native/index.js";
import { SimpleKvCache } from "../../src/engine/simple-kv-cache.js";
import type { ForwardBatch } from "../../src/engine/types.js";
import { loadModel } from "../../src/models/loader.js";
import { LlamaModel } from "../../src/models/llama.js";
import { ValidationError } from "../../src/errors.js";
import { FIXTURE_CACHE, MODEL_FIXTURES } from "../models/fixtures.js";
import { paths, withPath } from "./native-helpers.js";

const LENS = [5, 1, 9];  // prompt lengths of the 3 packed sequences

function kvFor(m: LlamaModel, dtype: "f32" | "f16"): SimpleKvCache {
  const c = m.config;
  const kv = new SimpleKvCache({ numLayers: c.numLayers, numKvHeads: c.numKvHeads, headDim: c.headDim, numBlocks: 3 * 2 + 1, tokensPerBlock: 16, dtype });
  LENS.forEach((_, i) => kv.allocSeq(i, 32));
  return kv;
}

/** step 0: the three prompts packed; then 3 decode steps of all three; then one of seq 2 alone. */
function batches(kv: SimpleKvCache, vocab: number): ForwardBatch[] {
  const out: ForwardBatch[] = [];
  const tok = (s: number, p: number) => 100 + ((s * 7919 + p * 104729) % (vocab - 200));
  const mk = (feeds: Array<[number, number, number]>, logitRows: number[]): ForwardBatch => {
    const tokens: number[] = [], positions: number[] = [], slots: number[] = [];
    const seqs = feeds.map(([s, start, n]) => {
      const qStart = tokens.length;
      for (let p = start; p < start + n; p++) { tokens.push(tok(s, p)); positions.push(p); }
      slots.push(...kv.slotsFor(s, start, n));
      return { qStart, qLen: n, kvLen: start + n, blockTable: kv.blockTable(s) };
    });
    return { tokens: Int32Array.from(tokens), positions: Int32Array.from(positions), slots: Int32Array.from(slots), seqs, logitRows: Int32Array.from(logitRows) };
  };
  out.push(mk(LENS.map((n, s) => [s, 0, n]), [14, 4, 2, 5]));  // unordered rows: selectRows moves them
  for (let d = 0; d < 3; d++) out.push(mk(LENS.map((n, s) => [s, n + d, 1]), [0, 1, 2]));
  out.push(mk([[2, LENS[2]! + 3, 1]], [0]));
  return out;
}

function bitsEqual(a: ArrayBufferView, b: ArrayBufferView, what: string): void {
  const x = Buffer.from(a.buffer, a.byteOffset, a.byteLength), y = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  assert.ok(x.equals(y), `${what}: not bit-identical`);
}

describe("native step graph = op-by-op forward, bit for bit", { skip: !isNativeAvailable() && "native addon not built" }, () => {
  const fixtures = MODEL_FIXTURES.filter((f) => !f.id.startsWith("gpt-2"));  // one per weight type is enough; gpt-2 Q6_K is the largest
  for (const fx of fixtures) {
    for (const path of paths()) {
      test(`${fx.id} (${path})`, async () => {
        const { gguf } = await ensureFixture(fx.spec, FIXTURE_CACHE);
        const be = new NativeBackend();
        const m = loadModel(gguf, be);
        try {
          assert.equal(m.model.fused, true, "NativeBackend models run the graph by default");
          const window = fx.id.startsWith("phi-3") ? 4 : m.config.slidingWindow;
          // one fixture with yarn scaling: the f64 rope angles (no ggml cache) and mscale != 1
          const ropeScaling = fx.id.startsWith("llama-spm Q4_0")
            ? { type: "yarn" as const, factor: 4, originalMaxPositions: 512, betaFast: 32, betaSlow: 1 } : m.config.ropeScaling;
          const cfg = { ...m.config, slidingWindow: window, ropeScaling };
          const fused = new LlamaModel(cfg, m.weights, be), ops = new LlamaModel(cfg, m.weights, be, { fused: false });
          assert.equal(ops.fused, false);
          const reuse = new Float32Array(4 * cfg.vocabSize + 5);
          for (const dtype of ["f16", "f32"] as const) {
            const kvA = kvFor(fused, dtype), kvB = kvFor(ops, dtype);
            const bs = batches(kvA, cfg.vocabSize);
            withPath(path, () => bs.forEach((b, i) => {
              const la = fused.forward(b, kvA.layers), lb = ops.forward(b, kvB.layers);
              assert.equal(la.length, b.logitRows.length * cfg.vocabSize);
              bitsEqual(la, lb, `${dtype} KV, step ${i} logits`);
              // a caller's reused buffer (ModelRunner): a view of it, same bits (re-running a step is idempotent)
              const lr = fused.forward(b, kvA.layers, reuse);
              assert.equal(lr.buffer, reuse.buffer);
              bitsEqual(lr, la, `${dtype} KV, step ${i} logits into a reused buffer`);
            }));
            kvA.layers.forEach((l, i) => bitsEqual(l.data, kvB.layers[i]!.data, `${dtype} KV layer ${i}`));
          }
        } finally {
          m.checkpoint.close();
        }
      });
    }
  }

  test("bad input throws typed errors; a closed checkpoint throws instead of reading unmapped memory", async () => {
    const fx = MODEL_FIXTURES[1]!;
    const { gguf } = await ensureFixture(fx.spec, FIXTURE_CACHE);
    const m = loadModel(gguf, new NativeBackend());
    const kv = kvFor(m.model, "f16");
    const [b] = batches(kv, m.config.vocabSize);
    const bad = (patch: Partial<ForwardBatch>) => () => m.model.forward({ ...b!, ...patch }, kv.layers);
    assert.throws(bad({ tokens: b!.tokens.map((t, i) => (i === 3 ? m.config.vocabSize : t)) }), (e) => e instanceof ValidationError && /token id/.test(e.message));
    assert.throws(bad({ slots: b!.slots.map((s, i) => (i === 0 ? 7 * 16 : s)) }), (e) => e instanceof ValidationError && /kv slot/.test(e.message));
    const seqs = b!.seqs.map((s, i) => (i === 1 ? { ...s, blockTable: Int32Array.of(99) } : s));
    assert.throws(bad({ seqs }), (e) => e instanceof ValidationError && /blockTable/.test(e.message));
    m.model.forward(b!, kv.layers);  // still fine after the rejected calls
    m.checkpoint.close();
    assert.throws(() => m.model.forward(b!, kv.layers), /unmapped/);
  });
});

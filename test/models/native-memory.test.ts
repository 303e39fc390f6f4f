// [native] memory acceptance: weights are used in place from the memory-mapped GGUF, so after
// loading a model and generating, the process's resident memory has grown by at most
// (model file size + KV cache size) x 1.15. Measured as growth over the RSS just before loading
// (Node and tsx themselves take ~50-80 MB, which is not the engine's), in a fresh child process so
// that the fixture writer's freed heap is not in the baseline. The fixture is a
// random-weight Q8_0 model of ~105 MB (8 layers, hidden 768, untied 32000-token head), written
// once into the fixture cache. Two further checks keep the bound from being vacuous: every weight
// matrix is a view into the one mapped buffer of the whole file, and (Linux) the file's mapping is
// itself resident (>= half the file) after generating, i.e. the weights were read through it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { ensureFixture } from "../../src/checkpoint/random-model.js";
import { GgmlType } from "../../src/backends/dtypes.js";
import { NativeBackend, isNativeAvailable } from "../../src/backends/native/index.js";
import { SimpleKvCache } from "../../src/engine/simple-kv-cache.js";
import { loadModel } from "../../src/models/loader.js";
import { FIXTURE_CACHE, vocab } from "./fixtures.js";

const SPEC = {
  arch: "llama", vocab: vocab("llama-spm"), hidden: 768, layers: 8, heads: 12, kvHeads: 4, headDim: 64, ffn: 2048,
  tieEmbeddings: false, qkvBias: false, qkNorm: false, ropeTheta: 10000, rmsEps: 1e-5, maxPositions: 2048, seed: 11,
  weightTypes: GgmlType.Q8_0,
} as const;
const PROMPT = 32, GEN = 32;

/** Rss (bytes) of the mappings of `file` in /proc/self/smaps; null where there is no such file. */
function mappedRss(file: string): number | null {
  let smaps: string;
  try {
    smaps = readFileSync("/proc/self/smaps", "utf8");
  } catch {
    return null;
  }
  let rss = 0, inFile = false;
  for (const line of smaps.split("\n")) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) inFile = line.trimEnd().endsWith(file);
    else if (inFile && line.startsWith("Rss:")) rss += Number(/(\d+)/.exec(line)![1]) * 1024;
  }
  return rss;
}

interface Measure { before: number; after: number; kvBytes: number; mapped: number | null; inPlace: string | null }

/** Child side: load, generate PROMPT + GEN tokens greedily, report RSS and mapping facts as JSON. */
function measure(gguf: string, fileBytes: number): Measure {
  new NativeBackend();  // addon and kernels loaded before the baseline
  const before = process.memoryUsage().rss;
  const m = loadModel(gguf, new NativeBackend());
  try {
    const c = m.config, tpb = 32, total = PROMPT + GEN;
    const kv = new SimpleKvCache({ numLayers: c.numLayers, numKvHeads: c.numKvHeads, headDim: c.headDim,
      numBlocks: Math.ceil(total / tpb) + 1, tokensPerBlock: tpb, dtype: "f16" });
    kv.allocSeq(0, total);
    const bt = kv.blockTable(0);
    const step = (toks: number[], start: number) => m.model.forward({ tokens: Int32Array.from(toks),
      positions: Int32Array.from(toks, (_, i) => start + i), slots: kv.slotsFor(0, start, toks.length),
      seqs: [{ qStart: 0, qLen: toks.length, kvLen: start + toks.length, blockTable: bt }], logitRows: Int32Array.of(toks.length - 1) }, kv.layers);
    let logits = step(Array.from({ length: PROMPT }, (_, i) => 300 + i * 37), 0);
    for (let i = 0; i < GEN; i++) {
      let best = 0;
      for (let j = 1; j < logits.length; j++) if (logits[j]! > logits[best]!) best = j;
      logits = step([best], PROMPT + i);
    }
    const after = process.memoryUsage().rss;
    const mats = m.weights.layers.flatMap((l) => [l.wq, l.wk, l.wv, l.wo, l.wGate, l.wUp, l.wDown]).concat([m.weights.embed, m.weights.lmHead]);
    const buf = mats[0]!.data.buffer;
    const notInPlace = buf.byteLength !== fileBytes ? "buffer is not the whole file" : mats.find((w) => w.data.buffer !== buf)?.name ?? null;
    return { before, after, kvBytes: kv.layers.reduce((s, l) => s + l.data.byteLength, 0), mapped: mappedRss(gguf), inPlace: notInPlace };
  } finally {
    m.checkpoint.close();
  }
}

if (process.env.TLLM_MEMORY_CHILD) {
  const gguf = process.env.TLLM_MEMORY_CHILD;
  process.stdout.write(JSON.stringify(measure(gguf, statSync(gguf).size)));
} else {
  test("RSS after load + generate <= (model file + KV cache) x 1.15, weights used in place", { skip: !isNativeAvailable() && "native addon not built", timeout: 600_000 }, async (t) => {
    const { gguf } = await ensureFixture(SPEC, FIXTURE_CACHE);
    const fileBytes = statSync(gguf).size;
    assert.ok(fileBytes > 100e6, `fixture is ${fileBytes} bytes; the test wants a model of meaningful size`);
    const out = execFileSync(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url)],
      { env: { ...process.env, TLLM_MEMORY_CHILD: gguf }, encoding: "utf8", timeout: 300_000 });
    const r = JSON.parse(out) as Measure;
    const grown = r.after - r.before, bound = 1.15 * (fileBytes + r.kvBytes);
    t.diagnostic(`file ${(fileBytes / 1e6).toFixed(1)} MB, KV ${(r.kvBytes / 1e6).toFixed(2)} MB, RSS grew ${(grown / 1e6).toFixed(1)} MB ` +
      `(bound ${(bound / 1e6).toFixed(1)} MB), resident through the file mapping ${r.mapped === null ? "n/a" : (r.mapped / 1e6).toFixed(1) + " MB"}`);
    assert.ok(grown <= bound, `RSS grew ${grown} bytes > (file ${fileBytes} + KV ${r.kvBytes}) x 1.15`);
    assert.equal(r.inPlace, null, `weights not in place from the mapping: ${r.inPlace}`);
    if (r.mapped !== null) assert.ok(r.mapped >= 0.5 * fileBytes, `only ${r.mapped} bytes of the mapping are resident: weights not read in place?`);
  });
}

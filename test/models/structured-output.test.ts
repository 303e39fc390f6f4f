// Structured output end to end on random-weight models: XGrammar masks (src/sampling/guided) in
// the Sampler, with logits from a real model forward (loadModel over the native backend when it
// is built, else the reference backend). For 5 JSON schemas (nested objects, arrays, enums,
// numbers with ranges, required/optional) and 2 regexes, 100 sampled generations each (one batch
// of 100 sequences, temperature 1, distinct seeds) must all stop with a stop token within the
// token cap and be valid: checked with ajv (schemas) / a JS RegExp (regexes). The guides bound the
// output length (maxLength, maxItems, integer ranges), so a random model cannot run past the cap.
// Two tokenizers: SentencePiece (llama-spm: ▁ pieces, <0xNN> byte fallback) and byte-level BPE
// (gpt-2), split across the guides to keep the file fast.
// LLM.generate does not pass guidedDecoding to the sampler yet (the request loop is being
// reworked), so this drives loadModel + Sampler + GuidedState directly, as the loop will.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Ajv } from "ajv";
import { GgmlType } from "../../src/backends/dtypes.js";
import type { Backend } from "../../src/backends/backend.js";
import { isNativeAvailable, NativeBackend } from "../../src/backends/native/index.js";
import { ReferenceBackend } from "../../src/backends/reference/index.js";
import { ensureFixture, type RandomModelSpec } from "../../src/checkpoint/random-model.js";
import { readGgufMetadata } from "../../src/checkpoint/gguf.js";
import { createSamplingParams } from "../../src/api/sampling-params.js";
import { loadModel } from "../../src/models/loader.js";
import { SimpleKvCache } from "../../src/engine/simple-kv-cache.js";
import { Tokenizer } from "../../src/tokenizer/index.js";
import { Sampler, type SamplingRow } from "../../src/sampling/sampler.js";
import { rngKeyForSeed } from "../../src/sampling/rng.js";
import { computeBitmasksSync, GuidedCompiler, GuidedState, isAllowed } from "../../src/sampling/guided/index.js";
import type { GuidedDecodingParams } from "../../src/sampling/params.js";
import { FIXTURE_CACHE, vocab } from "./fixtures.js";

const N = 100;
const MAX_TOKENS = 64;
const TPB = 16;

const base = { rmsEps: 1e-5, ropeTheta: 10000, maxPositions: 256, qkvBias: false, qkNorm: false, tieEmbeddings: false } as const;
const tiny = { hidden: 64, layers: 1, heads: 2, kvHeads: 1, headDim: 32, ffn: 128, weightTypes: GgmlType.F32 } as const;
const SPM: RandomModelSpec = { ...base, ...tiny, arch: "llama", vocab: vocab("llama-spm"), seed: 31 };
const BPE: RandomModelSpec = { ...base, ...tiny, arch: "llama", vocab: vocab("gpt-2"), seed: 32 };

const SCHEMAS: Record<string, object> = {
  nested: { type: "object", properties: {
    user: { type: "object", properties: { id: { type: "integer", minimum: 1, maximum: 999 }, name: { type: "string", maxLength: 8 } }, required: ["id", "name"] },
    active: { type: "boolean" } }, required: ["user", "active"] },
  arrays: { type: "object", properties: {
    tags: { type: "array", items: { type: "string", maxLength: 4 }, minItems: 1, maxItems: 3 },
    scores: { type: "array", items: { type: "integer", minimum: 0, maximum: 9 }, maxItems: 4 } }, required: ["tags", "scores"] },
  enums: { type: "object", properties: {
    color: { enum: ["red", "green", "blue"] }, size: { type: "string", enum: ["S", "M", "XL"] }, version: { const: 3 } },
    required: ["color", "size", "version"] },
  ranges: { type: "object", properties: {
    temp: { type: "number", minimum: -50, maximum: 50 }, pct: { type: "integer", minimum: 0, maximum: 100 },
    year: { type: "integer", minimum: 1990, maximum: 2030 } }, required: ["temp", "pct", "year"] },
  optional: { type: "object", properties: {
    id: { type: "integer", minimum: 0, maximum: 99 }, note: { type: "string", maxLength: 6 }, flag: { type: "boolean" }, none: { type: "null" } },
    required: ["id"] },
};
const REGEXES: Record<string, string> = {
  phone: "[0-9]{3}-[0-9]{3}-[0-9]{4}",
  email: "[a-z]{2,6}@[a-z]{2,5}\\.(com|org|net)",
};

function backend(): Backend {
  return isNativeAvailable() ? new NativeBackend() : new ReferenceBackend();
}

interface Gen { text: string; stopped: boolean }

/** N guided generations in one batch; returns each output's text and whether it ended with a stop id. */
async function generate(m: ReturnType<typeof loadModel>, tok: Tokenizer, compiler: GuidedCompiler, guide: GuidedDecodingParams, seed: number): Promise<Gen[]> {
  const vocabN = m.config.vocabSize;
  const prompt = await tok.encode("Output:");
  const kv = new SimpleKvCache({ numLayers: m.config.numLayers, numKvHeads: m.config.numKvHeads, headDim: m.config.headDim,
    numBlocks: N * Math.ceil((prompt.length + MAX_TOKENS) / TPB) + 1, tokensPerBlock: TPB, dtype: "f32" });
  const states = await Promise.all(Array.from({ length: N }, () => GuidedState.create(compiler, guide)));
  const params = createSamplingParams({ temperature: 1, seed, maxTokens: MAX_TOKENS }, undefined);
  const outs: number[][] = Array.from({ length: N }, () => []);
  const stopped = new Array<boolean>(N).fill(false);
  for (let i = 0; i < N; i++) kv.allocSeq(i, prompt.length + MAX_TOKENS);
  let active = [...Array(N).keys()];
  let logits = forward(m, kv, active.map((i) => ({ seq: i, tokens: prompt, start: 0 })));
  const sampler = new Sampler();
  for (let step = 0; step < MAX_TOKENS && active.length > 0; step++) {
    const masks = computeBitmasksSync(active.map((i) => states[i])); // synchronous, as in the step loop
    const rows: SamplingRow[] = active.map((i, r) => ({ params, rng: rngKeyForSeed(seed, i), promptTokenIds: prompt, outputTokenIds: outs[i]!, tokenBitmask: masks[r] }));
    const res = sampler.sample(logits, rows, vocabN);
    const next: number[] = [];
    active.forEach((i, r) => {
      const t = res[r]!.token;
      assert.ok(isAllowed(masks[r]!, t), `token ${t} sampled outside the grammar`);
      assert.ok(states[i]!.accept(t));
      if (states[i]!.isTerminated()) stopped[i] = true;
      else { outs[i]!.push(t); next.push(i); }
    });
    active = next;
    if (active.length > 0 && step + 1 < MAX_TOKENS) {
      logits = forward(m, kv, active.map((i) => ({ seq: i, tokens: [outs[i]!.at(-1)!], start: prompt.length + outs[i]!.length - 1 })));
    }
  }
  states.forEach((s) => s.dispose());
  return outs.map((ids, i) => ({ text: tok.decode(ids), stopped: stopped[i]! }));
}

/** One packed forward over several sequences; logits [seqs, vocab], one row per sequence's last token. */
function forward(m: ReturnType<typeof loadModel>, kv: SimpleKvCache, parts: { seq: number; tokens: number[]; start: number }[]): Float32Array {
  const tokens: number[] = [], positions: number[] = [], slots: number[] = [], rows: number[] = [];
  const seqs = parts.map((p) => {
    const qStart = tokens.length;
    p.tokens.forEach((t, j) => { tokens.push(t); positions.push(p.start + j); });
    slots.push(...kv.slotsFor(p.seq, p.start, p.tokens.length));
    rows.push(tokens.length - 1);
    return { qStart, qLen: p.tokens.length, kvLen: p.start + p.tokens.length, blockTable: kv.blockTable(p.seq) };
  });
  return m.model.forward({ tokens: Int32Array.from(tokens), positions: Int32Array.from(positions), seqs,
    slots: Int32Array.from(slots), logitRows: Int32Array.from(rows) }, kv.layers);
}

async function runCase(spec: RandomModelSpec, cases: { name: string; guide: GuidedDecodingParams; check: (s: string) => string | null }[]): Promise<void> {
  const { gguf } = await ensureFixture(spec, FIXTURE_CACHE);
  const m = loadModel(gguf, backend());
  try {
    const tok = Tokenizer.fromGgufMetadata(readGgufMetadata(gguf), gguf);
    const compiler = await GuidedCompiler.create(tok, m.config.vocabSize);
    for (const [k, c] of cases.entries()) {
      const gens = await generate(m, tok, compiler, c.guide, 1000 + k);
      const bad = gens.map((g) => (g.stopped ? c.check(g.text) : `no stop token within ${MAX_TOKENS} tokens`)).map((e, i) => (e ? `#${i} ${JSON.stringify(gens[i]!.text)}: ${e}` : null)).filter((e) => e);
      assert.deepEqual(bad, [], `${c.name}: ${bad.length}/${N} invalid`);
      const distinct = new Set(gens.map((g) => g.text)).size;
      assert.ok(distinct > 1, `${c.name}: sampling gave ${distinct} distinct outputs`);
    }
    compiler.dispose();
  } finally {
    m.checkpoint.close();
  }
}

const ajv = new Ajv({ strict: true });
const schemaCase = (name: string) => {
  const validate = ajv.compile(SCHEMAS[name]!);
  return { name, guide: { json: SCHEMAS[name]! }, check: (s: string): string | null => {
    let v: unknown;
    try { v = JSON.parse(s); } catch (e) { return `not JSON: ${(e as Error).message}`; }
    return validate(v) ? null : ajv.errorsText(validate.errors);
  } };
};
const regexCase = (name: string) => {
  const re = new RegExp(`^(?:${REGEXES[name]!})$`, "u");
  return { name, guide: { regex: REGEXES[name]! }, check: (s: string) => (re.test(s) ? null : `does not match /${REGEXES[name]}/`) };
};

test("SentencePiece vocab: nested / enums / optional schemas and the phone regex, 100 valid generations each", async () => {
  await runCase(SPM, [schemaCase("nested"), schemaCase("enums"), schemaCase("optional"), regexCase("phone")]);
});

test("byte-level BPE vocab: arrays / ranges schemas and the email regex, 100 valid generations each", async () => {
  await runCase(BPE, [schemaCase("arrays"), schemaCase("ranges"), regexCase("email")]);
});

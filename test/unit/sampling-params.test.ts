// SamplingParams validation (each bad field named), strategy resolution and default precedence.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  createSamplingParams, defaultsFromGenerationConfig, validateSamplingParamsForVocab, type SamplingParamsInput,
} from "../../src/api/sampling-params.js";
import { UnknownOptionError, ValidationError } from "../../src/errors.js";

function rejects(input: Record<string, unknown>, field: string): void {
  assert.throws(
    () => createSamplingParams(input as SamplingParamsInput),
    (e: unknown) => e instanceof ValidationError && e.field === field && e.message.includes(field),
    `expected ValidationError on ${field} for ${JSON.stringify(input)}`,
  );
}

test("each invalid field raises a ValidationError naming it", () => {
  rejects({ maxTokens: 0 }, "maxTokens");
  rejects({ maxTokens: 1.5 }, "maxTokens");
  rejects({ maxTokens: "8" }, "maxTokens");
  rejects({ minTokens: -1 }, "minTokens");
  rejects({ n: 0 }, "n");
  rejects({ n: 3, bestOf: 2, temperature: 1 }, "bestOf");
  rejects({ topP: 1.5 }, "topP");
  rejects({ topP: -0.1 }, "topP");
  rejects({ topK: -1 }, "topK");
  rejects({ topK: 2.5 }, "topK");
  rejects({ temperature: -0.5 }, "temperature");
  rejects({ temperature: Number.NaN }, "temperature");
  rejects({ minP: 1.01 }, "minP");
  rejects({ repetitionPenalty: 0 }, "repetitionPenalty");
  rejects({ repetitionPenalty: Infinity }, "repetitionPenalty");
  rejects({ presencePenalty: Infinity }, "presencePenalty");
  rejects({ frequencyPenalty: Number.NaN }, "frequencyPenalty");
  rejects({ noRepeatNgramSize: -2 }, "noRepeatNgramSize");
  rejects({ truncatePromptTokens: 0 }, "truncatePromptTokens");
  rejects({ stop: 5 }, "stop");
  rejects({ stop: ["ok", ""] }, "stop");
  rejects({ stopTokenIds: [-1] }, "stopTokenIds");
  rejects({ badTokenIds: [1.5] }, "badTokenIds");
  rejects({ logprobs: -1 }, "logprobs");
  rejects({ seed: 0.5 }, "seed");
  rejects({ ignoreEos: "yes" }, "ignoreEos");
  rejects({ embeddingBias: { x: 1 } }, "embeddingBias.x");
  rejects({ embeddingBias: { 5: Number.NaN } }, "embeddingBias.5");
  rejects({ embeddingBias: [1, 2] }, "embeddingBias");
  rejects({ logitsProcessor: 3 }, "logitsProcessor");
  rejects({ guidedDecoding: { json: "{}", regex: "a+" } }, "guidedDecoding");
  rejects({ earlyStopping: 3 }, "earlyStopping");
});

test("unknown keys (including snake_case) raise UnknownOptionError naming the key", () => {
  for (const key of ["max_tokens", "topp", "beamWidth"]) {
    assert.throws(
      () => createSamplingParams({ [key]: 1 } as SamplingParamsInput),
      (e: unknown) => e instanceof UnknownOptionError && e.field === key && e.message.includes(`'${key}'`),
    );
  }
  assert.throws(
    () => createSamplingParams({}, { do_sample: true } as SamplingParamsInput),
    (e: unknown) => e instanceof UnknownOptionError && e.field === "do_sample" && /generation_config/.test(e.message),
  );
  assert.throws(
    () => createSamplingParams({ guidedDecoding: { yaml: "x" } as never }),
    (e: unknown) => e instanceof UnknownOptionError && e.field === "guidedDecoding.yaml",
  );
});

test("greedy is resolved by temperature 0, topK 1, topP 0, minP 1, or no sampling knob at all", () => {
  assert.equal(createSamplingParams(undefined).strategy, "greedy");
  assert.equal(createSamplingParams({ maxTokens: 5, minP: 0.1 }).strategy, "greedy");
  assert.equal(createSamplingParams({ temperature: 0 }).strategy, "greedy");
  assert.equal(createSamplingParams({ temperature: 0.8, topK: 1 }).strategy, "greedy");
  assert.equal(createSamplingParams({ temperature: 0.8, topP: 0 }).strategy, "greedy");
  assert.equal(createSamplingParams({ temperature: 0.8, minP: 1 }).strategy, "greedy");
  const g = createSamplingParams({ temperature: 0 });
  assert.deepEqual([g.temperature, g.topK, g.topP, g.minP], [0, 1, 1, 0]);
});

test("partially set sampling knobs default the rest to topK 0, topP 1, minP 0, temperature 1", () => {
  const p = createSamplingParams({ topP: 0.9 });
  assert.equal(p.strategy, "sample");
  assert.deepEqual([p.temperature, p.topK, p.topP, p.minP], [1, 0, 0.9, 0]);
  const q = createSamplingParams({ temperature: 0.7 });
  assert.deepEqual([q.strategy, q.temperature, q.topK, q.topP], ["sample", 0.7, 0, 1]);
});

test("built-in defaults follow TRT-LLM", () => {
  const p = createSamplingParams({});
  assert.equal(p.maxTokens, 32);
  assert.equal(p.n, 1);
  assert.equal(p.bestOf, 1);
  assert.equal(p.repetitionPenalty, 1);
  assert.equal(p.presencePenalty, 0);
  assert.equal(p.logprobs, null);
  assert.equal(p.excludeInputFromOutput, true);
  assert.equal(p.skipSpecialTokens, true);
  assert.equal(p.earlyStopping, 1);
  assert.deepEqual(p.stop, []);
  assert.equal(createSamplingParams({ logprobs: true }).logprobs, 1);
  assert.equal(createSamplingParams({ logprobs: 0 }).logprobs, 0);
  assert.deepEqual(createSamplingParams({ stop: "END" }).stop, ["END"]);
  assert.equal(createSamplingParams({ earlyStopping: "never" }).earlyStopping, 2);
  assert.equal(createSamplingParams({ endId: 7 }).padId, 7, "padId falls back to endId");
});

test("precedence: request > generation_config defaults > built-in", () => {
  const defaults = { temperature: 0.6, topP: 0.9, topK: 20, repetitionPenalty: 1.1 };
  const p = createSamplingParams({ temperature: 0.2, topK: null }, defaults);
  assert.equal(p.strategy, "sample");
  assert.equal(p.temperature, 0.2);
  assert.equal(p.topP, 0.9);
  assert.equal(p.topK, 20, "null in the request means unset, so the default applies");
  assert.equal(p.repetitionPenalty, 1.1);
  assert.equal(p.maxTokens, 32);
  assert.equal(createSamplingParams({ temperature: 0 }, defaults).strategy, "greedy");
  assert.equal(createSamplingParams(undefined, defaults).strategy, "sample");
});

test("bestOf: >= n; greedy with bestOf > 1 needs TLLM_ALLOW_N_GREEDY_DECODING", () => {
  const s = createSamplingParams({ n: 2, bestOf: 4, temperature: 1 });
  assert.deepEqual([s.n, s.bestOf], [2, 4]);
  assert.equal(createSamplingParams({ n: 3, temperature: 1 }).bestOf, 3);
  const saved = process.env.TLLM_ALLOW_N_GREEDY_DECODING;
  try {
    delete process.env.TLLM_ALLOW_N_GREEDY_DECODING;
    rejects({ n: 2 }, "bestOf");
    process.env.TLLM_ALLOW_N_GREEDY_DECODING = "1";
    assert.equal(createSamplingParams({ n: 2 }).bestOf, 2);
  } finally {
    if (saved === undefined) delete process.env.TLLM_ALLOW_N_GREEDY_DECODING;
    else process.env.TLLM_ALLOW_N_GREEDY_DECODING = saved;
  }
  assert.equal(createSamplingParams({ useBeamSearch: true, bestOf: 4 }).strategy, "beam");
});

test("embeddingBias record becomes a sparse bias; logitsProcessor becomes a list", () => {
  const fn = (): void => {};
  const p = createSamplingParams({ embeddingBias: { 3: 1.5, 10: -Infinity }, logitsProcessor: fn });
  const bias = p.embeddingBias;
  assert.ok(bias && !(bias instanceof Float32Array));
  assert.deepEqual([...bias.ids], [3, 10]);
  assert.deepEqual([...bias.values], [1.5, -Infinity]);
  assert.deepEqual(p.logitsProcessors, [fn]);
});

test("validateSamplingParamsForVocab names out-of-range ids and a wrong bias length", () => {
  const check = (input: SamplingParamsInput, field: string): void => {
    assert.throws(
      () => validateSamplingParamsForVocab(createSamplingParams(input), 100),
      (e: unknown) => e instanceof ValidationError && e.field === field,
    );
  };
  check({ endId: 100 }, "endId");
  check({ stopTokenIds: [5, 200] }, "stopTokenIds");
  check({ badTokenIds: [100] }, "badTokenIds");
  check({ embeddingBias: { 150: 1 } }, "embeddingBias");
  check({ embeddingBias: new Float32Array(99) }, "embeddingBias");
  validateSamplingParamsForVocab(createSamplingParams({ endId: 99, embeddingBias: new Float32Array(100) }), 100);
});

test("defaultsFromGenerationConfig maps known keys, ignores others, names bad values", () => {
  const d = defaultsFromGenerationConfig({ temperature: 0.7, top_p: 0.8, top_k: 20, do_sample: true, eos_token_id: [1, 2], max_new_tokens: 64 });
  assert.deepEqual(d, { temperature: 0.7, topP: 0.8, topK: 20, maxTokens: 64 });
  const p = createSamplingParams({ maxTokens: 5 }, d);
  assert.deepEqual([p.strategy, p.temperature, p.topP, p.topK, p.maxTokens], ["sample", 0.7, 0.8, 20, 5]);
  assert.throws(() => defaultsFromGenerationConfig({ top_p: 2 }),
    (e: unknown) => e instanceof ValidationError && e.field === "generation_config.top_p");
});

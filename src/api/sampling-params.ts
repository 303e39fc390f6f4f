// SamplingParams: TensorRT-LLM's `tensorrt_llm.SamplingParams` with camelCase names (the HTTP server
// maps snake_case onto these). `createSamplingParams(input, defaults)` validates every key and
// settles the strategy:
//   precedence  request > `defaults` (generation_config.json, same keys) > built-in defaults;
//   greedy      when temperature = 0, topK = 1, topP = 0 or minP = 1, or when temperature, topP and
//               topK are all unset; otherwise unset topK = 0, topP = 1, minP = 0, temperature = 1;
//   rejected    bestOf < n; greedy with bestOf > 1 (unless env TLLM_ALLOW_N_GREEDY_DECODING);
//               more than one guide in guidedDecoding; unknown keys (UnknownOptionError).
import { UnknownOptionError, ValidationError } from "../errors.js";
import type {
  GuidedDecodingParams,
  LogitsProcessorFn,
  ResolvedSamplingParams,
  SparseBias,
} from "../sampling/params.js";

export type {
  GuidedDecodingParams,
  LogitsProcessorFn,
  ResolvedSamplingParams,
  SamplingStrategy,
  SparseBias,
} from "../sampling/params.js";

/** The resolved parameters are what the rest of the engine calls SamplingParams. */
export type SamplingParams = ResolvedSamplingParams;

/** What a caller may pass (every field optional; `null` means unset, as Python's None). */
export interface SamplingParamsInput {
  maxTokens?: number;
  minTokens?: number | null;
  endId?: number | null;
  padId?: number | null;
  n?: number;
  bestOf?: number | null;
  useBeamSearch?: boolean;
  topK?: number | null;
  topP?: number | null;
  topPMin?: number | null;
  topPResetIds?: number | null;
  topPDecay?: number | null;
  seed?: number | null;
  temperature?: number | null;
  minP?: number | null;
  repetitionPenalty?: number | null;
  presencePenalty?: number | null;
  frequencyPenalty?: number | null;
  promptIgnoreLength?: number | null;
  noRepeatNgramSize?: number | null;
  lengthPenalty?: number | null;
  earlyStopping?: number | boolean | "never" | null;
  logprobs?: number | boolean | null;
  promptLogprobs?: number | boolean | null;
  stop?: string | string[] | null;
  stopTokenIds?: number[] | null;
  includeStopStrInOutput?: boolean;
  ignoreEos?: boolean;
  bad?: string | string[] | null;
  badTokenIds?: number[] | null;
  embeddingBias?: Float32Array | Record<number | string, number> | null;
  logitsProcessor?: LogitsProcessorFn | LogitsProcessorFn[] | null;
  guidedDecoding?: GuidedDecodingParams | null;
  detokenize?: boolean;
  addSpecialTokens?: boolean;
  truncatePromptTokens?: number | null;
  skipSpecialTokens?: boolean;
  spacesBetweenSpecialTokens?: boolean;
  returnContextLogits?: boolean;
  returnGenerationLogits?: boolean;
  excludeInputFromOutput?: boolean;
}

type Key = keyof SamplingParamsInput;
type Checker = (field: string, v: unknown) => void;

const int = (min: number, max = Number.MAX_SAFE_INTEGER): Checker => (f, v) => {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new ValidationError(f, v, `must be an integer in [${min}, ${max}]`);
  }
};
const num = (min: number, max: number, minOpen = false): Checker => (f, v) => {
  if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max || (minOpen && v === min)) {
    throw new ValidationError(f, v, `must be a finite number in ${minOpen ? "(" : "["}${min}, ${max}]`);
  }
};
const bool: Checker = (f, v) => {
  if (typeof v !== "boolean") throw new ValidationError(f, v, "must be a boolean");
};
const intOrBool: Checker = (f, v) => {
  if (typeof v !== "boolean") int(0)(f, v);
};
const strings: Checker = (f, v) => {
  const ok = typeof v === "string" || (Array.isArray(v) && v.every((s) => typeof s === "string" && s.length > 0));
  if (!ok || v === "") throw new ValidationError(f, v, "must be a non-empty string or an array of non-empty strings");
};
const tokenIds: Checker = (f, v) => {
  if (!Array.isArray(v)) throw new ValidationError(f, v, "must be an array of token ids");
  for (const t of v) int(0)(f, t);
};
const INF = Number.MAX_VALUE;

/** Each known key and its type/range check (run on non-null values). */
const CHECKS: Record<Key, Checker> = {
  maxTokens: int(1), minTokens: int(0), endId: int(0), padId: int(0), n: int(1), bestOf: int(1),
  useBeamSearch: bool, topK: int(0), topP: num(0, 1), topPMin: num(0, 1, true), topPResetIds: int(0),
  topPDecay: num(0, 1, true), seed: int(Number.MIN_SAFE_INTEGER), temperature: num(0, INF), minP: num(0, 1),
  repetitionPenalty: num(0, INF, true), presencePenalty: num(-INF, INF), frequencyPenalty: num(-INF, INF),
  promptIgnoreLength: int(0), noRepeatNgramSize: int(0), lengthPenalty: num(-INF, INF),
  earlyStopping: (f, v) => {
    if (v !== "never" && typeof v !== "boolean") int(0, 2)(f, v);
  },
  logprobs: intOrBool, promptLogprobs: intOrBool, stop: strings, stopTokenIds: tokenIds,
  includeStopStrInOutput: bool, ignoreEos: bool, bad: strings, badTokenIds: tokenIds,
  embeddingBias: checkBias, logitsProcessor: (f, v) => {
    const ok = typeof v === "function" || (Array.isArray(v) && v.every((p) => typeof p === "function"));
    if (!ok) throw new ValidationError(f, v, "must be a function or an array of functions");
  },
  guidedDecoding: checkGuide, detokenize: bool, addSpecialTokens: bool, truncatePromptTokens: int(1),
  skipSpecialTokens: bool, spacesBetweenSpecialTokens: bool, returnContextLogits: bool,
  returnGenerationLogits: bool, excludeInputFromOutput: bool,
};

export const SAMPLING_PARAMS_KEYS: readonly string[] = Object.freeze(Object.keys(CHECKS));

function checkBias(f: string, v: unknown): void {
  if (v instanceof Float32Array) {
    for (let i = 0; i < v.length; i++) {
      if (!Number.isFinite(v[i]) && v[i] !== -Infinity) throw new ValidationError(`${f}[${i}]`, v[i], "must be finite or -Infinity");
    }
    return;
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new ValidationError(f, v, "must be a Float32Array [vocab] or a {tokenId: bias} record");
  }
  for (const [k, b] of Object.entries(v)) {
    if (!/^\d+$/.test(k)) throw new ValidationError(`${f}.${k}`, k, "token id must be a non-negative integer");
    if (typeof b !== "number" || (!Number.isFinite(b) && b !== -Infinity)) {
      throw new ValidationError(`${f}.${k}`, b, "bias must be a finite number or -Infinity");
    }
  }
}

const GUIDE_KEYS = ["json", "regex", "grammar", "jsonObject", "structuralTag"] as const;

function checkGuide(f: string, v: unknown): void {
  if (typeof v !== "object" || v === null) throw new ValidationError(f, v, "must be an object");
  const set: string[] = [];
  for (const [k, g] of Object.entries(v)) {
    if (!(GUIDE_KEYS as readonly string[]).includes(k)) throw new UnknownOptionError(`${f}.${k}`, f, GUIDE_KEYS);
    if (g !== undefined && g !== null && g !== false) set.push(k);
    if (g === undefined || g === null) continue;
    const ok = k === "jsonObject" ? typeof g === "boolean"
      : k === "json" || k === "structuralTag" ? typeof g === "string" || (typeof g === "object" && !Array.isArray(g))
      : typeof g === "string";
    if (!ok) throw new ValidationError(`${f}.${k}`, g, k === "jsonObject" ? "must be a boolean" : k === "json" || k === "structuralTag" ? "must be a string or an object" : "must be a string");
    if (k === "json" && typeof g === "string") {
      try {
        JSON.parse(g);
      } catch (e) {
        throw new ValidationError(`${f}.json`, g, `not valid JSON: ${(e as Error).message}`);
      }
    }
  }
  if (set.length > 1) throw new ValidationError(f, set, "at most one guide may be set");
}

/** Validates keys and values of one layer (request or defaults); returns only the set values. */
function validateLayer(input: object | undefined, where: string): Partial<Record<Key, unknown>> {
  const out: Partial<Record<Key, unknown>> = {};
  if (input === undefined || input === null) return out;
  if (typeof input !== "object") throw new ValidationError(where, input, "must be an object");
  for (const [k, v] of Object.entries(input)) {
    if (!(k in CHECKS)) throw new UnknownOptionError(k, where, SAMPLING_PARAMS_KEYS);
    if (v === undefined || v === null) continue;
    CHECKS[k as Key](k, v);
    out[k as Key] = v;
  }
  return out;
}

/**
 * Validates and resolves sampling parameters. `defaults` are generation_config.json values (same
 * camelCase keys); the request wins over them, and both win over the built-in defaults.
 */
export function createSamplingParams(
  input: SamplingParamsInput | undefined,
  defaults?: SamplingParamsInput,
): SamplingParams {
  const d = validateLayer(defaults, "generation_config defaults");
  const r = validateLayer(input, "SamplingParams");
  const m = { ...d, ...r } as SamplingParamsInput;
  const n = m.n ?? 1;
  const bestOf = m.bestOf ?? n;
  if (bestOf < n) throw new ValidationError("bestOf", bestOf, `must be >= n (${n})`);
  const strategy = resolveStrategy(m);
  if (strategy === "greedy" && bestOf > 1 && !process.env.TLLM_ALLOW_N_GREEDY_DECODING) {
    throw new ValidationError("bestOf", bestOf, "greedy decoding with bestOf > 1 gives identical sequences; "
      + "set TLLM_ALLOW_N_GREEDY_DECODING=1 to allow it");
  }
  const greedy = strategy === "greedy";
  return {
    strategy,
    maxTokens: m.maxTokens ?? 32,
    minTokens: m.minTokens ?? 0,
    endId: m.endId ?? undefined,
    padId: m.padId ?? m.endId ?? undefined,
    n,
    bestOf,
    useBeamSearch: m.useBeamSearch ?? false,
    topK: greedy ? 1 : m.topK ?? 0,
    topP: greedy ? 1 : m.topP ?? 1,
    topPMin: m.topPMin ?? 1e-6,
    topPResetIds: m.topPResetIds ?? undefined,
    topPDecay: m.topPDecay ?? 1,
    seed: m.seed ?? undefined,
    temperature: greedy ? 0 : m.temperature ?? 1,
    minP: greedy ? 0 : m.minP ?? 0,
    repetitionPenalty: m.repetitionPenalty ?? 1,
    presencePenalty: m.presencePenalty ?? 0,
    frequencyPenalty: m.frequencyPenalty ?? 0,
    promptIgnoreLength: m.promptIgnoreLength ?? 0,
    noRepeatNgramSize: m.noRepeatNgramSize ?? 0,
    lengthPenalty: m.lengthPenalty ?? 0,
    earlyStopping: resolveEarlyStopping(m.earlyStopping),
    logprobs: resolveLogprobs(m.logprobs),
    promptLogprobs: resolveLogprobs(m.promptLogprobs),
    stop: toList(m.stop),
    stopTokenIds: [...(m.stopTokenIds ?? [])],
    includeStopStrInOutput: m.includeStopStrInOutput ?? false,
    ignoreEos: m.ignoreEos ?? false,
    bad: toList(m.bad),
    badTokenIds: [...(m.badTokenIds ?? [])],
    embeddingBias: resolveBias(m.embeddingBias),
    logitsProcessors: m.logitsProcessor == null ? [] : ([] as LogitsProcessorFn[]).concat(m.logitsProcessor),
    guidedDecoding: m.guidedDecoding ?? undefined,
    detokenize: m.detokenize ?? true,
    addSpecialTokens: m.addSpecialTokens ?? true,
    truncatePromptTokens: m.truncatePromptTokens ?? undefined,
    skipSpecialTokens: m.skipSpecialTokens ?? true,
    spacesBetweenSpecialTokens: m.spacesBetweenSpecialTokens ?? true,
    returnContextLogits: m.returnContextLogits ?? false,
    returnGenerationLogits: m.returnGenerationLogits ?? false,
    excludeInputFromOutput: m.excludeInputFromOutput ?? true,
  };
}

/** TRT-LLM's rules: beam if asked; greedy if forced or if no sampling knob is set at all. */
function resolveStrategy(m: SamplingParamsInput): ResolvedSamplingParams["strategy"] {
  if (m.useBeamSearch) return "beam";
  if (m.temperature == null && m.topP == null && m.topK == null) return "greedy";
  if (m.temperature === 0 || m.topK === 1 || m.topP === 0 || m.minP === 1) return "greedy";
  return "sample";
}

function resolveLogprobs(v: number | boolean | null | undefined): number | null {
  if (v === true) return 1;
  if (v === false || v == null) return null;
  return v;
}

/** HTTP/TRT-LLM forms: true -> 1 (stop when bestOf beams finished), false -> 0, "never" -> 2. */
function resolveEarlyStopping(v: number | boolean | "never" | null | undefined): number {
  if (v === undefined || v === null || v === true) return 1;
  if (v === false) return 0;
  if (v === "never") return 2;
  return v;
}

function toList(v: string | string[] | null | undefined): string[] {
  if (v == null) return [];
  return typeof v === "string" ? [v] : [...v];
}

function resolveBias(v: SamplingParamsInput["embeddingBias"]): Float32Array | SparseBias | undefined {
  if (v == null) return undefined;
  if (v instanceof Float32Array) return v;
  const entries = Object.entries(v);
  const bias: SparseBias = { ids: new Int32Array(entries.length), values: new Float32Array(entries.length) };
  entries.forEach(([k, b], i) => {
    bias.ids[i] = Number(k);
    bias.values[i] = b;
  });
  return bias;
}

/**
 * Checks the token ids and the dense bias against the model's vocabulary; the executor calls this at
 * admission (createSamplingParams does not know the vocabulary).
 */
export function validateSamplingParamsForVocab(p: SamplingParams, vocabSize: number): void {
  const checkId = (field: string, id: number | undefined): void => {
    if (id !== undefined && (id < 0 || id >= vocabSize)) {
      throw new ValidationError(field, id, `token id out of range [0, ${vocabSize})`);
    }
  };
  checkId("endId", p.endId);
  checkId("padId", p.padId);
  checkId("topPResetIds", p.topPResetIds);
  p.stopTokenIds.forEach((t) => checkId("stopTokenIds", t));
  p.badTokenIds.forEach((t) => checkId("badTokenIds", t));
  const bias = p.embeddingBias;
  if (bias instanceof Float32Array) {
    if (bias.length !== vocabSize) {
      throw new ValidationError("embeddingBias", `Float32Array(${bias.length})`, `length must equal vocab size ${vocabSize}`);
    }
  } else if (bias) {
    bias.ids.forEach((t) => checkId("embeddingBias", t));
  }
}

/** generation_config.json keys that become sampling defaults (as vLLM's get_diff_sampling_param). */
const GENERATION_CONFIG_KEYS: Readonly<Record<string, Key>> = {
  temperature: "temperature", top_p: "topP", top_k: "topK", min_p: "minP",
  repetition_penalty: "repetitionPenalty", max_new_tokens: "maxTokens",
};

/**
 * The sampling defaults of a parsed generation_config.json (other keys, e.g. do_sample or
 * eos_token_id, are ignored here; EOS ids come from the tokenizer/model config). The result is the
 * `defaults` argument of createSamplingParams.
 */
export function defaultsFromGenerationConfig(json: Record<string, unknown>): SamplingParamsInput {
  const out: Record<string, unknown> = {};
  for (const [k, key] of Object.entries(GENERATION_CONFIG_KEYS)) {
    const v = json[k];
    if (v === undefined || v === null) continue;
    CHECKS[key](`generation_config.${k}`, v);
    out[key] = v;
  }
  return out as SamplingParamsInput;
}

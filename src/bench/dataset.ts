// Benchmark datasets in TensorRT-LLM's `prepare-dataset` JSON Lines format, one object per line:
//   {"task_id": int|str, "input_ids": int[] | "prompt": str, "output_tokens": int
//    [, "lora_request": {...}] [, "media_paths": [str]]}
// If both `prompt` and `input_ids` are present, `input_ids` wins (as in trtllm-bench).
// Synthetic sets draw lengths from N(mean, stdev) or U(min, max) and token ids uniformly from the
// vocabulary (skipping the given special ids), with a seeded PRNG (see prng.ts; default seed 420).
// Differences from TRT-LLM's generator: ids are drawn with replacement (TRT-LLM samples without
// replacement within a request when it can), and the streams are ours, not NumPy's.
import { readFile, writeFile } from "node:fs/promises";
import { ValidationError } from "../errors.js";
import { Prng } from "./prng.js";

export const DEFAULT_DATASET_SEED = 420;

export interface DatasetItem {
  taskId: number | string;
  inputIds?: number[];
  prompt?: string;
  /** number of tokens to generate for this request */
  outputTokens: number;
  loraRequest?: Record<string, unknown>;
  mediaPaths?: string[];
}

/** A dataset line that cannot be used: names the file, the 1-based line and the field. */
export class DatasetFormatError extends ValidationError {
  constructor(readonly file: string, readonly line: number, field: string, value: unknown, reason: string) {
    super(field, value, reason);
    this.message = `${file}:${line}: ${this.message}`;
  }
}

export interface TokenNormDistOptions {
  numRequests: number;
  inputMean: number;
  inputStdev: number;
  outputMean: number;
  outputStdev: number;
  vocabSize: number;
  /** token ids never drawn (BOS/EOS/pad...) */
  specialIds?: readonly number[];
  seed?: number;
}

export interface TokenUnifDistOptions {
  numRequests: number;
  inputMin: number;
  inputMax: number;
  outputMin: number;
  outputMax: number;
  vocabSize: number;
  specialIds?: readonly number[];
  seed?: number;
}

function checkPosInt(field: string, v: number, min = 1): void {
  if (!Number.isInteger(v) || v < min) throw new ValidationError(field, v, `must be an integer >= ${min}`);
}

function checkNonNeg(field: string, v: number): void {
  if (!Number.isFinite(v) || v < 0) throw new ValidationError(field, v, "must be a finite number >= 0");
}

/** Draws `n` token ids uniformly from [0, vocabSize) \ specialIds (rejection sampling). */
function drawTokens(rng: Prng, n: number, vocabSize: number, special: Set<number>): number[] {
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    let id: number;
    do id = rng.intBelow(vocabSize);
    while (special.has(id));
    out[i] = id;
  }
  return out;
}

function checkVocab(vocabSize: number, specialIds: readonly number[]): Set<number> {
  checkPosInt("vocabSize", vocabSize);
  const special = new Set(specialIds.filter((id) => id >= 0 && id < vocabSize));
  if (special.size >= vocabSize) throw new ValidationError("specialIds", specialIds, "exclude the whole vocabulary");
  return special;
}

/** Lengths from N(mean, stdev), ceil'd and clamped to >= 1 (TRT-LLM's get_norm_dist_lengths: mean + ~0.5 when stdev > 0). */
export function prepareTokenNormDist(o: TokenNormDistOptions): DatasetItem[] {
  checkPosInt("numRequests", o.numRequests);
  checkNonNeg("inputMean", o.inputMean);
  checkNonNeg("inputStdev", o.inputStdev);
  checkNonNeg("outputMean", o.outputMean);
  checkNonNeg("outputStdev", o.outputStdev);
  const special = checkVocab(o.vocabSize, o.specialIds ?? []);
  // Separate streams for lengths and ids: changing a mean does not reshuffle unrelated draws.
  const seed = o.seed ?? DEFAULT_DATASET_SEED;
  const lenRng = new Prng(seed);
  const tokRng = new Prng(seed + 0x5bd1e995);
  const items: DatasetItem[] = [];
  for (let i = 0; i < o.numRequests; i++) {
    const isl = Math.max(1, Math.ceil(lenRng.normal(o.inputMean, o.inputStdev)));
    const osl = Math.max(1, Math.ceil(lenRng.normal(o.outputMean, o.outputStdev)));
    items.push({ taskId: i, inputIds: drawTokens(tokRng, isl, o.vocabSize, special), outputTokens: osl });
  }
  return items;
}

/** Lengths uniform on the integers [min, max]. */
export function prepareTokenUnifDist(o: TokenUnifDistOptions): DatasetItem[] {
  checkPosInt("numRequests", o.numRequests);
  checkPosInt("inputMin", o.inputMin);
  checkPosInt("outputMin", o.outputMin);
  checkPosInt("inputMax", o.inputMax, o.inputMin);
  checkPosInt("outputMax", o.outputMax, o.outputMin);
  const special = checkVocab(o.vocabSize, o.specialIds ?? []);
  const seed = o.seed ?? DEFAULT_DATASET_SEED;
  const lenRng = new Prng(seed);
  const tokRng = new Prng(seed + 0x5bd1e995);
  const items: DatasetItem[] = [];
  for (let i = 0; i < o.numRequests; i++) {
    const isl = lenRng.intBetween(o.inputMin, o.inputMax);
    const osl = lenRng.intBetween(o.outputMin, o.outputMax);
    items.push({ taskId: i, inputIds: drawTokens(tokRng, isl, o.vocabSize, special), outputTokens: osl });
  }
  return items;
}

export interface FromDatasetOptions {
  maxInputLength?: number;
  maxOutputLength?: number;
  /** keep at most this many usable records (default: all) */
  numSamples?: number;
  /** draw output lengths from N(mean, std) instead of the reference answer's length */
  outputLenDist?: { mean: number; std: number };
  /** key holding the prompt in prompt/answer records (default: the first of prompt, question, input, text) */
  promptKey?: string;
  seed?: number;
}

const PROMPT_KEYS = ["prompt", "question", "input", "text"];
const ANSWER_KEYS = ["answer", "output", "completion", "response"];

/** Extracts (prompt, answer?) from a ShareGPT conversation or a prompt/answer record; null to skip. */
export function extractPromptAnswer(rec: unknown, promptKey?: string): { prompt: string; answer?: string } | null {
  if (typeof rec !== "object" || rec === null) return null;
  const r = rec as Record<string, unknown>;
  const conv = r.conversations ?? r.messages;
  if (Array.isArray(conv)) {
    // ShareGPT: [{from: "human", value}, {from: "gpt", value}, ...] (or {role, content}); first exchange.
    if (conv.length < 2) return null;
    const text = (t: unknown): string | undefined => {
      const m = t as Record<string, unknown> | null;
      const v = m?.value ?? m?.content;
      return typeof v === "string" ? v : undefined;
    };
    const prompt = text(conv[0]);
    const answer = text(conv[1]);
    return prompt ? { prompt, answer } : null;
  }
  const pk = promptKey ? [promptKey] : PROMPT_KEYS;
  const prompt = pk.map((k) => r[k]).find((v): v is string => typeof v === "string" && v.length > 0);
  if (!prompt) return null;
  const answer = ANSWER_KEYS.map((k) => r[k]).find((v): v is string => typeof v === "string");
  return answer === undefined ? { prompt } : { prompt, answer };
}

/** Parses a JSON array (or {data: [...]}) or a JSONL file into records. */
export function parseJsonOrJsonl(file: string, text: string): unknown[] {
  const t = text.trim();
  if (t.startsWith("[") || (t.startsWith("{") && !t.includes("\n"))) {
    try {
      const v = JSON.parse(t) as unknown;
      if (Array.isArray(v)) return v;
      const data = (v as Record<string, unknown>)?.data;
      if (Array.isArray(data)) return data;
      return [v];
    } catch (e) {
      if (t.startsWith("[")) throw new DatasetFormatError(file, 1, "json", t.slice(0, 40), `not valid JSON: ${(e as Error).message}`);
    }
  }
  const out: unknown[] = [];
  t.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    try {
      out.push(JSON.parse(line));
    } catch (e) {
      throw new DatasetFormatError(file, i + 1, "json", line, `not valid JSON: ${(e as Error).message}`);
    }
  });
  return out;
}

/**
 * Builds a dataset from a local ShareGPT / prompt-answer file: prompts are tokenized and truncated to
 * maxInputLength (default 2048); output length is the tokenized answer's (or outputLenDist's draw),
 * clipped to [1, maxOutputLength] (default 512; used as is when a record has no answer).
 */
export async function prepareFromDataset(
  file: string, tokenize: (s: string) => Promise<number[]>, o: FromDatasetOptions = {},
): Promise<DatasetItem[]> {
  const maxIn = o.maxInputLength ?? 2048;
  const maxOut = o.maxOutputLength ?? 512;
  checkPosInt("maxInputLength", maxIn);
  checkPosInt("maxOutputLength", maxOut);
  if (o.numSamples !== undefined) checkPosInt("numSamples", o.numSamples);
  const records = parseJsonOrJsonl(file, await readFile(file, "utf8"));
  const rng = new Prng(o.seed ?? DEFAULT_DATASET_SEED);
  const items: DatasetItem[] = [];
  for (const rec of records) {
    if (o.numSamples !== undefined && items.length >= o.numSamples) break;
    const pa = extractPromptAnswer(rec, o.promptKey);
    if (!pa) continue;
    const ids = (await tokenize(pa.prompt)).slice(0, maxIn);
    if (ids.length === 0) continue;
    let osl: number;
    if (o.outputLenDist) osl = Math.ceil(rng.normal(o.outputLenDist.mean, o.outputLenDist.std));
    else if (pa.answer !== undefined) osl = (await tokenize(pa.answer)).length;
    else osl = maxOut;
    items.push({ taskId: items.length, inputIds: ids, outputTokens: Math.min(maxOut, Math.max(1, osl)) });
  }
  return items;
}

/** Serializes items as TRT-LLM JSONL (snake_case keys), one line per item, trailing newline. */
export function datasetToJsonl(items: readonly DatasetItem[]): string {
  return items.map((it) => {
    const o: Record<string, unknown> = { task_id: it.taskId };
    if (it.inputIds) o.input_ids = it.inputIds;
    else o.prompt = it.prompt;
    o.output_tokens = it.outputTokens;
    if (it.loraRequest) o.lora_request = it.loraRequest;
    if (it.mediaPaths) o.media_paths = it.mediaPaths;
    return JSON.stringify(o) + "\n";
  }).join("");
}

export async function writeDatasetJsonl(file: string, items: readonly DatasetItem[]): Promise<void> {
  await writeFile(file, datasetToJsonl(items));
}

/** Validates one parsed line; `file`/`line` are used in errors only. */
export function parseDatasetLine(v: unknown, file: string, line: number): DatasetItem {
  const bad = (field: string, value: unknown, reason: string): never => {
    throw new DatasetFormatError(file, line, field, value, reason);
  };
  if (typeof v !== "object" || v === null || Array.isArray(v)) return bad("line", v, "must be a JSON object");
  const o = v as Record<string, unknown>;
  const tid = o.task_id;
  if (typeof tid !== "string" && !Number.isInteger(tid)) bad("task_id", tid, "must be an integer or a string");
  const out = o.output_tokens;
  if (!Number.isInteger(out) || (out as number) < 1) bad("output_tokens", out, "must be an integer >= 1");
  const item: DatasetItem = { taskId: tid as number | string, outputTokens: out as number };
  if (o.input_ids !== undefined) {
    const ids = o.input_ids;
    if (!Array.isArray(ids) || ids.length === 0) bad("input_ids", ids, "must be a non-empty array of token ids");
    (ids as unknown[]).forEach((id, i) => {
      if (!Number.isInteger(id) || (id as number) < 0) bad(`input_ids[${i}]`, id, "must be an integer >= 0");
    });
    item.inputIds = ids as number[];
  } else if (typeof o.prompt === "string" && o.prompt.length > 0) {
    item.prompt = o.prompt;
  } else {
    bad(o.prompt === undefined ? "input_ids" : "prompt", o.prompt, "one of input_ids (token ids) or prompt (non-empty string) is required");
  }
  if (o.lora_request !== undefined) {
    if (typeof o.lora_request !== "object" || o.lora_request === null) bad("lora_request", o.lora_request, "must be an object");
    item.loraRequest = o.lora_request as Record<string, unknown>;
  }
  if (o.media_paths !== undefined) {
    if (!Array.isArray(o.media_paths) || o.media_paths.some((p) => typeof p !== "string")) bad("media_paths", o.media_paths, "must be an array of strings");
    item.mediaPaths = o.media_paths as string[];
  }
  return item;
}

/** Parses JSONL text; blank lines are skipped, every other line validated. */
export function parseDatasetJsonl(text: string, file = "<dataset>"): DatasetItem[] {
  const items: DatasetItem[] = [];
  text.split("\n").forEach((raw, i) => {
    if (raw.trim() === "") return;
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch (e) {
      throw new DatasetFormatError(file, i + 1, "json", raw, `not valid JSON: ${(e as Error).message}`);
    }
    items.push(parseDatasetLine(v, file, i + 1));
  });
  return items;
}

export async function readDatasetJsonl(file: string): Promise<DatasetItem[]> {
  return parseDatasetJsonl(await readFile(file, "utf8"), file);
}

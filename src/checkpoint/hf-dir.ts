// Helpers for a Hugging Face model directory: locating and reading config.json and
// generation_config.json (JSON objects; turning them into a ModelConfig is src/models' job).
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { CheckpointError } from "../errors.js";

export type JsonObject = Record<string, unknown>;

/** True when `path` is a directory holding config.json (an HF model directory). */
export function isHfDir(path: string): boolean {
  try {
    return statSync(path).isDirectory() && existsSync(join(path, "config.json"));
  } catch {
    return false;
  }
}

/** Reads a JSON object file; CheckpointError naming the file when missing, unparsable or not an object. */
export function readJsonObject(file: string): JsonObject {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new CheckpointError(file, "file", `cannot read: ${(e as Error).message}`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(file, "json", `invalid JSON: ${(e as Error).message}`);
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw new CheckpointError(file, "json", "expected a JSON object");
  return v as JsonObject;
}

/** config.json of an HF directory (required). */
export function readHfConfig(dir: string): JsonObject {
  const file = join(dir, "config.json");
  if (!existsSync(file)) throw new CheckpointError(dir, "config.json", "missing: not a Hugging Face model directory");
  return readJsonObject(file);
}

/** generation_config.json of an HF directory, or undefined when absent (it is optional). */
export function readGenerationConfig(dir: string): JsonObject | undefined {
  const file = join(dir, "generation_config.json");
  return existsSync(file) ? readJsonObject(file) : undefined;
}

/** Generation defaults a server/LLM applies when the request leaves them unset. */
export interface GenerationDefaults {
  eosTokenIds: number[];
  bosTokenId?: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  repetitionPenalty?: number;
  maxNewTokens?: number;
}

function ids(file: string, key: string, v: unknown): number[] {
  if (v === undefined || v === null) return [];
  const arr = Array.isArray(v) ? v : [v];
  for (const x of arr) {
    if (typeof x !== "number" || !Number.isInteger(x) || x < 0) throw new CheckpointError(file, key, `bad token id ${JSON.stringify(x)}`);
  }
  return arr as number[];
}

function optNum(file: string, g: JsonObject, key: string): number | undefined {
  const v = g[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v)) throw new CheckpointError(file, key, `expected a number, got ${JSON.stringify(v)}`);
  return v;
}

/** Parses generation_config.json (falling back to config.json's token ids) into defaults.
 *  Sampling fields only count when do_sample is true (transformers ignores them otherwise). */
export function generationDefaults(dir: string): GenerationDefaults {
  const cfg = readHfConfig(dir);
  const gen = readGenerationConfig(dir) ?? {};
  const gfile = join(dir, "generation_config.json");
  const cfile = join(dir, "config.json");
  const pick = (k: string): number[] => (gen[k] ?? null) !== null ? ids(gfile, k, gen[k]) : ids(cfile, k, cfg[k]);
  const eos = pick("eos_token_id");
  const bos = pick("bos_token_id");
  const out: GenerationDefaults = { eosTokenIds: eos };
  if (bos.length > 0) out.bosTokenId = bos[0]!;
  const maxNew = optNum(gfile, gen, "max_new_tokens");
  if (maxNew !== undefined) out.maxNewTokens = maxNew;
  const rep = optNum(gfile, gen, "repetition_penalty");
  if (rep !== undefined) out.repetitionPenalty = rep;
  if (gen["do_sample"] === true) {
    const t = optNum(gfile, gen, "temperature"), p = optNum(gfile, gen, "top_p"), k = optNum(gfile, gen, "top_k");
    if (t !== undefined) out.temperature = t;
    if (p !== undefined) out.topP = p;
    if (k !== undefined) out.topK = k;
  }
  return out;
}

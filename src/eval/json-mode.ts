// JSON-mode eval (after NousResearch/json-mode-eval, trtllm-eval's json_mode_eval): each record
// gives a JSON schema and a prompt; the model generates (with the schema passed on for guided
// decoding when the target supports it) and we report the rates of outputs that parse, that are
// valid under the schema, and (when a reference completion is given) that equal it as JSON values.
// File: JSONL {schema: object | JSON string, prompt: string | [{role, content}] | messages: [...],
// completion?: JSON string}.
import { readFile } from "node:fs/promises";
import { ValidationError } from "../errors.js";
import { parseJsonl, TaskFileError } from "./files.js";
import type { ChatMessage, EvalModel } from "./model.js";
import { accuracyOf, type Accuracy } from "./mmlu.js";
import { validateJsonSchema, type Schema, type SchemaError } from "./json-schema.js";
import { timed } from "./stats.js";

export interface JsonModeItem {
  schema: Schema;
  prompt: string | ChatMessage[];
  /** reference output (a JSON value) */
  reference?: unknown;
}

function isMessages(v: unknown): v is ChatMessage[] {
  return Array.isArray(v) && v.every((m) => typeof m === "object" && m !== null && typeof m.role === "string" && typeof m.content === "string");
}

export function parseJsonModeJsonl(text: string, file = "<json-mode>"): JsonModeItem[] {
  return parseJsonl(text, file).map(({ line, value: v }) => {
    let schema: unknown = v.schema;
    if (typeof schema === "string") {
      try {
        schema = JSON.parse(schema);
      } catch {
        throw new TaskFileError(file, line, "schema", v.schema, "is a string but not JSON");
      }
    }
    if (typeof schema !== "boolean" && (typeof schema !== "object" || schema === null || Array.isArray(schema))) {
      throw new TaskFileError(file, line, "schema", schema, "must be a JSON schema object");
    }
    const prompt = v.messages ?? v.prompt;
    if (!(typeof prompt === "string" && prompt !== "") && !isMessages(prompt)) {
      throw new TaskFileError(file, line, "prompt", prompt, "must be a string or an array of {role, content} messages");
    }
    const item: JsonModeItem = { schema: schema as Schema, prompt };
    if (v.completion !== undefined) {
      try {
        item.reference = typeof v.completion === "string" ? JSON.parse(v.completion) : v.completion;
      } catch {
        throw new TaskFileError(file, line, "completion", v.completion, "must be JSON text");
      }
    }
    return item;
  });
}

export async function loadJsonMode(file: string): Promise<JsonModeItem[]> {
  return parseJsonModeJsonl(await readFile(file, "utf8"), file);
}

/** The JSON text inside a model output: strips ```json fences and prose around the outermost value. */
export function extractJsonText(output: string): string {
  const fence = /```(?:json)?\s*\n?([\s\S]*?)```/.exec(output);
  const s = (fence ? fence[1]! : output).trim();
  const start = s.search(/[{[]/);
  if (start < 0) return s;
  const close = s[start] === "{" ? "}" : "]";
  const end = s.lastIndexOf(close);
  return end > start ? s.slice(start, end + 1) : s.slice(start);
}

function jsonEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (typeof v === "object" && v !== null) {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]));
  }
  return v;
}

export interface JsonModeOptions {
  items: readonly JsonModeItem[];
  /** generation budget (default 512, trtllm-eval's OSL) */
  maxTokens?: number;
  numSamples?: number;
}

export interface JsonModeItemResult {
  output: string;
  parsed: boolean;
  schemaValid: boolean;
  errors: SchemaError[];
  matchesReference?: boolean;
}

export interface JsonModeResult {
  validJson: Accuracy;
  schemaValid: Accuracy;
  /** over items that have a reference */
  exactMatch?: Accuracy;
  items: JsonModeItemResult[];
  seconds: number;
}

export function scoreJsonOutput(item: JsonModeItem, output: string): JsonModeItemResult {
  let value: unknown;
  try {
    value = JSON.parse(extractJsonText(output));
  } catch {
    return { output, parsed: false, schemaValid: false, errors: [{ path: "", message: "not valid JSON" }], ...(item.reference !== undefined ? { matchesReference: false } : {}) };
  }
  const errors = validateJsonSchema(value, item.schema);
  const r: JsonModeItemResult = { output, parsed: true, schemaValid: errors.length === 0, errors };
  if (item.reference !== undefined) r.matchesReference = jsonEqual(value, item.reference);
  return r;
}

export async function run(model: EvalModel, o: JsonModeOptions): Promise<JsonModeResult> {
  const items = o.numSamples !== undefined ? o.items.slice(0, o.numSamples) : o.items;
  if (items.length === 0) throw new ValidationError("items", 0, "no records to evaluate");
  const { result, seconds } = await timed(async () => {
    const out: JsonModeItemResult[] = [];
    for (const it of items) {
      const schema = typeof it.schema === "object" ? it.schema : undefined;
      const text = await model.generate(it.prompt, { maxTokens: o.maxTokens ?? 512, temperature: 0, ...(schema ? { jsonSchema: schema } : {}) });
      out.push(scoreJsonOutput(it, text));
    }
    return out;
  });
  const withRef = result.filter((r) => r.matchesReference !== undefined);
  const res: JsonModeResult = {
    validJson: accuracyOf(result.filter((r) => r.parsed).length, result.length),
    schemaValid: accuracyOf(result.filter((r) => r.schemaValid).length, result.length),
    items: result, seconds,
  };
  if (withRef.length) res.exactMatch = accuracyOf(withRef.filter((r) => r.matchesReference).length, withRef.length);
  return res;
}

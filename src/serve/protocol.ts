// Request bodies of /v1/completions and /v1/chat/completions: validated field by field into one
// internal shape. OpenAI's snake_case names map onto SamplingParams' camelCase ones (SAMPLING_NAMES);
// createSamplingParams checks the values and its errors are renamed back (see errors.ts). Unknown
// fields are rejected (TensorRT-LLM's extra="forbid"), so a typo never passes silently.
import type { SamplingParamsInput } from "../api/sampling-params.js";
import type { GuidedDecodingParams } from "../api/sampling-params.js";
import { badRequest, HttpError } from "./errors.js";

/** API name -> SamplingParams name; values are passed through and validated by createSamplingParams. */
export const SAMPLING_NAMES: Readonly<Record<string, keyof SamplingParamsInput>> = {
  max_tokens: "maxTokens", temperature: "temperature", top_p: "topP", top_k: "topK", min_p: "minP",
  repetition_penalty: "repetitionPenalty", presence_penalty: "presencePenalty",
  frequency_penalty: "frequencyPenalty", seed: "seed", stop: "stop", stop_token_ids: "stopTokenIds",
  ignore_eos: "ignoreEos", min_tokens: "minTokens", include_stop_str_in_output: "includeStopStrInOutput",
  skip_special_tokens: "skipSpecialTokens", spaces_between_special_tokens: "spacesBetweenSpecialTokens",
  truncate_prompt_tokens: "truncatePromptTokens", length_penalty: "lengthPenalty", early_stopping: "earlyStopping",
  n: "n", best_of: "bestOf", top_p_min: "topPMin", prompt_ignore_length: "promptIgnoreLength",
  add_special_tokens: "addSpecialTokens", use_beam_search: "useBeamSearch",
};

/** SamplingParams name -> API name (for error messages). */
export const API_NAMES: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(SAMPLING_NAMES).map(([api, sp]) => [sp, api]).concat([["embeddingBias", "logit_bias"], ["prompts", "prompt"], ["guidedDecoding", "response_format"]]),
);

const COMMON = [...Object.keys(SAMPLING_NAMES), "model", "stream", "stream_options", "logit_bias", "user",
  "response_format", "priority", "cache_salt", "use_beam_search", "logprobs", "detokenize"];
const COMPLETION_FIELDS = new Set([...COMMON, "prompt", "echo", "suffix"]);
const CHAT_FIELDS = new Set([...COMMON, "messages", "top_logprobs", "max_completion_tokens", "tools", "tool_choice",
  "parallel_tool_calls", "add_generation_prompt", "chat_template", "chat_template_kwargs"]);

/** Per-request caps that keep one request's memory bounded (TensorRT-LLM: n <= max_batch_size). */
export const LIMITS = { maxN: 64, maxPrompts: 256, maxTopLogprobs: 20, maxStops: 32, maxTools: 128 } as const;

export type Prompt = { text: string } | { ids: number[] };

export interface ToolSpec { name: string; description?: string; parameters: Record<string, unknown> }
export type ToolChoice = "none" | "auto" | "required" | { name: string };

interface CommonRequest {
  model: string | null;
  params: SamplingParamsInput;
  /** max_tokens as given (null: the server fills in what the context leaves) */
  maxTokens: number | null;
  stream: boolean;
  includeUsage: boolean;
  guided: GuidedDecodingParams | null;
  /** top-k logprobs per token; null: none */
  logprobs: number | null;
  priority: number | null;
  cacheSalt: string | null;
}

export interface CompletionRequest extends CommonRequest {
  kind: "completion";
  prompts: Prompt[];
  echo: boolean;
}

export interface ChatMessageIn { role: string; content: string | null; [k: string]: unknown }

export interface ChatRequest extends CommonRequest {
  kind: "chat";
  messages: ChatMessageIn[];
  tools: ToolSpec[];
  toolChoice: ToolChoice;
  /** false: tool_choice "required" yields exactly one call */
  parallelToolCalls: boolean;
  addGenerationPrompt: boolean;
  chatTemplate: string | null;
  templateKwargs: Record<string, unknown>;
}

export type ApiRequest = CompletionRequest | ChatRequest;

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function opt<T>(body: Record<string, unknown>, key: string, check: (v: unknown) => v is T, what: string): T | null {
  const v = body[key];
  if (v === undefined || v === null) return null;
  if (!check(v)) throw badRequest(key, `must be ${what}, got ${JSON.stringify(v)?.slice(0, 60)}`);
  return v;
}
const isBool = (v: unknown): v is boolean => typeof v === "boolean";
const isStr = (v: unknown): v is string => typeof v === "string";
const isInt = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v);
const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

function checkFields(body: Record<string, unknown>, allowed: Set<string>): void {
  for (const k of Object.keys(body)) {
    if (!allowed.has(k)) throw badRequest(k, `unknown field '${k}'`);
  }
}

/** Sampling fields in SamplingParams' names; value checks happen in createSamplingParams. */
function samplingFrom(body: Record<string, unknown>): SamplingParamsInput {
  const p: Record<string, unknown> = {};
  for (const [api, sp] of Object.entries(SAMPLING_NAMES)) {
    const v = body[api];
    if (v === undefined || v === null) continue;
    p[sp] = api === "top_k" && v === -1 ? 0 : v; // vLLM/TRT: top_k = -1 disables it
  }
  const n = p["n"], bestOf = p["bestOf"];
  if (isInt(n) && n > LIMITS.maxN) throw badRequest("n", `at most ${LIMITS.maxN}, got ${n}`);
  if (isInt(bestOf) && bestOf > LIMITS.maxN) throw badRequest("best_of", `at most ${LIMITS.maxN}, got ${bestOf}`);
  const stop = p["stop"];
  if (Array.isArray(stop) && stop.length > LIMITS.maxStops) throw badRequest("stop", `at most ${LIMITS.maxStops} strings`);
  if (body["logit_bias"] !== undefined && body["logit_bias"] !== null) p["embeddingBias"] = logitBias(body["logit_bias"]);
  if (body["detokenize"] === false) throw new HttpError(501, "detokenize=false is not supported by the server", "detokenize");
  return p as SamplingParamsInput;
}

/** OpenAI logit_bias: {"token id": bias in [-100, 100]}. */
function logitBias(v: unknown): Record<string, number> {
  if (!isObj(v)) throw badRequest("logit_bias", "must be an object {token id: bias}");
  for (const [k, b] of Object.entries(v)) {
    if (!/^\d{1,9}$/.test(k)) throw badRequest("logit_bias", `key '${k.slice(0, 40)}' is not a token id`);
    if (!isNum(b) || b < -100 || b > 100) throw badRequest("logit_bias", `bias for ${k} must be a number in [-100, 100]`);
  }
  return v as Record<string, number>;
}

function streamOptions(body: Record<string, unknown>, stream: boolean): boolean {
  const so = body["stream_options"];
  if (so === undefined || so === null) return false;
  if (!isObj(so)) throw badRequest("stream_options", "must be an object");
  for (const k of Object.keys(so)) {
    if (k !== "include_usage" && k !== "continuous_usage_stats") throw badRequest(`stream_options.${k}`, "unknown field");
  }
  if (so["include_usage"] !== undefined && !isBool(so["include_usage"])) throw badRequest("stream_options.include_usage", "must be a boolean");
  if (!stream) throw badRequest("stream_options", "is only allowed with stream=true");
  return so["include_usage"] === true;
}

/** response_format -> guided decoding: json_schema, json_object, and the regex / ebnf extensions. */
export function guidedFrom(v: unknown): GuidedDecodingParams | null {
  if (v === undefined || v === null) return null;
  if (!isObj(v) || !isStr(v["type"])) throw badRequest("response_format", "must be an object with a string 'type'");
  switch (v["type"]) {
    case "text": return null;
    case "json_object": return { jsonObject: true };
    case "json_schema": {
      const js = v["json_schema"];
      if (!isObj(js) || !isObj(js["schema"])) throw badRequest("response_format.json_schema.schema", "must be an object (a JSON schema)");
      return { json: js["schema"] };
    }
    case "json": {
      if (!isObj(v["schema"])) throw badRequest("response_format.schema", "must be an object (a JSON schema)");
      return { json: v["schema"] };
    }
    case "regex":
      if (!isStr(v["regex"]) || v["regex"] === "") throw badRequest("response_format.regex", "must be a non-empty string");
      return { regex: v["regex"] };
    case "ebnf":
      if (!isStr(v["ebnf"]) || v["ebnf"] === "") throw badRequest("response_format.ebnf", "must be a non-empty string");
      return { grammar: v["ebnf"] };
    default:
      throw badRequest("response_format.type", `must be one of text, json_object, json_schema, json, regex, ebnf; got ${JSON.stringify(v["type"]).slice(0, 40)}`);
  }
}

function common(body: Record<string, unknown>): CommonRequest {
  const stream = opt(body, "stream", isBool, "a boolean") ?? false;
  const priority = opt(body, "priority", isNum, "a number in [0, 1]");
  if (priority !== null && (priority < 0 || priority > 1)) throw badRequest("priority", `must be in [0, 1], got ${priority}`);
  opt(body, "user", isStr, "a string");
  const params = samplingFrom(body);
  const mt = body["max_tokens"];
  if (mt !== undefined && mt !== null && (!isInt(mt) || mt < 1)) throw badRequest("max_tokens", `must be a positive integer, got ${JSON.stringify(mt)?.slice(0, 40)}`);
  return {
    model: opt(body, "model", isStr, "a string"),
    params,
    maxTokens: isInt(mt) ? mt : null,
    stream,
    includeUsage: streamOptions(body, stream),
    guided: guidedFrom(body["response_format"]),
    logprobs: null,
    priority,
    cacheSalt: opt(body, "cache_salt", isStr, "a string"),
  };
}

const isTokenIds = (v: unknown): v is number[] => Array.isArray(v) && v.length > 0 && v.every(isInt);

function promptsFrom(v: unknown): Prompt[] {
  if (typeof v === "string") return [{ text: v }];
  if (isTokenIds(v)) return [{ ids: v }];
  if (Array.isArray(v) && v.length > 0) {
    if (v.length > LIMITS.maxPrompts) throw badRequest("prompt", `at most ${LIMITS.maxPrompts} prompts per request`);
    if (v.every(isStr)) return v.map((text) => ({ text }));
    if (v.every(isTokenIds)) return v.map((ids) => ({ ids }));
  }
  throw badRequest("prompt", "must be a string, an array of strings, an array of token ids, or an array of token-id arrays (non-empty)");
}

export function parseCompletionRequest(body: unknown): CompletionRequest {
  if (!isObj(body)) throw badRequest(null, "the request body must be a JSON object");
  checkFields(body, COMPLETION_FIELDS);
  if (body["suffix"] !== undefined && body["suffix"] !== null) throw badRequest("suffix", "is not supported (no fill-in-the-middle)");
  if (body["prompt"] === undefined) throw badRequest("prompt", "is required");
  const c = common(body);
  const lp = opt(body, "logprobs", isInt, "an integer (top logprobs per token)");
  if (lp !== null && (lp < 0 || lp > LIMITS.maxTopLogprobs)) throw badRequest("logprobs", `must be in [0, ${LIMITS.maxTopLogprobs}], got ${lp}`);
  return { ...c, kind: "completion", prompts: promptsFrom(body["prompt"]), echo: opt(body, "echo", isBool, "a boolean") ?? false, logprobs: lp };
}

const ROLES = new Set(["system", "developer", "user", "assistant", "tool", "function"]);

/** Text of a message's content: a string, or text parts joined (other part types are rejected). */
function contentText(v: unknown, where: string): string | null {
  if (v === undefined || v === null) return null;
  if (isStr(v)) return v;
  if (!Array.isArray(v)) throw badRequest(where, "must be a string, an array of content parts, or null");
  return v.map((part, j) => {
    if (!isObj(part) || part["type"] !== "text" || !isStr(part["text"])) {
      throw badRequest(`${where}[${j}]`, "only {type: 'text', text} content parts are supported");
    }
    return part["text"];
  }).join("");
}

function messagesFrom(v: unknown): ChatMessageIn[] {
  if (!Array.isArray(v) || v.length === 0) throw badRequest("messages", "must be a non-empty array of {role, content}");
  return v.map((m, i) => {
    if (!isObj(m)) throw badRequest(`messages[${i}]`, "must be an object {role, content}");
    if (!isStr(m["role"]) || !ROLES.has(m["role"])) {
      throw badRequest(`messages[${i}].role`, `must be one of ${[...ROLES].join(", ")}; got ${JSON.stringify(m["role"])?.slice(0, 40)}`);
    }
    const content = contentText(m["content"], `messages[${i}].content`);
    if (content === null && !(m["role"] === "assistant" && Array.isArray(m["tool_calls"]))) {
      throw badRequest(`messages[${i}].content`, "is required (null only on an assistant message with tool_calls)");
    }
    const out: ChatMessageIn = { ...m, role: m["role"], content };
    if (m["tool_calls"] !== undefined) out["tool_calls"] = toolCallsIn(m["tool_calls"], i);
    return out;
  });
}

/** Assistant tool_calls in a conversation: arguments given as JSON text become objects for templates. */
function toolCallsIn(v: unknown, i: number): unknown[] {
  if (!Array.isArray(v)) throw badRequest(`messages[${i}].tool_calls`, "must be an array");
  return v.map((c, j) => {
    const f = isObj(c) ? c["function"] : undefined;
    if (!isObj(f) || !isStr(f["name"])) throw badRequest(`messages[${i}].tool_calls[${j}].function.name`, "is required");
    let args: unknown = f["arguments"] ?? {};
    if (isStr(args)) {
      try { args = JSON.parse(args); } catch { throw badRequest(`messages[${i}].tool_calls[${j}].function.arguments`, "is not valid JSON"); }
    }
    return { ...c, function: { name: f["name"], arguments: args } };
  });
}

function toolsFrom(v: unknown): ToolSpec[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw badRequest("tools", "must be an array");
  if (v.length > LIMITS.maxTools) throw badRequest("tools", `at most ${LIMITS.maxTools} tools`);
  return v.map((t, i) => {
    const f = isObj(t) ? t["function"] : undefined;
    if (!isObj(t) || t["type"] !== "function" || !isObj(f)) throw badRequest(`tools[${i}]`, "must be {type: 'function', function: {name, parameters}}");
    if (!isStr(f["name"]) || !/^[A-Za-z0-9_.-]{1,64}$/.test(f["name"])) throw badRequest(`tools[${i}].function.name`, "must match [A-Za-z0-9_.-]{1,64}");
    const params = f["parameters"] ?? { type: "object", properties: {} };
    if (!isObj(params)) throw badRequest(`tools[${i}].function.parameters`, "must be an object (a JSON schema)");
    const spec: ToolSpec = { name: f["name"], parameters: params };
    if (isStr(f["description"])) spec.description = f["description"];
    return spec;
  });
}

function toolChoiceFrom(v: unknown, tools: ToolSpec[]): ToolChoice {
  if (v === undefined || v === null) return tools.length ? "auto" : "none";
  if (v === "none" || v === "auto" || v === "required") {
    if (v !== "none" && tools.length === 0) throw badRequest("tool_choice", `'${v}' needs a non-empty tools list`);
    return v;
  }
  const f = isObj(v) ? v["function"] : undefined;
  if (!isObj(v) || v["type"] !== "function" || !isObj(f) || !isStr(f["name"])) {
    throw badRequest("tool_choice", "must be 'none', 'auto', 'required' or {type: 'function', function: {name}}");
  }
  if (!tools.some((t) => t.name === f["name"])) throw badRequest("tool_choice", `names '${f["name"].slice(0, 64)}', which is not in tools`);
  return { name: f["name"] };
}

export function parseChatRequest(body: unknown): ChatRequest {
  if (!isObj(body)) throw badRequest(null, "the request body must be a JSON object");
  checkFields(body, CHAT_FIELDS);
  const mct = body["max_completion_tokens"];
  if (mct !== undefined && mct !== null) {
    if (body["max_tokens"] !== undefined && body["max_tokens"] !== null) throw badRequest("max_completion_tokens", "give max_tokens or max_completion_tokens, not both");
    body = { ...body, max_tokens: mct, max_completion_tokens: undefined };
  }
  const b = body as Record<string, unknown>;
  const c = common(b);
  const lp = opt(b, "logprobs", isBool, "a boolean");
  const top = opt(b, "top_logprobs", isInt, "an integer");
  if (top !== null && (top < 0 || top > LIMITS.maxTopLogprobs)) throw badRequest("top_logprobs", `must be in [0, ${LIMITS.maxTopLogprobs}]`);
  if (top !== null && lp !== true) throw badRequest("top_logprobs", "needs logprobs=true");
  const tools = toolsFrom(b["tools"]);
  const kw = b["chat_template_kwargs"];
  if (kw !== undefined && kw !== null && !isObj(kw)) throw badRequest("chat_template_kwargs", "must be an object");
  const parallel = opt(b, "parallel_tool_calls", isBool, "a boolean") ?? true;
  return {
    ...c, kind: "chat", messages: messagesFrom(b["messages"]), logprobs: lp ? top ?? 0 : null,
    tools, toolChoice: toolChoiceFrom(b["tool_choice"], tools), parallelToolCalls: parallel,
    addGenerationPrompt: opt(b, "add_generation_prompt", isBool, "a boolean") ?? true,
    chatTemplate: opt(b, "chat_template", isStr, "a string"),
    templateKwargs: isObj(kw) ? kw : {},
  };
}

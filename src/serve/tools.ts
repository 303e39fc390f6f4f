// Tool calls: the guide that enforces tool_choice "required" / named (a JSON schema for guided
// decoding), and parsers that find calls in generated text for "auto":
//   Hermes / Qwen:  <tool_call>{"name": "f", "arguments": {...}}</tool_call>   (one or more)
//   Llama 3.x JSON: [<|python_tag|>]{"name": "f", "parameters": {...}}        (';'-separated allowed)
import { randomBytes } from "node:crypto";
import type { GuidedDecodingParams } from "../api/sampling-params.js";
import type { ToolChoice, ToolSpec } from "./protocol.js";

export interface ToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

export function toolCallId(): string {
  return `chatcmpl-tool-${randomBytes(12).toString("hex")}`;
}

/** The guide for a forced choice: named -> the tool's parameters; required -> [{name, parameters}, ...]
 *  (one or more calls; exactly one when `parallel` is false). */
export function toolChoiceGuide(choice: ToolChoice, tools: ToolSpec[], parallel = true): GuidedDecodingParams | null {
  if (choice === "none" || choice === "auto") return null;
  if (typeof choice === "object") return { json: tools.find((t) => t.name === choice.name)!.parameters };
  const one = {
    anyOf: tools.map((t) => ({
      type: "object",
      properties: { name: { type: "string", enum: [t.name] }, parameters: t.parameters },
      required: ["name", "parameters"],
      additionalProperties: false,
    })),
  };
  return { json: { type: "array", items: one, minItems: 1, ...(parallel ? {} : { maxItems: 1 }) } };
}

/** Calls from guided output: named -> the text is the arguments; required -> the array of calls. */
export function forcedToolCalls(choice: ToolChoice, text: string): ToolCall[] {
  if (typeof choice === "object") return [{ id: toolCallId(), type: "function", function: { name: choice.name, arguments: text } }];
  const parsed = tryJson(text);
  if (!Array.isArray(parsed)) return [];
  return parsed.flatMap((c) => asCall(c) ?? []);
}

function tryJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

/** {name, arguments|parameters} -> a ToolCall with arguments as JSON text; null for anything else. */
function asCall(v: unknown): ToolCall | null {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  const args = o["arguments"] ?? o["parameters"];
  if (typeof o["name"] !== "string" || typeof args !== "object" || args === null) return null;
  return { id: toolCallId(), type: "function", function: { name: o["name"], arguments: JSON.stringify(args) } };
}

export interface ParsedTools {
  /** text outside the calls (null when nothing but calls) */
  content: string | null;
  calls: ToolCall[];
}

const HERMES = /<tool_call>\s*([\s\S]*?)\s*(?:<\/tool_call>|$)/g;

/** Finds tool calls in `text` (Hermes first, then Llama JSON); calls for unknown tools are dropped. */
export function parseToolCalls(text: string, tools: ToolSpec[]): ParsedTools {
  const known = new Set(tools.map((t) => t.name));
  const keep = (calls: ToolCall[]): ToolCall[] => calls.filter((c) => known.has(c.function.name));
  if (text.includes("<tool_call>")) {
    const calls = keep([...text.matchAll(HERMES)].flatMap((m) => asCall(tryJson(m[1]!)) ?? []));
    if (calls.length) {
      const rest = text.slice(0, text.indexOf("<tool_call>")).trim();
      return { content: rest === "" ? null : rest, calls };
    }
  }
  const body = text.trim().replace(/^<\|python_tag\|>/, "").trim();
  if (body.startsWith("{")) {
    const whole = asCall(tryJson(body));
    const calls = keep(whole ? [whole] : body.split(/\s*;\s*/).flatMap((p) => asCall(tryJson(p)) ?? []));
    if (calls.length) return { content: null, calls };
  }
  return { content: text, calls: [] };
}

// Chat templates (HF Jinja, as in tokenizer_config.json / tokenizer.chat_template) rendered with
// @huggingface/jinja. The globals mirror transformers' apply_chat_template: messages,
// add_generation_prompt, bos_token, eos_token, tools, plus any extra kwargs; the library itself
// provides raise_exception and strftime_now.
import { Template } from "@huggingface/jinja";
import { ValidationError } from "../errors.js";

export interface ChatMessage {
  role: string;
  /** Text, a list of content parts, or null (assistant turns that only call tools). */
  content?: string | unknown[] | null;
  [key: string]: unknown;
}

export interface ChatTemplateOptions {
  addGenerationPrompt?: boolean;
  bosToken?: string;
  eosToken?: string;
  tools?: unknown[];
  /** Extra template variables (e.g. `enable_thinking`, `date_string`). */
  extra?: Record<string, unknown>;
}

function validateMessages(messages: unknown): asserts messages is ChatMessage[] {
  if (!Array.isArray(messages)) throw new ValidationError("messages", messages, "expected an array of {role, content}");
  messages.forEach((m, i) => {
    if (typeof m !== "object" || m === null || Array.isArray(m)) {
      throw new ValidationError(`messages[${i}]`, m, "expected an object {role, content}");
    }
    const msg = m as Record<string, unknown>;
    if (typeof msg.role !== "string" || msg.role.length === 0) {
      throw new ValidationError(`messages[${i}].role`, msg.role, "expected a non-empty string");
    }
    const c = msg.content;
    if (c !== undefined && c !== null && typeof c !== "string" && !Array.isArray(c)) {
      throw new ValidationError(`messages[${i}].content`, c, "expected a string, a list of content parts, or null");
    }
  });
}

const templateCache = new Map<string, Template>();

function compile(template: string): Template {
  if (typeof template !== "string" || template.length === 0) {
    throw new ValidationError("chat_template", template, "expected a non-empty Jinja template string");
  }
  let t = templateCache.get(template);
  if (!t) {
    try {
      t = new Template(template);
    } catch (e) {
      throw new ValidationError("chat_template", template, `does not parse: ${(e as Error).message}`);
    }
    if (templateCache.size > 32) templateCache.clear();
    templateCache.set(template, t);
  }
  return t;
}

/** Renders `messages` through `template`. */
export function applyChatTemplate(template: string, messages: readonly ChatMessage[], opts: ChatTemplateOptions = {}): string {
  validateMessages(messages);
  const t = compile(template);
  const vars: Record<string, unknown> = {
    ...(opts.extra ?? {}),
    messages,
    add_generation_prompt: opts.addGenerationPrompt ?? false,
    bos_token: opts.bosToken ?? "",
    eos_token: opts.eosToken ?? "",
  };
  if (opts.tools !== undefined) vars.tools = opts.tools;
  try {
    return t.render(vars);
  } catch (e) {
    // A template that parsed but fails to render has rejected these messages (raise_exception, or a
    // message shape it does not expect): the caller's input is at fault, so the error names `messages`.
    throw new ValidationError("messages", messages, `rejected by the chat template: ${(e as Error).message}`);
  }
}

// EvalModel over an OpenAI-compatible server (vLLM, trtllm-serve, tllm serve), as lm-eval's
// `local-completions` does it:
//  - loglikelihood: tokenize context and context + continuation locally (lm-eval moves the
//    context's trailing spaces onto the continuation first), send the whole token list to
//    /v1/completions with echo: true, logprobs: 1, max_tokens: 1, and sum the echoed
//    token_logprobs of the continuation; greedy when each continuation token is the top-1 entry;
//  - generate: /v1/completions for a string prompt, /v1/chat/completions for messages;
//    a jsonSchema goes out as OpenAI's response_format {type: "json_schema"};
//  - logprobsOfTokens: the same echo request; full distributions are not available over HTTP
//    (KL divergence needs the in-process model).
import { ValidationError } from "../errors.js";
import type { ChatMessage, EvalModel, GenerateParams, LoglikelihoodResult, PositionLogprobs } from "./model.js";

export interface OpenAiEvalModelOptions {
  /** e.g. http://127.0.0.1:8000 (with or without /v1) */
  baseUrl: string;
  model: string;
  apiKey?: string;
  /** the model's tokenizer (the CLI passes it); default: the server's POST /tokenize (vLLM's) */
  tokenize?: (text: string) => Promise<number[]>;
  fetchImpl?: typeof fetch;
}

interface EchoLogprobs {
  tokens?: string[];
  token_logprobs?: (number | null)[];
  top_logprobs?: (Record<string, number> | null)[];
}

export function createOpenAiEvalModel(o: OpenAiEvalModelOptions): EvalModel {
  if (!/^https?:\/\//.test(o.baseUrl)) throw new ValidationError("baseUrl", o.baseUrl, "must start with http:// or https://");
  const root = o.baseUrl.replace(/\/+$/, "").replace(/\/v1$/, "");
  const post = async (path: string, body: Record<string, unknown>): Promise<Record<string, unknown>> => {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (o.apiKey) headers.authorization = `Bearer ${o.apiKey}`;
    const res = await (o.fetchImpl ?? fetch)(`${root}${path}`, { method: "POST", headers, body: JSON.stringify(body) });
    const text = await res.text();
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status}: ${text.slice(0, 300)}`);
    return JSON.parse(text) as Record<string, unknown>;
  };
  const tokenize = o.tokenize ?? (async (text: string): Promise<number[]> => {
    const r = await post("/tokenize", { model: o.model, prompt: text, add_special_tokens: false });
    return r.tokens as number[];
  });
  const echo = async (tokens: readonly number[]): Promise<EchoLogprobs> => {
    const r = await post("/v1/completions", { model: o.model, prompt: tokens, max_tokens: 1, temperature: 0, logprobs: 1, echo: true });
    const lp = (r.choices as { logprobs?: EchoLogprobs }[] | undefined)?.[0]?.logprobs;
    if (!lp?.token_logprobs || lp.token_logprobs.length < tokens.length) {
      throw new ValidationError("logprobs", lp?.token_logprobs?.length, `server did not echo ${tokens.length} prompt logprobs (needs echo + logprobs support)`);
    }
    return lp;
  };

  async function loglikelihood(context: string, continuation: string): Promise<LoglikelihoodResult> {
    const trail = /\s*$/.exec(context)![0];
    const ctxText = context.slice(0, context.length - trail.length);
    const ctx = await tokenize(ctxText);
    const whole = await tokenize(ctxText + trail + continuation);
    if (whole.length <= ctx.length) throw new ValidationError("continuation", continuation, "tokenizes to no tokens after the context");
    const lp = await echo(whole);
    let sum = 0;
    let greedy = true;
    for (let i = ctx.length; i < whole.length; i++) {
      sum += lp.token_logprobs![i] ?? 0;
      const top = lp.top_logprobs?.[i];
      if (top && lp.tokens) {
        const best = Object.entries(top).sort((a, b) => b[1] - a[1])[0];
        if (best && best[0] !== lp.tokens[i]) greedy = false;
      }
    }
    return { logprob: sum, isGreedy: greedy };
  }

  async function generate(prompt: string | ChatMessage[], p: GenerateParams): Promise<string> {
    const body: Record<string, unknown> = { model: o.model, max_tokens: p.maxTokens, temperature: p.temperature ?? 0 };
    if (p.stop?.length) body.stop = p.stop;
    if (p.jsonSchema) body.response_format = { type: "json_schema", json_schema: { name: "eval", schema: p.jsonSchema } };
    if (typeof prompt === "string") {
      const r = await post("/v1/completions", { ...body, prompt });
      return ((r.choices as { text?: string }[] | undefined)?.[0]?.text) ?? "";
    }
    const r = await post("/v1/chat/completions", { ...body, messages: prompt });
    return ((r.choices as { message?: { content?: string } }[] | undefined)?.[0]?.message?.content) ?? "";
  }

  async function logprobsOfTokens(tokens: readonly number[], opts?: { distributions?: boolean }): Promise<PositionLogprobs> {
    if (opts?.distributions) {
      throw new ValidationError("distributions", true, "an OpenAI server returns top-k logprobs only; run the KL-divergence comparison in-process");
    }
    const lp = await echo(tokens);
    return { logprobs: lp.token_logprobs!.slice(1, tokens.length).map((x) => x ?? 0) };
  }

  return { tokenize, loglikelihood, generate, logprobsOfTokens };
}

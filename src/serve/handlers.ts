// /v1/completions and /v1/chat/completions: response bodies in OpenAI's shapes, plain or as SSE
// chunks ending in `data: [DONE]`. Choices are numbered prompt-major: index = prompt * n + output.
import type { ServerResponse } from "node:http";
import type { StreamEvent } from "../api/llm.js";
import type { CompletionOutput, RequestOutput } from "../api/request-output.js";
import { badRequest, errorBody, toHttpError } from "./errors.js";
import {
  cachedTokens, checkModel, finishJob, makeJob, requestId, runJob, type Job, type JobTiming, type ServeContext,
} from "./generate.js";
import { chatLogprobs, ChunkedLogprobs, completionLogprobs, promptSlots, slotsOf, type TokenSlot } from "./logprobs.js";
import type { ChatRequest, CompletionRequest } from "./protocol.js";
import { CHAT_TOKEN, COMPLETION_TOKEN, Sse } from "./sse.js";
import { forcedToolCalls, parseToolCalls, toolChoiceGuide, type ToolCall } from "./tools.js";

function usage(outs: RequestOutput[]): Record<string, unknown> {
  const prompt = outs.reduce((a, o) => a + o.promptTokenIds.length, 0);
  const completion = outs.reduce((a, o) => a + o.outputs.reduce((b, c) => b + c.tokenIds.length, 0), 0);
  const cached = outs.reduce((a, o) => a + cachedTokens(o), 0);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion, prompt_tokens_details: { cached_tokens: cached } };
}

function sendJson(res: ServerResponse, body: unknown): void {
  const s = JSON.stringify(body);
  res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(s) });
  res.end(s);
}

/** Runs `job`, streaming through `onEvent(prompt index, ev)` when given; always logs and records metrics. */
async function execute(ctx: ServeContext, job: Job, signal: AbortSignal, onEvent?: (i: number, ev: StreamEvent) => void): Promise<RequestOutput[]> {
  const timing: JobTiming = { firstToken: null, started: 0 };
  const outs = await runJob(ctx, job, signal, onEvent, timing);
  finishJob(ctx, job, outs, timing);
  return outs;
}

/** A failure after the SSE headers went out: an error event, then [DONE]. */
function streamFailure(ctx: ServeContext, sse: Sse, job: Job, e: unknown): void {
  const he = toHttpError(e);
  ctx.log(he.status >= 500 ? "error" : "warn", `${job.id} failed: ${he.message}`);
  sse.send(errorBody(he));
  sse.done();
}

export async function handleCompletion(ctx: ServeContext, req: CompletionRequest, res: ServerResponse, signal: AbortSignal, arrival: number): Promise<void> {
  checkModel(ctx, req.model);
  const tok = ctx.engine.llm.tokenizer;
  const addSpecial = req.params.addSpecialTokens ?? true;
  const vocab = ctx.engine.llm.modelConfig.vocabSize;
  const prompts = await Promise.all(req.prompts.map(async (p, i) => {
    if ("text" in p) return { ids: await tok.encode(p.text, { addSpecialTokens: addSpecial }), text: p.text };
    const bad = p.ids.find((t) => t < 0 || t >= vocab);
    if (bad !== undefined) throw badRequest("prompt", `token id ${bad} in prompt ${i} is out of range [0, ${vocab})`);
    return { ids: p.ids, text: tok.decode(p.ids) };
  }));
  prompts.forEach((p, i) => { if (p.ids.length === 0) throw badRequest("prompt", `prompt ${i} is empty (no tokens)`); });
  const id = requestId("cmpl");
  const job = makeJob(ctx, req, id, arrival, prompts, req.guided, "response_format");
  const n = job.params.n ?? 1;
  const created = Math.floor(Date.now() / 1000);
  const model = req.model ?? ctx.modelNames[0]!;
  const base = { id, object: "text_completion", created, model };
  if (!req.stream) {
    const outs = await execute(ctx, job, signal);
    const choices = outs.flatMap((o, i) => o.outputs.map((c) => ({
      index: i * n + c.index, text: (req.echo ? prompts[i]!.text : "") + c.text,
      logprobs: req.logprobs === null ? null : completionLogprobs(tok, [...(req.echo ? promptSlots(o) : []), ...slotsOf(c)], req.logprobs, { at: 0 }),
      finish_reason: c.finishReason, stop_reason: c.stopReason, token_ids: c.tokenIds,
    })));
    sendJson(res, { ...base, choices, usage: usage(outs) });
    return;
  }
  await streamCompletion(ctx, req, job, res, signal, base, prompts);
}

/** Completions SSE: text chunks (each with the logprobs of its tokens), then one final chunk per choice. */
async function streamCompletion(ctx: ServeContext, req: CompletionRequest, job: Job, res: ServerResponse, signal: AbortSignal,
  base: Record<string, unknown>, prompts: { text: string }[]): Promise<void> {
  const tok = ctx.engine.llm.tokenizer;
  const n = job.params.n ?? 1;
  const sse = new Sse(res, base);
  const sent = new Map<number, string>();
  const offsets = new Map<number, { at: number }>();
  const logprobsOf = (index: number, slots: TokenSlot[]) => {
    if (req.logprobs === null || slots.length === 0) return null;
    let at = offsets.get(index);
    if (!at) offsets.set(index, (at = { at: 0 }));
    return completionLogprobs(tok, slots, req.logprobs, at);
  };
  const emit = (index: number, text: string, slots: TokenSlot[] = [], finish: string | null = null, stop: unknown = null) => {
    sent.set(index, (sent.get(index) ?? "") + text);
    const logprobs = logprobsOf(index, slots);
    if (logprobs === null && finish === null) sse.choiceJson(COMPLETION_TOKEN.json(index, text));
    else sse.choice({ index, text, logprobs, finish_reason: finish, ...(finish ? { stop_reason: stop } : {}) });
  };
  // echo with logprobs: the prompt's logprobs are known only from the final output, so the echo
  // chunks and everything after them are held until then (same chunks, sent late)
  const echoLogprobs = req.echo && req.logprobs !== null;
  const echo = (i: number, slots: TokenSlot[]) => { for (let k = 0; k < n; k++) emit(i * n + k, prompts[i]!.text, slots); };
  if (req.echo && !echoLogprobs) prompts.forEach((_p, i) => echo(i, []));
  const chunks = new ChunkedLogprobs(req.logprobs !== null, (index, text, slots) => emit(index, text, slots), echoLogprobs);
  try {
    const outs = await execute(ctx, job, signal, (i, ev) => chunks.event(i * n + ev.index, ev));
    if (echoLogprobs) outs.forEach((o, i) => echo(i, promptSlots(o)));
    chunks.flush((index) => outs[Math.floor(index / n)]?.outputs.find((c) => c.index === index % n));
    outs.forEach((o, i) => o.outputs.forEach((c) => {
      const index = i * n + c.index;
      const full = (req.echo ? prompts[i]!.text : "") + c.text, have = sent.get(index) ?? "";
      emit(index, full.startsWith(have) ? full.slice(have.length) : "", chunks.rest(index, c), c.finishReason ?? "stop", c.stopReason);
    }));
    if (req.includeUsage) sse.send({ ...base, choices: [], usage: usage(outs) });
    sse.done();
  } catch (e) {
    streamFailure(ctx, sse, job, e);
  }
}

/** The chat prompt text: the template with messages, tools and per-request kwargs. */
function renderChat(ctx: ServeContext, req: ChatRequest): string {
  const template = req.chatTemplate ?? ctx.chatTemplate;
  if (!template) throw badRequest("messages", "the model has no chat template (start the server with --chat-template FILE, or pass chat_template)");
  const tok = ctx.engine.llm.tokenizer;
  const tools = req.toolChoice === "none" || req.tools.length === 0 ? undefined
    : req.tools.map((t) => ({ type: "function", function: { name: t.name, description: t.description, parameters: t.parameters } }));
  return tok.applyChatTemplate(req.messages, {
    template, addGenerationPrompt: req.addGenerationPrompt, extra: req.templateKwargs, ...(tools ? { tools } : {}),
  });
}

interface ChatChoiceOut { content: string | null; calls: ToolCall[] }

function chatOutcome(req: ChatRequest, text: string): ChatChoiceOut {
  if (req.toolChoice === "none" || req.tools.length === 0) return { content: text, calls: [] };
  if (req.toolChoice === "auto") {
    const p = parseToolCalls(text, req.tools);
    return { content: p.content, calls: p.calls };
  }
  return { content: null, calls: forcedToolCalls(req.toolChoice, text) };
}

export async function handleChat(ctx: ServeContext, req: ChatRequest, res: ServerResponse, signal: AbortSignal, arrival: number): Promise<void> {
  checkModel(ctx, req.model);
  const tok = ctx.engine.llm.tokenizer;
  let text: string;
  try {
    text = renderChat(ctx, req);
  } catch (e) {
    throw toHttpError(e);
  }
  const ids = await tok.encode(text, { addSpecialTokens: req.params.addSpecialTokens ?? false });
  if (ids.length === 0) throw badRequest("messages", "the rendered prompt is empty (no tokens)");
  const toolGuide = toolChoiceGuide(req.toolChoice, req.tools, req.parallelToolCalls);
  if (toolGuide && req.guided) throw badRequest("response_format", "cannot be combined with tool_choice 'required' or a named tool");
  const id = requestId("chatcmpl");
  const job = makeJob(ctx, req, id, arrival, [{ ids, text }], toolGuide ?? req.guided, toolGuide ? "tool_choice" : "response_format");
  const created = Math.floor(Date.now() / 1000);
  const base = { id, object: "chat.completion", created, model: req.model ?? ctx.modelNames[0]! };
  const finishOf = (c: CompletionOutput, o: ChatChoiceOut) => (o.calls.length && c.finishReason === "stop" ? "tool_calls" : c.finishReason);
  if (!req.stream) {
    const [out] = await execute(ctx, job, signal);
    const choices = out!.outputs.map((c) => {
      const o = chatOutcome(req, c.text);
      const message = { role: "assistant", content: o.content, ...(o.calls.length ? { tool_calls: o.calls } : {}) };
      return { index: c.index, message, logprobs: req.logprobs === null ? null : chatLogprobs(tok, slotsOf(c), req.logprobs), finish_reason: finishOf(c, o), stop_reason: c.stopReason };
    });
    sendJson(res, { ...base, choices, usage: usage([out!]) });
    return;
  }
  await streamChat(ctx, req, job, res, signal, base, finishOf);
}

/** Chat SSE: role first, then content deltas; with tools active the text is held to the end and
 *  sent as tool_calls (or as content when it holds no call). */
async function streamChat(ctx: ServeContext, req: ChatRequest, job: Job, res: ServerResponse, signal: AbortSignal,
  base0: Record<string, unknown>, finishOf: (c: CompletionOutput, o: ChatChoiceOut) => string | null): Promise<void> {
  const base = { ...base0, object: "chat.completion.chunk" };
  const tok = ctx.engine.llm.tokenizer;
  const sse = new Sse(res, base);
  const n = job.params.n ?? 1;
  const holdText = req.toolChoice !== "none" && req.tools.length > 0;
  const sent = new Map<number, string>();
  const delta = (index: number, d: Record<string, unknown>, slots: TokenSlot[] = [], finish: string | null = null, stop: unknown = null) => {
    const logprobs = req.logprobs === null || slots.length === 0 ? null : chatLogprobs(tok, slots, req.logprobs);
    sse.choice({ index, delta: d, logprobs, finish_reason: finish, ...(finish ? { stop_reason: stop } : {}) });
  };
  for (let k = 0; k < n; k++) delta(k, { role: "assistant", content: "" });
  const chunks = new ChunkedLogprobs(req.logprobs !== null, (index, text, slots) => {
    sent.set(index, (sent.get(index) ?? "") + text);
    if (slots.length === 0) sse.choiceJson(CHAT_TOKEN.json(index, text));
    else delta(index, { content: text }, slots);
  });
  try {
    const [out] = await execute(ctx, job, signal, (_i, ev) => { if (!holdText) chunks.event(ev.index, ev); });
    chunks.flush((index) => out!.outputs.find((c) => c.index === index));
    for (const c of out!.outputs) {
      const o = holdText ? chatOutcome(req, c.text) : { content: c.text, calls: [] };
      const have = sent.get(c.index) ?? "";
      // the last delta (tool calls, or the text not sent yet) goes with finish_reason and the logprobs of the tokens not sent yet
      const last: Record<string, unknown> = {};
      if (o.calls.length) last["tool_calls"] = o.calls.map((call, j) => ({ index: j, ...call }));
      else if (o.content && o.content.length > have.length && o.content.startsWith(have)) last["content"] = o.content.slice(have.length);
      delta(c.index, last, chunks.rest(c.index, c), finishOf(c, o) ?? "stop", c.stopReason);
    }
    if (req.includeUsage) sse.send({ ...base, choices: [], usage: usage([out!]) });
    sse.done();
  } catch (e) {
    streamFailure(ctx, sse, job, e);
  }
}

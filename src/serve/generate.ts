// Shared by both endpoints: turn a parsed request into prompts + validated sampling params, run it
// on the engine (one generateAsync per prompt, admission all-or-nothing), and record metrics and the
// per-request log line. Everything that can be the client's fault is checked before generation
// starts, so a streaming response never has to turn into an error half way.
import { randomBytes } from "node:crypto";
import type { RequestOutput } from "../api/request-output.js";
import type { StreamEvent } from "../api/llm.js";
import {
  createSamplingParams, validateSamplingParamsForVocab, type GuidedDecodingParams, type SamplingParamsInput,
} from "../api/sampling-params.js";
import { TllmError, ValidationError } from "../errors.js";
import type { ServeEngine, Ticket } from "./engine.js";
import { badRequest, HttpError, toHttpError } from "./errors.js";
import type { ServerMetrics } from "./metrics.js";
import { API_NAMES, type ApiRequest } from "./protocol.js";

export interface ServeContext {
  engine: ServeEngine;
  metrics: ServerMetrics;
  /** names a request's `model` may use */
  modelNames: string[];
  /** --chat-template, else the model's */
  chatTemplate: string | undefined;
  log: (level: "debug" | "info" | "warn" | "error", line: string) => void;
}

export interface Job {
  id: string;
  /** performance.now() at arrival, ms */
  arrival: number;
  prompts: { ids: number[]; text: string }[];
  params: SamplingParamsInput;
  /** the guide field a request used (for the 501 naming it) */
  guideParam: string | null;
  cacheSalt: string | null;
  priority: number | null;
}

export function requestId(prefix: string): string {
  return `${prefix}-${randomBytes(16).toString("hex")}`;
}

/** 404 unless `model` is absent or one of the served names. */
export function checkModel(ctx: ServeContext, model: string | null): void {
  if (model !== null && !ctx.modelNames.includes(model)) {
    throw new HttpError(404, `The model '${model.slice(0, 200)}' does not exist (served: ${ctx.modelNames.join(", ")})`, "model", "NotFoundError");
  }
}

/** Checks prompt ids against the vocabulary and lengths; settles max_tokens. */
function settleLengths(ctx: ServeContext, req: ApiRequest, prompts: { ids: number[] }[]): number {
  const c = ctx.engine.llm.config;
  const vocab = ctx.engine.llm.modelConfig.vocabSize;
  let maxLen = 0;
  prompts.forEach((p, i) => {
    const bad = p.ids.find((t) => t < 0 || t >= vocab);
    if (bad !== undefined) throw badRequest("prompt", `token id ${bad} in prompt ${i} is out of range [0, ${vocab})`);
    if (p.ids.length > c.maxInputLen) {
      throw badRequest(req.kind === "chat" ? "messages" : "prompt", `the prompt has ${p.ids.length} tokens, over the maximum input length of ${c.maxInputLen} (max_seq_len ${c.maxSeqLen})`);
    }
    maxLen = Math.max(maxLen, p.ids.length);
  });
  const room = c.maxSeqLen - maxLen;
  if (req.maxTokens === null) return Math.max(1, req.kind === "completion" ? Math.min(16, room) : room);
  if (req.maxTokens >= 1 && maxLen + req.maxTokens > c.maxSeqLen) {
    throw badRequest("max_tokens", `the prompt (${maxLen} tokens) + max_tokens (${req.maxTokens}) = ${maxLen + req.maxTokens} exceeds max_seq_len ${c.maxSeqLen}`);
  }
  return req.maxTokens;
}

/** Builds the job: sampling params validated here (400s name the API field), guide availability checked. */
export function makeJob(ctx: ServeContext, req: ApiRequest, id: string, arrival: number,
  prompts: { ids: number[]; text: string }[], guide: GuidedDecodingParams | null, guideParam: string | null): Job {
  const maxTokens = settleLengths(ctx, req, prompts);
  if (guide && !ctx.engine.guidedAvailable) {
    throw new HttpError(501, `${guideParam}: guided decoding (structured output) is not available in this build`, guideParam, "NotImplementedError");
  }
  const params: SamplingParamsInput = { ...req.params, maxTokens, addSpecialTokens: false };
  if (req.logprobs !== null) params.logprobs = req.logprobs;
  // echo + logprobs: the prompt tokens' logprobs too (OpenAI completions)
  if (req.kind === "completion" && req.echo && req.logprobs !== null) params.promptLogprobs = req.logprobs;
  if (guide) params.guidedDecoding = guide;
  // beam search (best_of = beam width, n beams returned): the beams reorder until the end, so no stream
  if (req.stream && params.useBeamSearch === true) throw badRequest("use_beam_search", "beam search is not supported with stream=true");
  if (req.stream && (params.bestOf ?? 1) > (params.n ?? 1)) throw badRequest("best_of", "best_of > n is not supported with stream=true");
  try {
    const sp = createSamplingParams(params);
    validateSamplingParamsForVocab(sp, ctx.engine.llm.modelConfig.vocabSize);
  } catch (e) {
    throw toHttpError(e, API_NAMES);
  }
  return { id, arrival, prompts, params, guideParam, cacheSalt: req.cacheSalt, priority: req.priority };
}

/** KV blocks one prompt's sequences may hold (the simple runner reserves to completion). */
function blocksFor(ctx: ServeContext, promptLen: number, p: SamplingParamsInput): number {
  const c = ctx.engine.llm.config;
  const reserve = Math.min(c.maxSeqLen, promptLen + (p.maxTokens ?? 0));
  return Math.ceil(reserve / ctx.engine.tokensPerBlock) * (p.bestOf ?? p.n ?? 1);
}

export interface JobTiming {
  /** performance.now() of the first generated token, ms */
  firstToken: number | null;
  /** when handed to the engine, ms */
  started: number;
}

/**
 * Runs every prompt of `job`; `onEvent(promptIndex, ev)` sees the stream. Resolves with one
 * RequestOutput per prompt. Aborting `signal` cancels all of them (their outputs end 'cancelled').
 */
export async function runJob(ctx: ServeContext, job: Job, signal: AbortSignal,
  onEvent?: (prompt: number, ev: StreamEvent) => void, timing: JobTiming = { firstToken: null, started: 0 }): Promise<RequestOutput[]> {
  const tickets: Ticket[] = [];
  try {
    for (const p of job.prompts) tickets.push(ctx.engine.admit(blocksFor(ctx, p.ids.length, job.params)));
  } catch (e) {
    tickets.forEach((t) => ctx.engine.release(t));
    throw e;
  }
  timing.started = performance.now();
  try {
    return await Promise.all(job.prompts.map(async (p, i) => {
      const out = await ctx.engine.start(p.ids, job.params, {
        signal, ...(job.cacheSalt !== null ? { cacheSalt: job.cacheSalt } : {}), ...(job.priority !== null ? { priority: job.priority } : {}),
      }, (ev) => {
        tickets[i]!.running = true;
        if (ev.token >= 0) timing.firstToken ??= performance.now();
        try {
          onEvent?.(i, ev);
        } catch (e) {
          // a failure in the response writer must not stop the stream's bookkeeping (the LLM swallows it)
          ctx.log("error", `${job.id}: stream event handler failed: ${(e as Error).stack ?? e}`);
        }
      });
      ctx.engine.release(tickets[i]!);
      return out;
    }));
  } catch (e) {
    if (e instanceof ValidationError) throw toHttpError(e, API_NAMES);
    // an engine-level TllmError (the executor's ExecutorError: httpStatus 500) means the engine is gone
    if (e instanceof TllmError && e.httpStatus >= 500) ctx.engine.markFailed(e);
    throw e;
  } finally {
    tickets.forEach((t) => ctx.engine.release(t));
  }
}

/** Prefix-cache tokens of a result when the executor reports them (absent on the simple runner). */
export function cachedTokens(out: RequestOutput): number {
  const v = (out as unknown as { cachedTokens?: unknown }).cachedTokens;
  return typeof v === "number" ? v : 0;
}

/** Metrics + one log line: id, tokens in/out, TTFT, duration, finish reasons. */
export function finishJob(ctx: ServeContext, job: Job, outs: RequestOutput[], timing: JobTiming): void {
  const end = performance.now();
  const choices = outs.flatMap((o) => o.outputs);
  const promptTokens = outs.reduce((a, o) => a + o.promptTokenIds.length, 0);
  const genTokens = choices.reduce((a, c) => a + c.tokenIds.length, 0);
  const longest = Math.max(0, ...choices.map((c) => c.tokenIds.length));
  const ttft = timing.firstToken === null ? null : (timing.firstToken - job.arrival) / 1000;
  const reasons = choices.map((c) => c.finishReason ?? "unknown");
  ctx.metrics.record({
    ttft, e2e: (end - job.arrival) / 1000, queue: (timing.started - job.arrival) / 1000,
    tpot: timing.firstToken !== null && longest > 1 ? (end - timing.firstToken) / 1000 / (longest - 1) : null,
    promptTokens, generationTokens: genTokens, finishReasons: reasons,
  });
  ctx.log("info", `${job.id} in=${promptTokens} out=${genTokens} ttft=${ttft === null ? "-" : (ttft * 1000).toFixed(1) + "ms"} ` +
    `dur=${(end - job.arrival).toFixed(1)}ms finish=${[...new Set(reasons)].join(",")}`);
}

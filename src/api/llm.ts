// LLM: the user-facing entry point, after TensorRT-LLM's `tensorrt_llm.LLM`.
//   const llm = await LLM.create({ model: "demo" });        // or new LLM(args); await llm.ready()
//   const out = await llm.generate("Hello", { maxTokens: 16 });
//   await llm.shutdown();                     // or `await using llm = ...` where the runtime has it
// Construction validates LlmArgs synchronously (bad args throw at once); loading (hub download,
// demo build, tokenizer, the executor worker) runs in ready(). Generation runs in the executor worker
// (src/executor: in-flight batching over a paged KV cache with prefix reuse); concurrent generate()
// calls are batched together, and the caller's thread never runs the model.
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { openGguf, readGgufMetadata } from "../checkpoint/gguf.js";
import { generationDefaults, readHfConfig } from "../checkpoint/hf-dir.js";
import { DEMO_NOTICE, resolveModel, type ResolvedModel } from "../checkpoint/resolve-model.js";
import type { ModelConfig } from "../config/model-config.js";
import { TllmError, ValidationError } from "../errors.js";
import { configFromGguf } from "../models/config-from-gguf.js";
import { configFromHf } from "../models/config-from-hf.js";
import { executorConfigFromResolved } from "../executor/from-llm-config.js";
import { checkBeamParams } from "../executor/beam-group.js";
import { WorkerExecutor, type GenerateAsyncOptions } from "../executor/executor.js";
import type { ExecutorSnapshot, IterationStats } from "../executor/stats.js";
import type { GenerationResult } from "../executor/result.js";
import { Tokenizer } from "../tokenizer/tokenizer.js";
import { parseLlmArgs, resolveConfig, type LlmArgs, type LlmArgsInput, type ResolvedConfig } from "./llm-args.js";
import type { RequestOutput, TokenLogprobs } from "./request-output.js";
import {
  createSamplingParams, validateSamplingParamsForVocab, type SamplingParams, type SamplingParamsInput,
} from "./sampling-params.js";

export type PromptInput = string | number[];
export type PromptsInput = PromptInput | PromptInput[];

/** One streamed step of one output sequence. */
export interface StreamEvent {
  requestId: number;
  /** which of the request's outputs (0 for n = 1) */
  index: number;
  /** newly completed text (may be "": a partial UTF-8 character, or text held back by a stop string) */
  textDelta: string;
  /** the token sampled this step (-1 on a cancel) */
  token: number;
  /** this token's logprobs (sampled token and the requested top-k), when SamplingParams.logprobs is set */
  logprobs?: TokenLogprobs | null;
  finished: boolean;
}

export interface GenerateOptions {
  /** called as text is generated (whole characters only) */
  onStream?: (ev: StreamEvent) => void;
  /** aborts the call: unfinished outputs end with finishReason 'cancelled' */
  signal?: AbortSignal;
  /** separates prefix-cache entries: requests with different salts never share KV blocks */
  cacheSalt?: string;
  /** in [0, 1], higher served first under schedulerConfig.waitingQueuePolicy "priority" (default 0.5) */
  priority?: number;
}

/** Logging: one line per event on stderr, silenced by TLLM_LOG_LEVEL=warn|error. */
function logInfo(line: string): void {
  const level = (process.env["TLLM_LOG_LEVEL"] ?? "info").toLowerCase();
  if (level === "info" || level === "debug") process.stderr.write(line + "\n");
}

interface NativeModule {
  isNativeAvailable(): boolean;
}

/** The native addon's module, or null when it is absent or fails to load. */
async function loadNativeModule(): Promise<NativeModule | null> {
  const spec = "../backends/native/index.js"; // not a literal: the addon is optional at build time
  try {
    const m = (await import(spec)) as Partial<NativeModule>;
    return typeof m.isNativeAvailable === "function" && m.isNativeAvailable() ? (m as NativeModule) : null;
  } catch {
    return null;
  }
}

export class LLM {
  readonly args: LlmArgs;
  private state: {
    config: ResolvedConfig; model: ModelConfig; tokenizer: Tokenizer; executor: WorkerExecutor;
    source: ResolvedModel; generationDefaults: SamplingParamsInput;
  } | null = null;
  private readonly loading: Promise<void>;
  /** generate() calls in flight (shutdown waits for them) */
  private readonly pending = new Set<Promise<unknown>>();
  private closed = false;

  /** Validates `args` now (throws UnknownOptionError / ValidationError); loading starts in the background. */
  constructor(args: LlmArgsInput | LlmArgs) {
    this.args = parseLlmArgs(args);
    this.loading = this.load();
    this.loading.catch(() => {}); // surfaced by ready() / generate(), not as an unhandled rejection
  }

  static async create(args: LlmArgsInput | LlmArgs): Promise<LLM> {
    const llm = new LLM(args);
    await llm.ready();
    return llm;
  }

  /** Resolves when the model is loaded; rejects with the load error. */
  ready(): Promise<void> {
    return this.loading;
  }

  get tokenizer(): Tokenizer {
    return this.loaded().tokenizer;
  }
  get modelConfig(): ModelConfig {
    return this.loaded().model;
  }
  get config(): ResolvedConfig {
    return this.loaded().config;
  }
  /** where the model came from (local path, hub snapshot, demo) */
  get source(): ResolvedModel {
    return this.loaded().source;
  }

  private loaded(): NonNullable<LLM["state"]> {
    if (this.closed) throw new TllmError("LLM: used after shutdown()");
    if (!this.state) throw new TllmError("LLM: not loaded yet; await llm.ready() (or use LLM.create)");
    return this.state;
  }

  private async load(): Promise<void> {
    const a = this.args;
    const source = await resolveModel(a.model, {
      revision: a.revision, token: a.hfToken ?? undefined, offline: a.offline ?? undefined,
      hubUrl: a.hubUrl ?? undefined, cacheDir: a.cacheDir ?? undefined, log: logInfo,
    });
    if (source.source === "demo") logInfo(DEMO_NOTICE);
    const native = a.backend === "reference" ? null : await loadNativeModule();
    const peek = peekModelConfig(source);
    const { config, log } = resolveConfig(a, { model: peek, nativeAvailable: native !== null });
    logInfo(`tllm: ${source.path} (${source.source}); ${log}`);
    const tokenizer = loadTokenizer(a.tokenizer, source);
    const generationDefaults = a.generationConfig === "auto" && source.format === "hf" ? hfSamplingDefaults(source.path) : {};
    const level = (process.env["TLLM_LOG_LEVEL"] ?? "info").toLowerCase();
    const executor = await WorkerExecutor.create(
      executorConfigFromResolved(config, source.path, generationDefaults, level === "info" || level === "debug"));
    this.state = { config, model: peek, tokenizer, executor, source, generationDefaults };
    if (this.closed) await executor.shutdown();
  }

  /**
   * Generates for one prompt (string or token ids) or a list of them. Returns one RequestOutput
   * for a single prompt, an array (in input order) for a list. Concurrent calls are batched together.
   */
  generate(prompt: PromptInput, params?: SamplingParamsInput, opts?: GenerateOptions): Promise<RequestOutput>;
  generate(prompts: PromptInput[], params?: SamplingParamsInput | SamplingParamsInput[], opts?: GenerateOptions): Promise<RequestOutput[]>;
  async generate(prompts: PromptsInput, params?: SamplingParamsInput | SamplingParamsInput[], opts: GenerateOptions = {}): Promise<RequestOutput | RequestOutput[]> {
    await this.loading;
    const single = !isPromptList(prompts);
    const list: PromptInput[] = single ? [prompts as PromptInput] : (prompts as PromptInput[]);
    const paramList = Array.isArray(params) ? params : list.map(() => params);
    if (paramList.length !== list.length) {
      throw new ValidationError("params", `${paramList.length} entries`, `expected one per prompt (${list.length})`);
    }
    const run = this.runBatch(list, paramList, opts);
    this.pending.add(run);
    try {
      const outs = await run;
      return single ? outs[0]! : outs;
    } finally {
      this.pending.delete(run);
    }
  }

  private async runBatch(prompts: PromptInput[], params: (SamplingParamsInput | undefined)[], opts: GenerateOptions): Promise<RequestOutput[]> {
    const st = this.loaded();
    const prepared = await Promise.all(prompts.map((p, i) => this.prepare(p, params[i], i)));
    const streaming = opts.onStream !== undefined;
    const exOpts: GenerateAsyncOptions = { streaming };
    if (opts.cacheSalt !== undefined) exOpts.cacheSalt = opts.cacheSalt;
    if (opts.priority !== undefined) exOpts.priority = opts.priority;
    const results = prepared.map((p, i) => st.executor.generateAsync(p.ids, params[i] ?? {}, exOpts));
    const abortAll = () => results.forEach((r) => r.abort());
    if (opts.signal?.aborted) abortAll();
    opts.signal?.addEventListener("abort", abortAll, { once: true });
    try {
      if (opts.onStream) await Promise.all(results.map((r) => forwardEvents(r, opts.onStream!)));
      const finals = await Promise.all(results.map((r) => r.promise));
      return finals.map((f, i) => ({
        requestId: f.requestId, prompt: prepared[i]!.text, promptTokenIds: prepared[i]!.ids, outputs: f.outputs, finished: f.finished,
        promptLogprobs: f.promptLogprobs,
      }));
    } finally {
      opts.signal?.removeEventListener("abort", abortAll);
    }
  }

  /** Tokenizes and validates one prompt and its sampling params. */
  private async prepare(prompt: PromptInput, input: SamplingParamsInput | undefined, i: number) {
    const st = this.loaded();
    const params: SamplingParams = createSamplingParams(input, st.generationDefaults);
    checkBeamParams(params);
    if (params.strategy === "beam" && params.bestOf > st.config.maxBeamWidth) {
      throw new ValidationError("bestOf", params.bestOf, `beam width exceeds LlmArgs.maxBeamWidth (${st.config.maxBeamWidth}); start the LLM with a larger maxBeamWidth`);
    }
    if (params.endId === undefined) params.endId = st.tokenizer.eosTokenIds[0];
    validateSamplingParamsForVocab(params, st.model.vocabSize);
    let ids = typeof prompt === "string" ? await st.tokenizer.encode(prompt, { addSpecialTokens: params.addSpecialTokens }) : [...prompt];
    for (const t of ids) {
      if (!Number.isInteger(t) || t < 0 || t >= st.model.vocabSize) {
        throw new ValidationError(`prompts[${i}]`, t, `token id out of range [0, ${st.model.vocabSize})`);
      }
    }
    if (params.truncatePromptTokens !== undefined) ids = ids.slice(-params.truncatePromptTokens);
    if (ids.length === 0) throw new ValidationError(`prompts[${i}]`, prompt, "is empty (no tokens)");
    if (ids.length > st.config.maxInputLen) {
      throw new ValidationError(`prompts[${i}]`, `${ids.length} tokens`, `exceeds maxInputLen (${st.config.maxInputLen})`);
    }
    return { text: typeof prompt === "string" ? prompt : null, ids, params };
  }

  /** Stops the executor worker and releases the model. Later calls fail; pending generate() calls finish first. */
  async shutdown(): Promise<void> {
    if (this.closed) return;
    await Promise.allSettled([...this.pending]);
    this.closed = true;
    await this.loading.catch(() => {});
    await this.state?.executor.shutdown();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.shutdown();
  }

  /**
   * Streaming form of generate() for one prompt (TensorRT-LLM's generate_async(streaming=True)):
   *   const s = llm.generateAsync("Hi", { maxTokens: 8 });
   *   for await (const ev of s) process.stdout.write(ev.textDelta);
   *   const out = await s.result;            // s.abort() ends it with 'cancelled'
   */
  generateAsync(prompt: PromptInput, params?: SamplingParamsInput, opts: Omit<GenerateOptions, "onStream"> = {}): GenerationStream {
    const { signal: outer, ...rest } = opts;
    return new GenerationStream((onStream, signal) => this.generate(prompt, params, { ...rest, onStream, signal }), outer);
  }

  /** Iteration stats recorded by the executor since the previous call (TensorRT-LLM's get_stats). */
  getStats(): Promise<IterationStats[]> {
    return this.loaded().executor.getStats();
  }

  /** Point-in-time executor view: active / queued requests, KV blocks, worker memory. */
  snapshot(): Promise<ExecutorSnapshot> {
    return this.loaded().executor.snapshot();
  }

  /** False once the executor worker failed (every later call fails) or after shutdown. */
  get healthy(): boolean {
    return !this.closed && this.state !== null && this.state.executor.healthy;
  }
}

/** Events of one generateAsync() call as an async iterable; `result` is the final RequestOutput. */
export class GenerationStream implements AsyncIterable<StreamEvent> {
  readonly result: Promise<RequestOutput>;
  private readonly ac = new AbortController();
  private readonly events: StreamEvent[] = [];
  private done = false;
  private wake: (() => void) | null = null;

  constructor(start: (onStream: (ev: StreamEvent) => void, signal: AbortSignal) => Promise<RequestOutput>, outer?: AbortSignal) {
    if (outer) {
      if (outer.aborted) this.ac.abort();
      else outer.addEventListener("abort", () => this.ac.abort(), { once: true });
    }
    this.result = start((ev) => this.push(ev), this.ac.signal).finally(() => {
      this.done = true;
      this.wake?.();
    });
    this.result.catch(() => {}); // reported through `result` and the iterator, not as unhandled
  }

  abort(): void {
    this.ac.abort();
  }

  private push(ev: StreamEvent): void {
    this.events.push(ev);
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<StreamEvent> {
    for (;;) {
      while (this.events.length > 0) yield this.events.shift()!;
      if (this.done) break;
      await new Promise<void>((ok) => { this.wake = ok; });
      this.wake = null;
    }
    await this.result; // rethrows a failure
  }
}

function isPromptList(p: PromptsInput): boolean {
  if (typeof p === "string") return false;
  if (!Array.isArray(p)) throw new ValidationError("prompts", p, "expected a string, token ids, or a list of them");
  if (p.length === 0) throw new ValidationError("prompts", p, "is an empty list");
  return typeof p[0] !== "number";
}

/** Turns the executor's streamed snapshots into StreamEvents: one per generated token, and one for
 *  text that arrives with no token (the tail flushed by a cancel, token -1). */
async function forwardEvents(r: GenerationResult, onStream: (ev: StreamEvent) => void): Promise<void> {
  const done = new Set<number>();
  try {
    for await (const s of r) {
      for (const o of s.outputs) {
        const finished = o.finishReason !== null;
        if (done.has(o.index) || (o.tokenIdsDiff.length === 0 && o.textDiff === "" && !finished)) continue;
        const tokens = o.tokenIdsDiff.length > 0 ? o.tokenIdsDiff : [-1];
        tokens.forEach((token, k) => {
          const last = k === tokens.length - 1;
          onStream({
            requestId: s.requestId, index: o.index, textDelta: last ? o.textDiff : "", token, finished: last && finished,
            ...(o.logprobsDiff ? { logprobs: o.logprobsDiff[k] ?? null } : {}),
          });
        });
        if (finished) done.add(o.index);
      }
    }
  } catch {
    // the error is reported by the final output's promise
  }
}

/** The model's config without mapping its weights (for resolveConfig before a backend is chosen). */
function peekModelConfig(source: ResolvedModel): ModelConfig {
  if (source.format === "hf") return configFromHf(readHfConfig(source.path), join(source.path, "config.json"));
  const ckpt = openGguf(source.path);
  try {
    return configFromGguf(ckpt.metadata, source.path, ckpt.tensors);
  } finally {
    ckpt.close();
  }
}

function loadTokenizer(override: string | null, source: ResolvedModel): Tokenizer {
  const path = override ?? source.path;
  if (existsSync(path) && statSync(path).isDirectory()) return Tokenizer.fromHfDir(path);
  return Tokenizer.fromGgufMetadata(readGgufMetadata(path), path);
}

/** generation_config.json sampling defaults in SamplingParams' names. */
function hfSamplingDefaults(dir: string): SamplingParamsInput {
  const g = generationDefaults(dir);
  const d: SamplingParamsInput = {};
  if (g.temperature !== undefined) d.temperature = g.temperature;
  if (g.topP !== undefined) d.topP = g.topP;
  if (g.topK !== undefined) d.topK = g.topK;
  if (g.repetitionPenalty !== undefined) d.repetitionPenalty = g.repetitionPenalty;
  return d;
}

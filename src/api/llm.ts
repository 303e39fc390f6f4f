// LLM: the user-facing entry point, after TensorRT-LLM's `tensorrt_llm.LLM`.
//   const llm = await LLM.create({ model: "demo" });        // or new LLM(args); await llm.ready()
//   const out = await llm.generate("Hello", { maxTokens: 16 });
//   await llm.shutdown();                     // or `await using llm = ...` where the runtime has it
// Construction validates LlmArgs synchronously (bad args throw at once); loading (hub download,
// demo build, weights, tokenizer) runs in ready(). generate() calls are served one at a time by the
// simple loop in ./simple-runner.ts (the executor worker replaces it later).
import { existsSync, statSync } from "node:fs";
import { freemem } from "node:os";
import { join } from "node:path";
import type { Backend } from "../backends/backend.js";
import { ReferenceBackend } from "../backends/reference/index.js";
import { openGguf, readGgufMetadata } from "../checkpoint/gguf.js";
import { generationDefaults, readHfConfig } from "../checkpoint/hf-dir.js";
import { DEMO_NOTICE, resolveModel, type ResolvedModel } from "../checkpoint/resolve-model.js";
import type { Checkpoint } from "../checkpoint/types.js";
import type { ModelConfig } from "../config/model-config.js";
import { TllmError, ValidationError } from "../errors.js";
import { configFromGguf } from "../models/config-from-gguf.js";
import { configFromHf } from "../models/config-from-hf.js";
import { loadModel } from "../models/loader.js";
import { Tokenizer } from "../tokenizer/tokenizer.js";
import { parseLlmArgs, resolveConfig, type LlmArgs, type LlmArgsInput, type ResolvedConfig } from "./llm-args.js";
import type { CompletionOutput, RequestOutput } from "./request-output.js";
import {
  createSamplingParams, validateSamplingParamsForVocab, type SamplingParams, type SamplingParamsInput,
} from "./sampling-params.js";
import { RunnerSeq, SimpleRunner } from "./simple-runner.js";

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
  finished: boolean;
}

export interface GenerateOptions {
  /** called as text is generated (whole characters only) */
  onStream?: (ev: StreamEvent) => void;
  /** aborts the call: unfinished outputs end with finishReason 'cancelled' */
  signal?: AbortSignal;
}

/** Logging: one line per event on stderr, silenced by TLLM_LOG_LEVEL=warn|error. */
function logInfo(line: string): void {
  const level = (process.env["TLLM_LOG_LEVEL"] ?? "info").toLowerCase();
  if (level === "info" || level === "debug") process.stderr.write(line + "\n");
}

interface NativeModule {
  isNativeAvailable(): boolean;
  setNativeThreads(n: number): void;
  NativeBackend: new () => Backend;
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
    config: ResolvedConfig; model: ModelConfig; tokenizer: Tokenizer; checkpoint: Checkpoint; runner: SimpleRunner;
    source: ResolvedModel; generationDefaults: SamplingParamsInput; kvBudget: number;
  } | null = null;
  private readonly loading: Promise<void>;
  private queue: Promise<unknown> = Promise.resolve();
  private nextRequestId = 0;
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
    const kvBudget = kvBudgetTokens(peek, config);
    logInfo(`tllm: ${source.path} (${source.source}); ${log} kv.budgetTokens=${kvBudget}`);
    if (config.backend === "native") native!.setNativeThreads(config.threads);
    const backend: Backend = config.backend === "native" ? new native!.NativeBackend() : new ReferenceBackend();
    const loaded = loadModel(source.path, backend);
    let tokenizer: Tokenizer;
    try {
      tokenizer = loadTokenizer(a.tokenizer, source);
    } catch (e) {
      loaded.checkpoint.close();
      throw e;
    }
    const runner = new SimpleRunner(loaded.model, loaded.config, {
      maxBatchSize: config.maxBatchSize, maxNumTokens: config.maxNumTokens, maxSeqLen: config.maxSeqLen,
      tokensPerBlock: config.kvCacheConfig.tokensPerBlock, kvDtype: config.kvCacheConfig.dtype,
      kvMaxTokens: kvBudget,
    });
    const generationDefaults = a.generationConfig === "auto" && source.format === "hf" ? hfSamplingDefaults(source.path) : {};
    this.state = { config, model: loaded.config, tokenizer, checkpoint: loaded.checkpoint, runner, source, generationDefaults, kvBudget };
  }

  /**
   * Generates for one prompt (string or token ids) or a list of them. Returns one RequestOutput
   * for a single prompt, an array (in input order) for a list. Calls are served one at a time.
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
    const run = this.queue.then(() => this.runBatch(list, paramList, opts));
    this.queue = run.catch(() => {});
    const outs = await run;
    return single ? outs[0]! : outs;
  }

  private async runBatch(prompts: PromptInput[], params: (SamplingParamsInput | undefined)[], opts: GenerateOptions): Promise<RequestOutput[]> {
    const st = this.loaded();
    const prepared = await Promise.all(prompts.map((p, i) => this.prepare(p, params[i], i)));
    const outputs: RequestOutput[] = [];
    const seqs: RunnerSeq[] = [];
    for (const p of prepared) {
      const requestId = this.nextRequestId++;
      const extraEos = new Set(p.params.endId === st.tokenizer.eosTokenIds[0] ? st.tokenizer.eosTokenIds.slice(1) : []);
      const mine = Array.from({ length: p.params.bestOf }, (_, k) =>
        new RunnerSeq(requestId, k, p.ids, p.params, st.tokenizer, extraEos));
      mine.forEach((s) => { s.rows.badWordsIds = p.badWordsIds; });
      seqs.push(...mine);
      outputs.push({ requestId, prompt: p.text, promptTokenIds: p.ids, outputs: mine.map((s) => s.output), finished: false });
    }
    const onDelta = opts.onStream
      ? (s: RunnerSeq, textDelta: string, token: number) =>
        opts.onStream!({ requestId: s.requestId, index: s.index, textDelta, token, finished: s.finished })
      : undefined;
    await st.runner.run(seqs, onDelta, () => opts.signal?.aborted === true);
    prepared.forEach((p, i) => finalize(outputs[i]!, p.params));
    return outputs;
  }

  /** Tokenizes and validates one prompt and its sampling params. */
  private async prepare(prompt: PromptInput, input: SamplingParamsInput | undefined, i: number) {
    const st = this.loaded();
    const params: SamplingParams = createSamplingParams(input, st.generationDefaults);
    if (params.strategy === "beam") throw new ValidationError("useBeamSearch", true, "beam search is not supported yet");
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
    const reserve = Math.min(st.config.maxSeqLen, ids.length + params.maxTokens);
    if (reserve > st.kvBudget) {
      throw new ValidationError("maxTokens", params.maxTokens, `prompt (${ids.length}) + maxTokens needs ${reserve} KV tokens, over the budget of ${st.kvBudget}`);
    }
    const badWordsIds = await Promise.all(params.bad.map((w) => st.tokenizer.encode(w, { addSpecialTokens: false })));
    return { text: typeof prompt === "string" ? prompt : null, ids, params, badWordsIds };
  }

  /** Releases the model's files. Later calls fail; pending generate() calls finish first. */
  async shutdown(): Promise<void> {
    if (this.closed) return;
    await this.queue;
    this.closed = true;
    await this.loading.catch(() => {});
    this.state?.checkpoint.close();
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
  generateAsync(prompt: PromptInput, params?: SamplingParamsInput, opts: { signal?: AbortSignal } = {}): GenerationStream {
    return new GenerationStream((onStream, signal) => this.generate(prompt, params, { onStream, signal }), opts.signal);
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

/** Keeps the n best of bestOf outputs (by cumulative logprob), re-indexed, and marks the request done. */
function finalize(out: RequestOutput, params: SamplingParams): void {
  let outs: CompletionOutput[] = out.outputs;
  if (params.bestOf > params.n) {
    outs = [...outs].sort((a, b) => (b.cumulativeLogprob ?? 0) - (a.cumulativeLogprob ?? 0)).slice(0, params.n);
    outs.forEach((o, i) => { o.index = i; });
  }
  out.outputs = outs;
  out.finished = outs.every((o) => o.finishReason !== null);
}

/** KV tokens one generate wave may use: kvCacheConfig.maxTokens, capped by freeMemoryFraction of the
 *  memory free now (one token costs numLayers * 2 (K,V) * numKvHeads * headDim * bytes). */
function kvBudgetTokens(m: ModelConfig, c: ResolvedConfig): number {
  const bytesPerToken = m.numLayers * 2 * m.numKvHeads * m.headDim * (c.kvCacheConfig.dtype === "f16" ? 2 : 4);
  const byMemory = Math.floor((freemem() * c.kvCacheConfig.freeMemoryFraction) / bytesPerToken);
  return Math.max(1, Math.min(c.kvCacheConfig.maxTokens ?? Infinity, byMemory));
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

// Builds everything the step loop needs from an ExecutorConfig (inside the worker): backend, model,
// tokenizer, KV pool (sized and logged), KV cache manager, scheduler, model runner. And turns a
// submit message into a Submission (params resolved, prompt tokenized and checked).
import { existsSync, statSync } from "node:fs";
import type { Backend } from "../backends/backend.js";
import { ReferenceBackend } from "../backends/reference/index.js";
import { readGgufMetadata } from "../checkpoint/gguf.js";
import { createSamplingParams, validateSamplingParamsForVocab, type SamplingParamsInput } from "../api/sampling-params.js";
import { createKvPool } from "../engine/kv-pool.js";
import { ModelRunner } from "../engine/model-runner.js";
import { ValidationError } from "../errors.js";
import { KVCacheManager } from "../kvcache/kv-cache-manager.js";
import { loadModel } from "../models/loader.js";
import { availableParallelism } from "node:os";
import { GuidedDecoder } from "../sampling/guided/decoder.js";
import { createGuidedDecoder } from "../sampling/guided/parallel.js";
import { Scheduler } from "../scheduler/scheduler.js";
import { Tokenizer } from "../tokenizer/tokenizer.js";
import { checkBeamParams } from "./beam-group.js";
import type { LogitsCallbackBridge } from "./callbacks.js";
import { checkExecutorConfig, EXECUTOR_DEFAULTS, type EngineInfo, type ExecutorConfig } from "./config.js";
import type { SubmitMsg } from "./messages.js";
import { ExecutorCore, type Submission } from "./step-loop.js";

interface NativeModule {
  isNativeAvailable(): boolean;
  setNativeThreads(n: number): void;
  NativeBackend: new () => Backend;
}

async function loadNative(): Promise<NativeModule | null> {
  const spec = "../backends/native/index.js"; // not a literal: the addon is optional at build time
  try {
    const m = (await import(spec)) as Partial<NativeModule>;
    return typeof m.isNativeAvailable === "function" && m.isNativeAvailable() ? (m as NativeModule) : null;
  } catch {
    return null;
  }
}

async function pickBackend(cfg: ExecutorConfig): Promise<{ backend: Backend; name: "native" | "reference" }> {
  const choice = cfg.backend ?? "auto";
  const native = choice === "reference" ? null : await loadNative();
  if (choice === "native" && !native) throw new ValidationError("backend", choice, "the native addon is not available on this host");
  if (!native) return { backend: new ReferenceBackend(), name: "reference" };
  if (cfg.threads) native.setNativeThreads(cfg.threads);
  return { backend: new native.NativeBackend(), name: "native" };
}

/** Grammar-mask worker threads: TLLM_GUIDED_WORKERS when set (0 or 1: masks in-thread), else one per
 *  kernel thread (cfg.threads, default every core): a step's masks are computed while the pool's
 *  threads are idle between forwards. */
function guidedWorkers(cfg: ExecutorConfig): number {
  const env = process.env["TLLM_GUIDED_WORKERS"];
  if (env !== undefined && env !== "") {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 0) throw new ValidationError("TLLM_GUIDED_WORKERS", env, "must be an integer >= 0");
    return n;
  }
  return cfg.threads ?? availableParallelism();
}

function loadTokenizer(cfg: ExecutorConfig): Tokenizer {
  const path = cfg.tokenizer ?? cfg.model;
  if (existsSync(path) && statSync(path).isDirectory()) return Tokenizer.fromHfDir(path);
  return Tokenizer.fromGgufMetadata(readGgufMetadata(path), path);
}

export interface Engine {
  core: ExecutorCore;
  info: EngineInfo;
  tokenizer: Tokenizer;
  /** the grammar engine, created (and handed to the core) on the first guided request */
  guided(): Promise<GuidedDecoder>;
  close(): void;
}

/** Loads the model and builds the loop. `log` receives the sizing and backend lines. */
export async function createEngine(cfg: ExecutorConfig, log: (line: string) => void = () => {}): Promise<Engine> {
  checkExecutorConfig(cfg);
  const { backend, name } = await pickBackend(cfg);
  const loaded = loadModel(cfg.model, backend);
  try {
    const tokenizer = loadTokenizer(cfg);
    const mc = loaded.config;
    const maxBatchSize = cfg.maxBatchSize ?? EXECUTOR_DEFAULTS.maxBatchSize;
    const maxNumTokens = cfg.maxNumTokens ?? EXECUTOR_DEFAULTS.maxNumTokens;
    const chunked = cfg.enableChunkedPrefill ?? EXECUTOR_DEFAULTS.enableChunkedPrefill;
    const kvc = { ...EXECUTOR_DEFAULTS.kvCacheConfig, ...cfg.kvCacheConfig };
    const sc = { ...EXECUTOR_DEFAULTS.schedulerConfig, ...cfg.schedulerConfig };
    const maxSeqLen = cfg.maxSeqLen ?? mc.maxPositionEmbeddings;
    if (maxSeqLen > mc.maxPositionEmbeddings) throw new ValidationError("maxSeqLen", maxSeqLen, `exceeds the model's max position embeddings (${mc.maxPositionEmbeddings})`);
    const maxInputLen = cfg.maxInputLen ?? (chunked ? maxSeqLen - 1 : Math.min(maxSeqLen - 1, maxNumTokens));
    const kvDtype = kvc.dtype === "auto" ? (name === "native" ? "f16" : "f32") : kvc.dtype;
    const { pool, reason } = createKvPool({
      numLayers: mc.numLayers, numKvHeads: mc.numKvHeads, headDim: mc.headDim, tokensPerBlock: kvc.tokensPerBlock,
      dtype: kvDtype, maxTokens: kvc.maxTokens, freeMemoryFraction: kvc.freeMemoryFraction, maxUsefulTokens: maxBatchSize * maxSeqLen,
    });
    log(`tllm executor: backend=${name} ${reason}`);
    const kv = new KVCacheManager({ numBlocks: pool.numBlocks, tokensPerBlock: kvc.tokensPerBlock, enableBlockReuse: kvc.enableBlockReuse });
    const scheduler = new Scheduler({ ...sc, maxBatchSize, maxNumTokens, enableChunkedPrefill: chunked }, kv);
    const core = new ExecutorCore(new ModelRunner(loaded.model, pool), kv, scheduler, tokenizer, {
      maxBatchSize, maxSeqLen, maxInputLen, maxNumTokens, enableChunkedPrefill: chunked, maxUtilization: sc.capacitySchedulerPolicy === "MAX_UTILIZATION",
    });
    const info: EngineInfo = {
      backend: name, vocabSize: mc.vocabSize, maxSeqLen, maxInputLen, maxNumTokens, maxBatchSize, numKvBlocks: pool.numBlocks,
      tokensPerBlock: kvc.tokensPerBlock, kvDtype, kvReason: reason, eosTokenIds: tokenizer.eosTokenIds,
    };
    let guided: Promise<GuidedDecoder> | null = null;
    const getGuided = (): Promise<GuidedDecoder> => {
      guided ??= createGuidedDecoder(tokenizer, mc.vocabSize, guidedWorkers(cfg), log).then((d) => (core.guided = d));
      return guided;
    };
    const close = (): void => {
      loaded.checkpoint.close();
      void guided?.then((d) => d.dispose(), () => undefined);
    };
    return { core, info, tokenizer, guided: getGuided, close };
  } catch (e) {
    loaded.checkpoint.close();
    throw e;
  }
}

/** Resolves params, tokenizes the prompt and checks both against the model (throws ValidationError). */
export async function prepareSubmission(msg: SubmitMsg, tokenizer: Tokenizer, vocabSize: number,
  defaults: SamplingParamsInput | undefined, guided?: () => Promise<GuidedDecoder>, callbacks?: LogitsCallbackBridge): Promise<Submission> {
  const params = createSamplingParams(msg.params, defaults);
  if ((msg.numLogitsProcessors ?? 0) > 0) {
    if (!callbacks) throw new ValidationError("logitsProcessor", "function", "callbacks cannot reach this executor");
    params.logitsProcessors = [callbacks.processor(msg.requestId)];
  }
  checkBeamParams(params);
  if (params.endId === undefined) params.endId = tokenizer.eosTokenIds[0];
  validateSamplingParamsForVocab(params, vocabSize);
  let ids: number[];
  if (typeof msg.prompt === "string") {
    ids = await tokenizer.encode(msg.prompt, { addSpecialTokens: params.addSpecialTokens });
  } else {
    ids = [...msg.prompt];
    for (const t of ids) {
      if (!Number.isInteger(t) || t < 0 || t >= vocabSize) throw new ValidationError("prompt", t, `token id out of range [0, ${vocabSize})`);
    }
  }
  if (params.truncatePromptTokens !== undefined) ids = ids.slice(-params.truncatePromptTokens);
  const badWordsIds = await Promise.all(params.bad.map((w) => tokenizer.encode(w, { addSpecialTokens: false })));
  if (GuidedDecoder.wants(params.guidedDecoding)) {
    if (!guided) throw new ValidationError("guidedDecoding", params.guidedDecoding, "guided decoding is not available here");
    await (await guided()).prepare(params.guidedDecoding); // compile now: the step only creates the matcher
  }
  if (msg.priority !== undefined && !(msg.priority >= 0 && msg.priority <= 1)) throw new ValidationError("priority", msg.priority, "must be in [0, 1]");
  return {
    requestId: msg.requestId, prompt: typeof msg.prompt === "string" ? msg.prompt : null, promptTokenIds: ids, params, badWordsIds,
    streaming: msg.streaming, cacheSalt: msg.cacheSalt, priority: msg.priority,
  };
}

// LlmArgs: the one validated configuration object of an LLM instance. Field names are
// TensorRT-LLM's (TorchLlmArgs / KvCacheConfig / SchedulerConfig) in camelCase. `parseLlmArgs`
// fills defaults and rejects unknown keys (UnknownOptionError naming the dotted key) and bad values
// (ValidationError naming the dotted field and the value). `resolveConfig` settles every "auto"
// against the loaded model and the host, and returns one log line saying what it chose.
import { availableParallelism } from "node:os";
import { UnknownOptionError, ValidationError } from "../errors.js";
import type { ModelConfig } from "../config/model-config.js";

export type BackendChoice = "auto" | "native" | "reference";
export type DtypeChoice = "auto" | "float32" | "float16" | "bfloat16";
export type KvDtypeChoice = "auto" | "f32" | "f16" | "int8";
export type CapacitySchedulerPolicy = "GUARANTEED_NO_EVICT" | "MAX_UTILIZATION" | "STATIC_BATCH";
export type ContextChunkingPolicy = "FIRST_COME_FIRST_SERVED" | "EQUAL_PROGRESS";
export type WaitingQueuePolicy = "fcfs" | "priority";

export interface KvCacheConfig {
  /** prefix caching across requests (full blocks keyed by chained hashes) */
  enableBlockReuse: boolean;
  /** tokens per KV block (page size); a power of two */
  tokensPerBlock: number;
  /** fraction of the memory left after weights that the KV pool may take, in (0, 1] */
  freeMemoryFraction: number;
  /** cap on the pool in tokens; the smaller of this and the fraction-based size wins (null: no cap) */
  maxTokens: number | null;
  /** KV element type; auto: f16 on the native backend, f32 on the reference one; int8: symmetric, one
   *  f32 scale per (token, K/V, head) row, stored in the row's block (about half of f16's bytes) */
  dtype: KvDtypeChoice;
}

export interface SchedulerConfig {
  capacitySchedulerPolicy: CapacitySchedulerPolicy;
  contextChunkingPolicy: ContextChunkingPolicy;
  waitingQueuePolicy: WaitingQueuePolicy;
}

export interface LlmArgs {
  /** local HF directory, .gguf file, hub repo id (`org/name`, `org/name:file.gguf`) or `demo` */
  model: string;
  /** tokenizer source when it differs from the model (HF directory); null: the model's own */
  tokenizer: string | null;
  backend: BackendChoice;
  /** kernel threads; "auto": the host's available parallelism */
  threads: number | "auto";
  /** activation dtype; "auto" settles to float32 on CPU backends */
  dtype: DtypeChoice;
  /** max requests scheduled per iteration */
  maxBatchSize: number;
  /** max packed tokens per iteration */
  maxNumTokens: number;
  /** prompt + output limit; null: the model's max position embeddings */
  maxSeqLen: number | null;
  /** prompt limit; null: maxSeqLen - 1 (capped to maxNumTokens without chunked prefill) */
  maxInputLen: number | null;
  /** widest beam search a request may ask for (its bestOf with useBeamSearch); 1: beam search off, as TensorRT-LLM */
  maxBeamWidth: number;
  kvCacheConfig: KvCacheConfig;
  schedulerConfig: SchedulerConfig;
  enableChunkedPrefill: boolean;
  /** "auto": take sampling defaults from generation_config.json when the model has one */
  generationConfig: "auto" | "none";
  /** hub revision (branch, tag or commit) */
  revision: string;
  /** hub token; null: HF_TOKEN from the environment */
  hfToken: string | null;
  /** never touch the network; null: HF_HUB_OFFLINE from the environment */
  offline: boolean | null;
  /** where `demo` and other built artifacts live; null: $TLLM_CACHE or ~/.cache/tllm */
  cacheDir: string | null;
  /** hub endpoint; null: HF_ENDPOINT or https://huggingface.co */
  hubUrl: string | null;
}

/** What a caller may pass: `model` plus any subset, nested configs partial too. */
export type LlmArgsInput = { model: string } & Partial<Omit<LlmArgs, "model" | "kvCacheConfig" | "schedulerConfig">> & {
  kvCacheConfig?: Partial<KvCacheConfig>;
  schedulerConfig?: Partial<SchedulerConfig>;
};

export const DEFAULT_KV_CACHE_CONFIG: Readonly<KvCacheConfig> = Object.freeze({
  enableBlockReuse: true,
  tokensPerBlock: 32,
  freeMemoryFraction: 0.9,
  maxTokens: null,
  dtype: "auto",
});

export const DEFAULT_SCHEDULER_CONFIG: Readonly<SchedulerConfig> = Object.freeze({
  capacitySchedulerPolicy: "GUARANTEED_NO_EVICT",
  contextChunkingPolicy: "FIRST_COME_FIRST_SERVED",
  waitingQueuePolicy: "fcfs",
});

const DEFAULTS: Omit<LlmArgs, "model" | "kvCacheConfig" | "schedulerConfig"> = {
  tokenizer: null,
  backend: "auto",
  threads: "auto",
  dtype: "auto",
  maxBatchSize: 2048,
  maxNumTokens: 8192,
  maxSeqLen: null,
  maxInputLen: null,
  maxBeamWidth: 1,
  enableChunkedPrefill: false,
  generationConfig: "auto",
  revision: "main",
  hfToken: null,
  offline: null,
  cacheDir: null,
  hubUrl: null,
};

// ---- field checkers: each returns the value or throws ValidationError(field, value) ----

type Check<T> = (field: string, v: unknown) => T;

const str: Check<string> = (f, v) => {
  if (typeof v !== "string" || v.length === 0) throw new ValidationError(f, v, "must be a non-empty string");
  return v;
};
const bool: Check<boolean> = (f, v) => {
  if (typeof v !== "boolean") throw new ValidationError(f, v, "must be a boolean");
  return v;
};
function int(min: number, max = Number.MAX_SAFE_INTEGER): Check<number> {
  return (f, v) => {
    if (typeof v !== "number" || !Number.isInteger(v)) throw new ValidationError(f, v, "must be an integer");
    if (v < min || v > max) throw new ValidationError(f, v, `must be in [${min}, ${max}]`);
    return v;
  };
}
function oneOf<T extends string>(values: readonly T[]): Check<T> {
  return (f, v) => {
    if (typeof v !== "string" || !(values as readonly string[]).includes(v)) {
      throw new ValidationError(f, v, `must be one of ${values.map((x) => `"${x}"`).join(", ")}`);
    }
    return v as T;
  };
}
function nullable<T>(c: Check<T>): Check<T | null> {
  return (f, v) => (v === null ? null : c(f, v));
}
const powerOfTwo: Check<number> = (f, v) => {
  const n = int(1, 1024)(f, v);
  if ((n & (n - 1)) !== 0) throw new ValidationError(f, v, "must be a power of two");
  return n;
};
const fraction: Check<number> = (f, v) => {
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0 || v > 1) {
    throw new ValidationError(f, v, "must be a number in (0, 1]");
  }
  return v;
};
const threads: Check<number | "auto"> = (f, v) => (v === "auto" ? "auto" : int(1, 1024)(f, v));

const TOP_CHECKS: { [K in keyof typeof DEFAULTS]: Check<(typeof DEFAULTS)[K]> } = {
  tokenizer: nullable(str),
  backend: oneOf(["auto", "native", "reference"] as const),
  threads,
  dtype: oneOf(["auto", "float32", "float16", "bfloat16"] as const),
  maxBatchSize: int(1),
  maxNumTokens: int(1),
  maxSeqLen: nullable(int(2)),
  maxInputLen: nullable(int(1)),
  maxBeamWidth: int(1, 1024),
  enableChunkedPrefill: bool,
  generationConfig: oneOf(["auto", "none"] as const),
  revision: str,
  hfToken: nullable(str),
  offline: nullable(bool),
  cacheDir: nullable(str),
  hubUrl: nullable(str),
};

const KV_CHECKS: { [K in keyof KvCacheConfig]: Check<KvCacheConfig[K]> } = {
  enableBlockReuse: bool,
  tokensPerBlock: powerOfTwo,
  freeMemoryFraction: fraction,
  maxTokens: nullable(int(1)),
  dtype: oneOf(["auto", "f32", "f16", "int8"] as const),
};

const SCHED_CHECKS: { [K in keyof SchedulerConfig]: Check<SchedulerConfig[K]> } = {
  capacitySchedulerPolicy: oneOf(["GUARANTEED_NO_EVICT", "MAX_UTILIZATION", "STATIC_BATCH"] as const),
  contextChunkingPolicy: oneOf(["FIRST_COME_FIRST_SERVED", "EQUAL_PROGRESS"] as const),
  waitingQueuePolicy: oneOf(["fcfs", "priority"] as const),
};

function camel(key: string): string {
  return key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

function unknownKey(prefix: string, key: string, where: string, known: readonly string[]): UnknownOptionError {
  const err = new UnknownOptionError(prefix + key, where, known);
  const hint = camel(key);
  if (hint !== key && known.includes(hint)) err.message += `; did you mean '${hint}'?`;
  return err;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Validates `input[k]` for every k with `checks`, over `defaults`; unknown keys are an error. */
function parseSection<T extends object>(
  input: Record<string, unknown>,
  checks: { [K in keyof T]: Check<T[K]> },
  defaults: T,
  prefix: string,
  where: string,
  skip: readonly string[] = [],
): T {
  const out = { ...defaults };
  const known = [...skip, ...Object.keys(checks)];
  for (const [k, v] of Object.entries(input)) {
    if (skip.includes(k)) continue;
    if (!(k in checks)) throw unknownKey(prefix, k, where, known);
    if (v === undefined) continue;
    (out as Record<string, unknown>)[k] = (checks as Record<string, Check<unknown>>)[k]!(prefix + k, v);
  }
  return out;
}

function parseNested<T extends object>(
  input: Record<string, unknown>, key: string, checks: { [K in keyof T]: Check<T[K]> }, defaults: Readonly<T>,
): T {
  const v = input[key];
  if (v === undefined) return { ...defaults };
  if (!isPlainObject(v)) throw new ValidationError(key, v, "must be an object");
  return parseSection(v, checks, { ...defaults }, `${key}.`, key);
}

/** Validates `input` and fills defaults. Throws UnknownOptionError / ValidationError naming the field. */
export function parseLlmArgs(input: unknown): LlmArgs {
  if (!isPlainObject(input)) throw new ValidationError("args", input, "must be an object with at least 'model'");
  const model = str("model", input["model"]);
  const nested = ["model", "kvCacheConfig", "schedulerConfig"];
  const top = parseSection(input, TOP_CHECKS, { ...DEFAULTS }, "", "LlmArgs", nested);
  const args: LlmArgs = {
    model,
    ...top,
    kvCacheConfig: parseNested(input, "kvCacheConfig", KV_CHECKS, DEFAULT_KV_CACHE_CONFIG),
    schedulerConfig: parseNested(input, "schedulerConfig", SCHED_CHECKS, DEFAULT_SCHEDULER_CONFIG),
  };
  checkCrossFields(args);
  return args;
}

function checkCrossFields(a: LlmArgs): void {
  if (a.maxSeqLen !== null && a.maxInputLen !== null && a.maxInputLen >= a.maxSeqLen) {
    throw new ValidationError("maxInputLen", a.maxInputLen, `must be less than maxSeqLen (${a.maxSeqLen})`);
  }
  if (!a.enableChunkedPrefill && a.maxInputLen !== null && a.maxInputLen > a.maxNumTokens) {
    throw new ValidationError("maxInputLen", a.maxInputLen,
      `exceeds maxNumTokens (${a.maxNumTokens}); raise maxNumTokens or set enableChunkedPrefill`);
  }
}

// ---- resolution of every "auto" ----

export interface ResolvedConfig extends Omit<LlmArgs, "backend" | "threads" | "dtype" | "maxSeqLen" | "maxInputLen" | "kvCacheConfig" | "offline"> {
  backend: "native" | "reference";
  threads: number;
  dtype: "float32";
  maxSeqLen: number;
  maxInputLen: number;
  kvCacheConfig: Omit<KvCacheConfig, "dtype"> & { dtype: "f32" | "f16" | "int8" };
  offline: boolean;
}

export interface ResolveContext {
  model: ModelConfig;
  /** whether the native addon loaded on this host */
  nativeAvailable: boolean;
  /** defaults to os.availableParallelism() */
  cpuCount?: number;
  /** defaults to process.env */
  env?: NodeJS.ProcessEnv;
}

function resolveBackend(choice: BackendChoice, nativeAvailable: boolean): "native" | "reference" {
  if (choice === "native" && !nativeAvailable) {
    throw new ValidationError("backend", choice, "the native addon is not available on this host (build it, or use \"reference\")");
  }
  if (choice === "auto") return nativeAvailable ? "native" : "reference";
  return choice;
}

function resolveDtype(choice: DtypeChoice): "float32" {
  // CPU backends compute activations in f32; weights stay in their stored type.
  if (choice === "float16" || choice === "bfloat16") {
    throw new ValidationError("dtype", choice, "CPU backends compute in float32; use \"auto\" or \"float32\"");
  }
  return "float32";
}

function resolveLengths(a: LlmArgs, modelMax: number): { maxSeqLen: number; maxInputLen: number } {
  if (a.maxSeqLen !== null && a.maxSeqLen > modelMax) {
    throw new ValidationError("maxSeqLen", a.maxSeqLen, `exceeds the model's max position embeddings (${modelMax})`);
  }
  const maxSeqLen = a.maxSeqLen ?? modelMax;
  if (a.maxInputLen !== null && a.maxInputLen >= maxSeqLen) {
    throw new ValidationError("maxInputLen", a.maxInputLen, `must be less than maxSeqLen (${maxSeqLen})`);
  }
  const cap = a.enableChunkedPrefill ? maxSeqLen - 1 : Math.min(maxSeqLen - 1, a.maxNumTokens);
  return { maxSeqLen, maxInputLen: a.maxInputLen ?? cap };
}

/** Settles every "auto" in `args` for this model and host. `log` is one line naming each choice. */
export function resolveConfig(args: LlmArgs, ctx: ResolveContext): { config: ResolvedConfig; log: string } {
  const env = ctx.env ?? process.env;
  const backend = resolveBackend(args.backend, ctx.nativeAvailable);
  const threads = args.threads === "auto" ? Math.max(1, ctx.cpuCount ?? availableParallelism()) : args.threads;
  const dtype = resolveDtype(args.dtype);
  const { maxSeqLen, maxInputLen } = resolveLengths(args, ctx.model.maxPositionEmbeddings);
  // f16 halves KV memory; the reference backend keeps f32 so that it stays the exact oracle.
  const kvDtype = args.kvCacheConfig.dtype === "auto" ? (backend === "native" ? "f16" : "f32") : args.kvCacheConfig.dtype;
  const offline = args.offline ?? isTruthyEnv(env["HF_HUB_OFFLINE"]);
  const hfToken = args.hfToken ?? env["HF_TOKEN"] ?? null;
  const config: ResolvedConfig = {
    ...args, backend, threads, dtype, maxSeqLen, maxInputLen, offline, hfToken,
    kvCacheConfig: { ...args.kvCacheConfig, dtype: kvDtype },
  };
  const log = `config: backend=${backend}${args.backend === "auto" ? " (auto)" : ""} threads=${threads}` +
    `${args.threads === "auto" ? " (auto)" : ""} dtype=${dtype} maxSeqLen=${maxSeqLen} maxInputLen=${maxInputLen}` +
    ` maxNumTokens=${args.maxNumTokens} maxBatchSize=${args.maxBatchSize} kv.dtype=${kvDtype}` +
    ` kv.tokensPerBlock=${args.kvCacheConfig.tokensPerBlock} offline=${offline}`;
  return { config, log };
}

export function isTruthyEnv(v: string | undefined): boolean {
  return v !== undefined && ["1", "true", "yes", "on"].includes(v.trim().toLowerCase());
}

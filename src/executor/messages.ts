// Typed messages between the proxy (caller's thread) and the executor worker, and the wire form of
// errors (structured clone drops error classes, so typed errors travel as plain data and are rebuilt).
import type { RequestOutput, TokenLogprobs, FinishReason } from "../api/request-output.js";
import type { SamplingParamsInput } from "../api/sampling-params.js";
import { CheckpointError, TllmError, ValidationError } from "../errors.js";
import type { LogitsCallMsg } from "./callbacks.js";
import type { ExecutorConfig, EngineInfo } from "./config.js";
import type { ExecutorSnapshot, IterationStats } from "./stats.js";

// ---- caller -> worker ----

export interface SubmitMsg {
  type: "submit";
  requestId: number;
  /** text (tokenized in the worker) or token ids */
  prompt: string | number[];
  params: SamplingParamsInput;
  streaming: boolean;
  cacheSalt?: string | undefined;
  priority?: number | undefined;
  /** logitsProcessor callbacks kept on the caller's thread (params carry none); see callbacks.ts */
  numLogitsProcessors?: number;
}
export interface AbortMsg { type: "abort"; requestId: number }
export interface StatsMsg { type: "stats"; callId: number }
export interface ShutdownMsg { type: "shutdown" }
/** test hook (only honoured when config.enableTestHooks): fail the next step as a fatal error */
export interface CrashMsg { type: "crash" }
export type ToWorker = SubmitMsg | AbortMsg | StatsMsg | ShutdownMsg | CrashMsg;

// ---- worker -> caller ----

/** What one step added to one output sequence. */
export interface DeltaMsg {
  requestId: number;
  index: number;
  tokenIds: number[];
  text: string;
  logprobs: TokenLogprobs[] | null;
  cumulativeLogprob: number | null;
  finishReason: FinishReason | null;
  stopReason: string | number | null;
  /** the request's prompt logprobs, on the first delta after they are complete (RequestOutput.promptLogprobs) */
  promptLogprobs?: (TokenLogprobs | null)[];
}

/** Per-request numbers reported with the final output. */
export interface RequestMetrics {
  numPromptTokens: number;
  /** prompt tokens served from the prefix cache at first admission (OpenAI `cached_tokens`) */
  numCachedTokens: number;
  numGeneratedTokens: number;
  /** ms since the epoch (all four): submission, first admission, first and last sampled token */
  arrivalTime: number;
  firstScheduledTime: number | null;
  firstTokenTime: number | null;
  lastTokenTime: number | null;
  finishTime: number;
  /** times the request was preempted (MAX_UTILIZATION) */
  numPreemptions: number;
}

export interface FinalOutput extends RequestOutput {
  metrics: RequestMetrics;
}

export interface ReadyMsg { type: "ready"; info: EngineInfo }
export interface InitErrorMsg { type: "initError"; error: WireError }
export interface AcceptedMsg { type: "accepted"; requestId: number; promptTokenIds: number[] }
export interface StepMsg { type: "step"; deltas: DeltaMsg[]; finals: FinalOutput[]; stats: IterationStats }
/** outputs that finished outside a step (aborts) */
export interface FinalsMsg { type: "finals"; finals: FinalOutput[] }
export interface RequestErrorMsg { type: "requestError"; requestId: number; error: WireError }
export interface FatalMsg { type: "fatal"; error: WireError }
export interface StatsReplyMsg { type: "statsReply"; callId: number; iterations: IterationStats[]; snapshot: ExecutorSnapshot }
export interface ClosedMsg { type: "closed" }
export type FromWorker = ReadyMsg | InitErrorMsg | AcceptedMsg | StepMsg | FinalsMsg | RequestErrorMsg | FatalMsg | StatsReplyMsg | ClosedMsg
  | LogitsCallMsg;

/** The worker's start-up data (worker_threads workerData). */
export interface WorkerData { config: ExecutorConfig }

// ---- errors on the wire ----

export interface WireError {
  name: string;
  message: string;
  field?: string;
  value?: unknown;
  file?: string;
  stack?: string | undefined;
}

export function toWire(e: unknown): WireError {
  if (!(e instanceof Error)) return { name: "Error", message: String(e) };
  const w: WireError = { name: e.name, message: e.message, stack: e.stack };
  if (e instanceof ValidationError) {
    w.field = e.field;
    w.value = cloneable(e.value);
  }
  if (e instanceof CheckpointError) {
    w.file = e.file;
    w.field = e.field;
  }
  return w;
}

/** Rebuilds a typed error (ValidationError, CheckpointError, else TllmError) with the original message. */
export function fromWire(w: WireError, where: string): Error {
  let e: Error;
  if (w.name === "ValidationError" || w.name === "UnknownOptionError") e = new ValidationError(w.field ?? "?", w.value, "");
  else if (w.file !== undefined) e = new CheckpointError(w.file, w.field ?? "?", "");
  else e = new TllmError("");
  e.message = w.message;
  if (w.name !== e.name) e.name = w.name;
  if (w.stack) e.stack = `${e.name}: ${w.message}\n    (${where})\n${w.stack.split("\n").slice(1).join("\n")}`;
  return e;
}

function cloneable(v: unknown): unknown {
  if (v === null || ["string", "number", "boolean", "undefined"].includes(typeof v)) return v;
  try {
    return JSON.parse(JSON.stringify(v)) as unknown;
  } catch {
    return String(v);
  }
}

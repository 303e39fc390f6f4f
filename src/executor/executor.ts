// The executor proxy, on the caller's thread: starts the worker (./worker.ts), sends it submits and
// aborts, and routes what it posts back to each request's GenerationResult. It never blocks: all
// model work happens in the worker.
//   const ex = await WorkerExecutor.create({ model: "/path/model.gguf" });
//   const r = ex.generateAsync("Hello", { maxTokens: 16 }, { streaming: true });
//   for await (const s of r) process.stdout.write(s.outputs[0].textDiff);
//   const final = await r;  await ex.shutdown();
// Per-request logitsProcessor callbacks stay on this thread; the worker calls them synchronously
// through shared memory each step (callbacks.ts), so this thread must stay responsive while they run.
// A fatal worker error (an exception in the step loop, the worker exiting) fails every in-flight
// request with an ExecutorError and marks the executor unhealthy; later calls fail at once.
import type { Worker } from "node:worker_threads";
import type { LogitsProcessorFn, SamplingParamsInput } from "../api/sampling-params.js";
import { createSamplingParams } from "../api/sampling-params.js";
import { TllmError, ValidationError } from "../errors.js";
import { siblingModule, startModuleWorker } from "../workers.js";
import { checkBeamParams } from "./beam-group.js";
import { answerLogitsCall } from "./callbacks.js";
import { checkExecutorConfig, type EngineInfo, type ExecutorConfig } from "./config.js";
import { fromWire, type DeltaMsg, type FinalOutput, type FromWorker, type ToWorker, type WorkerData } from "./messages.js";
import { GenerationResult } from "./result.js";
import type { ExecutorSnapshot, IterationStats } from "./stats.js";

export type PromptInput = string | number[];

interface StatsReply { iterations: IterationStats[]; snapshot: ExecutorSnapshot }

export interface GenerateAsyncOptions {
  /** yield a snapshot per step (default false: the iteration yields the final output once) */
  streaming?: boolean;
  /** separates prefix-cache entries (requests with different salts never share blocks) */
  cacheSalt?: string;
  /** in [0, 1], higher first, under waitingQueuePolicy "priority" */
  priority?: number;
}

/** The executor's surface, as the LLM API uses it. */
export interface GenerationExecutor {
  readonly healthy: boolean;
  generateAsync(prompt: PromptInput, params?: SamplingParamsInput, opts?: GenerateAsyncOptions): GenerationResult;
  generateBatch(prompts: PromptInput[], params?: SamplingParamsInput | SamplingParamsInput[], opts?: GenerateAsyncOptions): Promise<FinalOutput[]>;
  abort(requestId: number): void;
  /** iteration stats recorded since the previous call (at most the last 1000) */
  getStats(): Promise<IterationStats[]>;
  snapshot(): Promise<ExecutorSnapshot>;
  shutdown(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** The worker failed as a whole (not one request's fault). */
export class ExecutorError extends TllmError {}

/** The worker's entry: worker.js next to this file (worker.ts under tsx; see startModuleWorker). */
function startWorker(data: WorkerData): Worker {
  return startModuleWorker(siblingModule(import.meta.url, "worker"), data);
}

export class WorkerExecutor implements GenerationExecutor {
  info!: EngineInfo;
  private readonly worker: Worker;
  private readonly results = new Map<number, GenerationResult>();
  /** logitsProcessor callbacks of in-flight requests (run here when the worker asks) */
  private readonly processors = new Map<number, LogitsProcessorFn[]>();
  private readonly statsCalls = new Map<number, { ok: (m: StatsReply) => void; fail: (e: Error) => void }>();
  private readonly started: Promise<void>;
  private nextRequestId = 0;
  private nextCallId = 0;
  private fatal: Error | null = null;
  private closing: Promise<void> | null = null;
  private closed = false;

  private constructor(readonly config: ExecutorConfig) {
    checkExecutorConfig(config);
    this.worker = startWorker({ config });
    this.started = new Promise<void>((ok, fail) => {
      this.worker.on("message", (m: FromWorker) => {
        if (m.type === "ready") {
          this.info = m.info;
          ok();
        } else if (m.type === "initError") {
          fail(fromWire(m.error, "executor worker start-up"));
          void this.worker.terminate();
        } else this.onMessage(m);
      });
      this.worker.on("error", (e) => {
        fail(e);
        this.die(new ExecutorError(`executor worker crashed: ${e.message}`, { cause: e }));
      });
      this.worker.on("exit", (code) => {
        const e = this.closing ? new ExecutorError("executor is shut down") : new ExecutorError(`executor worker exited (code ${code})`);
        fail(e);
        this.die(e);
      });
    });
    this.started.then(() => this.refresh(), () => {}); // referenced until loaded, then only while busy
  }

  /** Starts the worker and waits until the model is loaded (rejects with the load error). */
  static async create(config: ExecutorConfig): Promise<WorkerExecutor> {
    const ex = new WorkerExecutor(config);
    try {
      await ex.started;
    } catch (e) {
      ex.closed = true;
      await ex.worker.terminate();
      throw e;
    }
    return ex;
  }

  get healthy(): boolean {
    return this.fatal === null && !this.closed && this.closing === null;
  }

  generateAsync(prompt: PromptInput, params: SamplingParamsInput = {}, opts: GenerateAsyncOptions = {}): GenerationResult {
    const requestId = this.nextRequestId++;
    const r = new GenerationResult(requestId, typeof prompt === "string" ? prompt : null, opts.streaming ?? false, (id) => this.abort(id));
    try {
      if (!this.healthy) throw this.fatal ?? new ExecutorError("executor is shut down");
      checkPrompt(prompt);
      if (opts.cacheSalt !== undefined && typeof opts.cacheSalt !== "string") throw new ValidationError("cacheSalt", opts.cacheSalt, "must be a string");
      const resolved = createSamplingParams(params, this.config.generationDefaults); // fail fast on the caller's thread
      checkBeamParams(resolved);
      const fns = resolved.logitsProcessors; // they stay here; the worker calls them (callbacks.ts)
      this.results.set(requestId, r);
      if (fns.length > 0) this.processors.set(requestId, fns);
      this.refresh();
      this.send({
        type: "submit", requestId, prompt, params: fns.length > 0 ? { ...params, logitsProcessor: null } : params, streaming: opts.streaming ?? false,
        cacheSalt: opts.cacheSalt, priority: opts.priority, numLogitsProcessors: fns.length,
      });
    } catch (e) {
      this.results.delete(requestId);
      this.processors.delete(requestId);
      r.fail(e);
    }
    return r;
  }

  async generateBatch(prompts: PromptInput[], params?: SamplingParamsInput | SamplingParamsInput[], opts?: GenerateAsyncOptions): Promise<FinalOutput[]> {
    if (Array.isArray(params) && params.length !== prompts.length) {
      throw new ValidationError("params", `${params.length} entries`, `expected one per prompt (${prompts.length})`);
    }
    const results = prompts.map((p, i) => this.generateAsync(p, Array.isArray(params) ? params[i] : params, opts));
    return Promise.all(results.map((r) => r.promise));
  }

  abort(requestId: number): void {
    if (this.results.has(requestId) && this.healthy) this.send({ type: "abort", requestId });
  }

  async getStats(): Promise<IterationStats[]> {
    return (await this.call()).iterations;
  }

  /** counts, KV blocks and the worker's heap after a GC (for leak checks) */
  async snapshot(): Promise<ExecutorSnapshot> {
    return (await this.call()).snapshot;
  }

  /** Aborts what is in flight (outputs end 'cancelled'), stops the worker, releases the model. */
  shutdown(): Promise<void> {
    this.closing ??= this.close();
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.shutdown();
  }

  /** Test hook (config.enableTestHooks): makes the worker's next step fail as a fatal error. */
  injectFatalError(): void {
    this.send({ type: "crash" });
  }

  private async close(): Promise<void> {
    if (this.closed) return;
    this.worker.ref();
    if (this.fatal === null) {
      const exited = new Promise<void>((ok) => this.worker.once("exit", () => ok()));
      this.send({ type: "shutdown" });
      const timer = setTimeout(() => void this.worker.terminate(), 10_000);
      await exited;
      clearTimeout(timer);
    } else await this.worker.terminate();
    this.closed = true;
    this.die(new ExecutorError("executor is shut down"));
  }

  private call(): Promise<StatsReply> {
    if (!this.healthy) return Promise.reject(this.fatal ?? new ExecutorError("executor is shut down"));
    const callId = this.nextCallId++;
    return new Promise((ok, fail) => {
      this.statsCalls.set(callId, { ok, fail });
      this.refresh();
      this.send({ type: "stats", callId });
    });
  }

  private send(m: ToWorker): void {
    this.worker.postMessage(m);
  }

  private onMessage(m: FromWorker): void {
    switch (m.type) {
      case "accepted": return this.results.get(m.requestId)?.accepted(m.promptTokenIds);
      case "logits": return answerLogitsCall(m, this.processors.get(m.requestId));
      case "step":
        this.routeDeltas(m.deltas);
        return this.finish(m.finals);
      case "finals": return this.finish(m.finals);
      case "requestError": {
        const r = this.results.get(m.requestId);
        this.results.delete(m.requestId);
        this.processors.delete(m.requestId);
        r?.fail(fromWire(m.error, `request ${m.requestId}`));
        return this.refresh();
      }
      case "statsReply": {
        const call = this.statsCalls.get(m.callId);
        this.statsCalls.delete(m.callId);
        call?.ok(m);
        return this.refresh();
      }
      case "fatal": {
        const cause = fromWire(m.error, "executor worker step loop");
        this.die(new ExecutorError(`executor worker failed: ${cause.message}`, { cause }));
        void this.worker.terminate();
        return;
      }
      default: return;
    }
  }

  private routeDeltas(deltas: DeltaMsg[]): void {
    const byReq = new Map<number, typeof deltas>();
    for (const d of deltas) {
      const list = byReq.get(d.requestId);
      if (list) list.push(d);
      else byReq.set(d.requestId, [d]);
    }
    for (const [id, ds] of byReq) this.results.get(id)?.deltas(ds);
  }

  private finish(finals: FinalOutput[]): void {
    for (const f of finals) {
      const r = this.results.get(f.requestId);
      this.results.delete(f.requestId);
      this.processors.delete(f.requestId);
      r?.final(f);
    }
    if (finals.length > 0) this.refresh();
  }

  /** fails everything in flight; the executor stays unhealthy */
  private die(e: Error): void {
    this.fatal ??= e;
    for (const r of this.results.values()) r.fail(this.fatal);
    this.results.clear();
    this.processors.clear();
    for (const call of this.statsCalls.values()) call.fail(this.fatal);
    this.statsCalls.clear();
    this.refresh();
  }

  /** keep the process alive only while something is in flight */
  private refresh(): void {
    if (this.closed) return;
    if (this.results.size > 0 || this.statsCalls.size > 0 || this.closing) this.worker.ref();
    else this.worker.unref();
  }
}

function checkPrompt(p: PromptInput): void {
  if (typeof p === "string") return;
  if (!Array.isArray(p) || p.length === 0) throw new ValidationError("prompt", p, "expected a string or a non-empty array of token ids");
}

// The server's view of the engine: one LLM, with admission (queue limit), health, statistics for
// /metrics, and whether guided decoding is built in. LLM's executor statistics are used when LLM
// provides them (getStats(): active/queued requests, KV blocks, prefix reuse); until then the
// numbers come from this adapter's own bookkeeping of the requests it has in flight, which for the
// simple runner is exact: each running sequence holds ceil(min(maxSeqLen, prompt + maxTokens) /
// tokensPerBlock) blocks until it finishes, and nothing is held between requests.
import { freemem } from "node:os";
import type { GenerateOptions, LLM, StreamEvent } from "../api/llm.js";
import type { RequestOutput } from "../api/request-output.js";
import type { SamplingParamsInput } from "../api/sampling-params.js";
import { HttpError } from "./errors.js";

export interface EngineStats {
  running: number;
  waiting: number;
  kvBlocksUsed: number;
  kvBlocksFree: number;
  kvBlocksTotal: number;
  /** reused / looked-up prompt blocks since start, 0 before any lookup */
  prefixHitRate: number;
  /** prompt tokens served from / looked up in the prefix cache since start */
  prefixHitTokens: number;
  prefixQueryTokens: number;
}

/** What an executor-backed LLM exposes (duck-typed: absent on the simple runner). */
interface ExecutorLike {
  getStats?: () => unknown;
  snapshot?: () => unknown;
  healthy?: boolean | (() => boolean);
}

interface KvLike { maxNumBlocks?: number; freeNumBlocks?: number; usedNumBlocks?: number; tokensPerBlock?: number;
  reusedBlocks?: number; missedBlocks?: number; cacheHitRate?: number }

export interface StartOptions { signal: AbortSignal; cacheSalt?: string; priority?: number }

export interface Ticket {
  /** tokens this request's sequences may hold at most (fallback KV accounting) */
  blocks: number;
  running: boolean;
}

export class ServeEngine {
  private readonly tickets = new Set<Ticket>();
  private failed: Error | null = null;
  private lastExecutor: Partial<EngineStats> = {};
  private closed = false;
  readonly tokensPerBlock: number;
  private readonly fallbackTotalBlocks: number;

  constructor(readonly llm: LLM, readonly maxQueueSize: number, readonly guidedAvailable: boolean) {
    const c = llm.config;
    const m = llm.modelConfig;
    this.tokensPerBlock = c.kvCacheConfig.tokensPerBlock;
    // the same budget LLM computes at load (kvCacheConfig.maxTokens, capped by free memory)
    const bytesPerToken = m.numLayers * 2 * m.numKvHeads * m.headDim * (c.kvCacheConfig.dtype === "f16" ? 2 : 4);
    const byMemory = Math.floor((freemem() * c.kvCacheConfig.freeMemoryFraction) / bytesPerToken);
    const tokens = Math.max(1, Math.min(c.kvCacheConfig.maxTokens ?? Infinity, byMemory, c.maxBatchSize * c.maxSeqLen));
    this.fallbackTotalBlocks = Math.floor(tokens / this.tokensPerBlock);
  }

  /**
   * Whether guided decoding is enforced by this engine: the module ([sampling]'s src/sampling/guided)
   * must load, and a probe must come back constrained (3 tokens under the regex [0-9]+; a model
   * that ignored the guide would all but never emit only digits). A module that is present but not
   * wired into the generation loop therefore reads as unavailable, and requests get a 501.
   */
  static async detectGuided(llm: LLM): Promise<boolean> {
    const spec = "../sampling/guided/index.js"; // not a literal: the module lands separately
    try {
      await import(spec);
      const ids = await llm.tokenizer.encode("Numbers:", { addSpecialTokens: true });
      const out = await llm.generateAsync(ids, { maxTokens: 3, temperature: 0, guidedDecoding: { regex: "[0-9]+" } }).result;
      return /^[0-9]+$/.test(out.outputs[0]!.text);
    } catch {
      return false;
    }
  }

  get maxConcurrent(): number {
    return this.llm.config.maxBatchSize + this.maxQueueSize;
  }

  get inflight(): number {
    return this.tickets.size;
  }

  healthy(): boolean {
    if (this.closed || this.failed) return false;
    const h = (this.llm as unknown as ExecutorLike).healthy;
    if (typeof h === "function") return h.call(this.llm);
    return h ?? true;
  }

  /** An engine-level failure (not a request's fault): /health turns 503. */
  markFailed(e: Error): void {
    this.failed ??= e;
  }

  close(): void {
    this.closed = true;
  }

  /** Reserves a place for one request or throws 429 (queue full) / 503 (shutting down, dead). */
  admit(blocks: number): Ticket {
    if (this.closed) throw new HttpError(503, "the server is shutting down");
    if (!this.healthy()) throw new HttpError(503, `the engine is unavailable: ${this.failed?.message ?? "not healthy"}`);
    if (this.tickets.size >= this.maxConcurrent) {
      throw new HttpError(429, `too many requests: ${this.tickets.size} in flight (max batch ${this.llm.config.maxBatchSize} + queue ${this.maxQueueSize})`,
        null, "RateLimitError", { "retry-after": "1" });
    }
    const t: Ticket = { blocks, running: false };
    this.tickets.add(t);
    return t;
  }

  release(t: Ticket): void {
    this.tickets.delete(t);
  }

  /** Runs one prompt, calling `onEvent` for each streamed step (the LLM's onStream callback: no
   *  async-iterator hop per token). `cacheSalt` / `priority` go along as generate() options. */
  start(ids: number[], params: SamplingParamsInput, opts: StartOptions, onEvent: (ev: StreamEvent) => void): Promise<RequestOutput> {
    const o: GenerateOptions = { signal: opts.signal, onStream: onEvent };
    if (opts.cacheSalt !== undefined) o.cacheSalt = opts.cacheSalt;
    if (opts.priority !== undefined) o.priority = opts.priority;
    return this.llm.generate(ids, params, o);
  }

  /** The executor's view when LLM exposes one (a point-in-time snapshot() preferred over
   *  getStats(), whose iteration list is empty when no step ran since the last read: then the last
   *  values seen stand), else this adapter's own bookkeeping. */
  async stats(): Promise<EngineStats> {
    const own = this.ownStats();
    const x = this.llm as unknown as ExecutorLike;
    const read = typeof x.snapshot === "function" ? x.snapshot : typeof x.getStats === "function" ? x.getStats : null;
    if (!read) return own;
    try {
      const fresh = fromExecutor(await read.call(this.llm), this.tokensPerBlock);
      if (Object.keys(fresh).length > 0) this.lastExecutor = fresh;
    } catch {
      // keep the last values seen; health reports a dead executor separately
    }
    return { ...own, ...this.lastExecutor };
  }

  private ownStats(): EngineStats {
    let running = 0, used = 0;
    for (const t of this.tickets) {
      if (!t.running) continue;
      running++;
      used += t.blocks;
    }
    const total = this.fallbackTotalBlocks;
    return {
      running, waiting: this.tickets.size - running, kvBlocksUsed: Math.min(used, total), kvBlocksFree: Math.max(0, total - used),
      kvBlocksTotal: total, prefixHitRate: 0, prefixHitTokens: 0, prefixQueryTokens: 0,
    };
  }
}

/** Executor statistics (a snapshot, or the latest of a list of iteration stats) -> EngineStats fields. */
export function fromExecutor(raw: unknown, tpb: number): Partial<EngineStats> {
  const s = (Array.isArray(raw) ? raw[raw.length - 1] : raw) as Record<string, unknown> | undefined;
  if (!s || typeof s !== "object") return {};
  const kv = (s["kvCacheStats"] ?? s) as KvLike;
  const out: Partial<EngineStats> = {};
  const num = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
  if (num(s["numActiveRequests"])) out.running = s["numActiveRequests"];
  if (num(s["numQueuedRequests"])) out.waiting = s["numQueuedRequests"];
  if (num(kv.usedNumBlocks)) out.kvBlocksUsed = kv.usedNumBlocks;
  if (num(kv.freeNumBlocks)) out.kvBlocksFree = kv.freeNumBlocks;
  if (num(kv.maxNumBlocks)) out.kvBlocksTotal = kv.maxNumBlocks;
  const t = num(kv.tokensPerBlock) ? kv.tokensPerBlock : tpb;
  if (num(kv.reusedBlocks) && num(kv.missedBlocks)) {
    out.prefixHitTokens = kv.reusedBlocks * t;
    out.prefixQueryTokens = (kv.reusedBlocks + kv.missedBlocks) * t;
    out.prefixHitRate = kv.reusedBlocks + kv.missedBlocks > 0 ? kv.reusedBlocks / (kv.reusedBlocks + kv.missedBlocks) : 0;
  }
  if (num(kv.cacheHitRate)) out.prefixHitRate = kv.cacheHitRate;
  return out;
}

// The executor's step loop (runs inside the worker; usable in-process for tests). One step is a
// short named pipeline, as in TensorRT-LLM's PyExecutor:
//   fetchNewRequests -> schedule -> prepareResources -> forward -> sample -> updateRequests
//   -> emitResponses -> freeFinished
// (plus, after updateRequests, the beam steps of beam-search groups whose live beams all have their
// rows; see beam-group.ts). Prompt-logprob rows are scored into their group while sampling.
// Bookkeeping rules (see src/scheduler/scheduler.ts): `running` stays in admission order; admitted
// requests move to running, paused ones back to waiting; after the forward each scheduled request's
// numComputedTokens advances by its numTokens and its newly full blocks are cached for reuse;
// finished and aborted requests free their blocks. An error while sampling or updating one request
// fails that request only; an error in the forward pass is fatal (thrown to the caller).
import { getHeapStatistics } from "node:v8";
import type { StepSeq } from "../engine/batch.js";
import type { ModelRunner, StepLogits } from "../engine/model-runner.js";
import { TllmError, ValidationError } from "../errors.js";
import type { KVCacheManager } from "../kvcache/kv-cache-manager.js";
import { RequestState } from "../scheduler/request-state.js";
import type { Scheduler } from "../scheduler/scheduler.js";
import type { ScheduledRequest, SchedulerOutput } from "../scheduler/types.js";
import { GuidedDecoder } from "../sampling/guided/decoder.js";
import { LogprobScratch } from "../sampling/logprobs.js";
import { Sampler, type SampleResult } from "../sampling/sampler.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import { BeamRowProcessor, BeamRun, blocksPerExtraBeam } from "./beam-group.js";
import { endIdsOf, RequestGroup } from "./group.js";
import type { DeltaMsg, FinalOutput } from "./messages.js";
import { tokenLogprobs } from "./prompt-logprobs.js";
import { Request } from "./request.js";
import { batchingStats, kvIterStats, type IterationStats, type KvCacheIterStats } from "./stats.js";
import { PROMPT_LOGITS_BUDGET, type CoreLimits, type StepOutput, type Submission } from "./core-types.js";

export type { CoreLimits, StepOutput, Submission } from "./core-types.js";

interface Scheduled { req: Request; numTokens: number; ctx: boolean }

export class ExecutorCore {
  private readonly incoming: { sub: Submission; time: number }[] = [];
  private running: Request[] = [];
  private waiting: Request[] = [];
  private readonly groups = new Map<number, RequestGroup>();
  private readonly sampler = new Sampler();
  private readonly lpScratch = new LogprobScratch();
  private readonly beamRows = new BeamRowProcessor();
  private arrival = 0;
  private nextSeqId = 1;
  private iter = 0;
  /** kv.stats().allocated at the end of the previous step (allocNewBlocks) */
  private lastAllocated = 0;
  /** grammar masks for guided requests; set by the worker when the first guided request arrives */
  guided: GuidedDecoder | null = null;

  constructor(
    readonly runner: ModelRunner,
    readonly kv: KVCacheManager,
    readonly scheduler: Scheduler,
    readonly tokenizer: Tokenizer,
    readonly limits: CoreLimits,
  ) {}

  /** whether a step would do anything */
  get hasWork(): boolean {
    return this.incoming.length > 0 || this.running.length > 0 || this.waiting.length > 0;
  }

  get numInflight(): number {
    return this.groups.size + this.incoming.length;
  }
  get numRunning(): number {
    return this.running.length;
  }
  get numWaiting(): number {
    return this.waiting.length + this.incoming.length;
  }

  /** Queues a request; throws ValidationError when it can never run under these limits. */
  submit(sub: Submission): void {
    if (this.groups.has(sub.requestId) || this.incoming.some((i) => i.sub.requestId === sub.requestId)) {
      throw new ValidationError("requestId", sub.requestId, "is already in flight");
    }
    this.maxNewTokens(sub);
    if (sub.params.bestOf > this.limits.maxBatchSize) {
      throw new ValidationError("bestOf", sub.params.bestOf, `exceeds maxBatchSize (${this.limits.maxBatchSize})`);
    }
    this.incoming.push({ sub, time: Date.now() });
  }

  /** max new tokens for `sub` under maxSeqLen; throws when the request can never be scheduled */
  private maxNewTokens(sub: Submission): number {
    const { maxSeqLen, maxInputLen, maxNumTokens, enableChunkedPrefill, maxUtilization } = this.limits;
    const len = sub.promptTokenIds.length;
    if (len < 1) throw new ValidationError("prompt", sub.prompt ?? "[]", "is empty (no tokens)");
    if (len > maxInputLen) throw new ValidationError("prompt", `${len} tokens`, `exceeds maxInputLen (${maxInputLen})`);
    const maxTokens = Math.min(sub.params.maxTokens, maxSeqLen - len);
    if (maxTokens < 1) throw new ValidationError("prompt", `${len} tokens`, `leaves no room to generate under maxSeqLen (${maxSeqLen})`);
    const usable = (this.kv.numBlocks - 1) * this.kv.tokensPerBlock;
    const beams = sub.params.strategy === "beam" ? (sub.params.bestOf - 1) * blocksPerExtraBeam(this.kv, len, maxTokens) : 0;
    if (this.kv.blocksFor(len + maxTokens) + beams > this.kv.numBlocks - 1) {
      throw new ValidationError("maxTokens", sub.params.maxTokens,
        `prompt (${len}) + maxTokens${beams > 0 ? ` for ${sub.params.bestOf} beams` : ""} can never fit the KV cache (${usable} tokens); lower maxTokens or raise kvCacheConfig.maxTokens`);
    }
    if (!enableChunkedPrefill && maxUtilization && len + maxTokens - 1 > maxNumTokens) {
      throw new ValidationError("maxTokens", sub.params.maxTokens,
        `with MAX_UTILIZATION and no chunked prefill a preempted request is recomputed in one step: prompt (${len}) + maxTokens - 1 must be <= maxNumTokens (${maxNumTokens})`);
    }
    return maxTokens;
  }

  /** Aborts a request: its sequences end 'cancelled', free their blocks; returns its final output. */
  abort(requestId: number): FinalOutput | null {
    const at = this.incoming.findIndex((i) => i.sub.requestId === requestId);
    if (at >= 0) {
      const [{ sub, time }] = this.incoming.splice(at, 1) as [{ sub: Submission; time: number }];
      const g = this.createGroup(sub, time);
      for (const s of g.seqs) s.finish("cancelled", null);
      return this.release(g);
    }
    const g = this.groups.get(requestId);
    if (!g) return null;
    for (const s of g.seqs) s.finish("cancelled", null);
    return this.release(g);
  }

  /** Aborts every request (shutdown); returns their final outputs. */
  abortAll(): FinalOutput[] {
    const ids = [...this.incoming.map((i) => i.sub.requestId), ...this.groups.keys()];
    return ids.map((id) => this.abort(id)).filter((f): f is FinalOutput => f !== null);
  }

  /** Fails a request (an error in its own processing): frees it, returns nothing to emit. */
  fail(requestId: number): void {
    const g = this.groups.get(requestId);
    if (g) this.release(g);
  }

  /** One iteration of the loop. Throws only on a fatal (whole-batch) error. */
  step(): StepOutput {
    const t0 = performance.now();
    const errors: StepOutput["errors"] = [];
    this.fetchNewRequests(errors);
    const sched = this.schedule();
    const seqs = this.prepareResources(sched.list);
    const beamsReady = new Set<RequestGroup>();
    const samples = this.sample(sched.list, this.runner.run(seqs), errors, beamsReady);
    const deltas = this.updateRequests(sched.list, samples, errors);
    this.advanceBeams(beamsReady, errors);
    const finals = this.freeFinished();
    if (sched.list.length === 0 && this.running.length === 0) this.failUnschedulable(errors);
    for (const e of errors) this.fail(e.requestId);
    const stats = this.iterationStats(t0, sched, finals.length);
    return { deltas, finals, errors, stats };
  }

  /** nothing runs and nothing could be scheduled: the waiting requests would wait forever */
  private failUnschedulable(errors: StepOutput["errors"]): void {
    const ids = new Set(this.waiting.map((r) => r.requestId));
    const free = this.kv.numFreeBlocks;
    for (const requestId of ids) {
      errors.push({ requestId, error: new TllmError(`request ${requestId} cannot be scheduled (${free} free KV blocks, nothing running)`) });
    }
  }

  // ---- the pipeline ----

  /** incoming -> waiting, one Request per output sequence (bestOf of them) */
  private fetchNewRequests(errors: StepOutput["errors"]): void {
    for (const { sub, time } of this.incoming.splice(0)) {
      try {
        const g = this.createGroup(sub, time);
        this.groups.set(sub.requestId, g);
        this.waiting.push(...(g.beam ? [g.seqs[0]!] : g.seqs)); // beams 1.. are forked from 0 after its prefill
      } catch (error) {
        errors.push({ requestId: sub.requestId, error });
      }
    }
  }

  private createGroup(sub: Submission, time: number): RequestGroup {
    const g = new RequestGroup(sub.requestId, sub.prompt, sub.promptTokenIds, sub.streaming, time, sub.params.promptLogprobs !== null);
    const maxTokens = this.maxNewTokens(sub);
    const eos = this.tokenizer.eosTokenIds;
    const extraEos = new Set(sub.params.endId === eos[0] ? eos.slice(1) : []);
    const arrival = this.arrival++;
    for (let index = 0; index < sub.params.bestOf; index++) {
      g.seqs.push(new Request({
        seqId: this.nextSeqId++, requestId: sub.requestId, index, promptTokenIds: sub.promptTokenIds, params: sub.params,
        maxTokens, arrival, priority: sub.priority ?? 0.5, cacheSalt: sub.cacheSalt, badWordsIds: sub.badWordsIds, extraEos,
      }, this.tokenizer));
    }
    g.addGuides(this.guided, extraEos);
    if (sub.params.strategy === "beam") g.beam = new BeamRun(g.seqs, endIdsOf(sub.params, extraEos), this.tokenizer);
    return g;
  }

  /** runs the scheduler and applies its output to running / waiting */
  private schedule(): { out: SchedulerOutput; list: Scheduled[] } {
    const out = this.scheduler.schedule(this.running, this.waiting);
    if (out.pausedRequests.length > 0) {
      const paused = new Set(out.pausedRequests);
      this.running = this.running.filter((r) => !paused.has(r));
      for (const r of out.pausedRequests as Request[]) {
        const g = this.groups.get(r.requestId)!;
        g.numPreemptions++;
        g.beam?.dropRow(r);
      }
      this.waiting.push(...(out.pausedRequests as Request[]));
    }
    if (out.admittedRequests.length > 0) {
      const admitted = new Set(out.admittedRequests);
      this.waiting = this.waiting.filter((r) => !admitted.has(r));
      for (const r of out.admittedRequests as Request[]) {
        r.state = RequestState.CONTEXT_INIT;
        r.numCachedTokens ??= this.kv.numCachedTokens(r.id);
        this.groups.get(r.requestId)!.firstScheduledTime ??= Date.now();
        this.running.push(r);
      }
    }
    const list = [
      ...out.contextRequests.map((s: ScheduledRequest) => ({ req: s.req as Request, numTokens: this.capPromptRows(s.req as Request, s.numTokens), ctx: true })),
      ...out.generationRequests.map((s: ScheduledRequest) => ({ req: s.req as Request, numTokens: s.numTokens, ctx: false })),
    ];
    return { out, list };
  }

  /** a prompt-logprobs chunk returns a logits row per token: keep it within maxPromptLogitRows (the
   *  blocks the scheduler allocated for the rest stay; the next step schedules the remainder) */
  private capPromptRows(req: Request, numTokens: number): number {
    if (!req.skipPrefixCache) return numTokens;
    const tpb = this.kv.tokensPerBlock;
    const cap = this.limits.maxPromptLogitRows ?? Math.max(tpb, Math.floor(PROMPT_LOGITS_BUDGET / this.runner.vocabSize / tpb) * tpb);
    return Math.min(numTokens, cap);
  }

  /** block tables and positions for the runner (blocks were allocated by the scheduler) */
  private prepareResources(list: readonly Scheduled[]): StepSeq[] {
    return list.map(({ req, numTokens }) => ({
      tokens: req.tokens, start: req.numComputedTokens, numTokens, blockTable: this.kv.getBlockTable(req.id),
      wantLogits: req.numComputedTokens + numTokens === req.tokens.length,
      promptLogitsEnd: req.skipPrefixCache ? req.promptLen - 1 : 0,
    }));
  }

  /** one sampler call for every sampling row (Sampler.sampleEach: a failing row fails only its
   *  request); prompt rows (prompt logprobs) are scored into their group */
  private sample(list: readonly Scheduled[], step: StepLogits, errors: StepOutput["errors"], beamsReady: Set<RequestGroup>) {
    const V = this.runner.vocabSize;
    const { logits } = step;
    const out = new Map<Request, SampleResult>();
    const reqs: Request[] = [];
    const rows: number[] = [];
    step.rowSeq.forEach((i, row) => {
      const req = list[i]!.req;
      if (step.rowPos[row] !== req.tokens.length - 1 || req.params.strategy === "beam") {
        this.sideRow(req, logits.subarray(row * V, (row + 1) * V), step.rowPos[row]!, beamsReady, errors);
      } else {
        reqs.push(req);
        rows.push(row);
      }
    });
    const masks = this.guidedMasks(reqs, errors);
    const failed = new Set(errors.map((e) => e.requestId));
    const live = reqs.map((_, i) => i).filter((i) => !failed.has(reqs[i]!.requestId));
    if (masks) live.forEach((i) => (reqs[i]!.row.tokenBitmask = masks[i]));
    // one call for the whole batch (the Sampler's batched native step); a row that throws fails its request only
    const results = this.sampler.sampleEach(logits, live.map((i) => rows[i]!), live.map((i) => reqs[i]!.row), V);
    live.forEach((i, j) => {
      const req = reqs[i]!;
      const r = results[j]!;
      try {
        if ("error" in r) throw r.error;
        if (this.guided?.has(req.id) && !this.guided.accept(req.id, r.token)) {
          throw new ValidationError("guidedDecoding", r.token, `token rejected by the grammar of request ${req.requestId}`);
        }
        out.set(req, r);
      } catch (error) {
        errors.push({ requestId: req.requestId, error });
      }
    });
    return out;
  }

  /**
   * A row the Sampler does not take: a prompt row at `pos` scores prompt token pos + 1 (raw
   * distribution, TRT-LLM's prompt_logprobs); a beam slot's last row becomes processed
   * log-probabilities kept until every live beam of its group has one (then the group is `ready`).
   */
  private sideRow(req: Request, row: Float32Array, pos: number, ready: Set<RequestGroup>, errors: StepOutput["errors"]): void {
    const g = this.groups.get(req.requestId);
    const V = this.runner.vocabSize;
    try {
      if (pos !== req.tokens.length - 1) {
        if (g?.promptLogprobs && pos + 1 < req.promptLen) {
          g.promptLogprobs[pos + 1] = tokenLogprobs(row, V, req.tokens[pos + 1]!, req.params.promptLogprobs ?? 0, this.lpScratch);
        }
      } else if (g?.beam?.setRow(req, this.beamRows.logprobs(row, req.row, V, req.extraEos))) ready.add(g);
    } catch (error) {
      errors.push({ requestId: req.requestId, error });
    }
  }

  /** beam steps of the groups whose live beams all have their rows (after computed counts advanced) */
  private advanceBeams(ready: Set<RequestGroup>, errors: StepOutput["errors"]): void {
    const failed = new Set(errors.map((e) => e.requestId));
    for (const g of ready) {
      if (failed.has(g.requestId)) continue;
      try {
        const m = g.beam!.advance(this.kv, (src, dst) => this.runner.pool.copyBlock(src, dst), this.runner.vocabSize);
        if (m.parked.length > 0) this.running = this.running.filter((r) => !m.parked.includes(r));
        this.running.push(...m.activated);
        g.lastTokenTime = Date.now();
        g.firstTokenTime ??= g.lastTokenTime;
      } catch (error) {
        errors.push({ requestId: g.requestId, error });
      }
    }
  }

  /** the step's grammar bitmasks, per row (undefined for unguided rows); null when nothing is guided */
  private guidedMasks(reqs: readonly Request[], errors: StepOutput["errors"]): (Int32Array | undefined)[] | null {
    const d = this.guided;
    if (!d || d.size === 0) return null;
    try {
      return d.masksSync(reqs.map((r) => r.id));
    } catch (error) {
      for (const r of reqs) if (d.has(r.id)) errors.push({ requestId: r.requestId, error });
      return reqs.map(() => undefined);
    }
  }

  /** advance computed counts, cache full blocks, append sampled tokens (stop checks, detokenize) */
  private updateRequests(list: readonly Scheduled[], samples: Map<Request, SampleResult>,
    errors: StepOutput["errors"]): DeltaMsg[] {
    const deltas: DeltaMsg[] = [];
    const failed = new Set(errors.map((e) => e.requestId));
    for (const { req, numTokens } of list) {
      if (failed.has(req.requestId)) continue;
      try {
        req.numComputedTokens += numTokens;
        this.kv.cacheFullBlocks(req);
        const r = samples.get(req);
        if (!r) continue;
        if (req.state === RequestState.CONTEXT_INIT) req.state = RequestState.GENERATION_IN_PROGRESS;
        const g = this.groups.get(req.requestId)!;
        g.lastTokenTime = Date.now();
        g.firstTokenTime ??= g.lastTokenTime;
        const d = req.appendToken(r);
        if (g.streamsDeltas) deltas.push(g.delta(req, d));
      } catch (error) {
        errors.push({ requestId: req.requestId, error });
        failed.add(req.requestId);
      }
    }
    return deltas;
  }

  /** frees finished sequences; returns the final output of each request now complete */
  private freeFinished(): FinalOutput[] {
    const finals: FinalOutput[] = [];
    const done = this.running.filter((r) => r.finished);
    if (done.length === 0) return finals;
    for (const r of done) {
      this.kv.free(r);
      r.state = RequestState.GENERATION_COMPLETE;
    }
    this.running = this.running.filter((r) => !r.finished);
    for (const r of done) {
      const g = this.groups.get(r.requestId);
      if (g && g.done) finals.push(this.release(g));
    }
    return finals;
  }

  /** removes a request from every list, frees its blocks, returns its final output */
  private release(g: RequestGroup): FinalOutput {
    const mine = new Set(g.seqs);
    for (const s of g.seqs) {
      this.kv.free(s);
      this.guided?.remove(s.id);
      s.state = RequestState.GENERATION_COMPLETE;
    }
    this.running = this.running.filter((r) => !mine.has(r));
    this.waiting = this.waiting.filter((r) => !mine.has(r));
    this.groups.delete(g.requestId);
    return g.final(Date.now());
  }

  // ---- stats ----

  kvStats(): KvCacheIterStats {
    return kvIterStats(this.kv.stats(), this.kv.tokensPerBlock, this.lastAllocated);
  }

  get iterations(): number {
    return this.iter;
  }

  private iterationStats(t0: number, sched: { out: SchedulerOutput; list: Scheduled[] }, completed: number): IterationStats {
    const kvCacheStats = this.kvStats();
    this.lastAllocated = kvCacheStats.allocTotalBlocks;
    const { maxBatchSize, maxNumTokens } = this.limits;
    return {
      iter: this.iter++, timestamp: Date.now(), iterLatencyMS: performance.now() - t0,
      numActiveRequests: this.running.length, numQueuedRequests: this.waiting.length + this.incoming.length,
      numCompletedRequests: completed, maxNumActiveRequests: maxBatchSize, maxBatchSizeStatic: maxBatchSize,
      maxNumTokensStatic: maxNumTokens, cpuMemUsage: getHeapStatistics().used_heap_size, kvCacheStats,
      inflightBatchingStats: batchingStats(sched.list, sched.out.pausedRequests.length),
    };
  }
}

// ParallelGuidedDecoder: a GuidedDecoder whose per-step masks are computed by W worker threads at once
// (XGrammar's WASM engine is single-threaded, and a JSON-schema or regex mask over a 152k vocabulary
// costs 0.01-30 ms per row depending on the matcher's state: 64 rows took 10-25% of a TinyLlama-shaped
// batch step on one thread). Every sequence keeps its full state here (accept / isTerminated /
// rollback / fork answer synchronously, exactly as GuidedDecoder's) and is replicated on every
// worker, which the broadcast ops keep in step; a step's rows go to whichever worker takes them first
// from a shared counter (so a few expensive rows balance out), and the UTF-8 guard and fixed masks are
// applied here. A worker that fails, dies or stops answering (30 s) is dropped; rows no worker
// finished are computed here, from the local states, so a step never loses a mask.
import type { Worker } from "node:worker_threads";
import { siblingModule, startModuleWorker } from "../../workers.js";
import type { GuidedDecodingParams } from "../params.js";
import { GuidedDecoder, type SequenceKey } from "./decoder.js";
import { guidedCompilerFor, type GuidedCompiler } from "./compiler.js";
import { encodeVocab, type GuidedVocab } from "./vocab.js";
import type { FromMaskWorker, MaskOp, MaskWorkerData, ToMaskWorker } from "./mask-worker.js";

const TIMEOUT_MS = 30_000;
/** status word of a row no worker has finished */
const PENDING = 2;

interface MaskWorker { w: Worker; ctl: Int32Array; seq: number; dead: boolean }

export class ParallelGuidedDecoder extends GuidedDecoder {
  /** ops since the last step, for every worker */
  private ops: MaskOp[] = [];
  /** sequences the workers replicate (numeric keys; string keys stay local) */
  private readonly replicated = new Set<number>();
  private readonly words: number;
  private out = new Int32Array(new SharedArrayBuffer(4));
  private readonly counter = new Int32Array(new SharedArrayBuffer(4));

  private constructor(compiler: GuidedCompiler, private readonly workers: MaskWorker[]) {
    super(compiler);
    this.words = Math.ceil(compiler.vocabSize / 32);
  }

  /** `threads` workers (>= 1) over the shared compiler of (tokenizer, logits width). */
  static async createParallel(vocab: GuidedVocab, modelVocabSize: number, threads: number): Promise<ParallelGuidedDecoder> {
    const compiler = await guidedCompilerFor(vocab, modelVocabSize);
    const encoded = encodeVocab(vocab);
    const workers = await Promise.all(Array.from({ length: threads }, () => startMaskWorker({
      vocab: encoded, vocabSize: modelVocabSize, options: compiler.options, ctl: new SharedArrayBuffer(4),
    })));
    return new ParallelGuidedDecoder(compiler, workers);
  }

  get numWorkers(): number {
    return this.live().length;
  }

  override async prepare(g: GuidedDecodingParams | undefined): Promise<void> {
    await super.prepare(g);
    if (GuidedDecoder.wants(g)) for (const w of this.live()) w.w.postMessage({ type: "prepare", guide: g } satisfies ToMaskWorker);
  }

  override addSync(key: SequenceKey, g: GuidedDecodingParams | undefined, stopTokenIds?: readonly number[]): void {
    super.addSync(key, g, stopTokenIds);
    if (!GuidedDecoder.wants(g) || typeof key !== "number") return;
    this.replicated.add(key);
    this.ops.push(["add", key, g, stopTokenIds && stopTokenIds.length > 0 ? [...new Set(stopTokenIds)] : null]);
  }

  override accept(key: SequenceKey, token: number): boolean {
    const ok = super.accept(key, token);
    if (ok && this.isReplicated(key)) this.ops.push(["accept", key as number, token]);
    return ok;
  }

  override rollback(key: SequenceKey, n: number): void {
    super.rollback(key, n);
    if (n > 0 && this.isReplicated(key)) this.ops.push(["rollback", key as number, n]);
  }

  override async fork(src: SequenceKey, dst: SequenceKey): Promise<void> {
    await super.fork(src, dst);
    if (!this.isReplicated(src) || typeof dst !== "number" || !this.has(dst)) return;
    this.replicated.add(dst);
    this.ops.push(["fork", src as number, dst]);
  }

  override remove(key: SequenceKey): void {
    super.remove(key);
    if (!this.isReplicated(key)) return;
    this.replicated.delete(key as number);
    this.ops.push(["remove", key as number]);
  }

  /** Masks in row order: the workers take the replicated rows; the rest, and rows no worker finished, here. */
  override masksSync(keys: readonly SequenceKey[]): (Int32Array | undefined)[] {
    const rows: number[] = [];
    keys.forEach((k, i) => { if (this.isReplicated(k) && !this.isTerminated(k)) rows.push(i); });
    const live = this.live();
    const out: (Int32Array | undefined)[] = new Array(keys.length).fill(undefined);
    if (live.length > 0 && (rows.length > 0 || this.ops.length > 0)) {
      this.post(live, rows.map((i) => keys[i] as number));
      for (const w of live) this.await(w);
      rows.forEach((row, j) => {
        const at = j * (this.words + 1);
        if (this.out[at] === 0) out[row] = this.stateOf(keys[row]!)!.applyGuards(this.out.slice(at + 1, at + 1 + this.words));
      });
    }
    const rest = keys.map((k, i) => (out[i] === undefined ? k : undefined));
    super.masksSync(rest.map((k) => k ?? -1)).forEach((m, i) => { if (rest[i] !== undefined) out[i] = m; });
    return out;
  }

  override dispose(): void {
    super.dispose();
    for (const w of this.workers) { w.dead = true; void w.w.terminate(); }
  }

  private live(): MaskWorker[] {
    return this.workers.filter((w) => !w.dead);
  }

  private isReplicated(key: SequenceKey): boolean {
    return typeof key === "number" && this.replicated.has(key);
  }

  /** Sends the step (the pending ops and the rows' keys) to every live worker. */
  private post(live: MaskWorker[], keys: number[]): void {
    const need = keys.length * (this.words + 1);
    if (this.out.length < need) this.out = new Int32Array(new SharedArrayBuffer(4 * Math.max(need, 2 * this.out.length)));
    for (let j = 0; j < keys.length; j++) this.out[j * (this.words + 1)] = PENDING;
    Atomics.store(this.counter, 0, 0);
    for (const w of live) {
      w.w.postMessage({ type: "step", seq: ++w.seq, ops: this.ops, keys, out: this.out.buffer as SharedArrayBuffer, counter: this.counter.buffer as SharedArrayBuffer } satisfies ToMaskWorker);
    }
    this.ops = [];
  }

  /** Blocks until `w` finished its last step; a worker that did not in time is dropped. */
  private await(w: MaskWorker): void {
    const deadline = Date.now() + TIMEOUT_MS;
    for (;;) {
      const v = Atomics.load(w.ctl, 0);
      if (v === w.seq) return;
      if (w.dead || Date.now() > deadline) break;
      Atomics.wait(w.ctl, 0, v, 200);
    }
    w.dead = true;
    void w.w.terminate();
  }
}

function startMaskWorker(data: MaskWorkerData): Promise<MaskWorker> {
  const w = startModuleWorker(siblingModule(import.meta.url, "mask-worker"), data);
  const mw: MaskWorker = { w, ctl: new Int32Array(data.ctl), seq: 0, dead: false };
  w.on("error", () => { mw.dead = true; });
  w.on("exit", () => { mw.dead = true; });
  return new Promise((ok, fail) => {
    w.once("message", (m: FromMaskWorker) => {
      if (m.type !== "ready") return fail(new Error(`grammar mask worker: ${m.message}`));
      w.unref(); // never keeps the process alive: dispose() or the owner's exit ends it
      ok(mw);
    });
    w.once("error", fail);
  });
}

/**
 * The engine's grammar decoder: masks on `workers` threads (ParallelGuidedDecoder) when workers >= 2,
 * else in-thread (GuidedDecoder; one worker would only move the same serial work elsewhere). A
 * decoder whose workers fail to start falls back to in-thread.
 */
export async function createGuidedDecoder(vocab: GuidedVocab, modelVocabSize: number, workers: number,
  log: (line: string) => void = () => {}): Promise<GuidedDecoder> {
  if (!(workers >= 2)) return GuidedDecoder.create(vocab, modelVocabSize);
  try {
    const d = await ParallelGuidedDecoder.createParallel(vocab, modelVocabSize, Math.min(workers, 8));
    log(`tllm executor: grammar masks on ${d.numWorkers} worker threads`);
    return d;
  } catch (e) {
    log(`tllm executor: grammar mask workers failed to start (${e instanceof Error ? e.message : String(e)}); masks in-thread`);
    return GuidedDecoder.create(vocab, modelVocabSize);
  }
}

// ParallelGuidedDecoder: a GuidedDecoder whose per-step masks are computed by W worker threads at once
// (XGrammar's WASM engine is single-threaded, and a JSON-schema or regex mask over a 152k vocabulary
// costs ~0.5-1.5 ms per row: 64 rows took 15-25% of a TinyLlama-shaped batch step on one thread).
// Every sequence keeps its full state here too (accept / isTerminated / rollback / fork answer
// synchronously, exactly as GuidedDecoder's); each is also replicated on one worker, which the ops
// below keep in step and which computes its raw mask; the UTF-8 guard and fixed masks are applied
// here. A worker that fails, dies or stops answering (30 s) is dropped and its rows' masks are
// computed here, from the local states, so a step never loses a mask.
import type { Worker } from "node:worker_threads";
import { siblingModule, startModuleWorker } from "../../workers.js";
import type { GuidedDecodingParams } from "../params.js";
import { GuidedDecoder, type SequenceKey } from "./decoder.js";
import { guidedCompilerFor, type GuidedCompiler } from "./compiler.js";
import { encodeVocab, type GuidedVocab } from "./vocab.js";
import type { FromMaskWorker, MaskOp, MaskWorkerData, ToMaskWorker } from "./mask-worker.js";

const TIMEOUT_MS = 30_000;

interface MaskWorker { w: Worker; ctl: Int32Array; seq: number; out: Int32Array | null; ops: MaskOp[]; load: number; dead: boolean }

export class ParallelGuidedDecoder extends GuidedDecoder {
  private readonly owner = new Map<number, MaskWorker>();
  private readonly words: number;

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
    return this.workers.filter((w) => !w.dead).length;
  }

  override async prepare(g: GuidedDecodingParams | undefined): Promise<void> {
    await super.prepare(g);
    if (GuidedDecoder.wants(g)) for (const w of this.live()) w.w.postMessage({ type: "prepare", guide: g } satisfies ToMaskWorker);
  }

  override addSync(key: SequenceKey, g: GuidedDecodingParams | undefined, stopTokenIds?: readonly number[]): void {
    super.addSync(key, g, stopTokenIds);
    if (!GuidedDecoder.wants(g) || typeof key !== "number") return; // string keys stay local
    const w = this.live().reduce<MaskWorker | undefined>((a, b) => (!a || b.load < a.load ? b : a), undefined);
    if (!w) return;
    this.owner.set(key, w);
    w.load++;
    w.ops.push(["add", key, g, stopTokenIds && stopTokenIds.length > 0 ? [...new Set(stopTokenIds)] : null]);
  }

  override accept(key: SequenceKey, token: number): boolean {
    const ok = super.accept(key, token);
    if (ok) this.ownerOf(key)?.ops.push(["accept", key as number, token]);
    return ok;
  }

  override rollback(key: SequenceKey, n: number): void {
    super.rollback(key, n);
    if (n > 0) this.ownerOf(key)?.ops.push(["rollback", key as number, n]);
  }

  override async fork(src: SequenceKey, dst: SequenceKey): Promise<void> {
    await super.fork(src, dst);
    const w = this.ownerOf(src);
    if (!w || typeof dst !== "number" || !this.has(dst)) return;
    this.owner.set(dst, w);
    w.load++;
    w.ops.push(["fork", src as number, dst]);
  }

  override remove(key: SequenceKey): void {
    super.remove(key);
    const w = this.ownerOf(key);
    if (!w) return;
    w.ops.push(["remove", key as number]);
    w.load--;
    this.owner.delete(key as number);
  }

  /** Masks in row order: each worker computes its rows at the same time; the rest are computed here. */
  override masksSync(keys: readonly SequenceKey[]): (Int32Array | undefined)[] {
    const rows = new Map<MaskWorker, number[]>();
    keys.forEach((k, i) => {
      const w = this.ownerOf(k);
      if (w && !this.isTerminated(k)) rows.get(w)?.push(i) ?? rows.set(w, [i]);
    });
    for (const w of this.live()) if (rows.has(w) || w.ops.length > 0) this.send(w, (rows.get(w) ?? []).map((i) => keys[i] as number));
    const out: (Int32Array | undefined)[] = new Array(keys.length).fill(undefined);
    for (const [w, idx] of rows) {
      const ok = this.await(w);
      idx.forEach((row, j) => {
        const at = j * (this.words + 1);
        if (ok && w.out![at] === 0) out[row] = this.stateOf(keys[row]!)!.applyGuards(w.out!.slice(at + 1, at + 1 + this.words));
      });
    }
    // rows without a (live, successful) worker: here, from the full local state
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

  private ownerOf(key: SequenceKey): MaskWorker | undefined {
    const w = typeof key === "number" ? this.owner.get(key) : undefined;
    return w && !w.dead ? w : undefined;
  }

  private send(w: MaskWorker, keys: number[]): void {
    const need = keys.length * (this.words + 1);
    let buf: SharedArrayBuffer | undefined;
    if (!w.out || w.out.length < need) w.out = new Int32Array((buf = new SharedArrayBuffer(4 * Math.max(need, 2 * (w.out?.length ?? 0)))));
    w.w.postMessage({ type: "step", seq: ++w.seq, ops: w.ops, keys, out: buf } satisfies ToMaskWorker);
    w.ops = [];
  }

  /** Blocks until `w` finished its last step; false (and `w` dropped) when it did not in time. */
  private await(w: MaskWorker): boolean {
    const deadline = Date.now() + TIMEOUT_MS;
    for (;;) {
      const v = Atomics.load(w.ctl, 0);
      if (v === w.seq) return true;
      if (w.dead || Date.now() > deadline) break;
      Atomics.wait(w.ctl, 0, v, 200);
    }
    this.drop(w);
    return false;
  }

  private drop(w: MaskWorker): void {
    w.dead = true;
    void w.w.terminate();
    for (const [k, o] of this.owner) if (o === w) this.owner.delete(k);
  }
}

function startMaskWorker(data: MaskWorkerData): Promise<MaskWorker> {
  const w = startModuleWorker(siblingModule(import.meta.url, "mask-worker"), data);
  const mw: MaskWorker = { w, ctl: new Int32Array(data.ctl), seq: 0, out: null, ops: [], load: 0, dead: false };
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

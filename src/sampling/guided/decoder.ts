// GuidedDecoder: what the request loop calls, keyed by sequence (request id, or "id/seq" for
// n > 1 / beams). Sequences without a guide are never registered and cost nothing per step.
//   admission:  await decoder.add(key, params.guidedDecoding, stopIds)  (ValidationError: fail the request)
//               or, in a synchronous loop: await decoder.prepare(guide) at submission, then
//               decoder.addSync(key, guide, stopIds) when the sequence is created
//   each step:  const masks = decoder.masksSync(rowKeys) (or await masks()) -> SamplingRow.tokenBitmask = masks[i]
//               after sampling: decoder.accept(key, token) for each guided row
//   rejection (speculative decoding): decoder.rollback(key, n); beams: await decoder.fork(src, dst)
//   finish / abort:  decoder.remove(key)
import { ValidationError } from "../../errors.js";
import type { GuidedDecodingParams } from "../params.js";
import { guidedCompilerFor, guideKey, type GuidedCompiler } from "./compiler.js";
import { GuidedState } from "./state.js";
import type { GuidedVocab } from "./vocab.js";

export type SequenceKey = string | number;

export class GuidedDecoder {
  private readonly states = new Map<SequenceKey, GuidedState>();

  constructor(readonly compiler: GuidedCompiler) {}

  /** The decoder over the shared compiler of (tokenizer, logits width). */
  static async create(vocab: GuidedVocab, modelVocabSize: number): Promise<GuidedDecoder> {
    return new GuidedDecoder(await guidedCompilerFor(vocab, modelVocabSize));
  }

  /** Whether `g` sets a guide (undefined / all-empty guides register nothing). */
  static wants(g: GuidedDecodingParams | undefined): g is GuidedDecodingParams {
    return g !== undefined && guideKey(g) !== undefined;
  }

  /** Registers a sequence's guide (compiles it, cached); no-op when `g` sets none. */
  async add(key: SequenceKey, g: GuidedDecodingParams | undefined, stopTokenIds?: readonly number[]): Promise<void> {
    if (!GuidedDecoder.wants(g)) return;
    if (this.states.has(key)) throw new ValidationError("sequence", key, "already has a guide");
    const s = await GuidedState.create(this.compiler, g, stopTokenIds);
    this.states.set(key, s);
  }

  /** Compiles `g` ahead (at submission), so that addSync can run inside a synchronous step. */
  async prepare(g: GuidedDecodingParams | undefined): Promise<void> {
    if (GuidedDecoder.wants(g)) await this.compiler.compile(g);
  }

  /** add() without the Promise; `g` must have been prepared. */
  addSync(key: SequenceKey, g: GuidedDecodingParams | undefined, stopTokenIds?: readonly number[]): void {
    if (!GuidedDecoder.wants(g)) return;
    if (this.states.has(key)) throw new ValidationError("sequence", key, "already has a guide");
    this.states.set(key, GuidedState.createSync(this.compiler, g, stopTokenIds));
  }

  /** the sequence's state (subclasses: parallel.ts) */
  protected stateOf(key: SequenceKey): GuidedState | undefined {
    return this.states.get(key);
  }

  /** Releases what the decoder holds beyond its states (mask workers in parallel.ts). */
  dispose(): void {
    for (const k of [...this.states.keys()]) this.remove(k);
  }

  has(key: SequenceKey): boolean {
    return this.states.has(key);
  }

  get size(): number {
    return this.states.size;
  }

  /** Bitmasks for the step's rows, in row order (undefined for rows without a guide or finished). */
  async masks(keys: readonly SequenceKey[]): Promise<(Int32Array | undefined)[]> {
    const out: (Int32Array | undefined)[] = new Array(keys.length);
    for (let i = 0; i < keys.length; i++) {
      const s = this.states.get(keys[i]!);
      out[i] = s && !s.isTerminated() ? await s.nextBitmask() : undefined;
    }
    return out;
  }

  /** masks() without the Promise, for a synchronous step loop. */
  masksSync(keys: readonly SequenceKey[]): (Int32Array | undefined)[] {
    return keys.map((k) => {
      const s = this.states.get(k);
      return s && !s.isTerminated() ? s.nextBitmaskSync() : undefined;
    });
  }

  /** Advances a guided sequence; true for unguided keys. False: the grammar rejected the token. */
  accept(key: SequenceKey, token: number): boolean {
    const s = this.states.get(key);
    return s ? s.accept(token) : true;
  }

  /** The guided sequence reached a stop token its grammar allowed (false for unguided keys). */
  isTerminated(key: SequenceKey): boolean {
    return this.states.get(key)?.isTerminated() ?? false;
  }

  rollback(key: SequenceKey, n: number): void {
    this.states.get(key)?.rollback(n);
  }

  /** `dst` continues from `src`'s state (no-op when `src` has no guide). */
  async fork(src: SequenceKey, dst: SequenceKey): Promise<void> {
    const s = this.states.get(src);
    if (!s) return;
    if (this.states.has(dst)) throw new ValidationError("sequence", dst, "already has a guide");
    this.states.set(dst, await s.fork());
  }

  remove(key: SequenceKey): void {
    this.states.get(key)?.dispose();
    this.states.delete(key);
  }
}

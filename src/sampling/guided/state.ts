// GuidedState: the grammar matcher of one sequence. Per step the engine (1) awaits nextBitmask()
// for every guided row of the batch (computeBitmasks), (2) passes each mask to the Sampler in
// SamplingRow.tokenBitmask, (3) calls accept(token) with the sampled token. Rows without a guide
// have no state and cost nothing. When the grammar is complete and cannot continue, the mask
// allows only the stop ids (EOS / stop tokens), so the request ends with a stop token.
import { ValidationError } from "../../errors.js";
import type { GuidedDecodingParams } from "../params.js";
import type { GuidedCompiler } from "./compiler.js";
import type { Utf8Guard } from "./utf8-guard.js";
import { loadXGrammar, xgrammarBinding } from "./xgrammar-loader.js";
import type { GrammarMatcher } from "@mlc-ai/web-xgrammar";

export class GuidedState {
  private disposed = false;
  /** pending restricted UTF-8 lead byte after each accepted token (0: none); length = tokens accepted */
  private readonly leads: number[] = [];
  /** the accepted tokens (fork replays them) */
  private readonly tokens: number[] = [];

  private constructor(
    private readonly matcher: GrammarMatcher, readonly vocabSize: number,
    private readonly guard: Utf8Guard, private readonly fixed: Int32Array | undefined,
    private readonly spawn: () => Promise<GuidedState>,
  ) {}

  /**
   * `stopTokenIds`: the ids that end this request (its endId and stopTokenIds); default the
   * tokenizer's end-of-generation ids.
   */
  static async create(compiler: GuidedCompiler, g: GuidedDecodingParams, stopTokenIds?: readonly number[]): Promise<GuidedState> {
    const compiled = await compiler.compile(g);
    const stop = checkStop(compiler, stopTokenIds);
    const { GrammarMatcher: M } = loadXGrammar();
    const matcher = await M.createGrammarMatcher(compiled, stop, false);
    return GuidedState.wrap(compiler, g, stopTokenIds, matcher);
  }

  /**
   * create() without the Promise, for a synchronous step loop: the guide must have been compiled
   * already (await compiler.compile(g), e.g. when the request is submitted).
   */
  static createSync(compiler: GuidedCompiler, g: GuidedDecodingParams, stopTokenIds?: readonly number[]): GuidedState {
    const compiled = compiler.compiledSync(g);
    const b = xgrammarBinding();
    if (!compiled || !b) throw new ValidationError("guidedDecoding", g, "not compiled yet: await compiler.compile(guide) first");
    const stop = checkStop(compiler, stopTokenIds);
    const handle = new b.GrammarMatcher(compiled.handle, stop ? b.vecIntFromJSArray(stop) : undefined, false, -1);
    const { GrammarMatcher: M } = loadXGrammar();
    const Ctor = M as unknown as new (h: unknown, vocab: number) => GrammarMatcher;
    return GuidedState.wrap(compiler, g, stopTokenIds, new Ctor(handle, compiler.vocabSize));
  }

  private static wrap(compiler: GuidedCompiler, g: GuidedDecodingParams, stopTokenIds: readonly number[] | undefined, m: GrammarMatcher): GuidedState {
    const spawn = (): Promise<GuidedState> => GuidedState.create(compiler, g, stopTokenIds);
    return new GuidedState(m, compiler.vocabSize, compiler.utf8Guard, compiler.staticMask(g), spawn);
  }

  /** The next token's bitmask, Int32Array [ceil(vocabSize / 32)] (bit set = allowed). */
  async nextBitmask(): Promise<Int32Array> {
    this.check();
    return this.applyGuards(await this.matcher.getNextTokenBitmask());
  }

  /**
   * nextBitmask() without the Promise (the async API only awaits the binding's one-time
   * initialization, done by create()), for a synchronous step loop. Same mask.
   */
  nextBitmaskSync(): Int32Array {
    this.check();
    const b = xgrammarBinding();
    if (!b) throw new ValidationError("GuidedState", "uninitialized", "XGrammar binding not initialized");
    const handle = (this.matcher as unknown as { handle: { GetNextTokenBitmask(n: number): { delete(): void } } }).handle;
    const vec = handle.GetNextTokenBitmask(this.vocabSize);
    const m = b.vecIntToView(vec).slice();
    vec.delete();
    return this.applyGuards(m);
  }

  /** ANDs this sequence's fixed mask and UTF-8 guard into an XGrammar mask `m` (in place; returns m). */
  applyGuards(m: Int32Array): Int32Array {
    if (this.fixed) for (let w = 0; w < m.length; w++) m[w]! &= this.fixed[w]!;
    const lead = this.leads.length > 0 ? this.leads[this.leads.length - 1]! : 0;
    if (lead !== 0) this.guard.restrict(m, lead);
    return m;
  }

  /** Advances the matcher by `token`; false (state unchanged) when the grammar rejects it. */
  accept(token: number): boolean {
    this.check();
    if (!Number.isInteger(token) || token < 0 || token >= this.vocabSize) throw new ValidationError("token", token, `not in [0, ${this.vocabSize})`);
    const ok = this.matcher.acceptToken(token);
    if (ok) {
      this.leads.push(this.guard.after(token));
      this.tokens.push(token);
    }
    return ok;
  }

  /** The matcher accepted a stop token: the output is complete. */
  isTerminated(): boolean {
    this.check();
    return this.matcher.isTerminated();
  }

  /** Undoes the last `n` accepted tokens (speculative decoding rejections, beam forks). */
  rollback(n: number): void {
    this.check();
    const k = this.leads.length;
    if (!Number.isInteger(n) || n < 0 || n > k) throw new ValidationError("rollback", n, `must be an integer in [0, ${k}]`);
    if (n === 0) return;
    this.matcher.rollBack(n);
    this.leads.length = k - n;
    this.tokens.length = k - n;
  }

  /**
   * An independent copy in the same state (beam search forks, n > 1 sharing a prompt): a new
   * matcher on the same compiled grammar with the accepted tokens replayed (the web binding has
   * no matcher copy), O(tokens so far).
   */
  async fork(): Promise<GuidedState> {
    this.check();
    const s = await this.spawn();
    for (const t of this.tokens) {
      if (!s.accept(t)) throw new ValidationError("fork", t, "replay rejected a token the original accepted");
    }
    return s;
  }

  get numAccepted(): number {
    return this.leads.length;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.matcher.dispose();
  }

  private check(): void {
    if (this.disposed) throw new ValidationError("GuidedState", "disposed", "used after dispose()");
  }
}

/**
 * The step's bitmasks for a batch: mask[i] for rows with a state, undefined for the others (they
 * are not waited on for anything). Masks are computed one row after another inside the WASM
 * engine (single-threaded).
 */
export async function computeBitmasks(states: readonly (GuidedState | undefined)[]): Promise<(Int32Array | undefined)[]> {
  const out: (Int32Array | undefined)[] = new Array(states.length);
  for (let i = 0; i < states.length; i++) {
    const s = states[i];
    out[i] = s && !s.isTerminated() ? await s.nextBitmask() : undefined;
  }
  return out;
}

/** computeBitmasks without the Promise (see GuidedState.nextBitmaskSync). */
export function computeBitmasksSync(states: readonly (GuidedState | undefined)[]): (Int32Array | undefined)[] {
  return states.map((s) => (s && !s.isTerminated() ? s.nextBitmaskSync() : undefined));
}

function checkStop(compiler: GuidedCompiler, stopTokenIds: readonly number[] | undefined): number[] | undefined {
  const stop = stopTokenIds && stopTokenIds.length > 0 ? [...new Set(stopTokenIds)] : undefined;
  stop?.forEach((t) => {
    if (!Number.isInteger(t) || t < 0 || t >= compiler.vocabSize) throw new ValidationError("stopTokenIds", t, `not in [0, ${compiler.vocabSize})`);
  });
  return stop;
}

// GuidedCompiler: one XGrammar GrammarCompiler per (tokenizer, model vocab size), with a cache of
// compiled grammars keyed by the guide. Compiling a JSON schema against a 152k vocabulary costs
// tens to hundreds of ms (the per-state adaptive token masks); a repeated schema is free.
import { ValidationError } from "../../errors.js";
import type { GuidedDecodingParams } from "../params.js";
import { Utf8Guard } from "./utf8-guard.js";
import { checkModelVocab, encodeVocab, vocabBitmask, type EncodedVocab, type GuidedVocab } from "./vocab.js";
import { loadXGrammar } from "./xgrammar-loader.js";
import type { CompiledGrammar, GrammarCompiler } from "@mlc-ai/web-xgrammar";

export interface GuidedCompilerOptions {
  /**
   * JSON guides: allow any whitespace between elements (XGrammar any_whitespace). Default false:
   * compact one-line JSON with ", " and ": " separators, so a model cannot stall in whitespace.
   */
  anyWhitespace?: boolean;
  /** compiled grammars kept (least recently used dropped first); default 64 */
  cacheSize?: number;
}

/** The one guide set in `g`, as [kind, canonical text]; undefined when no guide is set. */
export function guideKey(g: GuidedDecodingParams): [kind: string, text: string] | undefined {
  const set = Object.entries(g).filter(([, v]) => v !== undefined && v !== null && v !== false);
  if (set.length === 0) return undefined;
  if (set.length > 1) throw new ValidationError("guidedDecoding", set.map(([k]) => k), "at most one guide may be set");
  const [kind, v] = set[0]!;
  if (kind === "jsonObject") return [kind, ""];
  if (kind === "json" || kind === "structuralTag") return [kind, typeof v === "string" ? v : JSON.stringify(v)];
  if (typeof v !== "string") throw new ValidationError(`guidedDecoding.${kind}`, v, "must be a string");
  return [kind, v];
}

export class GuidedCompiler {
  readonly vocabSize: number;
  readonly stopTokenIds: readonly number[];
  private readonly cache = new Map<string, Promise<CompiledGrammar>>();
  /** the settled entries of `cache`, for compiledSync */
  private readonly ready = new Map<string, CompiledGrammar>();
  private readonly anyWhitespace: boolean;
  private readonly cacheSize: number;
  private guard: Utf8Guard | undefined;
  private noControl: Int32Array | undefined;

  private constructor(
    private readonly compiler: GrammarCompiler, private readonly vocab: GuidedVocab | null,
    vocabSize: number, stop: number[], o: GuidedCompilerOptions,
  ) {
    this.vocabSize = vocabSize;
    this.stopTokenIds = stop;
    this.anyWhitespace = o.anyWhitespace ?? false;
    this.cacheSize = o.cacheSize ?? 64;
  }

  /** Builds the TokenizerInfo (`modelVocabSize` = logits width, >= tokenizer vocab) and compiler. */
  static async create(vocab: GuidedVocab, modelVocabSize: number, o: GuidedCompilerOptions = {}): Promise<GuidedCompiler> {
    checkModelVocab(vocab, modelVocabSize);
    return GuidedCompiler.fromEncoded(encodeVocab(vocab), modelVocabSize, o, vocab);
  }

  /**
   * The same compiler from encodeVocab's output (what a mask worker receives). Without `vocab` the
   * compiler only compiles grammars: utf8Guard and staticMask need the token bytes.
   */
  static async fromEncoded(e: EncodedVocab, modelVocabSize: number, o: GuidedCompilerOptions = {}, vocab: GuidedVocab | null = null): Promise<GuidedCompiler> {
    const xg = loadXGrammar();
    const info = await xg.TokenizerInfo.createTokenizerInfo(e.encoded, "byte_level", false, modelVocabSize, e.stopTokenIds);
    const compiler = await xg.GrammarCompiler.createGrammarCompiler(info, true);
    return new GuidedCompiler(compiler, vocab, modelVocabSize, e.stopTokenIds, o);
  }

  /** The options this compiler was made with (a mask worker's compiler must match). */
  get options(): GuidedCompilerOptions {
    return { anyWhitespace: this.anyWhitespace, cacheSize: this.cacheSize };
  }

  /** The UTF-8 second-byte guard of this vocabulary (built on first use). */
  get utf8Guard(): Utf8Guard {
    return (this.guard ??= new Utf8Guard(this.needVocab()));
  }

  private needVocab(): GuidedVocab {
    if (!this.vocab) throw new ValidationError("GuidedCompiler", "fromEncoded", "made without the token bytes");
    return this.vocab;
  }

  /**
   * A fixed mask ANDed into every step's mask for guide `g`, or undefined. JSON guides without
   * anyWhitespace get "no byte < 0x20": such bytes are never valid in compact JSON, and XGrammar
   * 0.1.27's rule for strings with maxLength ([^"\\\r\n]) lets raw control characters through.
   */
  staticMask(g: GuidedDecodingParams): Int32Array | undefined {
    const kind = guideKey(g)?.[0];
    if ((kind !== "json" && kind !== "jsonObject") || this.anyWhitespace) return undefined;
    return (this.noControl ??= vocabBitmask(this.needVocab(), this.vocabSize, (b) => b.every((x) => x >= 0x20)));
  }

  /** The compiled grammar of `g` (cached); bad schemas/grammars raise ValidationError. */
  compile(g: GuidedDecodingParams): Promise<CompiledGrammar> {
    const key = guideKey(g);
    if (!key) throw new ValidationError("guidedDecoding", g, "no guide is set");
    const k = `${key[0]}\u0000${key[1]}`;
    let p = this.cache.get(k);
    if (p) {
      this.cache.delete(k); // re-insert: most recently used last
      this.cache.set(k, p);
      return p;
    }
    p = this.compileUncached(key[0], key[1]);
    p.then((c) => { if (this.cache.get(k) === p) this.ready.set(k, c); }, () => this.cache.delete(k));
    this.cache.set(k, p);
    while (this.cache.size > this.cacheSize) {
      const oldest = this.cache.keys().next().value as string;
      const old = this.cache.get(oldest)!;
      this.cache.delete(oldest);
      this.ready.delete(oldest);
      old.then((c) => c.dispose(), () => undefined);
    }
    return p;
  }

  /** The compiled grammar of `g` if compile(g) has finished (undefined otherwise). */
  compiledSync(g: GuidedDecodingParams): CompiledGrammar | undefined {
    const key = guideKey(g);
    return key ? this.ready.get(`${key[0]}\u0000${key[1]}`) : undefined;
  }

  private async compileUncached(kind: string, text: string): Promise<CompiledGrammar> {
    const c = this.compiler;
    try {
      switch (kind) {
        case "json":
          JSON.parse(text); // a clear error for malformed schemas before XGrammar's
          return await c.compileJSONSchema(text, this.anyWhitespace, this.anyWhitespace ? 2 : -1);
        case "jsonObject":
          return await c.compileBuiltinJSONGrammar();
        case "grammar":
          return await c.compileGrammar(text);
        case "regex": // the web binding has no regex entry point; a structural tag wraps one
          return await c.compileStructuralTag({ type: "structural_tag", format: { type: "regex", pattern: text } } as never);
        case "structuralTag":
          return await c.compileStructuralTag(text);
        default:
          throw new ValidationError("guidedDecoding", kind, "unknown guide");
      }
    } catch (e) {
      if (e instanceof ValidationError) throw e;
      throw new ValidationError(`guidedDecoding.${kind}`, text.length > 200 ? `${text.slice(0, 200)}...` : text, `rejected: ${errText(e)}`);
    }
  }

  dispose(): void {
    for (const p of this.cache.values()) p.then((c) => c.dispose(), () => undefined);
    this.cache.clear();
    this.ready.clear();
    this.compiler.dispose();
  }
}

function errText(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

const compilers = new WeakMap<GuidedVocab, Map<number, Promise<GuidedCompiler>>>();

/** The shared GuidedCompiler of a tokenizer and logits width (built once). */
export function guidedCompilerFor(vocab: GuidedVocab, modelVocabSize: number): Promise<GuidedCompiler> {
  let m = compilers.get(vocab);
  if (!m) compilers.set(vocab, (m = new Map()));
  let p = m.get(modelVocabSize);
  if (!p) {
    p = GuidedCompiler.create(vocab, modelVocabSize);
    p.catch(() => m!.delete(modelVocabSize));
    m.set(modelVocabSize, p);
  }
  return p;
}

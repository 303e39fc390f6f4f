// The grammar engine's view of a vocabulary: XGrammar's TokenizerInfo built from the exact bytes of
// every token id. src/sampling may not import src/tokenizer (DESIGN.md), so the tokenizer is taken
// structurally: `Tokenizer` from src/tokenizer satisfies GuidedVocab as is.
//
// Vocab type: always XGrammar's BYTE_LEVEL. Our tokenizer already resolves every id (SentencePiece
// `▁`/<0xNN> pieces, GPT-2 byte-level pieces, added tokens) to its raw bytes, and GPT-2's
// bytes_to_unicode alphabet is a lossless way to hand arbitrary bytes (including partial UTF-8
// characters, which a JS string cannot hold) to XGrammar, which decodes BYTE_LEVEL strings back
// with the same table. So BYTE_FALLBACK / RAW are never needed and cannot disagree with our
// detokenizer.
// Special (control) tokens that are not stop tokens get the empty string: XGrammar then treats
// them as special and never allows them inside a grammar. Stop ids are allowed only where the
// grammar can end. Tokens holding a byte that never occurs in valid UTF-8 (0xC0, 0xC1,
// 0xF5-0xFF) get "" too: XGrammar 0.1.27 accepts e.g. C1 8B (an overlong "K") inside a string.
import { ValidationError } from "../../errors.js";

export interface GuidedVocab {
  readonly vocabSize: number;
  /** End-of-generation ids (EOS first). */
  readonly eosTokenIds: readonly number[];
  readonly specialTokenIds: ReadonlySet<number>;
  tokenBytes(id: number): Uint8Array;
}

let byteToChar: string[] | undefined;

/** GPT-2's bytes_to_unicode: printable Latin-1 maps to itself, the other 68 bytes to U+0100... */
function gpt2ByteToChar(): string[] {
  if (byteToChar) return byteToChar;
  const keep = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; b++) out[b] = keep(b) ? String.fromCharCode(b) : String.fromCharCode(256 + n++);
  byteToChar = out;
  return out;
}

/** `bytes` in GPT-2's byte-level alphabet. */
export function byteLevelString(bytes: Uint8Array): string {
  const map = gpt2ByteToChar();
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += map[bytes[i]!];
  return s;
}

/**
 * The encoded vocabulary for TokenizerInfo (index = token id; length = tokenizer vocab size) and
 * the stop ids. Stop ids keep their bytes; other special tokens become "".
 */
/** XGrammar's view of a vocabulary: byte-level strings by id, and the stop ids. */
export interface EncodedVocab { encoded: string[]; stopTokenIds: number[] }

export function encodeVocab(v: GuidedVocab): EncodedVocab {
  const stop = new Set(v.eosTokenIds);
  const encoded: string[] = new Array(v.vocabSize);
  for (let id = 0; id < v.vocabSize; id++) {
    const b = v.tokenBytes(id);
    const hide = (v.specialTokenIds.has(id) && !stop.has(id)) || hasNeverUtf8Byte(b);
    encoded[id] = hide ? "" : byteLevelString(b);
  }
  return { encoded, stopTokenIds: [...stop] };
}

/** Checks the model's logits width against the tokenizer (padded embedding rows are allowed). */
export function checkModelVocab(v: GuidedVocab, modelVocabSize: number): void {
  if (!Number.isInteger(modelVocabSize) || modelVocabSize < v.vocabSize) {
    throw new ValidationError("modelVocabSize", modelVocabSize, `must be an integer >= the tokenizer's ${v.vocabSize}`);
  }
}

/** A byte that no valid UTF-8 text contains. */
export function hasNeverUtf8Byte(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i]! === 0xc0 || b[i]! === 0xc1 || b[i]! >= 0xf5) return true;
  return false;
}

/** Bitmask [ceil(size / 32)] of the ids < size for which `keep(bytes)` holds (ids past the tokenizer: kept). */
export function vocabBitmask(v: GuidedVocab, size: number, keep: (b: Uint8Array) => boolean): Int32Array {
  const m = new Int32Array(Math.ceil(size / 32));
  for (let id = 0; id < size; id++) if (id >= v.vocabSize || keep(v.tokenBytes(id))) m[id >>> 5]! |= 1 << (id & 31);
  return m;
}

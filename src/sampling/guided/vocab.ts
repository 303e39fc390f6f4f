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
// grammar can end.
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
export function encodeVocab(v: GuidedVocab): { encoded: string[]; stopTokenIds: number[] } {
  const stop = new Set(v.eosTokenIds);
  const encoded: string[] = new Array(v.vocabSize);
  for (let id = 0; id < v.vocabSize; id++) {
    encoded[id] = v.specialTokenIds.has(id) && !stop.has(id) ? "" : byteLevelString(v.tokenBytes(id));
  }
  return { encoded, stopTokenIds: [...stop] };
}

/** Checks the model's logits width against the tokenizer (padded embedding rows are allowed). */
export function checkModelVocab(v: GuidedVocab, modelVocabSize: number): void {
  if (!Number.isInteger(modelVocabSize) || modelVocabSize < v.vocabSize) {
    throw new ValidationError("modelVocabSize", modelVocabSize, `must be an integer >= the tokenizer's ${v.vocabSize}`);
  }
}

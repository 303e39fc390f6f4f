// Tokenizer: HF's Rust tokenizer (npm `tokenizers`) for encoding, our own id -> bytes table for
// decoding (synchronous, so the detokenizer never awaits).
//
// Special tokens in the input text: `encode` parses them by default (llama.cpp parse_special=true),
// so "<|im_start|>" becomes that one token. With `parseSpecial: false` only user-defined added
// tokens are matched and control tokens are tokenized as plain text (llama.cpp parse_special=false,
// which is what llama.cpp's tokenizer test vectors use).
// BOS/EOS are added by this class (not the HF post-processor) per `addBos`/`addEos`.
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { Tokenizer as HfTokenizer } from "tokenizers";
import { CheckpointError, ValidationError } from "../errors.js";
import { applyChatTemplate, type ChatMessage, type ChatTemplateOptions } from "./chat-template.js";
import { byteLevelPieceBytes, concatBytes, isBytePiece, spmPieceBytes, textBytes } from "./bytes.js";
import { isSpecialType, readGgufVocab, TokenType, vocabToTokenizerJson, type Metadata } from "./gguf-vocab.js";
import {
  pieceStyle, postProcessorAdds, readChatTemplate, readGenerationEos, readJson, tokenText, type Json,
} from "./hf-files.js";

export interface EncodeOptions {
  /** Add BOS/EOS per the model's rules (default true). */
  addSpecialTokens?: boolean;
  /** Parse special-token text in the input as the special token (default true). */
  parseSpecial?: boolean;
}

export interface DecodeOptions {
  /** Leave out control/special tokens (default false, as HF's decode). */
  skipSpecialTokens?: boolean;
}

interface TokenizerInit {
  kind: "spm" | "bpe" | "hf";
  json: string;
  pieces: string[];
  bytes: Uint8Array[];
  special: Set<number>;
  bosTokenId: number | undefined;
  eosTokenIds: number[];
  addBos: boolean;
  addEos: boolean;
  stripLeadingSpace: boolean;
  chatTemplate: string | undefined;
  source: string;
}

export class Tokenizer {
  readonly kind: "spm" | "bpe" | "hf";
  readonly vocabSize: number;
  readonly bosTokenId: number | undefined;
  /** End-of-generation ids: the EOS id first, then the others (EOT, <|im_end|>, generation_config). */
  readonly eosTokenIds: number[];
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly specialTokenIds: Set<number>;
  readonly chatTemplate: string | undefined;
  /** The decoded text's first space is a dummy prefix and is dropped (SentencePiece). */
  readonly stripLeadingSpace: boolean;
  private readonly pieces: string[];
  private readonly bytes: Uint8Array[];
  private readonly pieceIds = new Map<string, number>();
  private readonly json: string;
  private readonly hf: HfTokenizer;
  private hfPlain: HfTokenizer | undefined;
  private readonly utf8 = new TextDecoder("utf-8", { fatal: false });

  private constructor(init: TokenizerInit) {
    this.kind = init.kind;
    this.json = init.json;
    this.pieces = init.pieces;
    this.bytes = init.bytes;
    this.vocabSize = init.pieces.length;
    this.specialTokenIds = init.special;
    this.bosTokenId = init.bosTokenId;
    this.eosTokenIds = init.eosTokenIds;
    this.addBos = init.addBos;
    this.addEos = init.addEos;
    this.stripLeadingSpace = init.stripLeadingSpace;
    this.chatTemplate = init.chatTemplate;
    init.pieces.forEach((p, i) => { if (!this.pieceIds.has(p)) this.pieceIds.set(p, i); });
    try {
      this.hf = HfTokenizer.fromString(init.json);
    } catch (e) {
      throw new CheckpointError(init.source, "tokenizer.json", `HF tokenizers rejected it: ${(e as Error).message}`);
    }
  }

  /** From a GGUF file's metadata (`file` names it in errors). */
  static fromGgufMetadata(md: Metadata, file: string): Tokenizer {
    let v;
    try {
      v = readGgufVocab(md);
    } catch (e) {
      if (e instanceof CheckpointError) throw new CheckpointError(file, e.field, e.message.replace(/^gguf: [^:]*: /, ""));
      throw e;
    }
    const spm = v.model === "llama";
    const bytes = v.tokens.map((p, i) => ggufPieceBytes(p, v.types[i]!, v.model !== "gpt2"));
    const special = new Set<number>();
    v.types.forEach((t, i) => { if (isSpecialType(t)) special.add(i); });
    const eos = v.eosId !== undefined ? [v.eosId, ...v.eogIds.filter((x) => x !== v.eosId)] : v.eogIds;
    return new Tokenizer({
      kind: spm ? "spm" : "bpe", json: JSON.stringify(vocabToTokenizerJson(v)), pieces: v.tokens, bytes, special,
      bosTokenId: v.bosId, eosTokenIds: eos, addBos: v.addBos && v.bosId !== undefined,
      addEos: v.addEos && v.eosId !== undefined, stripLeadingSpace: spm && v.addSpacePrefix,
      chatTemplate: v.chatTemplate, source: file,
    });
  }

  /** From an HF tokenizer directory (tokenizer.json required). */
  static fromHfDir(dir: string): Tokenizer {
    const file = join(dir, "tokenizer.json");
    const tj = readJson(file, true)!;
    const json = readFileSync(file, "utf8");
    const config = readJson(join(dir, "tokenizer_config.json"), false) ?? {};
    const { pieces, special } = hfPieces(tj, file);
    const style = pieceStyle(tj);
    const added = addedIds(tj);
    const bytes = pieces.map((p, i) => hfPieceBytes(p, added.has(i), style));
    const idOf = (k: string) => {
      const t = tokenText(config[k]);
      const id = t === undefined ? undefined : pieces.indexOf(t);
      return id === undefined || id < 0 ? undefined : id;
    };
    const bos = idOf("bos_token"), eos = idOf("eos_token");
    const eosIds = [...new Set([...(eos !== undefined ? [eos] : []), ...readGenerationEos(dir)])];
    const flag = (k: string, id: number | undefined, where: "first" | "last") =>
      id !== undefined && (typeof config[k] === "boolean" ? (config[k] as boolean) : postProcessorAdds(tj, id, where));
    return new Tokenizer({
      kind: "hf", json, pieces, bytes, special, bosTokenId: bos, eosTokenIds: eosIds,
      addBos: flag("add_bos_token", bos, "first"), addEos: flag("add_eos_token", eos, "last"),
      stripLeadingSpace: style.stripLeadingSpace, chatTemplate: readChatTemplate(dir, config), source: file,
    });
  }

  /** Token ids of `text`. */
  async encode(text: string, opts: EncodeOptions = {}): Promise<number[]> {
    if (typeof text !== "string") throw new ValidationError("text", text, "expected a string");
    const hf = opts.parseSpecial === false ? this.plain() : this.hf;
    const enc = await hf.encode(text, null, { addSpecialTokens: false });
    const ids = Array.from(enc.getIds());
    if (opts.addSpecialTokens !== false) {
      if (this.addBos) ids.unshift(this.bosTokenId!);
      if (this.addEos) ids.push(this.eosTokenIds[0]!);
    }
    return ids;
  }

  /** Text of `ids` (invalid UTF-8 becomes U+FFFD). */
  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    const parts: Uint8Array[] = [];
    for (const id of ids) {
      if (opts.skipSpecialTokens && this.specialTokenIds.has(id)) continue;
      parts.push(this.tokenBytes(id));
    }
    const text = this.utf8.decode(concatBytes(parts));
    return this.stripLeadingSpace && text.startsWith(" ") ? text.slice(1) : text;
  }

  /** Raw bytes that token `id` stands for (may be part of a UTF-8 character). */
  tokenBytes(id: number): Uint8Array {
    const b = this.bytes[id];
    if (b === undefined) throw new ValidationError("token_id", id, `not in the vocabulary [0, ${this.vocabSize})`);
    return b;
  }

  idToPiece(id: number): string {
    const p = this.pieces[id];
    if (p === undefined) throw new ValidationError("token_id", id, `not in the vocabulary [0, ${this.vocabSize})`);
    return p;
  }

  pieceToId(piece: string): number | undefined {
    return this.pieceIds.get(piece);
  }

  /** The token text of the BOS / first EOS id ("" when the model has none), for chat templates. */
  get bosToken(): string { return this.bosTokenId === undefined ? "" : this.pieces[this.bosTokenId]!; }
  get eosToken(): string { return this.eosTokenIds.length ? this.pieces[this.eosTokenIds[0]!]! : ""; }

  /** Renders `messages` with the model's chat template (or `opts.template`), passing its BOS/EOS text. */
  applyChatTemplate(messages: readonly ChatMessage[], opts: ChatTemplateOptions & { template?: string } = {}): string {
    const { template, ...rest } = opts;
    const t = template ?? this.chatTemplate;
    if (t === undefined) throw new ValidationError("chat_template", undefined, "the model has no chat template; pass one");
    return applyChatTemplate(t, messages, { bosToken: this.bosToken, eosToken: this.eosToken, ...rest });
  }

  /** The HF tokenizer without special added tokens, built on first use. */
  private plain(): HfTokenizer {
    if (!this.hfPlain) {
      const tj = JSON.parse(this.json) as Json;
      tj.added_tokens = ((tj.added_tokens ?? []) as Json[]).filter((t) => t.special !== true);
      this.hfPlain = HfTokenizer.fromString(JSON.stringify(tj));
    }
    return this.hfPlain;
  }
}

/** `metaspace`: SentencePiece-style pieces (`▁` = space, <0xNN> = one byte), else GPT-2 byte alphabet. */
function ggufPieceBytes(piece: string, type: number, metaspace: boolean): Uint8Array {
  if (type === TokenType.BYTE || (metaspace && isBytePiece(piece))) return spmPieceBytes(piece, true);
  if (isSpecialType(type) || type === TokenType.USER_DEFINED) return textBytes(piece);
  if (metaspace) return spmPieceBytes(piece, false);
  return byteLevelPieceBytes(piece) ?? textBytes(piece);
}

function addedIds(tj: Json): Set<number> {
  return new Set(((tj.added_tokens ?? []) as Json[]).map((t) => Number(t.id)));
}

function hfPieceBytes(piece: string, added: boolean, s: ReturnType<typeof pieceStyle>): Uint8Array {
  if (added) return textBytes(piece);
  if (s.byteLevel) return byteLevelPieceBytes(piece) ?? textBytes(piece);
  if (s.byteFallback && isBytePiece(piece)) return spmPieceBytes(piece, true);
  return s.metaspace ? spmPieceBytes(piece, false) : textBytes(piece);
}

/** id -> piece from model.vocab (a map for BPE/WordPiece, [piece, score][] for Unigram) and added_tokens. */
function hfPieces(tj: Json, file: string): { pieces: string[]; special: Set<number> } {
  const model = tj.model as Json | undefined;
  const pieces: string[] = [];
  const vocab = model?.vocab;
  if (Array.isArray(vocab)) vocab.forEach((e, i) => { pieces[i] = String((e as unknown[])[0]); });
  else if (vocab && typeof vocab === "object") for (const [p, id] of Object.entries(vocab as Record<string, number>)) pieces[id] = p;
  else throw new CheckpointError(file, "model.vocab", "missing");
  const special = new Set<number>();
  for (const t of (tj.added_tokens ?? []) as Json[]) {
    const id = Number(t.id);
    if (!Number.isInteger(id) || id < 0 || typeof t.content !== "string") throw new CheckpointError(file, "added_tokens", `bad entry ${JSON.stringify(t)}`);
    pieces[id] = t.content;
    if (t.special === true) special.add(id);
  }
  for (let i = 0; i < pieces.length; i++) if (pieces[i] === undefined) pieces[i] = "";
  return { pieces, special };
}

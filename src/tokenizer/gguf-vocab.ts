// GGUF embedded vocabulary -> HF tokenizer.json / tokenizer_config.json (as plain JSON objects).
// The target is llama.cpp's token ids exactly (src/llama-vocab.cpp), expressed in HF terms:
// - `llama` (SentencePiece BPE): llama.cpp merges the adjacent pair whose merged piece has the
//   highest score; as HF BPE merges that is "all splits of every piece, ranked by the piece's score"
//   (transformers' GGUFLlamaConverter / generate_merges). Spaces become `▁`, a `▁` is prepended to
//   every text run that starts the input or follows a special token (llama.cpp `is_prev_special`),
//   unknown characters fall back to <0xNN> byte tokens.
// - `gpt2` (byte-level BPE): the GGUF merges, the pre-tokenizer regexes of `tokenizer.ggml.pre`.
// Token types -> added tokens: control/unknown are special (parsed only when special-token parsing
// is on), user-defined are plain added tokens (always parsed, as llama.cpp does).
import { CheckpointError } from "../errors.js";
import type { MetadataValue } from "../checkpoint/types.js";
import { bpePreTokenizer, supportedPreTypes } from "./pretokenizers.js";

export type Metadata = ReadonlyMap<string, MetadataValue>;

/** llama.cpp `llama_token_type`. */
export const TokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

/** Token texts llama.cpp always treats as end-of-generation (and forces to control type). */
export const EOG_TEXTS: ReadonlySet<string> = new Set([
  "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
  "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
  "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>", "<｜end▁of▁sentence｜>",
]);

/** The parts of a GGUF vocabulary that the converters and the Tokenizer need. */
export interface GgufVocab {
  model: "llama" | "gpt2" | "gemma4";
  pre: string;
  tokens: string[];
  types: number[];
  scores: number[] | undefined;
  merges: string[] | undefined;
  bosId: number | undefined;
  eosId: number | undefined;
  unkId: number | undefined;
  padId: number | undefined;
  addBos: boolean;
  addEos: boolean;
  addSpacePrefix: boolean;
  chatTemplate: string | undefined;
  eogIds: number[];
  modelName: string;
}

const FILE = "gguf";

function strArray(md: Metadata, key: string, required: boolean): string[] | undefined {
  const v = md.get(key);
  if (v === undefined && !required) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) {
    throw new CheckpointError(FILE, key, `expected an array of strings, got ${typeof v}`);
  }
  return v as string[];
}

function numArray(md: Metadata, key: string, n: number): number[] | undefined {
  const v = md.get(key);
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.length !== n || !v.every((x) => typeof x === "number")) {
    throw new CheckpointError(FILE, key, `expected ${n} numbers (one per token)`);
  }
  return v as number[];
}

function tokenId(md: Metadata, key: string, n: number): number | undefined {
  const v = md.get(key);
  if (v === undefined) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v >= n) {
    // llama.cpp logs "bad special token" and keeps its default; an out-of-range id is unusable here.
    if (typeof v === "number" && v >= n) return undefined;
    throw new CheckpointError(FILE, key, `expected a token id in [0, ${n}), got ${String(v)}`);
  }
  return v;
}

function bool(md: Metadata, key: string): boolean | undefined {
  const v = md.get(key);
  if (v === undefined) return undefined;
  if (typeof v !== "boolean") throw new CheckpointError(FILE, key, `expected a boolean, got ${String(v)}`);
  return v;
}

/** Reads and validates the `tokenizer.*` keys. */
export function readGgufVocab(md: Metadata): GgufVocab {
  const model = md.get("tokenizer.ggml.model");
  if (model !== "llama" && model !== "gpt2" && model !== "gemma4") {
    throw new CheckpointError(FILE, "tokenizer.ggml.model", `unsupported tokenizer model ${JSON.stringify(model)} (supported: llama, gpt2, gemma4)`);
  }
  const tokens = strArray(md, "tokenizer.ggml.tokens", true)!;
  const n = tokens.length;
  // llama.cpp forces the gemma4 pre-tokenizer for the gemma4 model.
  const pre = model === "gemma4" ? "gemma4" : String(md.get("tokenizer.ggml.pre") ?? "default");
  if (model === "gpt2" && !bpePreTokenizer(pre)) {
    throw new CheckpointError(FILE, "tokenizer.ggml.pre", `unsupported pre-tokenizer '${pre}' (supported: ${supportedPreTypes().join(", ")})`);
  }
  const types = (numArray(md, "tokenizer.ggml.token_type", n) ?? new Array<number>(n).fill(TokenType.NORMAL)).slice();
  const spm = model === "llama";
  // llama.cpp defaults: SPM adds BOS; BPE adds it only for the llama3/tekken pre-tokenizers.
  const defaultBos = spm || model === "gemma4" || ["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "tekken", "chameleon"].includes(pre);
  const v: GgufVocab = {
    model, pre, tokens, types,
    scores: numArray(md, "tokenizer.ggml.scores", n),
    merges: strArray(md, "tokenizer.ggml.merges", model !== "llama"),
    bosId: tokenId(md, "tokenizer.ggml.bos_token_id", n) ?? (spm ? 1 : undefined),
    eosId: tokenId(md, "tokenizer.ggml.eos_token_id", n) ?? (spm ? 2 : undefined),
    unkId: tokenId(md, "tokenizer.ggml.unknown_token_id", n) ?? (spm ? 0 : undefined),
    padId: tokenId(md, "tokenizer.ggml.padding_token_id", n),
    // llama.cpp's Gemma 4 workaround: BOS is always added.
    addBos: model === "gemma4" || (bool(md, "tokenizer.ggml.add_bos_token") ?? defaultBos),
    addEos: bool(md, "tokenizer.ggml.add_eos_token") ?? false,
    addSpacePrefix: bool(md, "tokenizer.ggml.add_space_prefix") ?? spm,
    chatTemplate: typeof md.get("tokenizer.chat_template") === "string" ? (md.get("tokenizer.chat_template") as string) : undefined,
    eogIds: [],
    modelName: String(md.get("general.name") ?? "").toLowerCase(),
  };
  finishEog(v, md);
  return v;
}

/** End-of-generation ids as llama.cpp collects them; those tokens become control tokens. */
function finishEog(v: GgufVocab, md: Metadata): void {
  const eog = new Set<number>();
  if (v.eosId !== undefined) eog.add(v.eosId);
  for (const k of ["tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"]) {
    const id = tokenId(md, k, v.tokens.length);
    if (id !== undefined) eog.add(id);
  }
  v.tokens.forEach((t, i) => {
    if (EOG_TEXTS.has(t)) { eog.add(i); v.types[i] = TokenType.CONTROL; }
  });
  v.eogIds = [...eog].sort((a, b) => a - b);
}

export function isSpecialType(t: number): boolean {
  return t === TokenType.CONTROL || t === TokenType.UNKNOWN;
}

function addedTokens(v: GgufVocab): object[] {
  // llama.cpp's phi-3 quirk: its special tokens eat the whitespace to their right.
  const phi3 = v.modelName.includes("phi-3") || v.modelName.includes("phi3");
  const out: object[] = [];
  v.types.forEach((t, id) => {
    if (!isSpecialType(t) && t !== TokenType.USER_DEFINED) return;
    const content = v.tokens[id]!;
    const rstrip = phi3 && !["<unk>", "<s>", "<|endoftext|>"].includes(content);
    out.push({ id, content, single_word: false, lstrip: false, rstrip, normalized: false, special: isSpecialType(t) });
  });
  return out;
}

/** piece -> id; on duplicate pieces the first id wins (later ones stay reachable only by id). */
function vocabMap(tokens: readonly string[]): Record<string, number> {
  const m: Record<string, number> = Object.create(null) as Record<string, number>;
  tokens.forEach((t, i) => { if (!(t in m)) m[t] = i; });
  return m;
}

/** SentencePiece scores -> BPE merges: every split of a piece into two vocab pieces, ranked by the
 *  merged piece's score (highest first, stable), as transformers' generate_merges does. */
export function spmMerges(tokens: readonly string[], scores: readonly number[] | undefined): Array<[string, string]> {
  const vocab = vocabMap(tokens);
  const all: Array<{ l: string; r: string; s: number; li: number; ri: number }> = [];
  tokens.forEach((piece, i) => {
    const cps = Array.from(piece);
    for (let k = 1; k < cps.length; k++) {
      const l = cps.slice(0, k).join(""), r = cps.slice(k).join("");
      const li = vocab[l], ri = vocab[r];
      if (li !== undefined && ri !== undefined) all.push({ l, r, s: scores ? scores[i]! : -i, li, ri });
    }
  });
  all.sort((a, b) => (b.s - a.s) || (a.li - b.li) || (a.ri - b.ri));
  return all.map((m) => [m.l, m.r]);
}

/** GGUF merges ("a b", split at the first space after the first char, as llama.cpp does) as pairs,
 *  dropping pairs whose parts are not in the vocabulary (llama.cpp never forms those; HF rejects them). */
function ggufMerges(v: GgufVocab): Array<[string, string]> {
  const vocab = vocabMap(v.tokens);
  const out: Array<[string, string]> = [];
  for (const m of v.merges!) {
    const pos = m.indexOf(" ", 1);
    if (pos < 0) continue;
    const a = m.slice(0, pos), b = m.slice(pos + 1);
    if (a in vocab && b in vocab) out.push([a, b]);
  }
  return out;
}

function postProcessor(v: GgufVocab): object | null {
  const single: object[] = [];
  const specials: Record<string, object> = {};
  const add = (id: number | undefined, key: string) => {
    if (id === undefined) throw new CheckpointError(FILE, `tokenizer.ggml.${key}_token_id`, `missing but tokenizer.ggml.add_${key}_token is true`);
    const piece = v.tokens[id]!;
    single.push({ SpecialToken: { id: piece, type_id: 0 } });
    specials[piece] = { id: piece, ids: [id], tokens: [piece] };
  };
  if (v.addBos) add(v.bosId, "bos");
  single.push({ Sequence: { id: "A", type_id: 0 } });
  if (v.addEos) add(v.eosId, "eos");
  if (!v.addBos && !v.addEos) return null;
  return { type: "TemplateProcessing", single, pair: [...single, { Sequence: { id: "B", type_id: 1 } }], special_tokens: specials };
}

function spmParts(v: GgufVocab): Record<string, unknown> {
  const normalizers: object[] = [];
  if (v.addSpacePrefix) normalizers.push({ type: "Prepend", prepend: "\u2581" });
  normalizers.push({ type: "Replace", pattern: { String: " " }, content: "\u2581" });
  const decoders: object[] = [
    { type: "Replace", pattern: { String: "\u2581" }, content: " " }, { type: "ByteFallback" }, { type: "Fuse" },
  ];
  if (v.addSpacePrefix) decoders.push({ type: "Strip", content: " ", start: 1, stop: 0 });
  const unk = v.unkId !== undefined ? v.tokens[v.unkId] : null;
  return {
    normalizer: { type: "Sequence", normalizers },
    pre_tokenizer: null,
    decoder: { type: "Sequence", decoders },
    model: {
      type: "BPE", dropout: null, unk_token: unk, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: true, byte_fallback: true, ignore_merges: false,
      vocab: vocabMap(v.tokens), merges: spmMerges(v.tokens, v.scores),
    },
  };
}

function bpeParts(v: GgufVocab): Record<string, unknown> {
  const pt = bpePreTokenizer(v.pre)!;
  const splits = pt.regexes.map((r) => ({ type: "Split", pattern: { Regex: r }, behavior: "Isolated", invert: false }));
  return {
    normalizer: null,
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [...splits, { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false }],
    },
    decoder: { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false },
    model: {
      type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: pt.ignoreMerges,
      vocab: vocabMap(v.tokens), merges: ggufMerges(v),
    },
  };
}

/** Gemma 4: BPE over raw UTF-8 with `▁` for spaces and <0xNN> byte fallback, pre-split only at
 *  newlines (llama.cpp LLAMA_VOCAB_PRE_TYPE_GEMMA4); no dummy prefix. */
function gemma4Parts(v: GgufVocab): Record<string, unknown> {
  return {
    normalizer: { type: "Replace", pattern: { String: " " }, content: "\u2581" },
    pre_tokenizer: { type: "Split", pattern: { Regex: "[^\\n]+|[\\n]+" }, behavior: "Isolated", invert: false },
    decoder: {
      type: "Sequence",
      decoders: [{ type: "Replace", pattern: { String: "\u2581" }, content: " " }, { type: "ByteFallback" }, { type: "Fuse" }],
    },
    model: {
      type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: true, ignore_merges: false,
      vocab: vocabMap(v.tokens), merges: ggufMerges(v),
    },
  };
}

/** HF tokenizer.json (as an object) equivalent to the GGUF vocabulary in `md`. */
export function ggufVocabToTokenizerJson(md: Metadata): object {
  const v = readGgufVocab(md);
  return vocabToTokenizerJson(v);
}

export function vocabToTokenizerJson(v: GgufVocab): object {
  return {
    version: "1.0", truncation: null, padding: null,
    added_tokens: addedTokens(v),
    ...(v.model === "llama" ? spmParts(v) : v.model === "gemma4" ? gemma4Parts(v) : bpeParts(v)),
    post_processor: postProcessor(v),
  };
}

/** HF tokenizer_config.json (as an object) for the GGUF vocabulary in `md`. */
export function ggufVocabToTokenizerConfig(md: Metadata): object {
  const v = readGgufVocab(md);
  const piece = (id: number | undefined) => (id === undefined ? null : v.tokens[id]!);
  const decoder: Record<string, object> = {};
  for (const t of addedTokens(v) as Array<{ id: number } & Record<string, unknown>>) {
    const { id, ...rest } = t;
    decoder[String(id)] = rest;
  }
  return {
    tokenizer_class: v.model === "llama" ? "LlamaTokenizerFast" : "PreTrainedTokenizerFast",
    add_bos_token: v.addBos, add_eos_token: v.addEos,
    bos_token: piece(v.bosId), eos_token: piece(v.eosId), unk_token: piece(v.unkId), pad_token: piece(v.padId),
    clean_up_tokenization_spaces: false,
    added_tokens_decoder: decoder,
    ...(v.chatTemplate !== undefined ? { chat_template: v.chatTemplate } : {}),
  };
}

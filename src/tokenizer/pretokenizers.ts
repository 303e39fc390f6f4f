// Pre-tokenizer regexes for byte-level BPE vocabularies, keyed by GGUF `tokenizer.ggml.pre`.
// Mirrors llama.cpp src/llama-vocab.cpp (llm_tokenizer_bpe constructor + the `tokenizer_pre` ->
// pre_type table). Where llama.cpp rewrote a regex for std::regex (`(?i:'s|...)` spelled as
// `'[sS]|...`), the original HF form is equivalent and Oniguruma (HF tokenizers) takes either.
// Each list is applied in order, every regex splitting the pieces left by the previous one
// ("Isolated": matches and the gaps between them both become pieces), as llama.cpp does.

const CONTRACTIONS = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";
const GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
const LLAMA3 = `${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;
const QWEN2 = `${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;
const QWEN35 = `${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;
const UPPER = "[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]";
const LOWER = "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]";
const GPT4O = `[^\\r\\n\\p{L}\\p{N}]?${UPPER}*${LOWER}+${CONTRACTIONS}?|[^\\r\\n\\p{L}\\p{N}]?${UPPER}+${LOWER}*${CONTRACTIONS}?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;
const TEKKEN = `[^\\r\\n\\p{L}\\p{N}]?${UPPER}*${LOWER}+|[^\\r\\n\\p{L}\\p{N}]?${UPPER}+${LOWER}*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;

export interface BpePreTokenizer {
  /** Regexes applied in sequence (HF `Split`, behavior Isolated). */
  regexes: string[];
  /** A whole pre-token that is itself in the vocabulary is emitted without running merges. */
  ignoreMerges: boolean;
}

const TABLE: Array<[string[], BpePreTokenizer]> = [
  [["default"], {
    regexes: ["[\\p{P}\\$\\+<=>\\^~\\|]+", GPT2, "\\p{N}+", "[0-9][0-9][0-9]"], ignoreMerges: false,
  }],
  [["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2"],
    { regexes: [LLAMA3], ignoreMerges: true }],
  [["dbrx", "smaug-bpe", "glm4", "chatglm-bpe"], { regexes: [LLAMA3], ignoreMerges: false }],
  [["gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum",
    "modern-bert", "mpt", "olmo", "jais", "trillion", "exaone4", "granite-docling", "roberta-bpe",
    "jina-v1-en", "jina-v2-code"], { regexes: [GPT2], ignoreMerges: false }],
  [["qwen2", "deepseek-r1-qwen", "kormo", "megrez", "stablelm2", "hunyuan"], { regexes: [QWEN2], ignoreMerges: false }],
  [["qwen35"], { regexes: [QWEN35], ignoreMerges: false }],
  [["starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"],
    { regexes: ["\\p{N}", GPT2], ignoreMerges: false }],
  [["falcon"], {
    regexes: ["[\\p{P}\\$\\+<=>\\^~\\|`]+", GPT2, "[0-9][0-9][0-9]"], ignoreMerges: false,
  }],
  [["deepseek-coder"], {
    regexes: ["[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[一-龥ࠀ-一가-퟿]+", "\\p{N}"], ignoreMerges: false,
  }],
  [["poro-chat", "bloom", "gpt3-finnish"], { regexes: [" ?[^(\\s|.,!?…。，、।۔،)]+"], ignoreMerges: false }],
  [["viking"], { regexes: [" ?[^(\\s|.,!?…。，、।۔،)]+", "\\p{N}"], ignoreMerges: false }],
  [["gpt-4o", "llama4", "kanana2"], { regexes: [GPT4O], ignoreMerges: false }],
  [["tekken"], { regexes: [TEKKEN], ignoreMerges: true }],
];

const BY_NAME = new Map<string, BpePreTokenizer>();
for (const [names, pt] of TABLE) for (const n of names) BY_NAME.set(n, pt);

/** The pre-tokenizer for `tokenizer.ggml.pre`; undefined when the name is not supported. */
export function bpePreTokenizer(pre: string | undefined): BpePreTokenizer | undefined {
  return BY_NAME.get(pre ?? "default");
}

export function supportedPreTypes(): string[] {
  return [...BY_NAME.keys()];
}

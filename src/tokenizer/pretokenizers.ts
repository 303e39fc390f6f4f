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
  // Copied from llama.cpp with non-ASCII as \u escapes (the ranges must survive Unicode normalization).
  [["deepseek-llm"], {
    regexes: ["[\r\n]", "\\s?[A-Za-z\u00b5\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u01ba\u01bc-\u01bf\u01c4-\u0293\u0295-\u02af\u0370-\u0373\u0376\u0377\u037b-\u037d\u037f\u0386\u0388-\u038a\u038c\u038e-\u03a1\u03a3-\u03f5\u03f7-\u0481\u048a-\u052f\u0531-\u0556\u10a0-\u10c5\u13a0-\u13f5\u13f8-\u13fd\u1c90-\u1cba\u1cbd-\u1cbf\u1d00-\u1d2b\u1d6b-\u1d77\u1d79-\u1d9a\u1e00-\u1f15\u1f18-\u1f1d\u1f20-\u1f45\u1f48-\u1f4d\u1f50-\u1f57\u1f59\u1f5b\u1f5d\u1f5f-\u1f7d\u1f80-\u1fb4\u1fb6-\u1fbc\u1fbe\u1fc2-\u1fc4\u1fc6-\u1fcc\u1fd0-\u1fd3\u1fd6-\u1fdb\u1fe0-\u1fec\u1ff2-\u1ff4\u1ff6-\u1ffc\u2102\u2107\u210a-\u2113\u2115\u2119-\u211d\u2124\u2126\u2128\u212a-\u212d\u212f-\u2134\u2139\u213c-\u213f\u2145-\u2149\u214e\u2183\u2184\u2c00-\u2c7b\u2c7e-\u2ce4\u2ceb-\u2cee\u2cf2\u2cf3\ua640-\ua66d\ua680-\ua69b\ua722-\ua76f\ua771-\ua787\ua78b-\ua78e\uab70-\uabbf\ufb00-\ufb06\ufb13-\ufb17\uff21-\uff3a\uff41-\uff5a\ud801\udc00-\ud801\udc4f\ud801\udcb0-\ud801\udcd3\ud801\udcd8-\ud801\udcfb\ud803\udc80-\ud803\udcb2\ud803\udcc0-\ud803\udcf2\ud806\udca0-\ud806\udcdf\ud83a\udd00-\ud83a\udd43]+", "\\s?[!-/:-~\uff01-\uff0f\uff1a-\uff5e\u2018-\u201f\u3000-\u3002]+", "\\s+$", "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+", "\\p{N}+"],
    ignoreMerges: false,
  }],
  [["deepseek-v3", "hunyuan-dense", "joyai-llm", "hy_v4"], {
    regexes: ["\\p{N}{1,3}", "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+", "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"],
    ignoreMerges: false,
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

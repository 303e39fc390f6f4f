// Public surface of the tokenizer layer.
export { Tokenizer, type EncodeOptions, type DecodeOptions } from "./tokenizer.js";
export { IncrementalDetokenizer } from "./detokenizer.js";
export { applyChatTemplate, type ChatMessage, type ChatTemplateOptions } from "./chat-template.js";
export { ggufVocabToTokenizerJson, ggufVocabToTokenizerConfig, readGgufVocab, TokenType, type GgufVocab } from "./gguf-vocab.js";

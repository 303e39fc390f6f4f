// Guided decoding (structured output) on XGrammar: see compiler.ts (grammar cache per tokenizer),
// state.ts (per-request matcher and the per-step protocol) and mask.ts (the Sampler's mask step).
export { loadXGrammar, xgrammarBinding, type XGrammar } from "./xgrammar-loader.js";
export { encodeVocab, byteLevelString, type GuidedVocab } from "./vocab.js";
export { GuidedCompiler, guidedCompilerFor, guideKey, type GuidedCompilerOptions } from "./compiler.js";
export { GuidedState, computeBitmasks, computeBitmasksSync } from "./state.js";
export { GuidedDecoder, type SequenceKey } from "./decoder.js";
export { ParallelGuidedDecoder, createGuidedDecoder } from "./parallel.js";
export { applyTokenBitmask, bitmaskWords, isAllowed } from "./mask.js";
export { Utf8Guard } from "./utf8-guard.js";

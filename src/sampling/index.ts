// The sampling layer's public surface (see sampler.ts for the pipeline, in order).
export { Sampler, effectiveTopP, type SampleResult, type SamplingRow } from "./sampler.js";
export { setBatchedSampling, type SampleFailure } from "./batch.js";
export { rngKeyForSeed, uniformAt, philox4x32, type RngKey } from "./rng.js";
export { logSumExp, logSoftmax, rankOf, topLogprobs, type TopLogprob } from "./logprobs.js";
export { checkTokenStop, StopStringMatcher, type FinishReason, type StopCheck, type StopFeed } from "./stop.js";
export type * from "./params.js";

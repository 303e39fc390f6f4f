// The random-weight model fixtures of the model tier: real vocabularies from llama.cpp, several
// shapes (head_dim 64 and 128, GQA ratios 1/3/4, odd intermediate sizes, qkv bias, q/k norm, tied
// and untied embeddings) and the weight types of common GGUF files.
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { GgmlType } from "../../src/backends/dtypes.js";
import type { RandomModelSpec } from "../../src/checkpoint/random-model.js";

export const REPO = fileURLToPath(new URL("../..", import.meta.url));
export const FIXTURE_CACHE = join(REPO, ".cache", "fixtures");
export const vocab = (name: string): string => join(REPO, "test", "fixtures", "vocab", `ggml-vocab-${name}.gguf`);

/** The executor tests' small model: 2 layers, hidden 64, 4 heads / 2 KV heads of 16, Q8_0 (whose ggml
 *  arithmetic does not depend on the batch's row count: engine-executor.test.ts), Llama-2 SPM vocabulary. */
export const EXECUTOR_SPEC: RandomModelSpec = {
  arch: "llama", vocab: vocab("llama-spm"), hidden: 64, layers: 2, heads: 4,
  kvHeads: 2, headDim: 16, ffn: 128, tieEmbeddings: false, qkvBias: false, qkNorm: false, ropeTheta: 10000,
  rmsEps: 1e-5, maxPositions: 1024, seed: 4242, weightTypes: GgmlType.Q8_0,
};

const base = { rmsEps: 1e-5, ropeTheta: 10000, maxPositions: 2048, qkvBias: false, qkNorm: false } as const;

export interface ModelFixture {
  id: string;
  spec: RandomModelSpec;
  /** max |Δ logprob| allowed against llama.cpp (see the test for the reasoning) */
  tol: number;
  /** also write the HF-directory twin and compare it */
  hf?: boolean;
}

export const MODEL_FIXTURES: ModelFixture[] = [
  { id: "llama-spm F32 hd64 gqa1 untied", tol: 1e-3, hf: true, spec: { ...base, arch: "llama", vocab: vocab("llama-spm"),
    hidden: 256, layers: 3, heads: 4, kvHeads: 4, headDim: 64, ffn: 688, tieEmbeddings: false, seed: 1, weightTypes: GgmlType.F32 } },
  { id: "llama-spm Q4_0 hd64 gqa3", tol: 2e-2, spec: { ...base, arch: "llama", vocab: vocab("llama-spm"),
    hidden: 384, layers: 2, heads: 6, kvHeads: 2, headDim: 64, ffn: 1056, tieEmbeddings: false, seed: 2, weightTypes: GgmlType.Q4_0 } },
  { id: "qwen2 F16 bias hd64 gqa4 tied", tol: 1e-3, hf: true, spec: { ...base, arch: "qwen2", vocab: vocab("qwen2"), qkvBias: true, ropeTheta: 1000000, rmsEps: 1e-6,
    hidden: 256, layers: 2, heads: 4, kvHeads: 1, headDim: 64, ffn: 704, tieEmbeddings: true, seed: 3, weightTypes: GgmlType.F16, hfDtype: "F16" } },
  { id: "qwen3 Q8_0 qknorm hd128 gqa4", tol: 2e-2, spec: { ...base, arch: "qwen3", vocab: vocab("qwen2"), qkNorm: true, ropeTheta: 1000000, rmsEps: 1e-6,
    hidden: 256, layers: 2, heads: 4, kvHeads: 1, headDim: 128, ffn: 768, tieEmbeddings: true, seed: 4, weightTypes: GgmlType.Q8_0 } },
  { id: "llama-bpe Q4_K hd128 gqa1", tol: 2e-2, spec: { ...base, arch: "llama", vocab: vocab("llama-bpe"), ropeTheta: 500000,
    hidden: 256, layers: 2, heads: 2, kvHeads: 2, headDim: 128, ffn: 768, tieEmbeddings: true, seed: 5, weightTypes: GgmlType.Q4_K } },
  { id: "gpt-2 Q6_K hd64 gqa4", tol: 2e-2, spec: { ...base, arch: "llama", vocab: vocab("gpt-2"),
    hidden: 512, layers: 2, heads: 8, kvHeads: 2, headDim: 64, ffn: 1280, tieEmbeddings: false, seed: 6, weightTypes: GgmlType.Q6_K } },
  { id: "phi-3 F16 hd64 gqa3 untied", tol: 1e-3, spec: { ...base, arch: "llama", vocab: vocab("phi-3"),
    hidden: 192, layers: 2, heads: 3, kvHeads: 1, headDim: 64, ffn: 544, tieEmbeddings: false, seed: 7, weightTypes: GgmlType.F16 } },
];

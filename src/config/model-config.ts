// The one internal description of a Llama-family model, filled from HF config.json or GGUF
// metadata (src/models/config-from-*.ts). Every field is resolved: no "auto", no undefined dims.

export type RopeScaling =
  | { type: "none" }
  | { type: "linear"; factor: number }
  | { type: "dynamic"; factor: number; originalMaxPositions: number }
  | { type: "llama3"; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number }
  | { type: "yarn"; factor: number; originalMaxPositions: number; betaFast: number; betaSlow: number; mscale?: number; mscaleAllDim?: number; attnFactor?: number };

/** How rotary pairs are laid out in Q/K rows. HF checkpoints use "neox" (rotate_half: pairs (i, i+d/2));
 *  llama.cpp's converter permutes Llama Q/K rows so GGUF `llama` files use "norm" (pairs (2i, 2i+1)).
 *  We keep the weights as stored and follow the file's convention instead of copying rows. */
export type RopeStyle = "norm" | "neox";

export interface ModelConfig {
  /** registry key: the architecture family handled by src/models/llama.ts */
  architecture: string;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  vocabSize: number;
  maxPositionEmbeddings: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling;
  ropeStyle: RopeStyle;
  /** rotary dims per head (== headDim for all supported families) */
  ropeDim: number;
  tieWordEmbeddings: boolean;
  /** Qwen2: bias on q/k/v projections */
  attentionBias: boolean;
  /** Qwen3: RMSNorm over each head of q and k before RoPE */
  qkNorm: boolean;
  /** Mistral: attend to at most this many previous positions (null: full attention) */
  slidingWindow: number | null;
  bosTokenId: number | null;
  eosTokenIds: number[];
}

// Maps HF (safetensors) and GGUF tensor names onto one internal layout, LlamaWeights. Matrices stay
// WeightTensor views on the checkpoint's bytes (no copy); 1-D tensors (norms, biases, rope factors)
// are dequantized once into Float32Array. Every shape is checked against the config.
import type { WeightTensor } from "../backends/backend.js";
import { rowBytes } from "../backends/dtypes.js";
import { dequantizeRow } from "../backends/reference/quant.js";
import type { Checkpoint, TensorInfo } from "../checkpoint/types.js";
import type { ModelConfig } from "../config/model-config.js";
import { CheckpointError, ShapeMismatchError } from "../errors.js";

export interface LayerWeights {
  attnNorm: Float32Array;
  wq: WeightTensor; wk: WeightTensor; wv: WeightTensor; wo: WeightTensor;
  bq: Float32Array | null; bk: Float32Array | null; bv: Float32Array | null; bo: Float32Array | null;
  /** Qwen3: [headDim] RMSNorm weights applied per head */
  qNorm: Float32Array | null; kNorm: Float32Array | null;
  ffnNorm: Float32Array;
  wGate: WeightTensor; wUp: WeightTensor; wDown: WeightTensor;
}

export interface LlamaWeights {
  embed: WeightTensor;
  layers: LayerWeights[];
  finalNorm: Float32Array;
  /** the embedding table itself when embeddings are tied */
  lmHead: WeightTensor;
  /** GGUF llama3 rope: [ropeDim/2] factors that divide invFreq (rope_freqs.weight) */
  ropeFreqs: Float32Array | null;
}

type Role = "attnNorm" | "wq" | "wk" | "wv" | "wo" | "bq" | "bk" | "bv" | "bo" | "qNorm" | "kNorm" | "ffnNorm" | "wGate" | "wUp" | "wDown";

const HF_LAYER: Record<Role, string> = {
  attnNorm: "input_layernorm.weight", wq: "self_attn.q_proj.weight", wk: "self_attn.k_proj.weight",
  wv: "self_attn.v_proj.weight", wo: "self_attn.o_proj.weight", bq: "self_attn.q_proj.bias",
  bk: "self_attn.k_proj.bias", bv: "self_attn.v_proj.bias", bo: "self_attn.o_proj.bias",
  qNorm: "self_attn.q_norm.weight", kNorm: "self_attn.k_norm.weight", ffnNorm: "post_attention_layernorm.weight",
  wGate: "mlp.gate_proj.weight", wUp: "mlp.up_proj.weight", wDown: "mlp.down_proj.weight",
};
const GGUF_LAYER: Record<Role, string> = {
  attnNorm: "attn_norm.weight", wq: "attn_q.weight", wk: "attn_k.weight", wv: "attn_v.weight",
  wo: "attn_output.weight", bq: "attn_q.bias", bk: "attn_k.bias", bv: "attn_v.bias", bo: "attn_output.bias",
  qNorm: "attn_q_norm.weight", kNorm: "attn_k_norm.weight", ffnNorm: "ffn_norm.weight",
  wGate: "ffn_gate.weight", wUp: "ffn_up.weight", wDown: "ffn_down.weight",
};

export interface NameMap {
  embed: string; finalNorm: string; lmHead: string; ropeFreqs: string | null;
  layer(i: number, role: Role): string;
}
export const HF_NAMES: NameMap = {
  embed: "model.embed_tokens.weight", finalNorm: "model.norm.weight", lmHead: "lm_head.weight", ropeFreqs: null,
  layer: (i, r) => `model.layers.${i}.${HF_LAYER[r]}`,
};
export const GGUF_NAMES: NameMap = {
  embed: "token_embd.weight", finalNorm: "output_norm.weight", lmHead: "output.weight", ropeFreqs: "rope_freqs.weight",
  layer: (i, r) => `blk.${i}.${GGUF_LAYER[r]}`,
};

class Loader {
  constructor(readonly ckpt: Checkpoint) {}
  get(name: string): TensorInfo {
    const t = this.ckpt.tensors.get(name);
    if (!t) throw new CheckpointError(this.ckpt.path, name, "tensor missing");
    return t;
  }
  checkShape(t: TensorInfo, expected: number[]): void {
    // GGUF may store a 1-D tensor with trailing unit dims; compare without them
    const actual = [...t.shape];
    while (actual.length > expected.length && actual[0] === 1) actual.shift();
    if (actual.length !== expected.length || actual.some((d, i) => d !== expected[i])) {
      throw new ShapeMismatchError(t.file, t.name, expected, t.shape);
    }
  }
  matrix(name: string, rows: number, cols: number): WeightTensor {
    const t = this.get(name);
    this.checkShape(t, [rows, cols]);
    const nbytes = rowBytes(t.dtype, cols) * rows;
    const data = t.data();
    if (data.byteLength < nbytes) throw new CheckpointError(t.file, name, `has ${data.byteLength} bytes, needs ${nbytes}`);
    return { name, dtype: t.dtype, rows, cols, data: data.subarray(0, nbytes) };
  }
  vector(name: string, n: number): Float32Array {
    const t = this.get(name);
    this.checkShape(t, [n]);
    const out = new Float32Array(n);
    dequantizeRow(t.dtype, t.data(), n, out, 0);
    return out;
  }
  optVector(name: string, n: number): Float32Array | null {
    return this.ckpt.tensors.has(name) ? this.vector(name, n) : null;
  }
}

function loadLayer(ld: Loader, names: NameMap, c: ModelConfig, i: number): LayerWeights {
  const n = (r: Role) => names.layer(i, r);
  const H = c.hiddenSize, qDim = c.numHeads * c.headDim, kvDim = c.numKvHeads * c.headDim, I = c.intermediateSize;
  const bias = (r: Role, len: number) => (c.attentionBias ? ld.vector(n(r), len) : ld.optVector(n(r), len));
  return {
    attnNorm: ld.vector(n("attnNorm"), H),
    wq: ld.matrix(n("wq"), qDim, H), wk: ld.matrix(n("wk"), kvDim, H), wv: ld.matrix(n("wv"), kvDim, H),
    wo: ld.matrix(n("wo"), H, qDim),
    bq: bias("bq", qDim), bk: bias("bk", kvDim), bv: bias("bv", kvDim), bo: ld.optVector(n("bo"), H),
    qNorm: c.qkNorm ? ld.vector(n("qNorm"), c.headDim) : null,
    kNorm: c.qkNorm ? ld.vector(n("kNorm"), c.headDim) : null,
    ffnNorm: ld.vector(n("ffnNorm"), H),
    wGate: ld.matrix(n("wGate"), I, H), wUp: ld.matrix(n("wUp"), I, H), wDown: ld.matrix(n("wDown"), H, I),
  };
}

/** Maps the checkpoint's tensors onto LlamaWeights, checking every shape against `config`. */
export function loadLlamaWeights(ckpt: Checkpoint, config: ModelConfig): LlamaWeights {
  const names = ckpt.format === "gguf" ? GGUF_NAMES : HF_NAMES;
  const ld = new Loader(ckpt);
  const embed = ld.matrix(names.embed, config.vocabSize, config.hiddenSize);
  const layers: LayerWeights[] = [];
  for (let i = 0; i < config.numLayers; i++) layers.push(loadLayer(ld, names, config, i));
  const hasHead = ckpt.tensors.has(names.lmHead);
  const useEmbed = config.tieWordEmbeddings || (ckpt.format === "gguf" && !hasHead);
  const lmHead = useEmbed ? embed : ld.matrix(names.lmHead, config.vocabSize, config.hiddenSize);
  const ropeFreqs = names.ropeFreqs ? ld.optVector(names.ropeFreqs, config.ropeDim / 2) : null;
  return { embed, layers, finalNorm: ld.vector(names.finalNorm, config.hiddenSize), lmHead, ropeFreqs };
}

/** llama.cpp convert_hf_to_gguf.py's LlamaModel.permute on a [rows, cols] row-major matrix (or a
 *  bias with cols = 1): per head, rows (p * hd/2 + j) move to (2j + p), turning HF's rotate_half
 *  ("neox") layout into interleaved ("norm") pairs. nHead: heads in this matrix (kv heads for k). */
export function permuteQkRows(w: Float32Array, rows: number, cols: number, nHead: number): Float32Array {
  return permuteRows(w, rows, cols, nHead, false);
}

/** Inverse of permuteQkRows: GGUF llama Q/K rows back to HF order. */
export function unpermuteQkRows(w: Float32Array, rows: number, cols: number, nHead: number): Float32Array {
  return permuteRows(w, rows, cols, nHead, true);
}

function permuteRows(w: Float32Array, rows: number, cols: number, nHead: number, inverse: boolean): Float32Array {
  if (rows % (2 * nHead) !== 0 || w.length !== rows * cols) {
    throw new ShapeMismatchError("(permute)", "q/k", [rows, cols], [w.length / cols, cols]);
  }
  const hd = rows / nHead, half = hd / 2;
  const out = new Float32Array(w.length);
  for (let h = 0; h < nHead; h++) {
    for (let p = 0; p < 2; p++) {
      for (let j = 0; j < half; j++) {
        const hf = h * hd + p * half + j, gg = h * hd + 2 * j + p;
        const [src, dst] = inverse ? [gg, hf] : [hf, gg];
        out.set(w.subarray(src * cols, (src + 1) * cols), dst * cols);
      }
    }
  }
  return out;
}

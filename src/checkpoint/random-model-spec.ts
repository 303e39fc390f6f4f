// Spec and tensor plan of a deterministic random-weight Llama-family model (see ./random-model.ts).
// The plan lists every tensor once with its HF name, GGUF name, HF shape [out, in], the GGUF type
// it is stored in and how its values are drawn.
import { GgmlType, TYPE_TRAITS, typeName } from "../backends/dtypes.js";
import { ValidationError } from "../errors.js";

export type RandomArch = "llama" | "qwen2" | "qwen3" | "mistral";

/** GGUF storage types: one type for all matrices, or a mix like llama.cpp's Q4_K_M. */
export type WeightTypes = GgmlType | {
  readonly default: GgmlType;
  readonly embedding?: GgmlType;
  readonly output?: GgmlType;
  readonly attnV?: GgmlType;
  readonly ffnDown?: GgmlType;
};

export interface RandomModelSpec {
  readonly arch: RandomArch;
  /** path of a vocab-only GGUF (llama.cpp's models/ggml-vocab-*.gguf); its token count is the vocab size */
  readonly vocab: string;
  readonly hidden: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly ffn: number;
  readonly tieEmbeddings: boolean;
  /** q/k/v biases (qwen2 has them, and llama.cpp requires them for qwen2) */
  readonly qkvBias: boolean;
  /** per-head RMSNorm on q and k (qwen3 has it, and llama.cpp requires it for qwen3) */
  readonly qkNorm: boolean;
  readonly ropeTheta: number;
  readonly rmsEps: number;
  readonly maxPositions: number;
  /** written to config.json only (llama.cpp's `llama` graph, used for Mistral GGUFs, ignores it) */
  readonly slidingWindow?: number;
  readonly seed: number;
  readonly weightTypes: WeightTypes;
  /** dtype of the HF twin's model.safetensors (default F32: then it holds exactly the GGUF's values) */
  readonly hfDtype?: "F32" | "F16";
  /** general.name (default `random-<arch>`) */
  readonly name?: string;
}

/** How a tensor's values are drawn: value = mean + std * N(0,1). */
export interface Init { readonly mean: number; readonly std: number }

export interface PlannedTensor {
  readonly hf: string;
  readonly gguf: string;
  /** HF order [out, in] (or [n] for vectors) */
  readonly shape: readonly number[];
  readonly type: GgmlType;
  readonly init: Init;
  /** llama Q/K: GGUF rows are permuted with this many heads (see qkRowOrder) */
  readonly permuteHeads?: number;
}

/** Scales that keep the random model's next-token distribution far from flat:
 *  embeddings and the output matrix ~ N(0,1); the final norm weight OUTPUT_GAIN/sqrt(hidden) gives
 *  logits of std ~OUTPUT_GAIN; residual branches (o_proj, down_proj) are amplified by RESIDUAL_GAIN
 *  so that context (not just the current token) moves the distribution; with tied embeddings the
 *  current token's own embedding otherwise dominates its logits and greedy decoding soon repeats
 *  one token (gain 2: after 1-2 steps; gain 4: after ~6-9 steps on the 2-layer oracle fixtures). */
export const OUTPUT_GAIN = 4;
export const RESIDUAL_GAIN = 4;
const NORM_NOISE = 0.1;

function posInt(field: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) throw new ValidationError(field, v, "expected a positive integer");
  return v;
}

const ALLOWED_TYPES = [GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_1,
  GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K];

function checkType(field: string, t: unknown): GgmlType {
  if (!ALLOWED_TYPES.includes(t as GgmlType)) {
    throw new ValidationError(field, t, `expected one of ${ALLOWED_TYPES.map(typeName).join(", ")}`);
  }
  return t as GgmlType;
}

/** Throws ValidationError naming the first bad field. */
export function validateSpec(s: RandomModelSpec): void {
  if (!["llama", "qwen2", "qwen3", "mistral"].includes(s.arch)) throw new ValidationError("arch", s.arch, "expected llama, qwen2, qwen3 or mistral");
  for (const k of ["hidden", "layers", "heads", "kvHeads", "headDim", "ffn", "maxPositions"] as const) posInt(k, s[k]);
  if (s.heads % s.kvHeads !== 0) throw new ValidationError("kvHeads", s.kvHeads, `must divide heads=${s.heads}`);
  if (s.headDim % 2 !== 0) throw new ValidationError("headDim", s.headDim, "must be even (rotary pairs)");
  if (!Number.isInteger(s.seed)) throw new ValidationError("seed", s.seed, "expected an integer");
  if (!(s.ropeTheta > 0)) throw new ValidationError("ropeTheta", s.ropeTheta, "expected a positive number");
  if (!(s.rmsEps > 0)) throw new ValidationError("rmsEps", s.rmsEps, "expected a positive number");
  if (s.slidingWindow !== undefined) posInt("slidingWindow", s.slidingWindow);
  if (s.arch === "qwen2" && !s.qkvBias) throw new ValidationError("qkvBias", s.qkvBias, "qwen2 has q/k/v biases (llama.cpp requires them)");
  if (s.arch !== "qwen2" && s.qkvBias) throw new ValidationError("qkvBias", s.qkvBias, `${s.arch} has no q/k/v biases`);
  if (s.arch === "qwen3" && !s.qkNorm) throw new ValidationError("qkNorm", s.qkNorm, "qwen3 has q/k norms (llama.cpp requires them)");
  if (s.arch !== "qwen3" && s.qkNorm) throw new ValidationError("qkNorm", s.qkNorm, `${s.arch} has no q/k norms`);
  if (s.hfDtype !== undefined && s.hfDtype !== "F32" && s.hfDtype !== "F16") throw new ValidationError("hfDtype", s.hfDtype, "expected F32 or F16");
  const wt = s.weightTypes;
  if (typeof wt === "object") {
    checkType("weightTypes.default", wt.default);
    for (const k of ["embedding", "output", "attnV", "ffnDown"] as const) if (wt[k] !== undefined) checkType(`weightTypes.${k}`, wt[k]);
  } else {
    checkType("weightTypes", wt);
  }
}

function typesOf(wt: WeightTypes): Required<Exclude<WeightTypes, GgmlType>> {
  const d = typeof wt === "object" ? wt : { default: wt };
  return {
    default: d.default, embedding: d.embedding ?? d.default, output: d.output ?? d.default,
    attnV: d.attnV ?? d.default, ffnDown: d.ffnDown ?? d.default,
  };
}

/** The storage types llama.cpp's Q4_K_M picks for the tensors we generate (approximately:
 *  Q6_K for output, attn_v and ffn_down; Q4_K elsewhere). */
export const Q4_K_M_MIX: WeightTypes = {
  default: GgmlType.Q4_K, embedding: GgmlType.Q4_K, output: GgmlType.Q6_K, attnV: GgmlType.Q6_K, ffnDown: GgmlType.Q6_K,
};

function layerTensors(s: RandomModelSpec, i: number, t: ReturnType<typeof typesOf>): PlannedTensor[] {
  const H = s.hidden, qd = s.heads * s.headDim, kd = s.kvHeads * s.headDim;
  const hp = `model.layers.${i}.`, gp = `blk.${i}.`;
  const permute = s.arch === "llama" || s.arch === "mistral";
  const w = (std: number): Init => ({ mean: 0, std });
  const norm: Init = { mean: 1, std: NORM_NOISE };
  const out: PlannedTensor[] = [
    { hf: `${hp}input_layernorm.weight`, gguf: `${gp}attn_norm.weight`, shape: [H], type: GgmlType.F32, init: norm },
    { hf: `${hp}self_attn.q_proj.weight`, gguf: `${gp}attn_q.weight`, shape: [qd, H], type: t.default, init: w(1 / Math.sqrt(H)), ...(permute ? { permuteHeads: s.heads } : {}) },
    { hf: `${hp}self_attn.k_proj.weight`, gguf: `${gp}attn_k.weight`, shape: [kd, H], type: t.default, init: w(1 / Math.sqrt(H)), ...(permute ? { permuteHeads: s.kvHeads } : {}) },
    { hf: `${hp}self_attn.v_proj.weight`, gguf: `${gp}attn_v.weight`, shape: [kd, H], type: t.attnV, init: w(1 / Math.sqrt(H)) },
    { hf: `${hp}self_attn.o_proj.weight`, gguf: `${gp}attn_output.weight`, shape: [H, qd], type: t.default, init: w(RESIDUAL_GAIN / Math.sqrt(qd)) },
    { hf: `${hp}post_attention_layernorm.weight`, gguf: `${gp}ffn_norm.weight`, shape: [H], type: GgmlType.F32, init: norm },
    { hf: `${hp}mlp.gate_proj.weight`, gguf: `${gp}ffn_gate.weight`, shape: [s.ffn, H], type: t.default, init: w(1 / Math.sqrt(H)) },
    { hf: `${hp}mlp.up_proj.weight`, gguf: `${gp}ffn_up.weight`, shape: [s.ffn, H], type: t.default, init: w(1 / Math.sqrt(H)) },
    { hf: `${hp}mlp.down_proj.weight`, gguf: `${gp}ffn_down.weight`, shape: [H, s.ffn], type: t.ffnDown, init: w(RESIDUAL_GAIN / Math.sqrt(s.ffn)) },
  ];
  if (s.qkvBias) {
    for (const [p, g, n] of [["q", "q", qd], ["k", "k", kd], ["v", "v", kd]] as const) {
      out.push({ hf: `${hp}self_attn.${p}_proj.bias`, gguf: `${gp}attn_${g}.bias`, shape: [n], type: GgmlType.F32, init: w(0.2) });
    }
  }
  if (s.qkNorm) {
    out.push({ hf: `${hp}self_attn.q_norm.weight`, gguf: `${gp}attn_q_norm.weight`, shape: [s.headDim], type: GgmlType.F32, init: norm });
    out.push({ hf: `${hp}self_attn.k_norm.weight`, gguf: `${gp}attn_k_norm.weight`, shape: [s.headDim], type: GgmlType.F32, init: norm });
  }
  return out;
}

/** Every tensor of the model, in GGUF order; validates block sizes against the chosen types. */
export function planTensors(s: RandomModelSpec, vocabSize: number): PlannedTensor[] {
  validateSpec(s);
  const t = typesOf(s.weightTypes);
  const H = s.hidden;
  const plan: PlannedTensor[] = [
    { hf: "model.embed_tokens.weight", gguf: "token_embd.weight", shape: [vocabSize, H], type: t.embedding, init: { mean: 0, std: 1 } },
  ];
  for (let i = 0; i < s.layers; i++) plan.push(...layerTensors(s, i, t));
  plan.push({ hf: "model.norm.weight", gguf: "output_norm.weight", shape: [H], type: GgmlType.F32,
    init: { mean: OUTPUT_GAIN / Math.sqrt(H), std: NORM_NOISE * OUTPUT_GAIN / Math.sqrt(H) } });
  if (!s.tieEmbeddings) {
    plan.push({ hf: "lm_head.weight", gguf: "output.weight", shape: [vocabSize, H], type: t.output, init: { mean: 0, std: 1 } });
  }
  for (const p of plan) {
    const inner = p.shape[p.shape.length - 1]!;
    const bs = TYPE_TRAITS.get(p.type)!.blockSize;
    if (inner % bs !== 0) {
      throw new ValidationError("weightTypes", typeName(p.type),
        `${p.gguf} has rows of ${inner} elements, not a multiple of the ${typeName(p.type)} block size ${bs}`);
    }
  }
  return plan;
}

/** Source row (HF order) of each GGUF row for llama's Q/K, as llama.cpp's converter permutes them:
 *  w.reshape(nHead, 2, headDim/2, in).swapaxes(1, 2).reshape(out, in), i.e.
 *  gguf row h*hd + 2*j + s  <-  hf row h*hd + s*hd/2 + j. */
export function qkRowOrder(rows: number, nHead: number): Int32Array {
  const hd = rows / nHead;
  const order = new Int32Array(rows);
  for (let h = 0; h < nHead; h++) {
    for (let j = 0; j < hd / 2; j++) {
      for (let s = 0; s < 2; s++) order[h * hd + 2 * j + s] = h * hd + s * (hd / 2) + j;
    }
  }
  return order;
}

/** llama.cpp's general.file_type for the model's main matrix type. */
export function fileType(wt: WeightTypes): number {
  const d = typeof wt === "object" ? wt.default : wt;
  const mixed = typeof wt === "object" && (wt.output ?? d) === GgmlType.Q6_K && d === GgmlType.Q4_K;
  if (mixed) return 15; // MOSTLY_Q4_K_M
  const map = new Map<GgmlType, number>([
    [GgmlType.F32, 0], [GgmlType.F16, 1], [GgmlType.Q4_0, 2], [GgmlType.Q4_1, 3], [GgmlType.Q8_0, 7],
    [GgmlType.Q5_0, 8], [GgmlType.Q5_1, 9], [GgmlType.Q4_K, 14], [GgmlType.Q5_K, 16], [GgmlType.Q6_K, 18],
    [GgmlType.BF16, 32],
  ]);
  return map.get(d) ?? 0;
}


// Rotary inverse frequencies for every supported rope_scaling, as HF transformers computes them
// (modeling_rope_utils.py), so that the backend's rope op only multiplies positions by invFreq.
import type { RopeParams } from "../backends/backend.js";
import type { ModelConfig, RopeScaling } from "../config/model-config.js";
import { ValidationError } from "../errors.js";

export interface RopeFreqs {
  /** [ropeDim / 2] inverse frequencies (radians per position), f32 like HF's torch buffers */
  invFreq: Float32Array;
  /** attention factor applied to cos and sin (yarn); 1 otherwise */
  mscale: number;
}

type RopeInput = Pick<ModelConfig, "ropeTheta" | "ropeDim" | "ropeScaling">;

/** invFreq[i] = theta^(-2i / dim), computed in f64 then rounded to f32. */
export function defaultInvFreq(theta: number, dim: number): Float64Array {
  if (!(theta > 0)) throw new ValidationError("ropeTheta", theta, "must be > 0");
  if (!Number.isInteger(dim) || dim < 2 || dim % 2) throw new ValidationError("ropeDim", dim, "must be a positive even integer");
  return Float64Array.from({ length: dim / 2 }, (_, i) => 1 / theta ** ((2 * i) / dim));
}

/** Inverse frequencies and attention factor for config.ropeScaling.
 *  dynamic (NTK): HF recomputes the base only once a sequence exceeds originalMaxPositions; for
 *  sequence lengths within it (all we serve: maxPositionEmbeddings is set to the original) the
 *  frequencies are the default ones, so that is what we return. */
export function ropeInvFreq(config: RopeInput): RopeFreqs {
  const base = defaultInvFreq(config.ropeTheta, config.ropeDim);
  const s: RopeScaling = config.ropeScaling;
  switch (s.type) {
    case "none":
    case "dynamic":
      return { invFreq: Float32Array.from(base), mscale: 1 };
    case "linear":
      return { invFreq: Float32Array.from(base, (f) => f / s.factor), mscale: 1 };
    case "llama3":
      return { invFreq: llama3InvFreq(base, s), mscale: 1 };
    case "yarn":
      return yarnInvFreq(config.ropeTheta, config.ropeDim, s);
  }
}

/** HF _compute_llama3_parameters: keep high frequencies, divide low ones by factor, blend between. */
function llama3InvFreq(base: Float64Array, s: Extract<RopeScaling, { type: "llama3" }>): Float32Array {
  const lowWavelen = s.originalMaxPositions / s.lowFreqFactor;
  const highWavelen = s.originalMaxPositions / s.highFreqFactor;
  return Float32Array.from(base, (f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highWavelen) return f;
    if (wavelen > lowWavelen) return f / s.factor;
    const smooth = (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    return (1 - smooth) * (f / s.factor) + smooth * f;
  });
}

function yarnGetMscale(scale: number, m = 1): number {
  return scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1;
}

/** HF _compute_yarn_parameters (truncate=True) == llama.cpp rope_yarn with ext_factor 1:
 *  dims below the correction range extrapolate (base freq), dims above interpolate (freq / factor),
 *  a linear ramp blends between; cos/sin are scaled by the attention factor. */
function yarnInvFreq(theta: number, dim: number, s: Extract<RopeScaling, { type: "yarn" }>): RopeFreqs {
  const corrDim = (rot: number) => (dim * Math.log(s.originalMaxPositions / (rot * 2 * Math.PI))) / (2 * Math.log(theta));
  const low = Math.max(Math.floor(corrDim(s.betaFast)), 0);
  let high = Math.min(Math.ceil(corrDim(s.betaSlow)), dim - 1);
  if (low === high) high += 0.001;
  const invFreq = new Float32Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) {
    const posFreq = theta ** ((2 * i) / dim);
    const ramp = Math.min(1, Math.max(0, (i - low) / (high - low)));
    const extrapFactor = 1 - ramp;
    invFreq[i] = (1 / (s.factor * posFreq)) * (1 - extrapFactor) + (1 / posFreq) * extrapFactor;
  }
  let mscale: number;
  if (s.attnFactor !== undefined) mscale = s.attnFactor;
  else if (s.mscale && s.mscaleAllDim) mscale = yarnGetMscale(s.factor, s.mscale) / yarnGetMscale(s.factor, s.mscaleAllDim);
  else mscale = yarnGetMscale(s.factor);
  return { invFreq, mscale };
}

/** RopeParams for the backend; `freqFactors` (GGUF rope_freqs.weight, llama3) divide invFreq. */
export function ropeParams(config: ModelConfig, freqFactors: Float32Array | null = null): RopeParams {
  const { invFreq, mscale } = ropeInvFreq(config);
  if (freqFactors) {
    if (freqFactors.length !== invFreq.length) throw new ValidationError("rope_freqs", freqFactors.length, `expected ${invFreq.length} factors`);
    for (let i = 0; i < invFreq.length; i++) invFreq[i] = invFreq[i]! / freqFactors[i]!;
  }
  return { style: config.ropeStyle, headDim: config.headDim, ropeDim: config.ropeDim, invFreq, mscale, ggml: ggmlRope(config, freqFactors) };
}

/** ggml's own angle recurrence (ggml_compute_forward_rope_flt: theta_scale = powf(freq_base,
 *  -2.0f/n_dims), repeated f32 products), for the scalings where llama.cpp uses it unchanged:
 *  none and linear (freq_scale = 1/factor). Others (llama3, yarn, dynamic) keep invFreq. */
function ggmlRope(config: ModelConfig, freqFactors: Float32Array | null): RopeParams["ggml"] {
  const s = config.ropeScaling;
  if (s.type !== "none" && s.type !== "linear") return undefined;
  const thetaScale = Math.fround(Math.pow(Math.fround(config.ropeTheta), Math.fround(-2 / config.ropeDim)));
  return { thetaScale, freqScale: s.type === "linear" ? Math.fround(1 / s.factor) : 1, freqFactors };
}

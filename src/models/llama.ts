// The Llama-family decoder (Llama, Mistral, Qwen2, Qwen3) over the Backend ops. Pre-norm:
//   x = emb; per layer: h = rms(x); q,k,v = h·W (+bias); [qk-norm]; rope; kv write; attention;
//   x += attn·Wo; h = rms(x); x += down(silu(gate(h)) * up(h)); logits = rms(x[logitRows])·Wout,
//   the last layer's FFN running on the logit rows only (as llama.cpp's inp_out_ids).
// Activations are [T, dim] row-major, packed over sequences; scratch grows with T and is reused.
import type { AttentionParams, Backend, KvLayer, RopeParams } from "../backends/backend.js";
import type { ModelConfig } from "../config/model-config.js";
import type { ForwardBatch } from "../engine/types.js";
import { ValidationError } from "../errors.js";
import { ropeParams } from "../layers/rope.js";
import type { GraphBatch, LlamaGraphSpec } from "../backends/native/graph.js";
import type { LayerWeights, LlamaWeights } from "./weights.js";

/** A backend that runs the whole forward step in one call (NativeBackend: native/graph.cc). */
interface GraphBackend {
  createLlamaGraph(spec: LlamaGraphSpec): { forward(b: GraphBatch, kv: readonly KvLayer[], out: Float32Array): void };
}

export interface LlamaModelOptions {
  /** run the step as one native graph when the backend offers it (default true; env TLLM_GRAPH=0 turns it off).
   *  Same kernels in the same order: the logits are bit-identical either way. */
  fused?: boolean;
}

interface Scratch {
  t: number;
  x: Float32Array; h: Float32Array; q: Float32Array; k: Float32Array; v: Float32Array;
  attn: Float32Array; o: Float32Array; gate: Float32Array; up: Float32Array; gateUp: Float32Array; act: Float32Array;
}

export class LlamaModel {
  private readonly rope: RopeParams;
  private readonly attnParams: AttentionParams;
  private s: Scratch | null = null;
  private readonly graph: ReturnType<GraphBackend["createLlamaGraph"]> | null;

  constructor(readonly config: ModelConfig, readonly weights: LlamaWeights, readonly backend: Backend, opts: LlamaModelOptions = {}) {
    this.rope = ropeParams(config, weights.ropeFreqs);
    this.attnParams = {
      numHeads: config.numHeads, numKvHeads: config.numKvHeads, headDim: config.headDim,
      scale: 1 / Math.sqrt(config.headDim), slidingWindow: config.slidingWindow,
    };
    const fused = (opts.fused ?? true) && process.env.TLLM_GRAPH !== "0" && this.rope.headDim === config.headDim;
    const gb = backend as Partial<GraphBackend>;
    this.graph = fused && typeof gb.createLlamaGraph === "function" ? gb.createLlamaGraph(this.graphSpec()) : null;
  }

  /** whether forward runs as one native graph call */
  get fused(): boolean {
    return this.graph !== null;
  }

  /** Returns logits [logitRows.length, vocab]: fresh (the caller owns them), or a view of `out` when
   *  given (a buffer the caller reuses across steps: no 0.2-3 MB allocation and GC per step); writes
   *  this step's K/V into kv[layer] at batch.slots. */
  forward(batch: ForwardBatch, kv: readonly KvLayer[], out?: Float32Array<ArrayBuffer>): Float32Array<ArrayBuffer> {
    const c = this.config, T = batch.tokens.length;
    this.checkBatch(batch, kv);
    const n = batch.logitRows.length * c.vocabSize;
    if (out && out.length < n) throw new ValidationError("forward.out", out.length, `needs ${n} elements`);
    const logits = out ? out.subarray(0, n) : new Float32Array(n);
    if (this.graph) {
      this.graph.forward(batch, kv, logits);
      return logits;
    }
    const s = this.scratch(T);
    this.backend.embedding(s.x, this.weights.embed, batch.tokens);
    const last = c.numLayers - 1;
    for (let l = 0; l < last; l++) {
      this.attentionBlock(this.weights.layers[l]!, kv[l]!, batch, s, T);
      this.mlpBlock(this.weights.layers[l]!, s, T);
    }
    // The last layer's FFN, the final norm and the lm head only run on the rows whose logits are
    // wanted (llama.cpp's inp_out_ids): after the attention block the other rows are dead.
    this.attentionBlock(this.weights.layers[last]!, kv[last]!, batch, s, T);
    const R = this.selectRows(batch.logitRows, s);
    this.mlpBlock(this.weights.layers[last]!, s, R);
    this.logits(R, s, logits);
    return logits;
  }

  /** Moves rows `rows` of s.x to rows [0, R) (in that order); returns R. */
  private selectRows(rows: Int32Array, s: Scratch): number {
    const H = this.config.hiddenSize, R = rows.length;
    let identity = true;
    for (let i = 0; i < R; i++) if (rows[i] !== i) { identity = false; break; }
    if (identity) return R;
    const sel = new Float32Array(R * H);
    for (let i = 0; i < R; i++) sel.set(s.x.subarray(rows[i]! * H, (rows[i]! + 1) * H), i * H);
    s.x.set(sel);
    return R;
  }

  private attentionBlock(w: LayerWeights, kv: KvLayer, b: ForwardBatch, s: Scratch, T: number): void {
    const c = this.config, be = this.backend, hd = c.headDim;
    const qDim = c.numHeads * hd, kvDim = c.numKvHeads * hd;
    be.rmsNorm(s.h, s.x, w.attnNorm, T, c.hiddenSize, c.rmsNormEps);
    be.matmul(s.q, s.h, T, w.wq);
    be.matmul(s.k, s.h, T, w.wk);
    be.matmul(s.v, s.h, T, w.wv);
    if (w.bq) be.addBias(s.q, w.bq, T, qDim);
    if (w.bk) be.addBias(s.k, w.bk, T, kvDim);
    if (w.bv) be.addBias(s.v, w.bv, T, kvDim);
    if (w.qNorm) be.rmsNorm(s.q, s.q, w.qNorm, T * c.numHeads, hd, c.rmsNormEps);
    if (w.kNorm) be.rmsNorm(s.k, s.k, w.kNorm, T * c.numKvHeads, hd, c.rmsNormEps);
    be.rope(s.q, T, c.numHeads, b.positions, this.rope);
    be.rope(s.k, T, c.numKvHeads, b.positions, this.rope);
    be.writeKv(kv, s.k, s.v, b.slots);
    be.attention(s.attn, s.q, kv, b.seqs, this.attnParams);
    be.matmul(s.o, s.attn, T, w.wo);
    if (w.bo) be.addBias(s.o, w.bo, T, c.hiddenSize);
    be.add(s.x, s.x, s.o, T * c.hiddenSize);
  }

  private mlpBlock(w: LayerWeights, s: Scratch, T: number): void {
    const c = this.config, be = this.backend, I = c.intermediateSize;
    be.rmsNorm(s.h, s.x, w.ffnNorm, T, c.hiddenSize, c.rmsNormEps);
    be.matmul(s.gate, s.h, T, w.wGate);
    be.matmul(s.up, s.h, T, w.wUp);
    // siluMul takes [T, 2I] rows of [gate | up]
    for (let t = 0; t < T; t++) {
      s.gateUp.set(s.gate.subarray(t * I, (t + 1) * I), t * 2 * I);
      s.gateUp.set(s.up.subarray(t * I, (t + 1) * I), t * 2 * I + I);
    }
    be.siluMul(s.act, s.gateUp, T, I);
    be.matmul(s.o, s.act, T, w.wDown);
    be.add(s.x, s.x, s.o, T * c.hiddenSize);
  }

  /** Final norm and lm head on rows [0, R) of s.x (already selected) into out [R, vocab]. */
  private logits(R: number, s: Scratch, out: Float32Array): void {
    const H = this.config.hiddenSize;
    this.backend.rmsNorm(s.h, s.x, this.weights.finalNorm, R, H, this.config.rmsNormEps);
    this.backend.matmul(out, s.h, R, this.weights.lmHead);
  }

  private scratch(T: number): Scratch {
    if (this.s && this.s.t >= T) return this.s;
    const c = this.config, t = Math.max(T, this.s ? this.s.t * 2 : 1);
    const f = (n: number) => new Float32Array(t * n);
    const qDim = c.numHeads * c.headDim, kvDim = c.numKvHeads * c.headDim, I = c.intermediateSize;
    this.s = {
      t, x: f(c.hiddenSize), h: f(c.hiddenSize), q: f(qDim), k: f(kvDim), v: f(kvDim), attn: f(qDim),
      o: f(c.hiddenSize), gate: f(I), up: f(I), gateUp: f(2 * I), act: f(I),
    };
    return this.s;
  }

  private graphSpec(): LlamaGraphSpec {
    const c = this.config, w = this.weights, r = this.rope;
    return {
      hidden: c.hiddenSize, numHeads: c.numHeads, numKvHeads: c.numKvHeads, headDim: c.headDim, intermediate: c.intermediateSize,
      vocab: c.vocabSize, eps: c.rmsNormEps, scale: this.attnParams.scale, window: c.slidingWindow ?? 0,
      neox: r.style === "neox" ? 1 : 0, ropeDim: r.ropeDim, invFreq: r.invFreq, mscale: r.mscale,
      ...(r.ggml ? { thetaScale: r.ggml.thetaScale, freqScale: r.ggml.freqScale, freqFactors: r.ggml.freqFactors } : {}),
      embed: w.embed, lmHead: w.lmHead, finalNorm: w.finalNorm, layers: w.layers,
    };
  }

  private checkBatch(b: ForwardBatch, kv: readonly KvLayer[]): void {
    const T = b.tokens.length;
    if (b.positions.length !== T) throw new ValidationError("batch.positions.length", b.positions.length, `expected ${T}`);
    if (b.slots.length !== T) throw new ValidationError("batch.slots.length", b.slots.length, `expected ${T}`);
    if (kv.length !== this.config.numLayers) throw new ValidationError("kv.length", kv.length, `expected ${this.config.numLayers} layers`);
    let covered = 0;
    for (const s of b.seqs) {
      if (s.qStart !== covered) throw new ValidationError("seq.qStart", s.qStart, `expected ${covered} (sequences packed in order)`);
      covered += s.qLen;
    }
    if (covered !== T) throw new ValidationError("batch.seqs", covered, `query rows cover ${covered} of ${T} tokens`);
    for (const r of b.logitRows) if (r < 0 || r >= T) throw new ValidationError("batch.logitRows", r, `out of range [0, ${T})`);
  }
}

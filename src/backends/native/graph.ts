// A Llama decoder's whole forward step as one native call (native/graph.cc). LlamaModel uses it
// when its backend offers createLlamaGraph (NativeBackend does): same kernels, same op order, same
// f32 bits as the op-by-op path, without ~14 JS->native calls per layer. Weights are bound once
// (pointers into the mapped file); each step passes only the packed batch and the KV pool arrays.
import { checkKvLayer, type AttnSeq, type KvLayer, type WeightTensor } from "../backend.js";
import { SUPPORTED_WEIGHT_TYPES, typeName } from "../dtypes.js";
import { ValidationError } from "../../errors.js";
import type { GraphHandle, TllmAddon } from "./addon.js";

/** LayerWeights' fields (src/models/weights.ts) that the graph reads. */
export interface GraphLayerWeights {
  readonly attnNorm: Float32Array; readonly ffnNorm: Float32Array;
  readonly wq: WeightTensor; readonly wk: WeightTensor; readonly wv: WeightTensor; readonly wo: WeightTensor;
  readonly wGate: WeightTensor; readonly wUp: WeightTensor; readonly wDown: WeightTensor;
  readonly bq: Float32Array | null; readonly bk: Float32Array | null; readonly bv: Float32Array | null; readonly bo: Float32Array | null;
  readonly qNorm: Float32Array | null; readonly kNorm: Float32Array | null;
}

export interface LlamaGraphSpec {
  readonly hidden: number; readonly numHeads: number; readonly numKvHeads: number; readonly headDim: number;
  readonly intermediate: number; readonly vocab: number; readonly eps: number;
  /** attention scale (1/sqrt(headDim) maps to llama.cpp's f32 value) and sliding window (0: none) */
  readonly scale: number; readonly window: number;
  /** rope: pairs (i, i + ropeDim/2) when neox = 1, (2i, 2i+1) when 0 */
  readonly neox: 0 | 1; readonly ropeDim: number; readonly invFreq: Float32Array; readonly mscale: number;
  /** ggml's f32 rope cache (RopeParams.ggml), when given */
  readonly thetaScale?: number; readonly freqScale?: number; readonly freqFactors?: Float32Array | null;
  readonly embed: WeightTensor; readonly lmHead: WeightTensor; readonly finalNorm: Float32Array;
  readonly layers: readonly GraphLayerWeights[];
}

/** One forward step's packed inputs (ForwardBatch's fields). */
export interface GraphBatch {
  readonly tokens: Int32Array; readonly positions: Int32Array; readonly slots: Int32Array;
  readonly seqs: readonly AttnSeq[]; readonly logitRows: Int32Array;
}

export class NativeLlamaGraph {
  private readonly handle: GraphHandle;
  private seqInfo = new Int32Array(64);
  private tables = new Int32Array(256);
  private kvRef: readonly KvLayer[] | null = null;
  private kvData: Array<KvLayer["data"]> = [];

  constructor(private readonly a: TllmAddon, private readonly spec: LlamaGraphSpec) {
    for (const w of [spec.embed, spec.lmHead, ...spec.layers.flatMap((l) => [l.wq, l.wk, l.wv, l.wo, l.wGate, l.wUp, l.wDown])]) {
      if (!SUPPORTED_WEIGHT_TYPES.includes(w.dtype)) throw new ValidationError(`${w.name}.dtype`, typeName(w.dtype), "not a supported weight type");
    }
    this.handle = a.createLlamaGraph(spec);
  }

  /** Writes logits [logitRows.length, vocab] into `out` and this step's K/V into kv[layer]. */
  forward(b: GraphBatch, kv: readonly KvLayer[], out: Float32Array): void {
    const T = b.tokens.length, rows = this.spec.embed.rows;
    for (let i = 0; i < T; i++) {
      const id = b.tokens[i]!;
      if (id < 0 || id >= rows) throw new ValidationError("token id", id, `out of range [0, ${rows})`);
    }
    const k0 = this.bindKv(kv);
    const cap = k0.numBlocks * k0.tokensPerBlock;
    for (let t = 0; t < b.slots.length; t++) {
      const s = b.slots[t]!;
      if (s < 0 || s >= cap) throw new ValidationError("kv slot", s, `out of range [0, ${cap})`);
    }
    const total = this.packSeqs(b.seqs, k0);
    this.a.graphForward(this.handle, b.tokens, b.positions, b.slots, this.seqInfo.subarray(0, b.seqs.length * 4),
      this.tables.subarray(0, total), b.logitRows, this.kvData, k0.numBlocks, k0.tokensPerBlock, out);
  }

  /** Checks the pool (one shape for all layers, as this model's) and caches its arrays. */
  private bindKv(kv: readonly KvLayer[]): KvLayer {
    const k0 = kv[0];
    if (!k0 || kv.length !== this.spec.layers.length) throw new ValidationError("kv.length", kv.length, `expected ${this.spec.layers.length} layers`);
    if (this.kvRef === kv && kv.every((l, i) => l.data === this.kvData[i])) return k0;
    if (k0.numKvHeads !== this.spec.numKvHeads || k0.headDim !== this.spec.headDim) {
      throw new ValidationError("kv layer", `${k0.numKvHeads}x${k0.headDim}`, `does not match ${this.spec.numKvHeads}x${this.spec.headDim}`);
    }
    for (const l of kv) {
      if (l.numBlocks !== k0.numBlocks || l.tokensPerBlock !== k0.tokensPerBlock || l.numKvHeads !== k0.numKvHeads ||
        l.headDim !== k0.headDim || l.dtype !== k0.dtype) {
        throw new ValidationError("kv layer", `${l.numBlocks}x${l.tokensPerBlock} ${l.dtype}`, "layers of one pool must share one shape and dtype");
      }
      checkKvLayer(l);
    }
    this.kvRef = kv;
    this.kvData = kv.map((l) => l.data);
    return k0;
  }

  /** seqs -> (qStart, qLen, kvLen, table offset) x nseq and the concatenated block tables; returns the tables' length. */
  private packSeqs(seqs: readonly AttnSeq[], kv: KvLayer): number {
    const tpb = kv.tokensPerBlock;
    let total = 0;
    for (const s of seqs) {
      if (!Number.isInteger(s.qLen) || s.qLen < 0) throw new ValidationError("seq.qLen", s.qLen, "must be an integer >= 0");
      if (s.qLen > s.kvLen) throw new ValidationError("seq.qLen", s.qLen, `exceeds kvLen ${s.kvLen}`);
      const nb = Math.ceil(s.kvLen / tpb);
      if (s.blockTable.length < nb) throw new ValidationError("seq.blockTable", s.blockTable.length, `too short for kvLen ${s.kvLen}`);
      for (let i = 0; i < nb; i++) {
        const id = s.blockTable[i]!;
        if (id < 0 || id >= kv.numBlocks) throw new ValidationError("seq.blockTable", id, `block id out of range [0, ${kv.numBlocks})`);
      }
      total += nb;
    }
    if (this.seqInfo.length < seqs.length * 4) this.seqInfo = new Int32Array(seqs.length * 8);
    if (this.tables.length < total) this.tables = new Int32Array(total * 2);
    let off = 0;
    for (let i = 0; i < seqs.length; i++) {
      const s = seqs[i]!, nb = Math.ceil(s.kvLen / tpb);
      const o = i * 4;
      this.seqInfo[o] = s.qStart; this.seqInfo[o + 1] = s.qLen; this.seqInfo[o + 2] = s.kvLen; this.seqInfo[o + 3] = off;
      this.tables.set(nb === s.blockTable.length ? s.blockTable : s.blockTable.subarray(0, nb), off);
      off += nb;
    }
    return total;
  }
}

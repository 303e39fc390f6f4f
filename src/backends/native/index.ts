// NativeBackend: the Backend ops on the C++ addon (AVX2 or scalar kernels, chosen at load; its own
// thread pool). This file validates arguments with typed errors, then hands typed-array views to
// the addon (no copies: weights stay views into the memory-mapped file). Loading this module
// installs the addon's mmap as the checkpoint reader's mapping (setMmapImplementation).
import { checkKvLayer, type AttentionParams, type AttnSeq, type Backend, type KvLayer, type RopeParams, type WeightTensor } from "../backend.js";
import { SUPPORTED_WEIGHT_TYPES, rowBytes, typeName } from "../dtypes.js";
import { ValidationError } from "../../errors.js";
import { setMmapImplementation } from "../../checkpoint/mapped-file.js";
import { addonLoadError, loadAddon, type NativeInfo, type TllmAddon } from "./addon.js";
import { NativeLlamaGraph, type LlamaGraphSpec } from "./graph.js";

export type { NativeInfo, TllmAddon } from "./addon.js";
export { NativeLlamaGraph, type GraphBatch, type LlamaGraphSpec } from "./graph.js";

const addon = loadAddon();
if (addon) {
  const a = addon;
  setMmapImplementation((path) => {
    const buffer = a.mmap(path);
    return { buffer, close: () => a.munmap(buffer) };
  });
}

/** Whether the addon is built and loads on this machine. */
export function isNativeAvailable(): boolean {
  return addon !== null;
}

/** Kernel path ("avx2" | "scalar"), pool threads and core count; throws when the addon is absent. */
export function nativeInfo(): NativeInfo {
  return need().info();
}

/** Threads used by parallel ops (the calling thread included); default = physical cores. */
export function setNativeThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > 1024) throw new ValidationError("threads", n, "must be an integer in [1, 1024]");
  need().setThreads(n);
}

/** For tests: run the portable scalar kernels even where AVX2 is available (TLLM_FORCE_SCALAR=1 at load does the same). */
export function setForceScalar(force: boolean): void {
  need().setForceScalar(force);
}

function need(): TllmAddon {
  if (!addon) throw new Error(`native backend unavailable: ${addonLoadError()?.message ?? "unknown reason"}`);
  return addon;
}

function checkLen(field: string, a: ArrayLike<number>, need: number): void {
  if (a.length < need) throw new ValidationError(field, a.length, `needs at least ${need} elements`);
}

function checkCount(field: string, v: number, min = 0): void {
  if (!Number.isInteger(v) || v < min) throw new ValidationError(field, v, `must be an integer >= ${min}`);
}

function checkWeight(w: WeightTensor): void {
  if (!SUPPORTED_WEIGHT_TYPES.includes(w.dtype)) {
    throw new ValidationError(`${w.name}.dtype`, typeName(w.dtype), "not a supported weight type");
  }
  checkCount(`${w.name}.rows`, w.rows, 1);
  checkCount(`${w.name}.cols`, w.cols, 1);
  let rb: number;
  try {
    rb = rowBytes(w.dtype, w.cols);
  } catch (e) {
    throw new ValidationError(`${w.name}.cols`, w.cols, (e as Error).message);
  }
  if (w.data.byteLength < rb * w.rows) {
    throw new ValidationError(`${w.name}.data`, w.data.byteLength, `needs ${rb * w.rows} bytes for [${w.rows}, ${w.cols}]`);
  }
}

export class NativeBackend implements Backend {
  readonly name = "native";
  private readonly a: TllmAddon;
  private seqInfo = new Int32Array(64);
  private tables = new Int32Array(256);

  constructor() {
    this.a = need();
  }

  /** A Llama decoder's forward step as one native call (LlamaModel uses it when offered). */
  createLlamaGraph(spec: LlamaGraphSpec): NativeLlamaGraph {
    return new NativeLlamaGraph(this.a, spec);
  }

  matmul(out: Float32Array, x: Float32Array, m: number, w: WeightTensor): void {
    checkWeight(w);
    checkCount("matmul.m", m);
    checkLen("matmul.x", x, m * w.cols);
    checkLen("matmul.out", out, m * w.rows);
    this.a.matmul(out, x, m, w.data, w.dtype, w.rows, w.cols);
  }

  embedding(out: Float32Array, table: WeightTensor, ids: Int32Array): void {
    checkWeight(table);
    checkLen("embedding.out", out, ids.length * table.cols);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (id < 0 || id >= table.rows) throw new ValidationError("token id", id, `out of range [0, ${table.rows})`);
    }
    this.a.embedding(out, table.data, table.dtype, table.rows, table.cols, ids);
  }

  rmsNorm(out: Float32Array, x: Float32Array, weight: Float32Array, m: number, n: number, eps: number): void {
    checkCount("rmsNorm.m", m);
    checkCount("rmsNorm.n", n, 1);
    checkLen("rmsNorm.x", x, m * n);
    checkLen("rmsNorm.out", out, m * n);
    checkLen("rmsNorm.weight", weight, n);
    if (!(eps >= 0)) throw new ValidationError("rmsNorm.eps", eps, "must be >= 0");
    this.a.rmsNorm(out, x, weight, m, n, eps);
  }

  rope(x: Float32Array, m: number, numHeads: number, positions: Int32Array, p: RopeParams): void {
    checkCount("rope.m", m);
    checkCount("rope.numHeads", numHeads, 1);
    if (!Number.isInteger(p.headDim) || p.headDim < 2 || p.headDim > 2048) {
      throw new ValidationError("rope.headDim", p.headDim, "must be an integer in [2, 2048]");
    }
    if (p.ropeDim % 2 !== 0 || p.ropeDim > p.headDim || p.ropeDim < 0) {
      throw new ValidationError("rope.ropeDim", p.ropeDim, `must be even and <= headDim ${p.headDim}`);
    }
    checkLen("rope.invFreq", p.invFreq, p.ropeDim / 2);
    checkLen("rope.positions", positions, m);
    checkLen("rope.x", x, m * numHeads * p.headDim);
    const g = p.ggml;
    if (g?.freqFactors) checkLen("rope.ggml.freqFactors", g.freqFactors, p.ropeDim / 2);
    if (g) {
      this.a.rope(x, m, numHeads, positions, p.style === "neox" ? 1 : 0, p.headDim, p.ropeDim, p.invFreq, p.mscale,
        g.thetaScale, g.freqScale, g.freqFactors);
    } else {
      this.a.rope(x, m, numHeads, positions, p.style === "neox" ? 1 : 0, p.headDim, p.ropeDim, p.invFreq, p.mscale);
    }
  }

  siluMul(out: Float32Array, gateUp: Float32Array, m: number, n: number): void {
    checkCount("siluMul.m", m);
    checkCount("siluMul.n", n, 1);
    checkLen("siluMul.gateUp", gateUp, 2 * m * n);
    checkLen("siluMul.out", out, m * n);
    this.a.siluMul(out, gateUp, m, n);
  }

  add(out: Float32Array, a: Float32Array, b: Float32Array, n: number): void {
    checkCount("add.n", n);
    checkLen("add.a", a, n);
    checkLen("add.b", b, n);
    checkLen("add.out", out, n);
    this.a.add(out, a, b, n);
  }

  addBias(out: Float32Array, bias: Float32Array, m: number, n: number): void {
    checkCount("addBias.m", m);
    checkCount("addBias.n", n, 1);
    checkLen("addBias.out", out, m * n);
    checkLen("addBias.bias", bias, n);
    this.a.addBias(out, bias, m, n);
  }

  /** Row-wise softmax of x[m, n] (not part of Backend; used by sampling). */
  softmax(out: Float32Array, x: Float32Array, m: number, n: number): void {
    checkCount("softmax.m", m);
    checkCount("softmax.n", n, 1);
    checkLen("softmax.x", x, m * n);
    checkLen("softmax.out", out, m * n);
    this.a.softmax(out, x, m, n);
  }

  /** out[i] = first index of the maximum of row i of x[m, n] (not part of Backend). */
  argmax(out: Int32Array, x: Float32Array, m: number, n: number): void {
    checkCount("argmax.m", m);
    checkCount("argmax.n", n, 1);
    checkLen("argmax.x", x, m * n);
    checkLen("argmax.out", out, m);
    this.a.argmax(out, x, m, n);
  }

  writeKv(kv: KvLayer, k: Float32Array, v: Float32Array, slots: Int32Array): void {
    checkKvLayer(kv);
    const row = kv.numKvHeads * kv.headDim, cap = kv.numBlocks * kv.tokensPerBlock;
    checkLen("writeKv.k", k, slots.length * row);
    checkLen("writeKv.v", v, slots.length * row);
    for (let t = 0; t < slots.length; t++) {
      const s = slots[t]!;
      if (s < 0 || s >= cap) throw new ValidationError("kv slot", s, `out of range [0, ${cap})`);
    }
    this.a.writeKv(kv.data, kv.numBlocks, kv.tokensPerBlock, kv.numKvHeads, kv.headDim, k, v, slots);
  }

  attention(out: Float32Array, q: Float32Array, kv: KvLayer, seqs: readonly AttnSeq[], p: AttentionParams): void {
    checkKvLayer(kv);
    if (p.numHeads % p.numKvHeads !== 0) throw new ValidationError("numHeads", p.numHeads, `not a multiple of numKvHeads ${p.numKvHeads}`);
    if (kv.numKvHeads !== p.numKvHeads || kv.headDim !== p.headDim) {
      throw new ValidationError("kv layer", `${kv.numKvHeads}x${kv.headDim}`, `does not match ${p.numKvHeads}x${p.headDim}`);
    }
    if (p.slidingWindow !== null) checkCount("slidingWindow", p.slidingWindow, 1);
    const { seqInfo, tables, rows } = this.packSeqs(seqs, kv);
    const row = p.numHeads * p.headDim;
    checkLen("attention.q", q, rows * row);
    checkLen("attention.out", out, rows * row);
    this.a.attention(out, q, kv.data, kv.numBlocks, kv.tokensPerBlock, kv.numKvHeads, kv.headDim,
      seqInfo, tables, p.numHeads, p.scale, p.slidingWindow ?? 0);
  }

  /** seqs -> (qStart, qLen, kvLen, table offset) x nseq and the concatenated block tables. */
  private packSeqs(seqs: readonly AttnSeq[], kv: KvLayer): { seqInfo: Int32Array; tables: Int32Array; rows: number } {
    let total = 0, rows = 0;
    for (const s of seqs) {
      checkCount("seq.qStart", s.qStart);
      checkCount("seq.qLen", s.qLen);
      if (s.qLen > s.kvLen) throw new ValidationError("seq.qLen", s.qLen, `exceeds kvLen ${s.kvLen}`);
      const nb = Math.ceil(s.kvLen / kv.tokensPerBlock);
      if (s.blockTable.length < nb) throw new ValidationError("seq.blockTable", s.blockTable.length, `too short for kvLen ${s.kvLen}`);
      for (let b = 0; b < nb; b++) {
        const id = s.blockTable[b]!;
        if (id < 0 || id >= kv.numBlocks) throw new ValidationError("seq.blockTable", id, `block id out of range [0, ${kv.numBlocks})`);
      }
      total += nb;
      rows = Math.max(rows, s.qStart + s.qLen);
    }
    if (this.seqInfo.length < seqs.length * 4) this.seqInfo = new Int32Array(seqs.length * 8);
    if (this.tables.length < total) this.tables = new Int32Array(total * 2);
    let off = 0;
    seqs.forEach((s, i) => {
      const nb = Math.ceil(s.kvLen / kv.tokensPerBlock);
      this.seqInfo.set([s.qStart, s.qLen, s.kvLen, off], i * 4);
      this.tables.set(s.blockTable.subarray(0, nb), off);
      off += nb;
    });
    return { seqInfo: this.seqInfo.subarray(0, seqs.length * 4), tables: this.tables.subarray(0, Math.max(total, 0)), rows };
  }
}


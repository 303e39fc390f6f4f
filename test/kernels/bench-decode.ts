// One decode step of a Llama-shaped model on NativeBackend ops alone (not a test; run by hand):
//   node --import tsx test/kernels/bench-decode.ts [smollm2|tinyllama] [batch]
// Random Q4_0 weights (random nibbles, fixed small f16 scales: the values do not change the time),
// f16 KV at context 256. Prints ms per step (median of 7) and the weight bytes streamed per step.
import { randomFillSync } from "node:crypto";
import { GgmlType, rowBytes } from "../../src/backends/dtypes.js";
import type { KvLayer, RopeParams, WeightTensor } from "../../src/backends/backend.js";
import { NativeBackend, nativeInfo, setNativeThreads } from "../../src/backends/native/index.js";

const SHAPES = {
  smollm2: { hidden: 576, ffn: 1536, layers: 30, heads: 9, kvHeads: 3, vocab: 49152 },
  tinyllama: { hidden: 2048, ffn: 5632, layers: 22, heads: 32, kvHeads: 4, vocab: 32000 },
};
const name = (process.argv[2] ?? "smollm2") as keyof typeof SHAPES;
const B = Number(process.argv[3] ?? 1), CTX = 256, TPB = 16;
const S = SHAPES[name];
const hd = S.hidden / S.heads;

function q40(rows: number, cols: number): WeightTensor {
  const rb = rowBytes(GgmlType.Q4_0, cols);
  const data = randomFillSync(new Uint8Array(rows * rb));
  for (let b = 0; b < data.length; b += 18) { data[b] = 0x00; data[b + 1] = 0x20; }  // d = 2^-7
  return { name: "w", dtype: GgmlType.Q4_0, rows, cols, data };
}

const nb = new NativeBackend();
if (process.env.TLLM_THREADS) setNativeThreads(Number(process.env.TLLM_THREADS));
const kvDim = S.kvHeads * hd, qkvRows = S.hidden + 2 * kvDim;
const layers = Array.from({ length: S.layers }, () => ({
  qkv: q40(qkvRows, S.hidden), o: q40(S.hidden, S.hidden), gateUp: q40(2 * S.ffn, S.hidden), down: q40(S.hidden, S.ffn),
  norm1: new Float32Array(S.hidden).fill(1), norm2: new Float32Array(S.hidden).fill(1),
  kv: { dtype: "f16", numBlocks: B * (CTX / TPB + 1) + 1, tokensPerBlock: TPB, numKvHeads: S.kvHeads, headDim: hd,
    data: new Uint16Array((B * (CTX / TPB + 1) + 1) * 2 * kvDim * TPB) } as KvLayer,
}));
const head = q40(S.vocab, S.hidden);
const rope: RopeParams = { style: "norm", headDim: hd, ropeDim: hd, mscale: 1,
  invFreq: Float32Array.from({ length: hd / 2 }, (_, i) => Math.pow(10000, (-2 * i) / hd)) };
const x = new Float32Array(B * S.hidden).fill(0.1), h = new Float32Array(B * S.hidden);
const qkv = new Float32Array(B * qkvRows), q = new Float32Array(B * S.hidden), k = new Float32Array(B * kvDim), v = new Float32Array(B * kvDim);
const att = new Float32Array(B * S.hidden), o = new Float32Array(B * S.hidden);
const gu = new Float32Array(B * 2 * S.ffn), act = new Float32Array(B * S.ffn), logits = new Float32Array(B * S.vocab);
const seqs = Array.from({ length: B }, (_, b) => ({ qStart: b, qLen: 1, kvLen: CTX,
  blockTable: Int32Array.from({ length: CTX / TPB + 1 }, (_, i) => 1 + b * (CTX / TPB + 1) + i) }));
const positions = new Int32Array(B).fill(CTX - 1);
const slots = Int32Array.from(seqs, (s) => s.blockTable[Math.floor((CTX - 1) / TPB)]! * TPB + ((CTX - 1) % TPB));
const ap = { numHeads: S.heads, numKvHeads: S.kvHeads, headDim: hd, scale: 1 / Math.sqrt(hd), slidingWindow: null };

function step(): void {
  for (const L of layers) {
    nb.rmsNorm(h, x, L.norm1, B, S.hidden, 1e-5);
    nb.matmul(qkv, h, B, L.qkv);
    for (let b = 0; b < B; b++) {  // split q | k | v (the model layer would do this)
      const r = qkv.subarray(b * qkvRows);
      q.set(r.subarray(0, S.hidden), b * S.hidden);
      k.set(r.subarray(S.hidden, S.hidden + kvDim), b * kvDim);
      v.set(r.subarray(S.hidden + kvDim, qkvRows), b * kvDim);
    }
    nb.rope(q, B, S.heads, positions, rope);
    nb.rope(k, B, S.kvHeads, positions, rope);
    nb.writeKv(L.kv, k, v, slots);
    nb.attention(att, q, L.kv, seqs, ap);
    nb.matmul(o, att, B, L.o);
    nb.add(x, x, o, B * S.hidden);
    nb.rmsNorm(h, x, L.norm2, B, S.hidden, 1e-5);
    nb.matmul(gu, h, B, L.gateUp);
    nb.siluMul(act, gu, B, S.ffn);
    nb.matmul(o, act, B, L.down);
    nb.add(x, x, o, B * S.hidden);
  }
  nb.matmul(logits, x, B, head);
}

const bytes = layers.reduce((s, L) => s + L.qkv.data.length + L.o.data.length + L.gateUp.data.length + L.down.data.length, head.data.length);
for (let i = 0; i < 3; i++) step();
const times: number[] = [], cpu: number[] = [];
for (let i = 0; i < 7; i++) {
  const t0 = process.hrtime.bigint(), c0 = process.cpuUsage();
  step();
  times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  const c = process.cpuUsage(c0);
  cpu.push((c.user + c.system) / 1e3);
}
cpu.sort((a, b) => a - b);
times.sort((a, b) => a - b);
const ms = times[3]!;
console.log(nativeInfo());
console.log(`${name} Q4_0 batch ${B} ctx ${CTX}: ${ms.toFixed(2)} ms/step (min ${times[0]!.toFixed(2)}), ` +
  `${(bytes / 1e6).toFixed(0)} MB weights -> ${(bytes / ms / 1e6).toFixed(1)} GB/s, ${((1000 * B) / ms).toFixed(1)} tok/s; ` +
  `process cpu ${cpu[3]!.toFixed(2)} ms/step (on a shared machine: the kernels' own cost with 1 thread)`);

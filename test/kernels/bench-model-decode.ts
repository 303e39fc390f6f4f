// Decode-step profile of a real GGUF through LlamaModel.forward (not a test; run by hand):
//   node --import tsx test/kernels/bench-model-decode.ts <model.gguf> [steps=128] [--ops] [--batch B]
// env TLLM_THREADS, TLLM_GRAPH=0 (op-by-op path). Prints tok/s over `steps` steps of B sequences
// decoding one token each (f16 KV, contexts from 0) and, with --ops, the time per op kind (graph:
// its own timers, wall and calling-thread CPU; op path: each backend call timed from JS).
import { NativeBackend, nativeInfo, setNativeThreads } from "../../src/backends/native/index.js";
import type { Backend } from "../../src/backends/backend.js";
import { SimpleKvCache } from "../../src/engine/simple-kv-cache.js";
import { loadModel } from "../../src/models/loader.js";
import { loadAddon } from "../../src/backends/native/addon.js";

const path = process.argv[2];
if (!path) throw new Error("usage: bench-model-decode.ts <model.gguf> [steps] [--ops]");
const steps = Number(process.argv[3] ?? 128), ops = process.argv.includes("--ops");
const bi = process.argv.indexOf("--batch"), B = bi > 0 ? Number(process.argv[bi + 1]) : 1;
if (process.env.TLLM_THREADS) setNativeThreads(Number(process.env.TLLM_THREADS));
const nb = new NativeBackend();
const times = new Map<string, { ms: number; n: number; cpu?: number }>();
// TLLM_GRAPH=0: the op-by-op path, each backend call timed from JS; else the graph's own per-op timers
const graphOn = process.env.TLLM_GRAPH !== "0";
const backend: Backend = ops && !graphOn ? new Proxy(nb, {
  get(t, k, r) {
    const v = Reflect.get(t, k, r);
    if (typeof v !== "function") return v;
    return (...a: unknown[]) => {
      const t0 = performance.now();
      const out = (v as (...x: unknown[]) => unknown).apply(t, a);
      const e = times.get(String(k)) ?? { ms: 0, n: 0 };
      e.ms += performance.now() - t0; e.n++;
      times.set(String(k), e);
      return out;
    };
  },
}) : nb;
const m = loadModel(path, backend);
const c = m.config, tpb = 32;
const kv = new SimpleKvCache({ numLayers: c.numLayers, numKvHeads: c.numKvHeads, headDim: c.headDim,
  numBlocks: B * Math.ceil(steps / tpb) + 1, tokensPerBlock: tpb, dtype: "f16" });
for (let b = 0; b < B; b++) kv.allocSeq(b, steps);
const bts = Array.from({ length: B }, (_, b) => kv.blockTable(b));
const slots = new Int32Array(B);
const step = (p: number) => {
  for (let b = 0; b < B; b++) slots[b] = kv.slotsFor(b, p, 1)[0]!;
  return m.model.forward({ tokens: Int32Array.from({ length: B }, (_, b) => (p * 7919 + b * 31) % c.vocabSize),
    positions: new Int32Array(B).fill(p), slots, seqs: bts.map((bt, b) => ({ qStart: b, qLen: 1, kvLen: p + 1, blockTable: bt })),
    logitRows: Int32Array.from({ length: B }, (_, b) => b) }, kv.layers);
};
step(0);
times.clear();
if (ops && graphOn) loadAddon()!.graphProfile(true);
const t0 = performance.now(), c0 = process.cpuUsage();
for (let p = 1; p < steps; p++) step(p);
const ms = (performance.now() - t0) / (steps - 1), cu = process.cpuUsage(c0);
console.log(nativeInfo(), `fused: ${m.model.fused}`);
console.log(`${path} batch ${B}: ${ms.toFixed(3)} ms/step, ${(1000 * B / ms).toFixed(1)} tok/s; process cpu ${((cu.user + cu.system) / 1000 / (steps - 1)).toFixed(3)} ms/step`);
if (ops && graphOn) {
  for (const [k, [tms, n, cpu]] of Object.entries(loadAddon()!.graphProfile(false))) if (n > 0) times.set(k, { ms: tms, n, cpu });
}
if (ops) {
  let sum = 0;
  for (const [k, e] of [...times].sort((a, b) => b[1].ms - a[1].ms)) {
    sum += e.ms;
    const cpu = e.cpu === undefined ? "" : `  caller cpu ${(e.cpu / (steps - 1)).toFixed(3)} ms/step`;
    console.log(`  ${k.padEnd(14)} wall ${(e.ms / (steps - 1)).toFixed(3)} ms/step${cpu}  ${(e.n / (steps - 1)).toFixed(0)} calls/step  ${(1000 * e.ms / e.n).toFixed(1)} µs/call`);
  }
  console.log(`  ops total ${(sum / (steps - 1)).toFixed(3)} ms/step; outside the timed ops ${(ms - sum / (steps - 1)).toFixed(3)} ms/step`);
}
m.checkpoint.close();

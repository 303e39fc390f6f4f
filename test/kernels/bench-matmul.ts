// Matmul throughput on TinyLlama-sized matrices (not a test; run by hand):
//   node --import tsx test/kernels/bench-matmul.ts [Q4_0|Q8_0|F16|Q4_K|Q6_K ...]
// env: TLLM_THREADS, BENCH_M (list of m), BENCH_ROWS / BENCH_COLS (default 5632 x 2048; SmolLM2's
// largest: 1536 x 576).
// GEMV (m = 1): GB/s of weight bytes streamed, rotating over enough distinct matrices to exceed
// the last-level cache (as a decode step does). GEMM (m = 64, 512): GFLOP/s.
import { GgmlType, rowBytes } from "../../src/backends/dtypes.js";
import { NativeBackend, nativeInfo, setNativeThreads } from "../../src/backends/native/index.js";
import type { WeightTensor } from "../../src/backends/backend.js";
import { quantizeRow } from "../../src/backends/reference/quant.js";
import { randArray, rng } from "./native-helpers.js";

const ROWS = Number(process.env.BENCH_ROWS ?? 5632), COLS = Number(process.env.BENCH_COLS ?? 2048);
const r = rng(1);

function makeWeight(t: GgmlType): WeightTensor {
  // one quantized row pattern tiled over the matrix: fast to build, same bytes per row
  const rb = rowBytes(t, COLS);
  const data = new Uint8Array(ROWS * rb);
  const rowsq = [0, 1, 2, 3].map(() => quantizeRow(t, randArray(r, COLS), COLS));
  for (let i = 0; i < ROWS; i++) data.set(rowsq[i % 4]!, i * rb);
  return { name: "w", dtype: t, rows: ROWS, cols: COLS, data };
}

function median(a: number[]): number {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)]!;
}

function bench(t: GgmlType, nb: NativeBackend): void {
  const copies = Math.max(2, Math.ceil(160e6 / (ROWS * rowBytes(t, COLS))));
  const ws = Array.from({ length: copies }, () => makeWeight(t));
  const bytes = ROWS * rowBytes(t, COLS);
  for (const m of (process.env.BENCH_M ?? "1,4,64,512").split(",").map(Number)) {
    const x = randArray(r, m * COLS), out = new Float32Array(m * ROWS);
    const reps = m === 1 ? copies * 4 : m <= 4 ? copies : m === 64 ? 6 : 3;
    const times: number[] = [], cpu: number[] = [];
    for (let trial = 0; trial < 5; trial++) {
      const t0 = process.hrtime.bigint(), c0 = process.cpuUsage();
      for (let i = 0; i < reps; i++) nb.matmul(out, x, m, ws[i % copies]!);
      times.push(Number(process.hrtime.bigint() - t0) / 1e9 / reps);
      const c = process.cpuUsage(c0);
      cpu.push((c.user + c.system) / 1e6 / reps);
    }
    const s = median(times), sc = median(cpu);
    const gbs = bytes / s / 1e9, gflops = (2 * m * ROWS * COLS) / s / 1e9;
    // on a shared machine wall time includes waiting for a core; CPU time per call shows the kernel's own cost
    console.log(`${GgmlType[t]} ${ROWS}x${COLS} m=${m}: wall ${(s * 1e3).toFixed(3)} ms (${gbs.toFixed(1)} GB/s, ` +
      `${gflops.toFixed(1)} GFLOP/s); cpu ${(sc * 1e3).toFixed(3)} ms (${(bytes / sc / 1e9).toFixed(1)} GB/s per cpu-s, ` +
      `${((2 * m * ROWS * COLS) / sc / 1e9).toFixed(1)} GFLOP per cpu-s)`);
  }
}

const nb = new NativeBackend();
if (process.env.TLLM_THREADS) setNativeThreads(Number(process.env.TLLM_THREADS));
console.log(nativeInfo());
const names = process.argv.slice(2);
for (const n of names.length ? names : ["Q4_0", "Q8_0", "F16", "Q4_K", "Q6_K"]) bench(GgmlType[n as keyof typeof GgmlType], nb);

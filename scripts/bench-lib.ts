// Shared pieces of the peer benchmarks (scripts/bench-peer.ts, scripts/bench-batch.ts):
//  - random-weight GGUFs with the shapes of TinyLlama-1.1B and SmolLM2-135M (.cache/bench; the
//    weights do not change throughput; SmolLM2's 49152-token vocabulary is written with dummy tokens),
//  - this machine's limits, measured by a tiny C program compiled on the fly into ~/.cache/tllm:
//    read bandwidth (GB/s) and f32 FMA peak (GFLOP/s) at a given thread count,
//  - the native llama.cpp tools (scripts/build-llama-cpp.sh), node-llama-cpp, medians, tables.
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { homedir, loadavg } from "node:os";
import { join, resolve } from "node:path";
import { GgmlType, rowBytes } from "../src/backends/dtypes.js";
import { openGguf } from "../src/checkpoint/gguf.js";
import { writeGguf } from "../src/checkpoint/gguf-writer.js";
import { writeRandomGguf, type RandomModelSpec } from "../src/checkpoint/random-model.js";

export const ROOT = resolve(import.meta.dirname, "..");
export const BENCH_DIR = join(ROOT, ".cache/bench");
export const TLLM_CACHE = process.env["TLLM_CACHE_DIR"] ?? join(homedir(), ".cache/tllm");

export interface Shape { hidden: number; layers: number; heads: number; kvHeads: number; ffn: number; vocab: number; tied: boolean }
export const SHAPES: Record<string, Shape> = {
  tinyllama: { hidden: 2048, layers: 22, heads: 32, kvHeads: 4, ffn: 5632, vocab: 32000, tied: false },
  smollm2: { hidden: 576, layers: 30, heads: 9, kvHeads: 3, ffn: 1536, vocab: 49152, tied: true },
};
export const TYPES: Record<string, GgmlType> = { f16: GgmlType.F16, q8_0: GgmlType.Q8_0, q4_0: GgmlType.Q4_0, q4_k: GgmlType.Q4_K };

/** A list flag value ("a,b") checked against the allowed names. */
export function listFlag(value: string | undefined, fallback: string[], allowed?: readonly string[]): string[] {
  const xs = value === undefined ? fallback : value.split(",").map((s) => s.trim()).filter(Boolean);
  for (const x of xs) if (allowed && !allowed.includes(x)) throw new Error(`unknown value '${x}' (allowed: ${allowed.join(", ")})`);
  return xs;
}

/** A vocab-only GGUF of n SPM tokens: <unk> <s> </s>, the 256 byte tokens, then dummy pieces. */
function dummyVocab(n: number): string {
  const path = join(BENCH_DIR, `vocab-dummy-${n}.gguf`);
  if (existsSync(path)) return path;
  const tokens: string[] = ["<unk>", "<s>", "</s>"];
  const types: number[] = [2, 3, 3]; // unknown, control, control
  for (let b = 0; b < 256; b++, types.push(6)) tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
  for (let i = tokens.length; i < n; i++, types.push(1)) tokens.push(`\u2581t${i}`);
  const tmp = `${path}.tmp-${process.pid}`;
  writeGguf(tmp, {
    metadata: [
      ["general.architecture", "string", "llama"], ["tokenizer.ggml.model", "string", "llama"],
      ["tokenizer.ggml.tokens", { array: "string" }, tokens], ["tokenizer.ggml.scores", { array: "f32" }, tokens.map((_, i) => -i)],
      ["tokenizer.ggml.token_type", { array: "i32" }, types], ["tokenizer.ggml.bos_token_id", "u32", 1],
      ["tokenizer.ggml.eos_token_id", "u32", 2], ["tokenizer.ggml.unknown_token_id", "u32", 0],
    ],
    tensors: [],
  });
  renameSync(tmp, path);
  return path;
}

/** The random GGUF for a shape and weight type (written once; minutes for TinyLlama). */
export function ensureModel(shapeName: string, typeName: string): string {
  const s = SHAPES[shapeName], t = TYPES[typeName];
  if (!s || t === undefined) throw new Error(`unknown model ${shapeName}/${typeName}`);
  if (t === GgmlType.Q4_K && s.hidden % 256 !== 0) throw new Error(`${shapeName}: Q4_K needs rows of 256k columns (hidden ${s.hidden})`);
  mkdirSync(BENCH_DIR, { recursive: true });
  const path = join(BENCH_DIR, `${shapeName}-${typeName}.gguf`);
  if (existsSync(path)) return path;
  const vocab = s.vocab === 32000 ? join(ROOT, "test/fixtures/vocab/ggml-vocab-llama-spm.gguf") : dummyVocab(s.vocab);
  const spec: RandomModelSpec = {
    arch: "llama", vocab, hidden: s.hidden, layers: s.layers, heads: s.heads, kvHeads: s.kvHeads, headDim: s.hidden / s.heads,
    ffn: s.ffn, tieEmbeddings: s.tied, qkvBias: false, qkNorm: false, ropeTheta: 10000, rmsEps: 1e-5, maxPositions: 4096,
    seed: 1, weightTypes: t, name: `random-${shapeName}-${typeName}`,
  };
  const t0 = performance.now();
  process.stderr.write(`writing ${path} ...\n`);
  const tmp = `${path}.tmp-${process.pid}`;
  writeRandomGguf(spec, tmp);
  renameSync(tmp, path);
  process.stderr.write(`  done in ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
  return path;
}

export interface WeightStats {
  /** bytes of weights streamed per decoded token: every matrix once (the embedding: one row) */
  bytesPerToken: number;
  /** multiply-add weights per token (matrices, lm head included; the embedding lookup excluded) */
  matmulParams: number;
}

export function weightStats(gguf: string): WeightStats {
  const ck = openGguf(gguf);
  try {
    let bytes = 0, params = 0;
    const hasOutput = ck.tensors.has("output.weight");
    for (const [name, t] of ck.tensors) {
      const cols = t.shape[t.shape.length - 1]!, rows = t.shape.reduce((a, b) => a * b, 1) / cols;
      const b = rows * rowBytes(t.dtype, cols);
      if (name === "token_embd.weight" && hasOutput) {
        bytes += rowBytes(t.dtype, cols); // one row looked up
        continue;
      }
      bytes += b;
      if (t.shape.length === 2) params += rows * cols;
    }
    return { bytesPerToken: bytes, matmulParams: params };
  } finally {
    ck.close();
  }
}

const LIMITS_C = String.raw`
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static float *buf; static size_t n_per; static long iters; static volatile float sink[64];
static pthread_barrier_t bar;
static void *bw(void *a) { long id = (long)a; const float *p = buf + id * n_per; __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  pthread_barrier_wait(&bar);
  for (size_t i = 0; i < n_per; i += 32) { s0 = _mm256_add_ps(s0, _mm256_load_ps(p + i)); s1 = _mm256_add_ps(s1, _mm256_load_ps(p + i + 8));
    s2 = _mm256_add_ps(s2, _mm256_load_ps(p + i + 16)); s3 = _mm256_add_ps(s3, _mm256_load_ps(p + i + 24)); }
  float o[8]; _mm256_storeu_ps(o, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3))); sink[id] = o[0]; return 0; }
static void *fmaw(void *a) { long id = (long)a; __m256 x = _mm256_set1_ps(1.0f), y = _mm256_set1_ps(0.999999f);
  __m256 c0 = _mm256_set1_ps(0), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
  pthread_barrier_wait(&bar);
  for (long i = 0; i < iters; i++) { c0 = _mm256_fmadd_ps(x, y, c0); c1 = _mm256_fmadd_ps(x, y, c1); c2 = _mm256_fmadd_ps(x, y, c2);
    c3 = _mm256_fmadd_ps(x, y, c3); c4 = _mm256_fmadd_ps(x, y, c4); c5 = _mm256_fmadd_ps(x, y, c5); c6 = _mm256_fmadd_ps(x, y, c6);
    c7 = _mm256_fmadd_ps(x, y, c7); c8 = _mm256_fmadd_ps(x, y, c8); c9 = _mm256_fmadd_ps(x, y, c9); c10 = _mm256_fmadd_ps(x, y, c10);
    c11 = _mm256_fmadd_ps(x, y, c11); }
  __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)), _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
  s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(c8, c9), _mm256_add_ps(c10, c11)));
  float o[8]; _mm256_storeu_ps(o, s); sink[id] = o[0]; return 0; }
static double run(int nt, void *(*f)(void *)) { pthread_t th[64]; pthread_barrier_init(&bar, 0, nt + 1);
  for (long i = 0; i < nt; i++) pthread_create(&th[i], 0, f, (void *)i);
  pthread_barrier_wait(&bar); double t0 = now(); for (int i = 0; i < nt; i++) pthread_join(th[i], 0); double t = now() - t0;
  pthread_barrier_destroy(&bar); return t; }
int main(int argc, char **argv) { int nt = argc > 2 ? atoi(argv[2]) : 1; int reps = 5; double best = 1e30;
  if (!strcmp(argv[1], "bw")) { size_t total = (size_t)1 << 28; /* floats: 1 GiB */ n_per = total / nt; buf = aligned_alloc(64, total * 4);
    for (size_t i = 0; i < total; i++) buf[i] = (float)(i & 7);
    for (int r = 0; r < reps; r++) { double t = run(nt, bw); if (t < best) best = t; }
    printf("%.3f\n", total * 4.0 / best / 1e9); }
  else { iters = 50000000; for (int r = 0; r < reps; r++) { double t = run(nt, fmaw); if (t < best) best = t; }
    printf("%.3f\n", nt * (double)iters * 12 * 8 * 2 / best / 1e9); }
  return 0; }
`;

/** Compiles the limits probe once (gcc -O2 -march=native) and returns its path. */
function limitsBinary(): string {
  const dir = join(TLLM_CACHE, `limits-${createHash("sha256").update(LIMITS_C).digest("hex").slice(0, 12)}`);
  const bin = join(dir, "limits");
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "limits.c"), LIMITS_C);
  execFileSync("gcc", ["-O2", "-march=native", "-mavx2", "-mfma", "-pthread", "-o", bin, join(dir, "limits.c")], { stdio: "inherit" });
  return bin;
}

export interface Limits { bandwidthGBs: number; fmaGflops: number }

/** Read bandwidth (1 GiB AVX2 sum, best of 5) and f32 FMA peak (12 chains of 8-wide FMA, best of 5). */
export function measureLimits(threads: number): Limits {
  const bin = limitsBinary();
  const run = (what: string): number => Number(execFileSync(bin, [what, String(threads)], { encoding: "utf8" }).trim());
  return { bandwidthGBs: run("bw"), fmaGflops: run("fma") };
}

/** Directory of llama-bench / llama-batched-bench (builds them when missing; null when the build fails). */
export function llamaCppBinDir(): string | null {
  const r = spawnSync("bash", [join(ROOT, "scripts/build-llama-cpp.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  if (r.status !== 0) return null;
  const lines = r.stdout.trim().split("\n");
  return lines[lines.length - 1] ?? null;
}

export function median(xs: readonly number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Random token ids in [3, vocab) (no BOS/EOS/unk), seeded. */
export function randomTokens(n: number, vocab: number, seed = 1): number[] {
  let x = seed >>> 0 || 1;
  return Array.from({ length: n }, () => {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return 3 + (x % (vocab - 3));
  });
}

export const fmt = (x: number, d = 1): string => (Number.isFinite(x) ? x.toFixed(d) : "—");
export const pct = (x: number): string => (Number.isFinite(x) ? `${(x * 100).toFixed(0)}%` : "—");

export function markdownTable(head: string[], rows: string[][]): string {
  return [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");
}

export function machineLine(): string {
  const l = loadavg().map((x) => x.toFixed(2)).join(", ");
  return `${new Date().toISOString()}; load average (1, 5, 15 min): ${l}`;
}

// Independent oracle: llama.cpp's own numpy (de)quantizers (gguf-py/gguf/quants.py), read at test
// time from the llama.cpp source bundle that node-llama-cpp ships, run through python3 + numpy.
// Dequantization of random blocks must match bit for bit (f32 bit patterns); so must our
// quantizers for the types gguf-py can quantize (its quantizers reproduce ggml's *_ref ones).
// A second oracle compiles ggml's own K quantizers (quantize_row_q{4,5,6}_K_ref and the helpers they
// call, cut verbatim from ggml-quants.c in the same bundle) with the system C compiler; ours must
// produce the same bytes.
// Needs git, python3 + numpy and cc: if one is missing, the tests fail with a message saying so.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { GgmlType, TYPE_TRAITS, typeName } from "../../src/backends/dtypes.js";
import { dequantize, quantizeRow } from "../../src/backends/reference/quant.js";
import { f32ToF16 } from "../../src/backends/reference/f16.js";

const BUNDLE = resolve("node_modules/node-llama-cpp/llama/gitRelease.bundle");
const GGUF_FILES = ["constants.py", "lazy.py", "quants.py"];

const ORACLE_PY = `
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from gguf.quants import dequantize, quantize
from gguf.constants import GGMLQuantizationType as T
work, mode, names = sys.argv[2], sys.argv[3], sys.argv[4].split(",")
for name in names:
    t = T[name]
    if mode == "dequant":
        raw = np.fromfile(f"{work}/{name}.in", dtype=np.uint8)
        out = dequantize(raw, t).astype(np.float32)
    else:
        x = np.fromfile(f"{work}/{name}.in", dtype=np.float32)
        out = quantize(x, t)
    np.ascontiguousarray(out).tofile(f"{work}/{name}.out")
`;
import { rng } from "./test-rng.js";

let work = "";
let gitDir = "";

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  assert.ok(!r.error, `could not run ${cmd}: ${r.error?.message}`);
  assert.equal(r.status, 0, `${cmd} ${args.join(" ")} failed:\n${r.stderr}`);
  return r.stdout;
}

before(() => {
  assert.ok(existsSync(BUNDLE), `llama.cpp source bundle not found at ${BUNDLE} (npm install node-llama-cpp)`);
  const py = spawnSync("python3", ["-c", "import numpy"], { encoding: "utf8" });
  assert.ok(!py.error && py.status === 0, `this test needs python3 with numpy: ${py.error?.message ?? py.stderr}`);
  work = mkdtempSync(join(tmpdir(), "tllm-quant-oracle-"));
  const git = (gitDir = join(work, "src.git"));
  sh("git", ["init", "-q", "--bare", git]);
  sh("git", ["-C", git, "fetch", "-q", BUNDLE, "HEAD:refs/heads/src"]);
  mkdirSync(join(work, "py", "gguf"), { recursive: true });
  writeFileSync(join(work, "py", "gguf", "__init__.py"), "");
  for (const f of GGUF_FILES) {
    writeFileSync(join(work, "py", "gguf", f), sh("git", ["-C", git, "show", `src:gguf-py/gguf/${f}`]));
  }
  writeFileSync(join(work, "oracle.py"), ORACLE_PY);
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Runs the oracle on inputs[name] and returns its output bytes per type name. */
function oracle(mode: "dequant" | "quant", inputs: Map<string, Uint8Array>): Map<string, Uint8Array> {
  for (const [name, bytes] of inputs) writeFileSync(join(work, `${name}.in`), bytes);
  sh("python3", [join(work, "oracle.py"), join(work, "py"), work, mode, [...inputs.keys()].join(",")]);
  const out = new Map<string, Uint8Array>();
  for (const name of inputs.keys()) out.set(name, new Uint8Array(readFileSync(join(work, `${name}.out`))));
  return out;
}

/** Deterministic PRNG (mulberry32). */

/** Byte offsets of the f16 scale fields inside one block, per type. */
const F16_FIELDS = new Map<GgmlType, number[]>([
  [GgmlType.Q4_0, [0]], [GgmlType.Q4_1, [0, 2]], [GgmlType.Q5_0, [0]], [GgmlType.Q5_1, [0, 2]],
  [GgmlType.Q8_0, [0]], [GgmlType.Q4_K, [0, 2]], [GgmlType.Q5_K, [0, 2]], [GgmlType.Q6_K, [208]],
]);

/** Random blocks: random bytes, with every f16 scale field a random finite f16 (normals and subnormals). */
function randomBlocks(type: GgmlType, nBlocks: number, next: () => number): Uint8Array {
  const { typeSize } = TYPE_TRAITS.get(type)!;
  const b = new Uint8Array(nBlocks * typeSize);
  for (let i = 0; i < b.length; i++) b[i] = Math.floor(next() * 256);
  for (let k = 0; k < nBlocks; k++) {
    for (const off of F16_FIELDS.get(type)!) {
      // exponent 0..30 (never inf/nan); one block in 8 gets a subnormal scale
      const exp = k % 8 === 7 ? 0 : 1 + Math.floor(next() * 30);
      const h = (next() < 0.5 ? 0x8000 : 0) | (exp << 10) | Math.floor(next() * 1024);
      b[k * typeSize + off] = h & 0xff;
      b[k * typeSize + off + 1] = h >>> 8;
    }
  }
  return b;
}

function assertSameBits(name: string, ours: Float32Array, theirs: Uint8Array): void {
  const a = new Uint32Array(ours.buffer, ours.byteOffset, ours.length);
  const b = new Uint32Array(theirs.buffer, theirs.byteOffset, theirs.byteLength / 4);
  assert.equal(b.length, a.length, `${name}: oracle returned ${b.length} values`);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) assert.fail(`${name}: element ${i}: ours ${ours[i]} (0x${a[i]!.toString(16)}) vs gguf-py 0x${b[i]!.toString(16)}`);
  }
}

const BLOCK_TYPES = [GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q8_0,
  GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K];

test("dequantize matches gguf-py bit for bit on random blocks", () => {
  const next = rng(1234);
  const inputs = new Map<string, Uint8Array>();
  const counts = new Map<string, number>();
  for (const t of BLOCK_TYPES) {
    const { blockSize } = TYPE_TRAITS.get(t)!;
    const nBlocks = blockSize === 256 ? 64 : 512;
    inputs.set(typeName(t), randomBlocks(t, nBlocks, next));
    counts.set(typeName(t), nBlocks * blockSize);
  }
  // F16 and BF16: random bit patterns, minus NaNs (payload handling is not compared)
  const f16 = new Uint16Array(8192);
  for (let i = 0; i < f16.length; i++) {
    do f16[i] = Math.floor(next() * 65536); while ((f16[i]! & 0x7c00) === 0x7c00 && (f16[i]! & 0x3ff) !== 0);
  }
  const bf16 = new Uint16Array(8192);
  for (let i = 0; i < bf16.length; i++) {
    do bf16[i] = Math.floor(next() * 65536); while ((bf16[i]! & 0x7f80) === 0x7f80 && (bf16[i]! & 0x7f) !== 0);
  }
  inputs.set("F16", new Uint8Array(f16.buffer));
  inputs.set("BF16", new Uint8Array(bf16.buffer));
  counts.set("F16", f16.length);
  counts.set("BF16", bf16.length);
  const theirs = oracle("dequant", inputs);
  for (const [name, bytes] of inputs) {
    const type = GgmlType[name as keyof typeof GgmlType];
    assertSameBits(name, dequantize(type, bytes, counts.get(name)!), theirs.get(name)!);
  }
});

/** Random f32 data of several shapes: gaussian-ish, with constant, zero, all-positive blocks and ties. */
function randomData(n: number, next: () => number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const blk = Math.floor(i / 32) % 6;
    const g = (next() + next() + next() - 1.5) * 2;
    x[i] = blk === 0 ? 0 : blk === 1 ? 0.75 : blk === 2 ? Math.abs(g) * 3 : blk === 3 ? Math.round(g * 8) / 4 : g * 10 ** (blk - 4);
  }
  return x;
}

test("quantizeRow matches gguf-py's quantizers (= ggml *_ref) byte for byte", () => {
  const next = rng(99);
  const x = randomData(32 * 600, next);
  const types = [GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q8_0, GgmlType.BF16, GgmlType.F16];
  const inputs = new Map<string, Uint8Array>();
  for (const t of types) inputs.set(typeName(t), new Uint8Array(x.buffer));
  const theirs = oracle("quant", inputs);
  for (const t of types) {
    const ours = quantizeRow(t, x, x.length);
    const ref = theirs.get(typeName(t))!;
    assert.equal(ref.length, ours.length, `${typeName(t)}: byte length`);
    const bad = ours.findIndex((b, i) => b !== ref[i]);
    assert.equal(bad, -1, `${typeName(t)}: first differing byte ${bad}: ours ${ours[bad]} vs gguf-py ${ref[bad]}`);
  }
});

test("f32ToF16 matches numpy astype(float16) on random f32 bit patterns", () => {
  const next = rng(7);
  const u = new Uint32Array(50000);
  for (let i = 0; i < u.length; i++) {
    // half the values anywhere, half with exponents around the f16 range (subnormal..overflow)
    const bits = Math.floor(next() * 4294967296);
    u[i] = i % 2 ? bits : ((bits & 0x807fffff) | ((90 + Math.floor(next() * 55)) << 23)) >>> 0;
    if ((u[i]! & 0x7f800000) === 0x7f800000) u[i] = u[i]! & 0xff7fffff; // no nan/inf here
  }
  const theirs = oracle("quant", new Map([["F16", new Uint8Array(u.buffer)]])).get("F16")!;
  const f = new Float32Array(u.buffer);
  const ref = new Uint16Array(theirs.buffer, theirs.byteOffset, theirs.byteLength / 2);
  for (let i = 0; i < f.length; i++) {
    if (f32ToF16(f[i]!) !== ref[i]) assert.fail(`f32 0x${u[i]!.toString(16)}: ours 0x${f32ToF16(f[i]!).toString(16)} vs numpy 0x${ref[i]!.toString(16)}`);
  }
});

/** The C text of the top-level definition starting with `head` (up to its closing "\n}\n"). */
function cut(src: string, head: string): string {
  const at = src.indexOf(head);
  assert.ok(at >= 0, `ggml source has no '${head}'`);
  return src.slice(at, src.indexOf("\n}\n", at) + 3);
}

const C_PRELUDE = `#include <stdint.h>
#include <string.h>
#include <math.h>
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#define GGML_RESTRICT
#define QK_K 256
#define K_SCALE_SIZE 12
#define GROUP_MAX_EPS 1e-15f
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
typedef uint16_t ggml_half;
typedef uint16_t ggml_fp16_t;
static inline float fp32_from_bits(uint32_t w) { float f; memcpy(&f, &w, 4); return f; }
static inline uint32_t fp32_to_bits(float f) { uint32_t w; memcpy(&w, &f, 4); return w; }
static float half_to_float(uint16_t h) { /* exact */
  int e = (h >> 10) & 31, m = h & 1023; float v = e == 0 ? ldexpf((float)m, -24) : ldexpf((float)(1024 + m), e - 25);
  return (h & 0x8000) ? -v : v;
}
#define GGML_FP32_TO_FP16(x) ggml_compute_fp32_to_fp16(x)
#define GGML_FP16_TO_FP32(x) half_to_float(x)
typedef struct { ggml_half d; ggml_half dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qs[QK_K/2]; } block_q4_K;
typedef struct { ggml_half d; ggml_half dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qh[QK_K/8]; uint8_t qs[QK_K/2]; } block_q5_K;
typedef struct { uint8_t ql[QK_K/2]; uint8_t qh[QK_K/4]; int8_t scales[QK_K/16]; ggml_half d; } block_q6_K;
`;

const C_MAIN = `
int main(int argc, char ** argv) { /* kq <4|5|6> <in.f32> <out> */
  FILE * f = fopen(argv[2], "rb"); fseek(f, 0, SEEK_END); long bytes = ftell(f); fseek(f, 0, SEEK_SET);
  float * x = malloc(bytes); if (fread(x, 1, bytes, f) != (size_t)bytes) return 2; fclose(f);
  long n = bytes / 4; int t = atoi(argv[1]);
  size_t bs = t == 4 ? sizeof(block_q4_K) : t == 5 ? sizeof(block_q5_K) : sizeof(block_q6_K);
  void * y = calloc(n / QK_K, bs);
  if (t == 4) quantize_row_q4_K_ref(x, y, n); else if (t == 5) quantize_row_q5_K_ref(x, y, n); else quantize_row_q6_K_ref(x, y, n);
  FILE * o = fopen(argv[3], "wb"); fwrite(y, bs, n / QK_K, o); fclose(o); return 0;
}
`;

/** Builds the K-quant reference program from the bundle's ggml sources; returns its path. */
function buildKRef(): string {
  const cc = spawnSync("cc", ["--version"], { encoding: "utf8" });
  assert.ok(!cc.error && cc.status === 0, `this test needs a C compiler (cc): ${cc.error?.message ?? cc.stderr}`);
  const quants = sh("git", ["-C", gitDir, "show", "src:ggml/src/ggml-quants.c"]);
  const impl = sh("git", ["-C", gitDir, "show", "src:ggml/src/ggml-impl.h"]);
  const parts = [
    C_PRELUDE,
    cut(impl, "static inline ggml_fp16_t ggml_compute_fp32_to_fp16("),
    ...["static inline int nearest_int(", "static float make_qx_quants(", "static float make_qkx2_quants(",
      "static inline void get_scale_min_k4(", "void quantize_row_q4_K_ref(", "void quantize_row_q5_K_ref(",
      "void quantize_row_q6_K_ref("].map((h) => cut(quants, h)),
    C_MAIN,
  ];
  const c = join(work, "kref.c");
  const exe = join(work, "kref");
  writeFileSync(c, parts.join("\n"));
  // no fused multiply-add: ggml's reference rounds every product (x86-64 builds without -mfma do)
  sh("cc", ["-O2", "-ffp-contract=off", "-o", exe, c, "-lm"]);
  return exe;
}

test("Q4_K / Q5_K / Q6_K quantizers produce ggml's quantize_row_*_ref bytes", () => {
  const exe = buildKRef();
  const next = rng(2024);
  const x = randomData(256 * 300, next);
  for (let i = 0; i < x.length; i += 256 * 7) x.fill(0, i, i + 256); // some all-zero super-blocks
  writeFileSync(join(work, "k.in"), new Uint8Array(x.buffer));
  for (const [type, code] of [[GgmlType.Q4_K, "4"], [GgmlType.Q5_K, "5"], [GgmlType.Q6_K, "6"]] as const) {
    sh(exe, [code, join(work, "k.in"), join(work, "k.out")]);
    const ref = new Uint8Array(readFileSync(join(work, "k.out")));
    const ours = quantizeRow(type, x, x.length);
    assert.equal(ref.length, ours.length, `${typeName(type)}: byte length`);
    const bad = ours.findIndex((b, i) => b !== ref[i]);
    const blockBytes = TYPE_TRAITS.get(type)!.typeSize;
    assert.equal(bad, -1, `${typeName(type)}: block ${Math.floor(bad / blockBytes)} byte ${bad % blockBytes}: ours ${ours[bad]} vs ggml ${ref[bad]}`);
  }
});

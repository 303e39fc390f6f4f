// matmulMulti (native/kern/mm_exact.inc: the graph's q/k/v and gate/up in one call) must give the
// bits of separate matmul calls: same kernel per output, activations quantized once, the tasks of
// all weights in one pool job. Shapes make several tasks per weight at 2 threads (>= 64K weights
// per task), with rows % 8 != 0 (Q4_0/Q4_K off their repack paths), m = 1 (decode), m = 3..5 (small
// batches: the Q4_0 GEMV up to 6 rows) and m = 9 (GEMM: falls back to separate calls).
import { test } from "node:test";
import assert from "node:assert/strict";
import { GgmlType, rowBytes, typeName } from "../../src/backends/dtypes.js";
import { loadAddon } from "../../src/backends/native/addon.js";
import { nativeInfo, setNativeThreads } from "../../src/backends/native/index.js";
import { SEED, SKIP_REASON, paths, randArray, randWeight, rng, withPath } from "./native-helpers.js";

const TYPES = [GgmlType.F32, GgmlType.F16, GgmlType.Q4_0, GgmlType.Q8_0, GgmlType.Q4_K, GgmlType.Q6_K, GgmlType.Q5_K];
// [rows of each weight] (q/k/v-like, gate/up-like, odd rows)
const SHAPES = [[512, 128, 128], [384, 384], [200, 40, 24, 8]];

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

test(`matmulMulti = separate matmuls, bit for bit (seed ${SEED})`, { skip: SKIP_REASON }, () => {
  const addon = loadAddon()!;
  assert.ok(addon.matmulMulti, "the addon exports matmulMulti");
  const r = rng(SEED), threads = nativeInfo().threads;
  setNativeThreads(Math.max(2, threads));
  try {
    for (const path of paths()) {
      for (const t of TYPES) {
        const cols = t === GgmlType.Q4_K || t === GgmlType.Q6_K || t === GgmlType.Q5_K ? 512 : 544;
        for (const rows of SHAPES) {
          const ws = rows.map((n) => randWeight(r, t, n, cols, 0));
          const w = concat(ws.map((x) => x.data));
          assert.equal(w.length, rows.reduce((s, n) => s + n * rowBytes(t, cols), 0));
          for (const m of [1, 3, 5, 9]) {
            const x = randArray(r, m * cols);
            const total = rows.reduce((s, n) => s + m * n, 0);
            const got = new Float32Array(total), want = new Float32Array(total);
            withPath(path, () => {
              addon.matmulMulti!(got, x, m, w, t, Int32Array.from(rows), cols);
              let o = 0;
              for (const wt of ws) {
                addon.matmul(want.subarray(o, o + m * wt.rows), x, m, wt.data, t, wt.rows, cols);
                o += m * wt.rows;
              }
            });
            const what = `${path} ${typeName(t)} rows ${rows.join("/")} m=${m}`;
            assert.ok(Buffer.from(got.buffer).equals(Buffer.from(want.buffer)), `${what}: not bit-identical`);
          }
        }
      }
    }
  } finally {
    setNativeThreads(threads);
  }
});

test("matmulMulti checks its arguments", { skip: SKIP_REASON }, () => {
  const addon = loadAddon()!;
  const x = new Float32Array(64), out = new Float32Array(64);
  const w = new Uint8Array(2 * rowBytes(GgmlType.Q8_0, 64));
  assert.throws(() => addon.matmulMulti!(out, x, 1, w, GgmlType.Q8_0, Int32Array.of(), 64), RangeError);
  assert.throws(() => addon.matmulMulti!(out, x, 1, w, GgmlType.Q8_0, Int32Array.of(1, 1, 1, 1, 1), 64), RangeError);
  assert.throws(() => addon.matmulMulti!(out, x, 1, w, GgmlType.Q8_0, Int32Array.of(2, 1), 64), /w/);
  assert.throws(() => addon.matmulMulti!(out.subarray(0, 2), x, 1, w, GgmlType.Q8_0, Int32Array.of(1, 2), 64), RangeError);
  addon.matmulMulti!(out, x, 1, w, GgmlType.Q8_0, Int32Array.of(1, 1), 64);  // fits
});

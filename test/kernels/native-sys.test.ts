// The addon's system side: load-time dispatch (TLLM_FORCE_SCALAR in a child process), thread pool
// control, and mmap (contents, views at odd offsets, unmapping through MappedFile.close()).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GgmlType } from "../../src/backends/dtypes.js";
import { NativeBackend, nativeInfo, setNativeThreads } from "../../src/backends/native/index.js";
import { ADDON_PATH, loadAddon } from "../../src/backends/native/addon.js";
import { Worker } from "node:worker_threads";
import { openMappedFile } from "../../src/checkpoint/mapped-file.js";
import { ReferenceBackend } from "../../src/backends/reference/index.js";
import { ValidationError } from "../../src/errors.js";
import { SEED, SKIP_REASON, randArray, randWeight, rng } from "./native-helpers.js";

const ROOT = new URL("../../", import.meta.url);

test("TLLM_FORCE_SCALAR=1 selects the scalar path at load; kernels there still match", { skip: SKIP_REASON }, () => {
  const script = `
    import { NativeBackend, nativeInfo } from "./src/backends/native/index.ts";
    const nb = new NativeBackend();
    const out = new Float32Array(2);
    nb.rmsNorm(out, Float32Array.from([3, 4]), Float32Array.from([1, 2]), 1, 2, 0);
    console.log(JSON.stringify({ info: nativeInfo(), out: Array.from(out) }));`;
  const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script],
    { cwd: ROOT, env: { ...process.env, TLLM_FORCE_SCALAR: "1" }, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const res = JSON.parse(r.stdout.trim().split("\n").pop()!) as { info: { path: string }; out: number[] };
  assert.equal(res.info.path, "scalar");
  // rms([3, 4]) = sqrt(12.5); out = x / rms * w
  const rms = Math.sqrt(12.5);
  assert.ok(Math.abs(res.out[0]! - 3 / rms) < 1e-6 && Math.abs(res.out[1]! - 8 / rms) < 1e-6, String(res.out));
});

test("default path is avx2 where the CPU has it; threads default to physical cores and can be set", { skip: SKIP_REASON }, () => {
  const info = nativeInfo();
  if (process.env.TLLM_FORCE_SCALAR !== "1") assert.equal(info.path, info.avx2Supported ? "avx2" : "scalar");
  assert.equal(info.threads, info.physicalCores);
  const nb = new NativeBackend(), ref = new ReferenceBackend();
  // m = 7 on Q8_0 takes the GEMV path, m = 17 on F16 the tiled GEMM path
  const cases = [[GgmlType.Q8_0, 7], [GgmlType.F16, 17]] as const;
  const inputs = cases.map(([t, m]) => ({ m, w: randWeight(rng(SEED + m), t, 300, 512), x: randArray(rng(SEED + 1), m * 512) }));
  const base = inputs.map(({ m, w, x }) => { const o = new Float32Array(m * 300); nb.matmul(o, x, m, w); return o; });
  try {
    for (const n of [1, 3]) {
      setNativeThreads(n);
      assert.equal(nativeInfo().threads, n);
      inputs.forEach(({ m, w, x }, i) => {
        const got = new Float32Array(m * 300);
        nb.matmul(got, x, m, w);
        // rows are split across threads, each output computed whole by one thread: identical bits
        assert.deepEqual(got, base[i], `threads=${n} case ${i}`);
      });
    }
  } finally {
    setNativeThreads(info.threads);
  }
  const { m, w, x } = inputs[1]!;
  const e = new Float32Array(m * 300);
  ref.matmul(e, x, m, w);
  // F16 GEMM: f32 accumulation of 512 products of magnitude <= 1, far below 1e-4 absolute
  for (let i = 0; i < e.length; i++) assert.ok(Math.abs(e[i]! - base[1]![i]!) < 1e-4, `out[${i}] ${base[1]![i]} vs ${e[i]}`);
  assert.throws(() => setNativeThreads(0), ValidationError);
});

test("mmap maps the file read-only; MappedFile uses it and close() unmaps", { skip: SKIP_REASON }, () => {
  const dir = mkdtempSync(join(tmpdir(), "tllm-mmap-"));
  try {
    const path = join(dir, "f.bin");
    const bytes = new Uint8Array(10000).map((_, i) => (i * 7 + 3) & 255);
    writeFileSync(path, bytes);
    const a = loadAddon()!;
    const ab = a.mmap(path);
    assert.equal(ab.byteLength, bytes.length);
    assert.deepEqual(new Uint8Array(ab), bytes);
    a.munmap(ab);
    assert.equal(ab.byteLength, 0, "detached after munmap");
    assert.throws(() => a.mmap(join(dir, "missing.bin")), /cannot open/);

    const f = openMappedFile(path);  // the native backend module installed mmap on import
    const view = f.bytes(4097, 33);
    assert.equal(view.byteOffset, 4097);
    assert.equal(view.buffer.byteLength, bytes.length, "a view of the whole mapping, not a copy");
    assert.deepEqual(view, bytes.subarray(4097, 4130));
    f.close();
    assert.equal(view.length, 0, "views are detached once the file is closed");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the addon loads in a worker thread alongside the main thread (the executor runs in one)", { skip: SKIP_REASON }, async () => {
  const code = `
    const { parentPort, workerData } = require("node:worker_threads");
    const a = require(workerData);
    const out = new Float32Array(2);
    a.rmsNorm(out, Float32Array.from([3, 4]), Float32Array.from([1, 1]), 1, 2, 0);
    parentPort.postMessage(Array.from(out));`;
  const w = new Worker(code, { eval: true, workerData: ADDON_PATH });
  const got = await new Promise<number[]>((resolve, reject) => { w.once("message", resolve); w.once("error", reject); });
  await w.terminate();
  const rms = Math.sqrt(12.5);
  assert.ok(Math.abs(got[0]! - 3 / rms) < 1e-6 && Math.abs(got[1]! - 4 / rms) < 1e-6, String(got));
  assert.equal(nativeInfo().threads >= 1, true);  // main thread's addon instance still usable
  const out = new Float32Array(1);
  new NativeBackend().add(out, Float32Array.from([1]), Float32Array.from([2]), 1);
  assert.equal(out[0], 3);
});

test("pool: thousands of back-to-back parallel ops, with JS pauses between some (workers asleep, waking, or late), give the 1-thread bits", { skip: SKIP_REASON }, async () => {
  // The caller closes each job once every task is handed out and waits only for workers that
  // joined it: a late worker must neither be waited for nor run a task of the next job.
  const nb = new NativeBackend();
  const r = rng(SEED);
  const w = randWeight(r, GgmlType.Q8_0, 512, 256);
  const x = randArray(r, 256 * 3);
  const want = new Float32Array(512 * 3), got = new Float32Array(512 * 3);
  const threads = nativeInfo().threads;
  setNativeThreads(1);
  nb.matmul(want, x, 3, w);
  setNativeThreads(Math.max(2, threads));
  try {
    for (let i = 0; i < 3000; i++) {
      got.fill(NaN);
      nb.matmul(got, x, 3, w);
      assert.deepEqual(got, want, `seed=${SEED} op ${i}`);
      if (i % 500 === 0) await new Promise((res) => setTimeout(res, 2));  // workers fall asleep
    }
  } finally {
    setNativeThreads(threads);
  }
});

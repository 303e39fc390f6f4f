// The caller's thread stays responsive while the executor worker generates, and the worker entry
// works both from TypeScript sources (tests, under tsx) and from compiled JavaScript (dist/).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { GgmlType } from "../../src/backends/dtypes.js";
import { ensureFixture, type RandomModelSpec } from "../../src/checkpoint/random-model.js";
import { WorkerExecutor } from "../../src/executor/index.js";

const ROOT = resolve(import.meta.dirname, "../..");
const SPEC: RandomModelSpec = {
  arch: "llama", vocab: join(ROOT, "test/fixtures/vocab/ggml-vocab-llama-spm.gguf"), hidden: 64, layers: 2, heads: 4,
  kvHeads: 2, headDim: 16, ffn: 128, tieEmbeddings: false, qkvBias: false, qkNorm: false, ropeTheta: 10000,
  rmsEps: 1e-5, maxPositions: 1024, seed: 4242, weightTypes: GgmlType.Q8_0,
};
let model = "";

before(async () => {
  model = (await ensureFixture(SPEC, join(tmpdir(), "tllm-test-fixtures"))).gguf;
});

/** Largest gap between the ticks of a 10 ms interval while `work` runs, in ms. */
async function maxTimerGap<T>(work: () => Promise<T>): Promise<{ gap: number; ticks: number; result: T }> {
  let last = performance.now();
  let gap = 0;
  let ticks = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    gap = Math.max(gap, now - last);
    last = now;
    ticks++;
  }, 10);
  try {
    const result = await work();
    gap = Math.max(gap, performance.now() - last);
    return { gap, ticks, result };
  } finally {
    clearInterval(timer);
  }
}

function busyWait(ms: number): Promise<void> {
  return new Promise((ok) => setTimeout(() => {
    const end = performance.now() + ms;
    while (performance.now() < end) { /* block the thread */ }
    ok();
  }, 20));
}

describe("main-thread responsiveness", () => {
  let ex: WorkerExecutor;
  after(async () => {
    await ex?.shutdown();
  });

  test("the gap detector sees a 150 ms block on the main thread (control)", async () => {
    const { gap } = await maxTimerGap(() => busyWait(150));
    assert.ok(gap >= 150, `gap ${gap.toFixed(1)} ms`);
  });

  test("a 10 ms interval never sees a gap > 100 ms while the worker generates", async (t) => {
    ex = await WorkerExecutor.create({ model, threads: 1, log: false, kvCacheConfig: { maxTokens: 8192 } });
    const prompts = Array.from({ length: 8 }, (_, i) => Array.from({ length: 200 + i * 10 }, (_, j) => 3 + ((i * 7919 + j * 104729) % 31990)));
    const started = performance.now();
    // rounds of 8 streamed requests until at least 1 s of generation (one round can take ~0.1 s)
    let rounds = 0;
    const { gap, ticks, result } = await maxTimerGap(async () => {
      let snapshots = 0;
      while (rounds < 50 && (rounds === 0 || performance.now() - started < 1000)) {
        rounds++;
        const streams = prompts.map((p) => ex.generateAsync(p, { maxTokens: 48, ignoreEos: true }, { streaming: true }));
        await Promise.all(streams.map(async (s) => {
          for await (const _ of s) snapshots++;
        }));
      }
      return snapshots;
    });
    const elapsed = performance.now() - started;
    t.diagnostic(`max gap ${gap.toFixed(1)} ms, ${ticks} ticks, ${result} snapshots in ${rounds} rounds, ${elapsed.toFixed(0)} ms`);
    assert.ok(elapsed > 200, `generation took ${elapsed.toFixed(0)} ms: too short to say anything`);
    assert.ok(result >= rounds * 8 * 48, `${result} streamed snapshots in ${rounds} rounds`);
    assert.ok(ticks >= elapsed / 10 / 3, `${ticks} ticks in ${elapsed.toFixed(0)} ms`);
    assert.ok(gap <= 100, `max timer gap ${gap.toFixed(1)} ms during ${elapsed.toFixed(0)} ms of generation`);
  });
});

/** Transpiles src/ to plain .js (same layout as dist/) with esbuild, tsx's own compiler. */
async function transpileSources(outdir: string): Promise<void> {
  const { build } = (await import("esbuild")) as typeof import("esbuild");
  const files: string[] = [];
  const walk = (d: string): void => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else if (n.endsWith(".ts") && !n.endsWith(".d.ts")) files.push(p);
    }
  };
  walk(join(ROOT, "src"));
  rmSync(outdir, { recursive: true, force: true });
  await build({ entryPoints: files, outdir, outbase: join(ROOT, "src"), format: "esm", platform: "node", target: "node20", bundle: false, logLevel: "silent" });
}

describe("worker entry from compiled JavaScript", () => {
  test("a plain-node process (no tsx) runs the compiled worker.js and gets the same tokens", async () => {
    const out = join(ROOT, ".cache", "exec-dist-test");
    await transpileSources(out);
    mkdirSync(out, { recursive: true });
    const prompt = [1, 450, 4996, 17354, 1701, 432];
    const script = join(out, "run.mjs");
    writeFileSync(script, [
      `import { WorkerExecutor } from "./executor/index.js";`,
      `const ex = await WorkerExecutor.create({ model: ${JSON.stringify(model)}, backend: "reference", log: false, kvCacheConfig: { maxTokens: 1024 } });`,
      `const r = await ex.generateAsync(${JSON.stringify(prompt)}, { maxTokens: 6 });`,
      `console.log(JSON.stringify(r.outputs[0].tokenIds));`,
      `await ex.shutdown();`,
    ].join("\n"));
    const r = spawnSync(process.execPath, [script], { cwd: ROOT, encoding: "utf8", timeout: 120_000, env: { ...process.env, NODE_OPTIONS: "" } });
    assert.equal(r.status, 0, r.stderr);
    const compiled = JSON.parse(r.stdout.trim()) as number[];
    const src = await WorkerExecutor.create({ model, backend: "reference", log: false, kvCacheConfig: { maxTokens: 1024 } });
    try {
      const ref = await src.generateAsync(prompt, { maxTokens: 6 });
      assert.equal(compiled.length, 6);
      assert.deepEqual(compiled, ref.outputs[0]!.tokenIds);
    } finally {
      await src.shutdown();
    }
    rmSync(out, { recursive: true, force: true });
  });
});

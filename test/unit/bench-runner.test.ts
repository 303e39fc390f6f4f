// The benchmark runner over fake targets on a virtual clock: timelines recorded from onToken,
// concurrency limit, warmup excluded, failures recorded, seeded Poisson / gamma arrivals.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { DatasetItem } from "../../src/bench/dataset.js";
import { arrivalOffsetsMs, runBenchmark, type SendFn } from "../../src/bench/runner.js";
import { ValidationError } from "../../src/errors.js";

const items = (n: number, out = 3): DatasetItem[] => Array.from({ length: n }, (_, i) => ({ taskId: i, inputIds: [1, 2, i], outputTokens: out }));

/** A virtual clock (ns) that only moves when a fake target waits. */
function virtualClock(): { now: () => number; wait: (ms: number) => Promise<void> } {
  let t = 0;
  return {
    now: () => t,
    wait: async (ms) => {
      await new Promise<void>((r) => setImmediate(r));
      t += ms * 1e6;
    },
  };
}

test("records start, first token, end and every chunk time for one request at a time", async () => {
  const clk = virtualClock();
  // 20 ms prefill then one token every 5 ms; items run strictly one after another (concurrency 1).
  const send: SendFn = async (item, onToken) => {
    await clk.wait(20);
    onToken();
    for (let k = 1; k < item.outputTokens; k++) {
      await clk.wait(5);
      onToken();
    }
    return {};
  };
  const run = await runBenchmark({ dataset: items(3), send, concurrency: 1, nowNs: clk.now });
  assert.equal(run.records.length, 3);
  const ms = (x: number): number => x / 1e6;
  assert.deepEqual(run.records.map((r) => [ms(r.startNs), ms(r.firstTokenNs), ms(r.endNs)]), [[0, 20, 30], [30, 50, 60], [60, 80, 90]]);
  assert.deepEqual(run.records[1]!.tokenTimesNs.map(ms), [50, 55, 60]);
  assert.deepEqual(run.records.map((r) => [r.numInputTokens, r.numOutputTokens]), [[3, 3], [3, 3], [3, 3]]);
  assert.equal(run.durationS, 0.09);
});

test("concurrency limit holds requests; usage counts override chunk counts", async () => {
  const clk = virtualClock();
  let inFlight = 0;
  let peak = 0;
  const send: SendFn = async (item, onToken) => {
    peak = Math.max(peak, ++inFlight);
    await clk.wait(10);
    onToken(2); // one chunk of two tokens
    await clk.wait(10);
    inFlight--;
    return { outputTokens: 7, inputTokens: 11 };
  };
  const run = await runBenchmark({ dataset: items(10), send, concurrency: 3, nowNs: clk.now });
  assert.equal(peak, 3);
  assert.ok(run.records.every((r) => r.numOutputTokens === 7 && r.numInputTokens === 11 && r.tokenTimesNs.length === 1));
  assert.deepEqual(run.records.map((r) => r.error), new Array(10).fill(undefined));
});

test("warmup requests are sent but not recorded; numRequests limits the run", async () => {
  const seen: (number | string)[] = [];
  const send: SendFn = async (item, onToken) => {
    seen.push(item.taskId);
    onToken();
    return {};
  };
  const run = await runBenchmark({ dataset: items(8), send, warmup: 2, numRequests: 4 });
  assert.deepEqual(seen, [0, 1, 2, 3, 4, 5]);
  assert.equal(run.records.length, 4);
  await assert.rejects(runBenchmark({ dataset: items(3), send, warmup: 2, numRequests: 2 }),
    (e: unknown) => e instanceof ValidationError && e.field === "numRequests");
  await assert.rejects(runBenchmark({ dataset: items(3), send, concurrency: 0 }), (e: unknown) => e instanceof ValidationError && e.field === "concurrency");
  await assert.rejects(runBenchmark({ dataset: items(3), send, requestRate: -1 }), (e: unknown) => e instanceof ValidationError && e.field === "requestRate");
});

test("a failing send is recorded with its error, the run goes on", async () => {
  const send: SendFn = async (item, onToken) => {
    if (item.taskId === 1) throw new Error("HTTP 500: boom");
    onToken();
    return {};
  };
  const run = await runBenchmark({ dataset: items(3), send });
  assert.deepEqual(run.records.map((r) => r.error), [undefined, "HTTP 500: boom", undefined]);
});

test("a non-streaming target gets one chunk at the end", async () => {
  const clk = virtualClock();
  const send: SendFn = async () => {
    await clk.wait(40);
    return { outputTokens: 5 };
  };
  const [r] = (await runBenchmark({ dataset: items(1), send, nowNs: clk.now })).records;
  assert.deepEqual([r!.firstTokenNs, r!.endNs, r!.numOutputTokens], [40e6, 40e6, 5]);
});

test("arrivals: inf sends at once; a finite rate gives seeded Poisson gaps of mean 1/rate", () => {
  assert.deepEqual(arrivalOffsetsMs(4, "inf"), [0, 0, 0, 0]);
  const a = arrivalOffsetsMs(4000, 10, 1, 3);
  assert.deepEqual(a, arrivalOffsetsMs(4000, 10, 1, 3));
  assert.equal(a[0], 0);
  const gaps = a.slice(1).map((x, i) => x - a[i]!);
  const m = gaps.reduce((s, x) => s + x, 0) / gaps.length;
  const sd = Math.sqrt(gaps.reduce((s, x) => s + (x - m) ** 2, 0) / gaps.length);
  // Exponential(10/s): mean 100 ms, sd 100 ms; SE of the mean ~1.6 ms.
  assert.ok(Math.abs(m - 100) < 7, `mean gap ${m}`);
  assert.ok(Math.abs(sd - 100) < 10, `sd ${sd}`);
  // burstiness 4 (gamma shape 4): same mean, coefficient of variation 1/2.
  const b = arrivalOffsetsMs(4000, 10, 4, 3);
  const g = b.slice(1).map((x, i) => x - b[i]!);
  const gm = g.reduce((s, x) => s + x, 0) / g.length;
  const gsd = Math.sqrt(g.reduce((s, x) => s + (x - gm) ** 2, 0) / g.length);
  assert.ok(Math.abs(gm - 100) < 4 && Math.abs(gsd / gm - 0.5) < 0.05, `gamma gaps ${gm} ${gsd}`);
});

test("a finite request rate sleeps until each scheduled arrival", async () => {
  const clk = virtualClock();
  const sleeps: number[] = [];
  const sleepMs = async (ms: number): Promise<void> => {
    sleeps.push(ms);
    await clk.wait(ms);
  };
  const send: SendFn = async (_item, onToken) => {
    onToken();
    return {};
  };
  const run = await runBenchmark({ dataset: items(5), send, requestRate: 2, seed: 9, nowNs: clk.now, sleepMs });
  const offsets = arrivalOffsetsMs(5, 2, 1, 9);
  assert.equal(sleeps.length, 4);
  run.records.forEach((r, i) => assert.ok(Math.abs(r.startNs / 1e6 - offsets[i]!) < 1e-6, `request ${i} at ${r.startNs / 1e6} vs ${offsets[i]}`));
});

// Confidence intervals against published / hand-computed values.
import { test } from "node:test";
import assert from "node:assert/strict";
import { bootstrapInterval, meanStats, normalInterval, perplexityInterval, timed, wilsonInterval } from "../../src/eval/stats.js";

const near = (a: number, b: number, tol: number, what: string): void => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

test("Wilson interval matches the tabulated values", () => {
  // Wilson 95% for 3/5 is (0.2307, 0.8824); for 0/10 (0, 0.2775); for 10/10 (0.7225, 1).
  const a = wilsonInterval(3, 5);
  near(a.lo, 0.2307, 1e-4, "3/5 lo");
  near(a.hi, 0.8824, 1e-4, "3/5 hi");
  const b = wilsonInterval(0, 10);
  near(b.lo, 0, 1e-12, "0/10 lo");
  near(b.hi, 0.2775, 1e-4, "0/10 hi");
  near(wilsonInterval(10, 10).lo, 0.7225, 1e-4, "10/10 lo");
  assert.deepEqual(wilsonInterval(0, 0), { lo: 0, hi: 1 });
});

test("normal approximation is p ± 1.96 sqrt(p(1-p)/n)", () => {
  const r = normalInterval(50, 100);
  near(r.lo, 0.5 - 1.959964 * 0.05, 1e-6, "lo");
  near(r.hi, 0.5 + 1.959964 * 0.05, 1e-6, "hi");
});

test("mean, sample sd and standard error; perplexity interval maps the NLL interval through exp", () => {
  const m = meanStats([1, 2, 3, 4]);
  near(m.mean, 2.5, 1e-12, "mean");
  near(m.sd, Math.sqrt(5 / 3), 1e-12, "sd"); // squares 2.25 + .25 + .25 + 2.25 = 5, / 3
  near(m.se, Math.sqrt(5 / 3) / 2, 1e-12, "se");
  const p = perplexityInterval([1, 2, 3, 4]);
  near(p.ppl, Math.exp(2.5), 1e-9, "ppl");
  near(p.lo, Math.exp(2.5 - 1.959964 * m.se), 1e-4, "lo");
  near(p.hi, Math.exp(2.5 + 1.959964 * m.se), 1e-4, "hi");
});

test("bootstrap interval of the mean is seeded and close to the normal one", () => {
  const xs = Array.from({ length: 400 }, (_, i) => Math.sin(i * 12.9898) * 10);
  const mean = (s: number[]): number => s.reduce((a, b) => a + b, 0) / s.length;
  const a = bootstrapInterval(xs, mean, { seed: 1 });
  assert.deepEqual(a, bootstrapInterval(xs, mean, { seed: 1 }));
  const m = meanStats(xs);
  // 1000 resamples: the percentile bounds land within ~15% of 1.96 se of the normal bounds.
  near(a.lo, m.mean - 1.96 * m.se, 0.3 * 1.96 * m.se, "lo");
  near(a.hi, m.mean + 1.96 * m.se, 0.3 * 1.96 * m.se, "hi");
  assert.deepEqual(bootstrapInterval([2, 2, 2], mean), { lo: 2, hi: 2 });
});

test("timed reports the wall time of the call", async () => {
  const { result, seconds } = await timed(async () => {
    await new Promise((r) => setTimeout(r, 30));
    return 7;
  });
  assert.equal(result, 7);
  assert.ok(seconds >= 0.025 && seconds < 5, `${seconds}`);
});

// native/sampling.cc vs the JS passes of src/sampling/select.ts (and draw.ts selectTopK) on awkward rows (vocab 1, 7, 8, 9,
// 2053, 151 936; -Infinity, NaN, all-equal, far-below-max entries that reach exp's subnormal range
// and underflow), on every kernel path this machine has. Weights and bins use the same exp (same
// table, same operations) in both, so everything but a sum must match bit for bit; a sum adds the
// same non-negative terms in another order (8 lanes vs one running sum), so the two differ by at
// most 2·(n-1)·2^-53 of the sum (each order's error is within (n-1)·eps·Σ). Between the avx2 and the
// scalar copy of the addon everything, sums included, must be identical (same lanes, same order).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  argmax, gatherUpTo, gatheredCount, logSumExpRank, rowMax, scanWeightBlocks, setNativeSampling, sumWeightBlocks,
  splitByBin, sumWeightsGather, WEIGHT_BINS, WEIGHT_BLOCK, type WeightList,
} from "../../src/sampling/select.js";
import { selectTopK } from "../../src/sampling/draw.js";
import { Sampler, type SamplingRow } from "../../src/sampling/sampler.js";
import { rngKeyForSeed } from "../../src/sampling/rng.js";
import { createSamplingParams, type SamplingParamsInput } from "../../src/api/sampling-params.js";
import { paths, rng, SEED, withPath } from "./native-helpers.js";

const PATHS = paths();
const SKIP = PATHS.length === 0 || !setNativeSampling(true) ? "native addon (with sampling.cc) not built" : false;

type Kind = "random" | "banned" | "equal" | "wide";
function makeRow(r: () => number, n: number, kind: Kind): Float32Array {
  const row = new Float32Array(n);
  for (let i = 0; i < n; i++) row[i] = kind === "equal" ? 1.5 : (r() * 2 - 1) * (kind === "wide" ? 900 : 12);
  if (kind === "banned") for (let i = 0; i < n; i += 3) row[i] = i % 2 ? -Infinity : Number.NaN;
  if (kind === "banned" && n > 2) row[n - 2] = 7; // a finite max somewhere
  return row;
}

interface Out {
  max: number; total: number; blocks: Float64Array; picks: number[]; gsum: number; gcount: number;
  gidx: Int32Array; gw: Float64Array; gbin: Int32Array; sub: Float64Array; upCount: number; upIdx: Int32Array;
  upW: Float64Array; upBins: Float64Array; lse: number; rank: number; arg: number; split: object; topk: Array<[number, number]>[];
}

function runAll(row: Float32Array, invT: number, minPNats: number): Out {
  const n = row.length;
  const max = rowMax(row, n);
  const xmax = max === -Infinity ? 0 : max;
  const floor = Math.max(xmax - minPNats, -Number.MAX_VALUE);
  const blocks = new Float64Array(Math.ceil(n / WEIGHT_BLOCK));
  const total = sumWeightBlocks(row, n, xmax, floor, invT, blocks);
  const picks = [0, 0.1, 0.37, 0.5, 0.77, 0.999999].map((u) => scanWeightBlocks(row, n, xmax, floor, invT, blocks, u * total));
  const gidx = new Int32Array(n), gw = new Float64Array(n), gbin = new Int32Array(n), sub = new Float64Array(WEIGHT_BINS);
  const gsum = sumWeightsGather(row, n, xmax, floor, invT, Math.max(floor, xmax - 3 / invT), gidx, gw, gbin, sub);
  const gcount = gatheredCount();
  const upIdx = new Int32Array(n), upW = new Float64Array(n), upBin = new Int32Array(n), upBins = new Float64Array(WEIGHT_BINS);
  const upCount = gatherUpTo(row, n, xmax, floor, invT, 300, upIdx, upW, upBin, upBins);
  // split the gathered list at the bin of its middle entry
  const l: WeightList = {
    idx: upIdx.slice(), w: upW.slice(), bin: upBin.slice(), numKeep: upCount, cid: new Int32Array(n), cx: new Float32Array(n), numCand: 0,
  };
  splitByBin(row, upCount > 0 ? upBin[upCount >> 1] : 0, l);
  const split = { keep: Array.from(l.idx.subarray(0, l.numKeep)), kw: Array.from(l.w.subarray(0, l.numKeep)),
    cid: Array.from(l.cid.subarray(0, l.numCand)), cx: Array.from(l.cx.subarray(0, l.numCand)) };
  const lr = { lse: 0, rank: 0 };
  logSumExpRank(row, n, row[n >> 1], lr);
  const arg = argmax(row, n);
  const topk = [1, 5, 50, n + 2].map((k) => {
    const ids = new Int32Array(k), vals = new Float32Array(k);
    const m = selectTopK(row, n, k, ids, vals);
    return Array.from(ids.subarray(0, m), (id, j): [number, number] => [id, vals[j]]);
  });
  return { split, arg, topk, max, total, blocks, picks, gsum, gcount, gidx, gw, gbin, sub, upCount, upIdx, upW, upBins, ...lr };
}

function sumTol(sum: number, n: number): number {
  return 2 * Math.max(n - 1, 1) * 2 ** -53 * Math.abs(sum);
}

function assertSame(a: Out, b: Out, n: number, exactSums: boolean, what: string): void {
  const near = (x: number, y: number, terms: number, label: string) => {
    if (exactSums) assert.ok(Object.is(x, y), `${what} ${label}: ${x} vs ${y}`);
    else assert.ok(Object.is(x, y) || Math.abs(x - y) <= sumTol(y, terms), `${what} ${label}: ${x} vs ${y}`);
  };
  assert.ok(Object.is(a.max, b.max) || a.max === b.max, `${what} max`);
  near(a.total, b.total, n, "total");
  for (let j = 0; j < b.blocks.length; j++) near(a.blocks[j], b.blocks[j], WEIGHT_BLOCK, `block ${j}`);
  assert.deepEqual(a.picks, b.picks, `${what} scan picks`);
  near(a.gsum, b.gsum, n, "gather sum");
  assert.equal(a.gcount, b.gcount, `${what} gather count`);
  assert.deepEqual(a.gidx.subarray(0, a.gcount), b.gidx.subarray(0, b.gcount), `${what} gather ids`);
  assert.deepEqual(a.gw.subarray(0, a.gcount), b.gw.subarray(0, b.gcount), `${what} gather weights (bit for bit)`);
  assert.deepEqual(a.gbin.subarray(0, a.gcount), b.gbin.subarray(0, b.gcount), `${what} gather bins`);
  assert.deepEqual(a.sub, b.sub, `${what} subsampled histogram`);
  assert.equal(a.upCount, b.upCount, `${what} gatherUpTo count`);
  assert.deepEqual(a.upIdx.subarray(0, a.upCount), b.upIdx.subarray(0, b.upCount), `${what} gatherUpTo ids`);
  assert.deepEqual(a.upW.subarray(0, a.upCount), b.upW.subarray(0, b.upCount), `${what} gatherUpTo weights`);
  assert.deepEqual(a.upBins, b.upBins, `${what} gatherUpTo bins`);
  // lse = m + log(Σ): a relative error δ of Σ moves it by ~δ
  if (exactSums || !Number.isFinite(b.lse)) assert.ok(Object.is(a.lse, b.lse), `${what} lse ${a.lse} vs ${b.lse}`);
  else assert.ok(Math.abs(a.lse - b.lse) <= sumTol(1, n) + 4 * 2 ** -52 * Math.abs(b.lse), `${what} lse ${a.lse} vs ${b.lse}`);
  assert.equal(a.rank, b.rank, `${what} rank`);
  assert.equal(a.arg, b.arg, `${what} argmax`);
  assert.deepEqual(a.split, b.split, `${what} splitByBin`);
  assert.deepEqual(a.topk, b.topk, `${what} top-k (ids, values; value desc, id asc)`);
}

const SIZES = [1, 7, 8, 9, 2053, 151_936];
const KINDS: Kind[] = ["random", "banned", "equal", "wide"];
const SETTINGS = [{ invT: 1, minP: Infinity }, { invT: 1.25, minP: 4 }, { invT: 40, minP: Infinity }, { invT: 0.01, minP: Infinity }];

test("native sampling passes match the JS passes (bit for bit but for sum order) on every path", { skip: SKIP }, () => {
  const r = rng(SEED);
  for (const n of SIZES) {
    for (const kind of KINDS) {
      const row = makeRow(r, n, kind);
      for (const s of SETTINGS) {
        setNativeSampling(false);
        const js = runAll(row, s.invT, s.minP);
        setNativeSampling(true);
        const outs = PATHS.map((p) => withPath(p, () => runAll(row, s.invT, s.minP)));
        const what = `seed ${SEED} vocab ${n} ${kind} invT ${s.invT} minP ${s.minP}`;
        assertSame(outs[0], js, n, false, `${what} ${PATHS[0]} vs js`);
        for (let p = 1; p < outs.length; p++) assertSame(outs[p], outs[0], n, true, `${what} ${PATHS[p]} vs ${PATHS[0]}`);
      }
    }
  }
});

test("native lse handles rows without a finite entry and +Infinity as the JS pass does", { skip: SKIP }, () => {
  for (const row of [Float32Array.of(-Infinity, -Infinity), Float32Array.of(Number.NaN), Float32Array.of(1, Infinity, 2, Infinity)]) {
    const js = { lse: 0, rank: 0 };
    const nat = { lse: 0, rank: 0 };
    setNativeSampling(false);
    logSumExpRank(row, row.length, row[0], js);
    setNativeSampling(true);
    for (const p of PATHS) {
      withPath(p, () => logSumExpRank(row, row.length, row[0], nat));
      assert.ok(Object.is(nat.lse, js.lse) && nat.rank === js.rank, `${p} [${Array.from(row)}]: ${nat.lse}/${nat.rank} vs ${js.lse}/${js.rank}`);
    }
  }
});

test("the Sampler draws the same tokens and logprobs for a seed on the avx2 and scalar paths and in JS", { skip: SKIP }, () => {
  const vocab = 151_936, batch = 6;
  const r = rng(SEED ^ 0x5eed);
  const logits = new Float32Array(batch * vocab);
  for (let i = 0; i < logits.length; i++) logits[i] = (r() * 2 - 1) * 4;
  for (let b = 0; b < batch; b++) for (let j = 0; j < 30; j++) logits[b * vocab + Math.floor(r() * vocab)] = 8 + r() * 4;
  const inputs: SamplingParamsInput[] = [
    { temperature: 0.8, seed: 1 }, { temperature: 1.5, topP: 0.9, seed: 2 }, { temperature: 1, topK: 50, logprobs: 5, seed: 3 },
    { temperature: 1, minP: 0.05, seed: 4 }, { temperature: 0.7, topP: 0.95, logprobs: 3, seed: 5 }, { temperature: 0, logprobs: 2 },
  ];
  const run = (steps: number) => {
    const out: unknown[] = [];
    for (let step = 0; step < steps; step++) {
      const rows: SamplingRow[] = inputs.map((inp, i) => ({
        params: createSamplingParams(inp), rng: rngKeyForSeed(inp.seed ?? 0, i), promptTokenIds: [1, 2], outputTokenIds: new Array(step).fill(7),
      }));
      out.push(new Sampler().sample(logits.slice(), rows, vocab));
    }
    return out;
  };
  const byPath = PATHS.map((p) => withPath(p, () => run(4)));
  for (let p = 1; p < byPath.length; p++) assert.deepEqual(byPath[p], byPath[0], `seed ${SEED}: ${PATHS[p]} vs ${PATHS[0]}`);
  setNativeSampling(false);
  const js = run(4) as Array<Array<{ token: number; logprob: number; rank: number }>>;
  setNativeSampling(true);
  // JS sums in another order (1e-16 relative): the same tokens and ranks; logprobs within 1e-12
  const nat = byPath[0] as typeof js;
  for (let s = 0; s < js.length; s++) {
    for (let i = 0; i < batch; i++) {
      assert.equal(nat[s][i].token, js[s][i].token, `seed ${SEED} step ${s} row ${i} token`);
      assert.equal(nat[s][i].rank, js[s][i].rank);
      assert.ok(Object.is(nat[s][i].logprob, js[s][i].logprob) || Math.abs(nat[s][i].logprob - js[s][i].logprob) < 1e-12);
    }
  }
});

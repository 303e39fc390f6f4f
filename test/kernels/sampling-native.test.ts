// native/sampling.cc vs the JS passes of src/sampling/select.ts on awkward rows (vocab 1, 7, 8, 9,
// 2053, 151 936; -Infinity, NaN, all-equal, far-below-max entries that reach exp's subnormal range
// and underflow), on every kernel path this machine has. Weights and bins use the same exp (same
// table, same operations) in both, so everything but a sum must match bit for bit; a sum adds the
// same non-negative terms in another order (8 lanes vs one running sum), so the two differ by at
// most 2·(n-1)·2^-53 of the sum (each order's error is within (n-1)·eps·Σ). Between the avx2 and the
// scalar copy of the addon everything, sums included, must be identical (same lanes, same order).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  gatherUpTo, gatheredCount, logSumExpRank, rowMax, scanWeightBlocks, setNativeSampling, sumWeightBlocks,
  sumWeightsGather, WEIGHT_BINS, WEIGHT_BLOCK,
} from "../../src/sampling/select.js";
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
  upW: Float64Array; upBins: Float64Array; lse: number; rank: number;
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
  const lr = { lse: 0, rank: 0 };
  logSumExpRank(row, n, row[n >> 1], lr);
  return { max, total, blocks, picks, gsum, gcount, gidx, gw, gbin, sub, upCount, upIdx, upW, upBins, ...lr };
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

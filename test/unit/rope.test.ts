// RoPE inverse frequencies for each scaling type (hand-computed values) and the Q/K row
// permutation that llama.cpp's converter applies (neox weights + neox rope == permuted + norm rope).
import { test } from "node:test";
import assert from "node:assert/strict";
import { ropeInvFreq, ropeParams } from "../../src/layers/rope.js";
import { permuteQkRows, unpermuteQkRows } from "../../src/models/weights.js";
import { ReferenceBackend } from "../../src/backends/reference/index.js";
import { GgmlType } from "../../src/backends/dtypes.js";
import type { RopeScaling, ModelConfig } from "../../src/config/model-config.js";

function close(actual: ArrayLike<number>, expected: number[], relTol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i]!;
    assert.ok(Math.abs(actual[i]! - e) <= relTol * Math.abs(e), `${what}[${i}]: ${actual[i]} vs ${e}`);
  }
}
// invFreq is f32 (as HF's buffers): relative error up to 2^-24 ≈ 6e-8; allow 1e-6
const F32_REL = 1e-6;
const cfg = (ropeScaling: RopeScaling, ropeDim = 8) => ({ ropeTheta: 10000, ropeDim, ropeScaling });

test("default: theta^(-2i/d); theta 10000, d 8 -> 1, 0.1, 0.01, 0.001", () => {
  const r = ropeInvFreq(cfg({ type: "none" }));
  close(r.invFreq, [1, 0.1, 0.01, 0.001], F32_REL, "none");
  assert.equal(r.mscale, 1);
});

test("linear divides every frequency by the factor", () => {
  close(ropeInvFreq(cfg({ type: "linear", factor: 4 })).invFreq, [0.25, 0.025, 0.0025, 0.00025], F32_REL, "linear");
});

test("dynamic NTK leaves frequencies unchanged within the original context", () => {
  const r = ropeInvFreq(cfg({ type: "dynamic", factor: 2, originalMaxPositions: 4096 }));
  close(r.invFreq, [1, 0.1, 0.01, 0.001], F32_REL, "dynamic");
});

test("llama3: high frequencies kept, low divided by factor, middle blended", () => {
  // original 1000, low 1, high 4: wavelengths 2π/f = 6.28, 62.8 (< 250: keep), 628 (between), 6283 (> 1000: /8)
  const r = ropeInvFreq(cfg({ type: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 1000 }));
  const smooth = (1000 / (2 * Math.PI / 0.01) - 1) / (4 - 1);
  close(r.invFreq, [1, 0.1, (1 - smooth) * 0.01 / 8 + smooth * 0.01, 0.001 / 8], F32_REL, "llama3");
});

test("yarn: ramp between correction dims 0 and 3, attention factor 0.1 ln(s) + 1", () => {
  // corr dim(rot) = 8 ln(1000 / (2π rot)) / (2 ln 10000): beta_fast 32 -> 0.70 -> floor 0; beta_slow 1 -> 2.20 -> ceil 3
  // extrapolation share per pair = 1 - clamp(i / 3) = 1, 2/3, 1/3, 0; freq = base * (e + (1 - e) / 4)
  const r = ropeInvFreq(cfg({ type: "yarn", factor: 4, originalMaxPositions: 1000, betaFast: 32, betaSlow: 1 }));
  close(r.invFreq, [1, 0.1 * (2 / 3 + 1 / 12), 0.01 * (1 / 3 + 2 / 12), 0.001 / 4], F32_REL, "yarn");
  assert.ok(Math.abs(r.mscale - (0.1 * Math.log(4) + 1)) < 1e-12);
  const explicit = ropeInvFreq(cfg({ type: "yarn", factor: 4, originalMaxPositions: 1000, betaFast: 32, betaSlow: 1, attnFactor: 0.5 }));
  assert.equal(explicit.mscale, 0.5);
  const deepseek = ropeInvFreq(cfg({ type: "yarn", factor: 4, originalMaxPositions: 1000, betaFast: 32, betaSlow: 1, mscale: 2, mscaleAllDim: 1 }));
  assert.ok(Math.abs(deepseek.mscale - (0.2 * Math.log(4) + 1) / (0.1 * Math.log(4) + 1)) < 1e-12);
});

test("ropeParams divides by GGUF rope_freqs factors and carries style and dims", () => {
  const c = { ...cfg({ type: "none" }), headDim: 8, ropeStyle: "norm" } as unknown as ModelConfig;
  const p = ropeParams(c, Float32Array.from([1, 2, 4, 8]));
  close(p.invFreq, [1, 0.05, 0.0025, 0.000125], F32_REL, "freq factors");
  assert.equal(p.style, "norm");
  assert.equal(p.ropeDim, 8);
});

test("permuteQkRows matches the converter's reshape(n_head, 2, hd/2).swapaxes(1, 2)", () => {
  // one head of 4 rows: HF rows (p, j) = 0:(0,0) 1:(0,1) 2:(1,0) 3:(1,1) go to 2j + p = 0, 2, 1, 3
  assert.deepEqual([...permuteQkRows(Float32Array.from([10, 11, 12, 13]), 4, 1, 1)], [10, 12, 11, 13]);
  // two heads of 4 rows, 2 cols
  const w = Float32Array.from({ length: 16 }, (_, i) => i);
  assert.deepEqual([...permuteQkRows(w, 8, 2, 2)], [0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15]);
  assert.deepEqual([...unpermuteQkRows(permuteQkRows(w, 8, 2, 2), 8, 2, 2)], [...w]);
});

test("HF weights + neox rope give the same q·k as permuted weights + norm rope", () => {
  const be = new ReferenceBackend();
  const nHead = 2, hd = 8, cols = 5, rows = nHead * hd;
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  const wq = Float32Array.from({ length: rows * cols }, rnd), wk = Float32Array.from({ length: rows * cols }, rnd);
  const x = Float32Array.from({ length: 3 * cols }, rnd); // 3 tokens
  const positions = Int32Array.from([0, 5, 11]);
  const invFreq = ropeInvFreq(cfg({ type: "none" }, hd)).invFreq;
  const project = (w: Float32Array, style: "norm" | "neox") => {
    const out = new Float32Array(3 * rows);
    be.matmul(out, x, 3, { name: "w", dtype: GgmlType.F32, rows, cols, data: new Uint8Array(w.buffer) });
    be.rope(out, 3, nHead, positions, { style, headDim: hd, ropeDim: hd, invFreq, mscale: 1 });
    return out;
  };
  const qh = project(wq, "neox"), kh = project(wk, "neox");
  const qg = project(permuteQkRows(wq, rows, cols, nHead), "norm"), kg = project(permuteQkRows(wk, rows, cols, nHead), "norm");
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) for (let h = 0; h < nHead; h++) {
    let dh = 0, dg = 0;
    for (let d = 0; d < hd; d++) {
      dh += qh[(i * nHead + h) * hd + d]! * kh[(j * nHead + h) * hd + d]!;
      dg += qg[(i * nHead + h) * hd + d]! * kg[(j * nHead + h) * hd + d]!;
    }
    // same products summed in a different order, in f32: agree to ~1e-6
    assert.ok(Math.abs(dh - dg) < 1e-5, `q${i}·k${j} head ${h}: ${dh} vs ${dg}`);
  }
  // and the rotated q is exactly the permuted HF q (rope commutes with the row permutation)
  const qhPerm = permuteQkRows(qh, 3 * nHead * hd, 1, 3 * nHead);
  for (let i = 0; i < qg.length; i++) assert.ok(Math.abs(qg[i]! - qhPerm[i]!) < 1e-6);
});

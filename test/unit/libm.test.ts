// glibcExpf (src/backends/reference/libm.ts) against the machine's own libm expf, compiled at test
// time with the system C compiler (cc is required for the native build anyway). glibc picks its
// __expf_fma variant on CPUs with FMA (every CPU the AVX2 kernels run on); bits must be equal for
// every input, while fround(Math.exp(x)) differs on about 1 input in 1700 (glibc is not correctly
// rounded near ties). fma64 is checked on cases where an unfused a*b+c gives a different double.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fma64, glibcExpf } from "../../src/backends/reference/libm.js";
import { rng } from "./test-rng.js";

const EXPF_C = `
#include <math.h>
#include <stdio.h>
int main(int argc, char** argv) {
  FILE* in = fopen(argv[1], "rb"); FILE* out = fopen(argv[2], "wb"); float x;
  while (fread(&x, 4, 1, in) == 1) { volatile float v = x; float e = expf(v); fwrite(&e, 4, 1, out); }
  fclose(in); fclose(out); return 0;
}`;

test("glibcExpf equals libm expf bit for bit (random f32 inputs over the whole finite range, edge cases)", () => {
  const dir = mkdtempSync(join(tmpdir(), "tllm-libm-"));
  try {
    writeFileSync(join(dir, "e.c"), EXPF_C);
    const cc = spawnSync("cc", ["-O2", "-o", join(dir, "e"), join(dir, "e.c"), "-lm"], { encoding: "utf8" });
    assert.equal(cc.status, 0, `cc failed (a C compiler is required): ${cc.stderr}`);
    const r = rng(20261122);
    const n = 200_000;
    const xs = new Float32Array(n + 12);
    for (let i = 0; i < n; i++) xs[i] = (r() * 2 - 1) * (i % 5 === 0 ? 110 : 12);
    xs.set([0, -0, 1, -1, 88.72283172607422, 88.72284, -103.97207641601562, -103.9721, -87.3, 1e-30, -1e-30, 0.6931472], n);
    writeFileSync(join(dir, "x.bin"), Buffer.from(xs.buffer));
    const run = spawnSync(join(dir, "e"), [join(dir, "x.bin"), join(dir, "y.bin")]);
    assert.equal(run.status, 0, "expf oracle failed");
    const buf = readFileSync(join(dir, "y.bin"));
    const want = new Float32Array(buf.buffer, buf.byteOffset, xs.length);
    let diff = 0, first = -1, mathDiff = 0;
    for (let i = 0; i < xs.length; i++) {
      const got = glibcExpf(xs[i]!);
      if (!Object.is(got, want[i])) { diff++; if (first < 0) first = i; }
      if (Math.fround(Math.exp(xs[i]!)) !== want[i]) mathDiff++;
    }
    if (diff > 0) assert.fail(`${diff} differ; first x = ${xs[first]}: ${glibcExpf(xs[first]!)} vs libm ${want[first]}`);
    // the point of the port: libm is not fround(Math.exp) (else this test would not need it)
    assert.ok(mathDiff > 0, "expected libm expf to differ from fround(Math.exp) on some of 200k inputs");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("fma64 rounds a*b+c once", () => {
  const e = 2 ** -52;
  // (1+e)(1-e) - 1 = -e² exactly; unfused, (1+e)(1-e) rounds to 1 and the result is 0
  assert.equal(fma64(1 + e, 1 - e, -1), -(e * e));
  assert.equal((1 + e) * (1 - e) - 1, 0);
  // 0.1 * 10 - 1: fused keeps the product's rounding error (2^-54)
  assert.equal(fma64(0.1, 10, -1), 2 ** -54);
  assert.equal(fma64(3, 4, 5), 17);
  assert.equal(fma64(-2.5, 4, 0), -10);
  assert.equal(fma64(0, 123, -7.25), -7.25);
});

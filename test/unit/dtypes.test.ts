import { test } from "node:test";
import assert from "node:assert/strict";
import { GgmlType, rowBytes } from "../../src/backends/dtypes.js";

test("rowBytes follows ggml block sizes", () => {
  assert.equal(rowBytes(GgmlType.F32, 7), 28);
  assert.equal(rowBytes(GgmlType.F16, 7), 14);
  assert.equal(rowBytes(GgmlType.Q4_0, 64), 36);
  assert.equal(rowBytes(GgmlType.Q8_0, 96), 102);
  assert.equal(rowBytes(GgmlType.Q4_K, 512), 288);
  assert.equal(rowBytes(GgmlType.Q5_K, 256), 176);
  assert.equal(rowBytes(GgmlType.Q6_K, 256), 210);
  assert.throws(() => rowBytes(GgmlType.Q4_0, 33), /not a multiple of 32/);
});

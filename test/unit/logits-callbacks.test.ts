// The shared-memory call protocol of src/executor/callbacks.ts in one thread: the "caller" answers
// inside post() (before the worker side waits), so every path runs without a second thread.
import { test } from "node:test";
import assert from "node:assert/strict";
import { answerLogitsCall, LogitsCallbackBridge, type LogitsCallMsg } from "../../src/executor/callbacks.js";
import type { LogitsProcessorFn } from "../../src/api/sampling-params.js";
import { TllmError } from "../../src/errors.js";

test("the row comes back as the callbacks left it; ids and step arrive intact", () => {
  const calls: { ids: readonly number[]; step: number }[] = [];
  const fns: LogitsProcessorFn[] = [
    (row, ids, ctx) => { calls.push({ ids: [...ids], step: ctx.step }); row[1] = -Infinity; },
    (row) => { row[2]! += 10; },
  ];
  const bridge = new LogitsCallbackBridge((m) => answerLogitsCall(m, fns));
  const row = Float32Array.of(0.5, 1, 2, 3);
  bridge.processor(7)(row, [4, 5, 6], { requestId: 7, step: 2 });
  assert.deepEqual([...row], [0.5, -Infinity, 12, 3]);
  assert.deepEqual(calls, [{ ids: [4, 5, 6], step: 2 }]);
  // a long id list grows the buffer
  const long = Array.from({ length: 5000 }, (_, i) => i);
  bridge.processor(7)(row, long, { requestId: 7, step: 9 });
  assert.deepEqual(calls[1]!.ids, long);
});

test("a throwing callback becomes a TllmError with its message; no answer times out", () => {
  const boom = new LogitsCallbackBridge((m) => answerLogitsCall(m, [() => { throw new TypeError("bad row"); }]));
  assert.throws(() => boom.processor(3)(new Float32Array(4), [1], { requestId: 3, step: 0 }),
    (e: unknown) => e instanceof TllmError && e.message === "logitsProcessor of request 3 threw: TypeError: bad row");
  let late: LogitsCallMsg | null = null;
  const silent = new LogitsCallbackBridge((m) => { late = m; }, 20);
  const row = Float32Array.of(1, 2);
  assert.throws(() => silent.processor(4)(row, [1], { requestId: 4, step: 0 }), /no answer from the caller's thread within 20 ms/);
  answerLogitsCall(late!, [(r) => { r[0] = 99; }]); // a late answer is ignored
  assert.deepEqual([...new Float32Array(late!.buffer, 16, 2)], [1, 2]);
});

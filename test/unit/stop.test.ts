// Stop strings in streaming form (text deltas as a detokenizer would produce them), split across
// 2 and 3 tokens, with and without includeStopStrInOutput; token-level stops and finish reasons.
import { test } from "node:test";
import assert from "node:assert/strict";
import { checkTokenStop, StopStringMatcher } from "../../src/sampling/stop.js";
import { createSamplingParams } from "../../src/api/sampling-params.js";

/** Feeds deltas; returns the emitted pieces and the final feed result. */
function stream(stops: string[], include: boolean, deltas: string[]) {
  const m = new StopStringMatcher(stops, include);
  const emitted: string[] = [];
  let last = m.feed("");
  for (const d of deltas) {
    last = m.feed(d);
    emitted.push(last.emit);
    if (last.stopped) break;
  }
  return { emitted, last, m };
}

test("stop string split across 2 tokens", () => {
  const a = stream(["world"], false, ["hello wor", "ld!", "more"]);
  assert.deepEqual(a.emitted, ["hello ", ""]);
  assert.equal(a.last.stopped, true);
  assert.equal(a.last.stopReason, "world");
  assert.equal(a.last.truncatedText, "hello ");
  const b = stream(["world"], true, ["hello wor", "ld!", "more"]);
  assert.deepEqual(b.emitted, ["hello ", "world"]);
  assert.equal(b.last.truncatedText, "hello world");
});

test("stop string split across 3 tokens, text after it in the same delta is dropped", () => {
  const a = stream(["STOP"], false, ["ab S", "TO", "P cd"]);
  assert.deepEqual(a.emitted, ["ab ", "", ""]);
  assert.equal(a.last.truncatedText, "ab ");
  assert.equal(a.last.stopReason, "STOP");
  const b = stream(["STOP"], true, ["ab S", "TO", "P cd"]);
  assert.deepEqual(b.emitted, ["ab ", "", "STOP"]);
  assert.equal(b.last.truncatedText, "ab STOP");
  assert.equal(b.m.feed("later").emit, "", "nothing is emitted after a stop");
});

test("a held-back prefix that does not complete is released", () => {
  const a = stream(["STOP"], false, ["x S", "T", "x"]);
  assert.deepEqual(a.emitted, ["x ", "", "STx"]);
  assert.equal(a.last.stopped, false);
  const m = new StopStringMatcher(["</end>"], false);
  assert.equal(m.feed("tail </e").emit, "tail ");
  assert.equal(m.flush(), "</e", "flush releases the held tail when the output ends otherwise");
  assert.equal(m.text, "tail </e");
});

test("earliest match wins among several stop strings; overlapping prefixes are held", () => {
  const a = stream(["bc", "abcd"], false, ["xab", "cd"]);
  // "xab": "ab" is a prefix of "abcd", "b" of "bc" -> hold "ab"; then "xabcd" has "abcd" at 1, "bc" at 2
  assert.deepEqual(a.emitted, ["x", ""]);
  assert.equal(a.last.stopReason, "abcd");
  assert.equal(a.last.truncatedText, "x");
  const b = stream(["bc", "abcd"], true, ["xab", "ce"]);
  assert.equal(b.last.stopReason, "bc");
  assert.equal(b.last.truncatedText, "xabc");
});

test("no stop strings: everything passes through", () => {
  const a = stream([], false, ["a", "b"]);
  assert.deepEqual(a.emitted, ["a", "b"]);
});

test("token stops: stop ids, EOS, ignoreEos, min_tokens, length", () => {
  const p = createSamplingParams({ maxTokens: 4, endId: 2, stopTokenIds: [9], minTokens: 2 });
  assert.deepEqual(checkTokenStop(p, 9, 2), { finishReason: "stop", stopReason: 9 });
  assert.deepEqual(checkTokenStop(p, 2, 3), { finishReason: "stop", stopReason: null });
  assert.equal(checkTokenStop(p, 9, 1), null, "before min_tokens a stop id does not stop");
  assert.equal(checkTokenStop(p, 5, 3), null);
  assert.deepEqual(checkTokenStop(p, 5, 4), { finishReason: "length", stopReason: null });
  assert.deepEqual(checkTokenStop(p, 2, 4), { finishReason: "stop", stopReason: null }, "EOS on the last slot is 'stop'");
  const q = createSamplingParams({ maxTokens: 4, endId: 2, ignoreEos: true });
  assert.equal(checkTokenStop(q, 2, 1), null);
  assert.deepEqual(checkTokenStop(q, 2, 4), { finishReason: "length", stopReason: null });
});

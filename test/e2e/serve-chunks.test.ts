// ChunkedLogprobs (src/serve/logprobs.ts): how streamed tokens are grouped into SSE chunks with
// their logprobs. Pure: synthetic StreamEvents, no server. Covers both sources of logprobs: events
// that carry them (sent at once) and events without them (held, then filled from the final output).
import { test } from "node:test";
import assert from "node:assert/strict";
import type { StreamEvent } from "../../src/api/llm.js";
import type { CompletionOutput, TokenLogprobs } from "../../src/api/request-output.js";
import { ChunkedLogprobs, type TokenSlot } from "../../src/serve/logprobs.js";

const lpFor = (id: number): TokenLogprobs => new Map([[id, { logprob: -id / 10, rank: 1 }]]);
const ev = (token: number, textDelta: string, withLp: boolean): StreamEvent =>
  ({ requestId: 1, index: 0, token, textDelta, finished: false, ...(withLp ? { logprobs: lpFor(token) } : {}) }) as StreamEvent;

// tokens 1..5: "a", then 2 and 3 held (a possible stop string "xy"), 4 releases "bcd" (2, 3 and 4's
// text), 5 completes the stop string, so its text never goes out
const EVENTS: [number, string][] = [[1, "a"], [2, ""], [3, ""], [4, "bcd"], [5, ""]];
const FINAL: CompletionOutput = {
  index: 0, text: "abcd", tokenIds: [1, 2, 3, 4, 5], cumulativeLogprob: null, logprobs: [1, 2, 3, 4, 5].map(lpFor), finishReason: "stop", stopReason: "xy",
};
const ids = (slots: TokenSlot[]) => slots.map((s) => s.id);

for (const withLp of [true, false]) {
  test(`tokens go out with the chunk that releases their text; the stop-string tokens with rest() (events ${withLp ? "with" : "without"} logprobs)`, () => {
    const sent: { text: string; ids: number[]; lps: (number | undefined)[] }[] = [];
    const c = new ChunkedLogprobs(true, (_k, text, slots) => sent.push({ text, ids: ids(slots), lps: slots.map((s) => s.lp?.get(s.id)?.logprob) }));
    for (const [t, d] of EVENTS) c.event(0, ev(t, d, withLp));
    // with logprobs on the events the chunks are sent as they come; without, none before flush()
    assert.equal(sent.length, withLp ? 2 : 0);
    c.flush(() => FINAL);
    assert.deepEqual(sent, [{ text: "a", ids: [1], lps: [-0.1] }, { text: "bcd", ids: [2, 3, 4], lps: [-0.2, -0.3, -0.4] }]);
    const rest = c.rest(0, FINAL);
    assert.deepEqual(ids(rest), [5]);
    assert.equal(rest[0]!.lp?.get(5)?.logprob, -0.5);
    assert.deepEqual(c.rest(0, FINAL), [], "rest() hands each token out once");
  });
}

test("rest() also covers tokens the stream never reported (a final output longer than the events)", () => {
  const c = new ChunkedLogprobs(true, () => {});
  c.event(0, ev(1, "a", true));
  assert.deepEqual(ids(c.rest(0, FINAL)), [2, 3, 4, 5]);
});

test("without logprobs requested no slots are kept and text goes out at once", () => {
  const sent: [string, number][] = [];
  const c = new ChunkedLogprobs(false, (_k, text, slots) => sent.push([text, slots.length]));
  for (const [t, d] of EVENTS) c.event(0, ev(t, d, false));
  assert.deepEqual(sent, [["a", 0], ["bcd", 0]]);
  assert.deepEqual(c.rest(0, FINAL), []);
});

test("choices are kept apart by key", () => {
  const sent: [number, string, number[]][] = [];
  const c = new ChunkedLogprobs(true, (k, text, slots) => sent.push([k, text, ids(slots)]));
  c.event(0, ev(1, "", true));
  c.event(1, ev(7, "q", true));
  c.event(0, ev(2, "ab", true));
  assert.deepEqual(sent, [[1, "q", [7]], [0, "ab", [1, 2]]]);
});

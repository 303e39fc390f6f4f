// ChunkedLogprobs (src/serve/logprobs.ts): how streamed tokens are grouped into SSE chunks with
// their logprobs. Pure: synthetic StreamEvents, no server. Covers both sources of logprobs: events
// that carry them (sent at once) and events without them (held, then filled from the final output).
import { test } from "node:test";
import assert from "node:assert/strict";
import type { StreamEvent } from "../../src/api/llm.js";
import type { CompletionOutput, TokenLogprobs } from "../../src/api/request-output.js";
import { ChunkedLogprobs, type TokenSlot } from "../../src/serve/logprobs.js";
import { CHAT_TOKEN, COMPLETION_TOKEN, Sse, type SseResponse } from "../../src/serve/sse.js";

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

// ---- SSE writer (src/serve/sse.ts) ----

/** A ServerResponse stand-in that records the calls Sse makes, in order. */
function recorder() {
  const calls: string[] = [];
  const res = {
    socket: null, writableEnded: false, destroyed: false,
    writeHead: () => { calls.push("writeHead"); return res; },
    flushHeaders: () => { calls.push("flushHeaders"); },
    cork: () => { calls.push("cork"); },
    uncork: () => { calls.push("uncork"); },
    write: (s: string) => { calls.push(`write ${s}`); return true; },
    end: (s: string) => { calls.push(`end ${s}`); res.writableEnded = true; return res; },
  };
  return { calls, res: res as unknown as SseResponse };
}
const nextTurn = () => new Promise<void>((ok) => setImmediate(ok));

test("Sse: the writes of one event-loop turn go out between one cork and one uncork; done() ends without a stale uncork", async () => {
  const { calls, res } = recorder();
  const base = { id: "cmpl-1", object: "text_completion", created: 1, model: "m" };
  const sse = new Sse(res, base);
  sse.choiceJson(COMPLETION_TOKEN.json(0, "a"));
  sse.choice({ index: 1, text: "b", logprobs: null, finish_reason: "length", stop_reason: null });
  sse.send({ ...base, choices: [], usage: { completion_tokens: 2 } });
  assert.deepEqual(calls.map((c) => c.split(" ")[0]), ["writeHead", "flushHeaders", "cork", "write", "write", "write"]);
  await nextTurn();
  assert.equal(calls.at(-1), "uncork");
  sse.choiceJson(COMPLETION_TOKEN.json(0, "c"));
  sse.done();
  await nextTurn();
  assert.deepEqual(calls.slice(7).map((c) => c.split(" ")[0]), ["cork", "write", "end"], "a turn ended by done(): end() flushes, no uncork after it");
  // every event is `data: <json>\n\n` of {...base, choices}; the stream ends with [DONE]
  const events = calls.filter((c) => c.startsWith("write ")).map((c) => c.slice(6));
  for (const e of events) assert.match(e, /^data: .*\n\n$/s);
  const objs = events.map((e) => JSON.parse(e.slice(6, -2)) as Record<string, unknown>);
  assert.deepEqual(objs[0], { ...base, choices: [{ index: 0, text: "a", logprobs: null, finish_reason: null }] });
  assert.deepEqual(objs[1], { ...base, choices: [{ index: 1, text: "b", logprobs: null, finish_reason: "length", stop_reason: null }] });
  assert.deepEqual(objs[2], { ...base, choices: [], usage: { completion_tokens: 2 } });
  assert.deepEqual(objs[3], { ...base, choices: [{ index: 0, text: "c", logprobs: null, finish_reason: null }] });
  assert.equal(calls.at(-1), "end data: [DONE]\n\n");
  sse.send({ late: true }); // after the end: dropped, not an error
  assert.equal(calls.at(-1), "end data: [DONE]\n\n");
});

test("TokenChoice: the pre-built per-token chunk JSON equals JSON.stringify of the same choice object", () => {
  // quotes, backslashes, control characters, U+2028, non-BMP, a lone surrogate (JSON.stringify escapes it), empty
  const texts = ["hello", " \"q\" \\ /", "\n\t\r\u0000\u001f", "\u2028\u2029", "é 日本 🦙", "\ud800", ""];
  for (const index of [0, 1, 17, 4095]) {
    for (const text of texts) {
      assert.equal(COMPLETION_TOKEN.json(index, text), JSON.stringify({ index, text, logprobs: null, finish_reason: null }));
      assert.equal(CHAT_TOKEN.json(index, text), JSON.stringify({ index, delta: { content: text }, logprobs: null, finish_reason: null }));
    }
  }
});

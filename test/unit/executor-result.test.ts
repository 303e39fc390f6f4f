// GenerationResult (awaitable + async-iterable + abort) fed by hand-written worker messages, and
// typed errors across the thread boundary.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { CheckpointError, TllmError, ValidationError } from "../../src/errors.js";
import { fromWire, toWire, type DeltaMsg, type FinalOutput } from "../../src/executor/messages.js";
import { GenerationResult, type StreamOutput } from "../../src/executor/result.js";

const metrics = { numPromptTokens: 2, numCachedTokens: 0, numGeneratedTokens: 2, arrivalTime: 0, firstScheduledTime: 1, firstTokenTime: 1, lastTokenTime: 2, finishTime: 2, numPreemptions: 0 };

function delta(index: number, token: number, text: string, finishReason: DeltaMsg["finishReason"] = null): DeltaMsg {
  return { requestId: 7, index, tokenIds: [token], text, logprobs: null, cumulativeLogprob: -1, finishReason, stopReason: null };
}

function final(outputs: { text: string; tokenIds: number[]; finishReason: "stop" | "length" | "cancelled" }[]): FinalOutput {
  return {
    requestId: 7, prompt: "hi", promptTokenIds: [1, 2], finished: true, promptLogprobs: null, metrics,
    outputs: outputs.map((o, index) => ({ index, cumulativeLogprob: -1, logprobs: null, stopReason: null, ...o })),
  };
}

async function collect(r: GenerationResult): Promise<StreamOutput[]> {
  const out: StreamOutput[] = [];
  for await (const s of r) out.push(s);
  return out;
}

describe("GenerationResult", () => {
  test("streaming: one snapshot per step with diffs; awaiting gives the final output", async () => {
    const r = new GenerationResult(7, "hi", true, () => {});
    r.accepted([1, 2]);
    const got = collect(r);
    r.deltas([delta(0, 10, "a"), delta(1, 20, "x")]);
    r.deltas([delta(0, 11, "b", "length")]);
    r.final(final([{ text: "ab", tokenIds: [10, 11], finishReason: "length" }, { text: "xy", tokenIds: [20, 21], finishReason: "length" }]));
    const snaps = await got;
    assert.deepEqual(snaps.map((s) => s.outputs.map((o) => o.textDiff)), [["a", "x"], ["b", ""], ["", "y"]]);
    assert.deepEqual(snaps[1]!.outputs[0]!.tokenIds, [10, 11]);
    // an earlier snapshot keeps the tokens it had, though read after later steps appended more
    assert.deepEqual(snaps[0]!.outputs.map((o) => o.tokenIds), [[10], [20]]);
    assert.deepEqual({ ...snaps[0]!.outputs[0]! }.tokenIds, [10]);
    assert.deepEqual(snaps[2]!.outputs[1]!.tokenIdsDiff, [21]);
    assert.deepEqual(snaps.map((s) => s.finished), [false, false, true]);
    assert.deepEqual(snaps[0]!.promptTokenIds, [1, 2]);
    const f = await r;
    assert.equal(f.outputs[1]!.text, "xy");
    assert.equal(r.done, true);
  });

  test("non-streaming: the iteration yields the final output once, whole text as the diff", async () => {
    const r = new GenerationResult(7, "hi", false, () => {});
    r.deltas([delta(0, 10, "a")]);
    r.final(final([{ text: "ab", tokenIds: [10, 11], finishReason: "stop" }]));
    const snaps = await collect(r);
    assert.equal(snaps.length, 1);
    assert.equal(snaps[0]!.outputs[0]!.textDiff, "ab");
    assert.deepEqual(snaps[0]!.outputs[0]!.tokenIdsDiff, [10, 11]);
    assert.equal(snaps[0]!.metrics?.numPromptTokens, 2);
  });

  test("errors reject the await and end the iteration with the same error", async () => {
    const r = new GenerationResult(7, null, true, () => {});
    r.deltas([delta(0, 10, "a")]);
    const err = new ValidationError("topK", -1, "bad");
    r.fail(err);
    await assert.rejects(r.promise, (e) => e === err);
    const seen: StreamOutput[] = [];
    await assert.rejects(async () => {
      for await (const s of r) seen.push(s);
    }, (e) => e === err);
    assert.equal(seen.length, 1, "snapshots before the error are still delivered");
  });

  test("abort() calls back with the request id until the result is done", () => {
    const calls: number[] = [];
    const r = new GenerationResult(7, null, false, (id) => calls.push(id));
    r.abort();
    r.final(final([{ text: "", tokenIds: [], finishReason: "cancelled" }]));
    r.abort();
    assert.deepEqual(calls, [7]);
  });
});

describe("errors on the wire", () => {
  test("ValidationError keeps its class, field, value and message", () => {
    const e = fromWire(structuredClone(toWire(new ValidationError("stopTokenIds", 40000, "out of range"))), "test");
    assert.ok(e instanceof ValidationError);
    assert.equal(e.field, "stopTokenIds");
    assert.equal(e.value, 40000);
    assert.equal(e.message, "invalid stopTokenIds=40000: out of range");
  });

  test("CheckpointError keeps file and field; other errors become TllmError with the message", () => {
    const c = fromWire(structuredClone(toWire(new CheckpointError("/m.gguf", "path", "cannot stat"))), "test");
    assert.ok(c instanceof CheckpointError);
    assert.equal(c.file, "/m.gguf");
    assert.equal(c.message, "/m.gguf: path: cannot stat");
    const o = fromWire(structuredClone(toWire(new RangeError("too big"))), "test");
    assert.ok(o instanceof TllmError);
    assert.equal(o.name, "RangeError");
    assert.equal(o.message, "too big");
  });
});

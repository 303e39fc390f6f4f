// Guided decoding on XGrammar through our loader shim: TokenizerInfo from token bytes (byte-level
// encoding, special tokens hidden, stop ids only where the grammar may end), the Sampler's mask
// step, the per-request matcher (accept / terminate / rollback) and guide validation.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createSamplingParams, type SamplingParamsInput } from "../../src/api/sampling-params.js";
import { Sampler, type SamplingRow } from "../../src/sampling/sampler.js";
import { rngKeyForSeed } from "../../src/sampling/rng.js";
import { ValidationError } from "../../src/errors.js";
import {
  applyTokenBitmask, byteLevelString, computeBitmasks, computeBitmasksSync, GuidedCompiler, GuidedDecoder, GuidedState, guideKey, isAllowed, type GuidedVocab,
} from "../../src/sampling/guided/index.js";

const enc = new TextEncoder();
// id: 0 EOS (special, stop), 1 control token (special, not a stop), then text pieces; 24/25 are the
// two bytes of "é" as separate tokens (neither is valid UTF-8 alone); 31-36 probe the guards.
const PIECES: (string | Uint8Array)[] = [
  "<eos>", "<ctl>", "{", "}", "\"", ":", " ", ",", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9",
  "a", "b", "true", "false", "[", "]", new Uint8Array([0xc3]), new Uint8Array([0xa9]), "null", "-", "\"a\"", ": ", ", ",
  // 31..36: a control byte, a byte never in UTF-8, the lead E0, continuation bytes 80 / A0 / BF
  new Uint8Array([0x18]), new Uint8Array([0xc1]), new Uint8Array([0xe0]), new Uint8Array([0x80]), new Uint8Array([0xa0]), new Uint8Array([0xbf]),
];
const TEXT = PIECES.map((p) => (typeof p === "string" ? enc.encode(p) : p));
const VOCAB: GuidedVocab = {
  vocabSize: PIECES.length, eosTokenIds: [0], specialTokenIds: new Set([0, 1]),
  tokenBytes: (id) => TEXT[id]!,
};
const MODEL_VOCAB = 40; // padded logits rows past the tokenizer: never allowed

const compilerP = GuidedCompiler.create(VOCAB, MODEL_VOCAB);
const allowedIds = (m: Int32Array): number[] => [...Array(MODEL_VOCAB).keys()].filter((t) => isAllowed(m, t));
const decode = (ids: number[]): string => new TextDecoder().decode(Buffer.concat(ids.map((t) => TEXT[t]!)));

function params(extra: SamplingParamsInput = {}) {
  return createSamplingParams({ temperature: 1, seed: 7, ...extra }, undefined);
}

/** Samples up to `max` tokens with random logits under the guide; returns ids (stop excluded) and whether it stopped. */
async function walk(guide: SamplingParamsInput["guidedDecoding"], seed: number, max = 60): Promise<{ ids: number[]; stopped: boolean }> {
  const state = await GuidedState.create(await compilerP, guide!);
  const sampler = new Sampler();
  const p = params({ seed });
  const ids: number[] = [];
  const logits = new Float32Array(MODEL_VOCAB);
  try {
    for (let step = 0; step < max; step++) {
      for (let t = 0; t < MODEL_VOCAB; t++) logits[t] = Math.sin(seed * 13.7 + step * 3.1 + t * 1.9) * 3;
      const [mask] = await computeBitmasks([state]);
      const row: SamplingRow = { params: p, rng: rngKeyForSeed(seed), promptTokenIds: [], outputTokenIds: ids, tokenBitmask: mask };
      const [{ token }] = sampler.sample(logits, [row], MODEL_VOCAB);
      assert.ok(isAllowed(mask!, token), `sampled ${token} outside the mask`);
      assert.ok(state.accept(token));
      if (token === 0) return { ids, stopped: state.isTerminated() };
      ids.push(token);
    }
    return { ids, stopped: false };
  } finally {
    state.dispose();
  }
}

test("byte-level encoding is GPT-2's alphabet (space -> Ġ, 0xC3 -> Ã)", () => {
  assert.equal(byteLevelString(enc.encode(" a")), "\u0120a");
  assert.equal(byteLevelString(new Uint8Array([0xc3])), "\u00c3");
  assert.equal(byteLevelString(new Uint8Array([0x0a])), "\u010a");
});

test("applyTokenBitmask: disallowed -> -inf, allowed untouched, past-mask ids banned; all-banned falls back to uniform over allowed", () => {
  const row = Float32Array.from({ length: 40 }, (_, i) => i);
  const mask = new Int32Array([-1 ^ (1 << 3), 1 << 2]); // ids 0-31 but 3, and 34; 64 > 40 words cover all
  assert.equal(applyTokenBitmask(row, 40, mask), 32);
  for (let t = 0; t < 40; t++) assert.equal(row[t], t === 3 || (t >= 32 && t !== 34) ? -Infinity : t, `id ${t}`);
  const banned = new Float32Array(40).fill(-Infinity);
  assert.equal(applyTokenBitmask(banned, 40, new Int32Array([0b101, 0])), 2);
  assert.deepEqual([...banned].map((x, t) => (x === 0 ? t : -1)).filter((t) => t >= 0), [0, 2]);
});

test("greedy obeys the mask: picks the best allowed token, not the global argmax", () => {
  const logits = Float32Array.from({ length: 40 }, (_, i) => (i === 5 ? 100 : i === 9 ? 50 : i * 0.1));
  const mask = new Int32Array(2);
  mask[0] = (1 << 9) | (1 << 20);
  const p = createSamplingParams({ temperature: 0 }, undefined);
  const row: SamplingRow = { params: p, rng: rngKeyForSeed(1), promptTokenIds: [], outputTokenIds: [], tokenBitmask: mask, numLogprobs: 0 };
  // logprobs stay those of the raw distribution (the mask is a processing step)
  const lse = Math.log([...logits].reduce((s, x) => s + Math.exp(x - 100), 0)) + 100;
  const [r] = new Sampler().sample(logits, [row], 40);
  assert.equal(r.token, 9);
  assert.ok(Math.abs(r.logprob - (50 - lse)) < 1e-4, `logprob ${r.logprob}`);
});

test("JSON schema: 20 random walks all end with EOS and parse to schema-valid objects; control token never allowed", async () => {
  const schema = { type: "object", properties: { a: { type: "integer", minimum: 0, maximum: 99 }, b: { type: "boolean" } }, required: ["a", "b"] };
  for (let seed = 1; seed <= 20; seed++) {
    const { ids, stopped } = await walk({ json: schema }, seed);
    assert.ok(stopped, `seed ${seed}: no EOS within 60 tokens: ${decode(ids)}`);
    assert.ok(!ids.includes(1));
    const v = JSON.parse(decode(ids)) as { a: number; b: boolean };
    assert.deepEqual(Object.keys(v).sort(), ["a", "b"]);
    assert.ok(Number.isInteger(v.a) && v.a >= 0 && v.a <= 99, `a ${v.a}`);
    assert.equal(typeof v.b, "boolean");
  }
});

test("regex over split UTF-8 bytes: '(é)+' is built from the two byte tokens", async () => {
  const state = await GuidedState.create(await compilerP, { regex: "(é)+" });
  const [m0] = await computeBitmasks([state]);
  assert.deepEqual(allowedIds(m0!), [24], "only the first byte of é can start");
  assert.ok(state.accept(24));
  assert.deepEqual(allowedIds((await state.nextBitmask())), [25]);
  assert.ok(state.accept(25));
  assert.deepEqual(allowedIds((await state.nextBitmask())), [0, 24], "complete: EOS or another é");
  assert.equal(state.accept(18), false, "a rejected token leaves the state as it was");
  assert.deepEqual(allowedIds((await state.nextBitmask())), [0, 24]);
  state.rollback(1);
  assert.deepEqual(allowedIds((await state.nextBitmask())), [25], "rollback restores the mid-character state");
  assert.throws(() => state.rollback(5), ValidationError);
  state.dispose();
});

test("complete grammar allows only the stop ids; the request's own stop ids replace EOS", async () => {
  const c = await compilerP;
  const s = await GuidedState.create(c, { grammar: 'root ::= "ab"' });
  assert.ok(s.accept(18) && s.accept(19));
  assert.deepEqual(allowedIds(await s.nextBitmask()), [0]);
  assert.ok(s.accept(0) && s.isTerminated());
  const [none] = await computeBitmasks([s]);
  assert.equal(none, undefined, "a terminated row gets no mask");
  s.dispose();
  const t = await GuidedState.create(c, { grammar: 'root ::= "ab"' }, [7]);
  assert.ok(t.accept(18) && t.accept(19));
  assert.deepEqual(allowedIds(await t.nextBitmask()), [7]);
  t.dispose();
});

test("computeBitmasks leaves rows without a guide undefined; jsonObject (XGrammar's builtin JSON grammar, as TRT-LLM) starts with { or [", async () => {
  const s = await GuidedState.create(await compilerP, { jsonObject: true });
  const masks = await computeBitmasks([undefined, s, undefined]);
  assert.equal(masks[0], undefined);
  assert.equal(masks[2], undefined);
  assert.deepEqual(allowedIds(masks[1]!), [2, 22]);
  s.dispose();
});

test("guide errors are ValidationErrors naming the field", async () => {
  const c = await compilerP;
  assert.throws(() => guideKey({ json: "{}", regex: "a" }), ValidationError);
  await assert.rejects(c.compile({ json: "{not json" }), (e: unknown) => e instanceof ValidationError && e.message.includes("guidedDecoding.json"));
  await assert.rejects(c.compile({ grammar: "root ::= (" }), (e: unknown) => e instanceof ValidationError && e.message.includes("guidedDecoding.grammar"));
  assert.equal(await c.compile({ json: { type: "integer" } }), await c.compile({ json: '{"type":"integer"}' }), "object and string forms share a cache entry");
  assert.throws(() => params({ guidedDecoding: { regex: 5 as unknown as string } }), ValidationError);
  assert.throws(() => params({ guidedDecoding: { jsonObject: "yes" as unknown as boolean } }), ValidationError);
  assert.throws(() => params({ guidedDecoding: { json: "{bad" } }), ValidationError);
  assert.throws(() => params({ guidedDecoding: { json: "{}", grammar: "root ::= \"a\"" } }), ValidationError);
  assert.ok(params({ guidedDecoding: { json: { type: "object" } } }).guidedDecoding);
  await assert.rejects(GuidedCompiler.create(VOCAB, 10), ValidationError, "model vocab smaller than the tokenizer's");
});

test("guards over XGrammar 0.1.27 gaps: no control bytes in compact JSON, no never-UTF-8 bytes, no overlong E0 80", async () => {
  const c = await compilerP;
  const s = await GuidedState.create(c, { json: { type: "string", maxLength: 4 } });
  assert.ok(s.accept(4));
  const inString = allowedIds(await s.nextBitmask());
  assert.ok(!inString.includes(31), "raw 0x18 inside a JSON string");
  assert.ok(!inString.includes(32), "0xC1 is never valid UTF-8");
  assert.ok(inString.includes(33) && inString.includes(18), `string content allowed: ${inString}`);
  assert.ok(s.accept(33));
  assert.deepEqual(allowedIds(await s.nextBitmask()), [25, 35, 36], "after E0 only A0..BF (A9, A0, BF; E0 80 would be overlong)");
  assert.ok(s.accept(35));
  assert.deepEqual(allowedIds(await s.nextBitmask()), [25, 34, 35, 36], "third byte: any continuation");
  s.rollback(1);
  assert.deepEqual(allowedIds(await s.nextBitmask()), [25, 35, 36], "rollback restores the pending lead");
  s.dispose();
  const r = await GuidedState.create(c, { regex: "[^a]+" });
  const open = allowedIds(await r.nextBitmask());
  assert.ok(open.includes(31), "regex guides keep control bytes (only JSON bans them)");
  assert.ok(!open.includes(32));
  r.dispose();
});

test("masked sampling draws from the softmax renormalized over the allowed tokens (few-token top-k path and whole-vocabulary path)", () => {
  const V = 3000;
  const logits = Float32Array.from({ length: V }, (_, t) => Math.sin(t * 0.37) * 2);
  const few = [5, 77, 1024, 2047, 2999];
  const many = [...Array(2100).keys()].map((i) => i + 400); // > 2048 allowed: whole-vocabulary path
  for (const allowed of [few, many]) {
    const mask = new Int32Array(Math.ceil(V / 32));
    for (const t of allowed) mask[t >>> 5]! |= 1 << (t & 31);
    const T = 0.7;
    const z = allowed.reduce((s, t) => s + Math.exp(logits[t]! / T), 0);
    const probe = allowed.slice(0, 5);
    const expect = probe.map((t) => Math.exp(logits[t]! / T) / z);
    const counts = new Map<number, number>();
    const sampler = new Sampler();
    const p = params({ temperature: T, seed: 3 });
    const N = 20000;
    const row = new Float32Array(V);
    for (let i = 0; i < N; i++) {
      row.set(logits);
      const [r] = sampler.sample(row, [{ params: p, rng: rngKeyForSeed(3, i), promptTokenIds: [], outputTokenIds: [], tokenBitmask: mask }], V);
      assert.ok(isAllowed(mask, r.token));
      counts.set(r.token, (counts.get(r.token) ?? 0) + 1);
    }
    probe.forEach((t, j) => {
      const q = expect[j]!, sd = Math.sqrt((q * (1 - q)) / N);
      const got = (counts.get(t) ?? 0) / N;
      assert.ok(Math.abs(got - q) <= 5 * sd + 1e-4, `token ${t}: ${got} vs ${q} (5 sd = ${5 * sd})`); // binomial, 5 sd
    });
  }
});

test("GuidedDecoder: per-sequence registry (unguided rows untouched), fork replays state, remove frees", async () => {
  const d = new GuidedDecoder(await compilerP);
  await d.add("a", { grammar: 'root ::= "ab" | "ba"' });
  await d.add("u", undefined);
  await d.add("v", { json: undefined });
  assert.equal(d.size, 1, "no guide, no state");
  let [ma, mu] = await d.masks(["a", "u"]);
  assert.deepEqual(d.masksSync(["a", "u"]), [ma, mu]);
  assert.deepEqual(allowedIds(ma!), [18, 19]);
  assert.equal(mu, undefined);
  assert.ok(d.accept("a", 19) && d.accept("u", 5));
  await d.fork("a", "a/1");
  assert.deepEqual((await d.masks(["a", "a/1"])).map((m) => allowedIds(m!)), [[18], [18]]);
  assert.ok(d.accept("a/1", 18));
  [ma] = await d.masks(["a"]);
  assert.deepEqual(allowedIds(ma!), [18], "the fork advanced alone");
  assert.equal(d.accept("a", 19), false, "the grammar rejects b after b");
  await assert.rejects(d.add("a", { jsonObject: true }), ValidationError);
  d.remove("a");
  d.remove("a/1");
  assert.equal(d.size, 0);
  assert.equal(d.has("a"), false);
});

test("synchronous masks (binding exported by the loader shim) equal the async API's at every step", async () => {
  const schema = { type: "object", properties: { a: { type: "array", items: { type: "integer" }, maxItems: 3 }, b: { type: "string", maxLength: 3 } }, required: ["a"] };
  const s = await GuidedState.create(await compilerP, { json: schema });
  let steps = 0;
  for (let i = 0; i < 40 && !s.isTerminated(); i++) {
    const a = await s.nextBitmask();
    const [b] = computeBitmasksSync([s]);
    assert.deepEqual(b, a, `step ${i}`);
    const allowed = allowedIds(a);
    assert.ok(s.accept(allowed[(i * 7) % allowed.length]!));
    steps++;
  }
  assert.ok(steps >= 3);
  s.dispose();
});

test("createSync / addSync need a prepared guide and then behave as the async path", async () => {
  const c = await compilerP;
  const g = { grammar: 'root ::= "a" ("b" | "ab")' };
  const d = new GuidedDecoder(c);
  assert.throws(() => d.addSync("x", g), ValidationError, "not compiled yet");
  await d.prepare(g);
  d.addSync("x", g, [7]);
  const s = await GuidedState.create(c, g, [7]);
  for (const t of [18, 19]) {
    const [mx] = d.masksSync(["x"]);
    assert.deepEqual(allowedIds(mx!), allowedIds(await s.nextBitmask()));
    assert.ok(d.accept("x", t) && s.accept(t));
  }
  assert.deepEqual(allowedIds(d.masksSync(["x"])[0]!), [7], "complete: only the request's stop id");
  d.remove("x");
  s.dispose();
});

// Logprobs over `tllm serve` with the official `openai` client: streamed logprobs in the
// completions and chat shapes agree token for token with the non-streamed ones (greedy, reference
// backend: exact and batch-invariant, so values are compared exactly), each chunk carries the
// logprobs of the tokens whose text it carries, and text held back by a stop string is never sent
// while its tokens' logprobs still arrive (with the final chunk).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { fixtureModel, startServer, writeServeFiles, type ServerProc } from "./serve-helpers.js";

const NAME = "tiny";
let server: ServerProc;
let client: OpenAI;

before(async () => {
  const model = await fixtureModel();
  const files = writeServeFiles(join(tmpdir(), `tllm-serve-lp-${process.pid}`));
  server = await startServer(model, ["--config", files.config, "--chat-template", files.template, "--served-model-name", NAME]);
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
});

after(async () => {
  assert.equal(await server?.stop(), 0, "server exits 0 on SIGTERM");
});

// ignore_eos keeps lengths exact (a random model may sample EOS)
const extra = { ignore_eos: true } as Record<string, unknown>;

interface CompletionLp { tokens: string[]; token_logprobs: number[]; top_logprobs: Record<string, number>[]; text_offset: number[] }
interface StreamedChoice { text: string; chunks: { text: string; lp: CompletionLp | null; finish: string | null }[] }

/** A completions stream, per choice index: its chunks in order. */
async function streamCompletion(body: Record<string, unknown>): Promise<Map<number, StreamedChoice>> {
  const s = await client.completions.create({ model: NAME, ...body, stream: true } as OpenAI.CompletionCreateParamsStreaming);
  const out = new Map<number, StreamedChoice>();
  for await (const c of s) {
    for (const ch of c.choices) {
      const e = out.get(ch.index) ?? { text: "", chunks: [] };
      out.set(ch.index, e);
      e.text += ch.text;
      e.chunks.push({ text: ch.text, lp: ch.logprobs as CompletionLp | null, finish: ch.finish_reason ?? null });
    }
  }
  return out;
}

/** The chunks' logprobs joined into one object of the non-streaming shape. */
function joinLp(chunks: StreamedChoice["chunks"]): CompletionLp {
  const j: CompletionLp = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  for (const c of chunks) {
    if (!c.lp) continue;
    j.tokens.push(...c.lp.tokens);
    j.token_logprobs.push(...c.lp.token_logprobs);
    j.top_logprobs.push(...c.lp.top_logprobs);
    j.text_offset.push(...c.lp.text_offset);
  }
  return j;
}

describe("completions: logprobs with stream=true", () => {
  test("greedy: the chunks' logprobs joined equal the non-streamed logprobs exactly; every text chunk carries its tokens", async () => {
    const body = { prompt: "The quick brown fox", max_tokens: 12, temperature: 0, logprobs: 3, ...extra };
    const plain = await client.completions.create({ model: NAME, ...body });
    const got = (await streamCompletion(body)).get(0)!;
    assert.equal(got.text, plain.choices[0]!.text);
    assert.deepEqual(joinLp(got.chunks), plain.choices[0]!.logprobs);
    assert.equal(joinLp(got.chunks).tokens.length, 12);
    for (const c of got.chunks.slice(0, -1)) {
      assert.ok(c.text !== "" && c.lp !== null && c.lp.tokens.length >= 1, `a text chunk without its tokens: ${JSON.stringify(c)}`);
    }
    assert.equal(got.chunks.at(-1)!.finish, "length");
  });

  test("stop string: held text is never sent, its tokens' logprobs come with the final chunk; all equal the non-streamed ones", async () => {
    const free = await client.completions.create({ model: NAME, prompt: "def main():", max_tokens: 16, temperature: 0, ...extra });
    const text = free.choices[0]!.text;
    const at = Math.floor(text.length / 2);
    const stop = text.slice(at, at + 3);
    assert.ok(stop.trim().length > 0 && text.indexOf(stop) > 0, `usable stop string from ${JSON.stringify(text)}`);
    const body = { prompt: "def main():", max_tokens: 16, temperature: 0, logprobs: 2, stop: [stop], ...extra };
    const plain = await client.completions.create({ model: NAME, ...body });
    assert.equal(plain.choices[0]!.finish_reason, "stop");
    const got = (await streamCompletion(body)).get(0)!;
    assert.equal(got.text, text.slice(0, text.indexOf(stop)));
    assert.ok(got.chunks.every((c) => !c.text.includes(stop)), "no chunk sends the stop string");
    assert.deepEqual(joinLp(got.chunks), plain.choices[0]!.logprobs);
    const last = got.chunks.at(-1)!;
    assert.equal(last.finish, "stop");
    // the tokens that completed the stop string are in the stream (the joined logprobs cover all of
    // token_ids), so more tokens than the emitted text alone accounts for went out with the final chunk
    assert.equal(joinLp(got.chunks).tokens.length, (plain.choices[0] as unknown as { token_ids: number[] }).token_ids.length);
    assert.ok(last.lp !== null && last.lp.tokens.length >= 1, "the final chunk carries the stop-string tokens");
  });

  test("n=2 sampled with a seed: each choice's streamed logprobs equal its non-streamed ones", async () => {
    const body = { prompt: "Once upon a time", max_tokens: 6, n: 2, temperature: 1, seed: 5, logprobs: 1, ...extra };
    const plain = await client.completions.create({ model: NAME, ...body });
    const got = await streamCompletion(body);
    assert.deepEqual([...got.keys()].sort(), [0, 1]);
    for (const c of plain.choices) {
      assert.equal(got.get(c.index)!.text, c.text, `choice ${c.index}`);
      assert.deepEqual(joinLp(got.get(c.index)!.chunks), c.logprobs, `choice ${c.index}`);
    }
  });
});

describe("chat: logprobs with stream=true", () => {
  const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: "user", content: "Tell me a story" }];

  /** Per chunk: content and logprob entries (role / finish chunks included). */
  async function streamChat(body: Record<string, unknown>) {
    const s = await client.chat.completions.create({ model: NAME, messages, ...body, stream: true } as OpenAI.ChatCompletionCreateParamsStreaming);
    const chunks: { content: string; lp: OpenAI.ChatCompletionTokenLogprob[] | null; finish: string | null }[] = [];
    for await (const c of s) {
      for (const ch of c.choices) chunks.push({ content: ch.delta.content ?? "", lp: ch.logprobs?.content ?? null, finish: ch.finish_reason ?? null });
    }
    return chunks;
  }

  test("greedy: content entries joined equal the non-streamed ones; each chunk's token bytes decode to its content", async () => {
    const body = { max_tokens: 10, temperature: 0, logprobs: true, top_logprobs: 2, ...extra };
    const plain = await client.chat.completions.create({ model: NAME, messages, ...body });
    const chunks = await streamChat(body);
    assert.equal(chunks.map((c) => c.content).join(""), plain.choices[0]!.message.content);
    assert.deepEqual(chunks.flatMap((c) => c.lp ?? []), plain.choices[0]!.logprobs!.content);
    let first = true;
    for (const c of chunks) {
      if (c.content === "") continue;
      assert.ok(c.lp && c.lp.length >= 1, `content chunk ${JSON.stringify(c.content)} without logprobs`);
      const bytes = Buffer.concat(c.lp.map((e) => Buffer.from(e.bytes!))).toString("utf8");
      // SentencePiece drops the first token's leading space from the text
      assert.equal(first ? bytes.trimStart() : bytes, first ? c.content.trimStart() : c.content);
      first = false;
    }
  });

  test("stop string: not sent; the stop-string tokens' logprobs come with the final chunk", async () => {
    const free = await client.chat.completions.create({ model: NAME, messages, max_tokens: 16, temperature: 0, ...extra });
    const text = free.choices[0]!.message.content!;
    const at = Math.floor(text.length / 2);
    const stop = text.slice(at, at + 3);
    assert.ok(stop.trim().length > 0 && text.indexOf(stop) > 0, `usable stop string from ${JSON.stringify(text)}`);
    const body = { max_tokens: 16, temperature: 0, logprobs: true, stop: [stop], ...extra };
    const plain = await client.chat.completions.create({ model: NAME, messages, ...body });
    const chunks = await streamChat(body);
    assert.equal(chunks.map((c) => c.content).join(""), text.slice(0, text.indexOf(stop)));
    assert.ok(chunks.every((c) => !c.content.includes(stop)));
    assert.deepEqual(chunks.flatMap((c) => c.lp ?? []), plain.choices[0]!.logprobs!.content);
    const last = chunks.at(-1)!;
    assert.equal(last.finish, "stop");
    // the token that completed the stop string went out with the final chunk (a token whose text
    // only partly precedes the stop string goes with the chunk that sent that part)
    const bytes = (cs: typeof chunks) => Buffer.concat(cs.flatMap((c) => c.lp ?? []).map((e) => Buffer.from(e.bytes!))).toString("utf8");
    assert.ok(last.lp !== null && last.lp.length >= 1, "the final chunk carries tokens");
    assert.ok(!bytes(chunks.slice(0, -1)).includes(stop), `tokens before the final chunk: ${JSON.stringify(bytes(chunks.slice(0, -1)))}`);
    assert.ok(bytes(chunks).includes(stop), `all tokens ${JSON.stringify(bytes(chunks))} hold the stop string ${JSON.stringify(stop)}`);
  });
});

describe("completions: echo with logprobs (prompt logprobs)", () => {
  const tokenize = async (prompt: string): Promise<number[]> =>
    (await (await fetch(`${server.url}/tokenize`, { method: "POST", body: JSON.stringify({ prompt }) })).json() as { tokens: number[] }).tokens;

  test("prompt tokens first with a null first logprob, then the completion's; the completion part equals echo=false's", async () => {
    const prompt = "Hello, my name is";
    const ids = await tokenize(prompt);
    const body = { prompt, max_tokens: 5, temperature: 0, logprobs: 2, ...extra };
    const echo = await client.completions.create({ model: NAME, ...body, echo: true });
    const plain = await client.completions.create({ model: NAME, ...body });
    const lp = echo.choices[0]!.logprobs!, P = ids.length;
    assert.equal(echo.choices[0]!.text, prompt + plain.choices[0]!.text);
    assert.equal(lp.tokens!.length, P + 5);
    assert.equal(lp.token_logprobs![0], null);
    assert.equal(lp.top_logprobs![0], null);
    for (let i = 1; i < P; i++) {
      const v = lp.token_logprobs![i]!, top = Object.values(lp.top_logprobs![i]!);
      assert.ok(typeof v === "number" && v <= 0, `prompt token ${i}: ${v}`);
      assert.ok(top.length >= 1 && top.length <= 2 && top.every((x) => x <= 0) && Math.max(...top) >= v - 1e-9, `prompt token ${i}: ${JSON.stringify(lp.top_logprobs![i])}`);
    }
    const own = plain.choices[0]!.logprobs!;
    assert.deepEqual(lp.tokens!.slice(P), own.tokens);
    // values within 1e-5: with prompt logprobs the executor computes the logits of every prompt row
    // in one multi-row output projection, the plain request only the last row's (another matmul
    // shape: differences of ~1e-6 seen)
    const near = (a: number, b: number) => Math.abs(a - b) <= 1e-5;
    lp.token_logprobs!.slice(P).forEach((v, j) => assert.ok(near(v!, own.token_logprobs![j]!), `token ${j}: ${v} vs ${own.token_logprobs![j]}`));
    lp.top_logprobs!.slice(P).forEach((top, j) => {
      const o = own.top_logprobs![j]!;
      assert.deepEqual(Object.keys(top!).sort(), Object.keys(o).sort());
      for (const k of Object.keys(o)) assert.ok(near(top![k]!, o[k]!), `top ${j} ${k}`);
    });
    // offsets run on through the prompt tokens into the completion's
    lp.text_offset!.forEach((o, i) => assert.equal(o, i === 0 ? 0 : lp.text_offset![i - 1]! + lp.tokens![i - 1]!.length));
  });

  test("the prompt logprob of a token equals its logprob when the model generated it (greedy, same positions)", async () => {
    const first = await client.completions.create({ model: NAME, prompt: "Roses are red", max_tokens: 4, temperature: 0, logprobs: 1, ...extra });
    const gen = (first.choices[0] as unknown as { token_ids: number[] }).token_ids;
    const ids = [...await tokenize("Roses are red"), ...gen];
    const scored = await client.completions.create({ model: NAME, prompt: ids, max_tokens: 1, temperature: 0, logprobs: 1, echo: true, ...extra });
    const got = scored.choices[0]!.logprobs!.token_logprobs!.slice(ids.length - 4, ids.length);
    const want = first.choices[0]!.logprobs!.token_logprobs!;
    // prefill rows vs decode rows of the same positions: the reference backend is batch-invariant,
    // but allow 1e-4 for a row computed inside a multi-row matmul
    got.forEach((g, j) => assert.ok(Math.abs(g! - want[j]!) <= 1e-4, `token ${j}: prompt ${g} vs generated ${want[j]}`));
  });

  test("streamed: the echo chunk carries the prompt's logprobs; all chunks joined equal the non-streamed logprobs", async () => {
    const body = { prompt: "In the beginning", max_tokens: 6, n: 2, temperature: 1, seed: 3, logprobs: 1, echo: true, ...extra };
    const plain = await client.completions.create({ model: NAME, ...body });
    const got = await streamCompletion(body);
    for (const c of plain.choices) {
      const s = got.get(c.index)!;
      assert.equal(s.text, c.text, `choice ${c.index}`);
      assert.equal(s.chunks[0]!.text, "In the beginning");
      assert.equal(s.chunks[0]!.lp!.token_logprobs[0], null);
      assert.deepEqual(joinLp(s.chunks), c.logprobs, `choice ${c.index}`);
    }
  });
});

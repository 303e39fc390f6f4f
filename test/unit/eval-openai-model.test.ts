// EvalModel over an OpenAI-compatible server: a local HTTP server echoes prompt logprobs with
// known values (position i has ln p = -0.1 i), so every sum below is computed by hand.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createOpenAiEvalModel } from "../../src/eval/openai-model.js";
import { ValidationError } from "../../src/errors.js";

const chars = async (s: string): Promise<number[]> => [...s].map((c) => c.charCodeAt(0));

async function withServer(fn: (url: string, bodies: { path: string; body: Record<string, unknown> }[]) => Promise<void>): Promise<void> {
  const bodies: { path: string; body: Record<string, unknown> }[] = [];
  const srv = createServer((req, res) => {
    let raw = "";
    req.on("data", (c: Buffer) => (raw += c.toString()));
    req.on("end", () => {
      const body = JSON.parse(raw) as Record<string, unknown>;
      bodies.push({ path: req.url!, body });
      res.setHeader("content-type", "application/json");
      if (req.url === "/tokenize") return void res.end(JSON.stringify({ tokens: [...(body.prompt as string)].map((c) => c.charCodeAt(0)) }));
      if (req.url === "/v1/chat/completions") return void res.end(JSON.stringify({ choices: [{ message: { role: "assistant", content: '{"ok":true}' } }] }));
      if (body.echo) {
        const ids = body.prompt as number[];
        const tokens = [...ids.map((id) => String.fromCharCode(id)), "<gen>"];
        const lps = tokens.map((_, i) => (i === 0 ? null : -0.1 * i));
        // the model would rather say "y" wherever the prompt has "x"
        const tops = tokens.map((t, i) => (i === 0 ? null : t === "x" ? { y: -0.01 } : { [t]: lps[i]! }));
        return void res.end(JSON.stringify({ choices: [{ text: "<gen>", logprobs: { tokens, token_logprobs: lps, top_logprobs: tops } }] }));
      }
      if (body.prompt === "fail") return void res.writeHead(400).end('{"error":{"message":"bad prompt"}}');
      res.end(JSON.stringify({ choices: [{ text: " 42" }] }));
    });
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  try {
    await fn(`http://127.0.0.1:${(srv.address() as AddressInfo).port}`, bodies);
  } finally {
    await new Promise<void>((r) => srv.close(() => r()));
  }
}

const near = (a: number, b: number): void => assert.ok(Math.abs(a - b) < 1e-9, `${a} vs ${b}`);

test("loglikelihood sums the echoed continuation logprobs (context's trailing space moves over)", async () => {
  await withServer(async (url, bodies) => {
    const m = createOpenAiEvalModel({ baseUrl: `${url}/v1`, model: "m", tokenize: chars });
    const r = await m.loglikelihood("ab ", "cd"); // ctx "ab" (2 tokens), whole "ab cd": positions 2, 3, 4
    near(r.logprob, -(0.2 + 0.3 + 0.4));
    assert.equal(r.isGreedy, true);
    assert.deepEqual(bodies[0], { path: "/v1/completions", body: { model: "m", prompt: [97, 98, 32, 99, 100], max_tokens: 1, temperature: 0, logprobs: 1, echo: true } });
    const g = await m.loglikelihood("q:", " x"); // positions 2, 3; "x" is not the top token
    near(g.logprob, -(0.2 + 0.3));
    assert.equal(g.isGreedy, false);
    await assert.rejects(m.loglikelihood("ab", ""), (e: unknown) => e instanceof ValidationError && e.field === "continuation");
  });
});

test("without a local tokenizer the server's /tokenize is used", async () => {
  await withServer(async (url, bodies) => {
    const m = createOpenAiEvalModel({ baseUrl: url, model: "m" });
    assert.deepEqual(await m.tokenize("hi"), [104, 105]);
    assert.equal(bodies[0]!.path, "/tokenize");
  });
});

test("generate: completions for strings, chat with response_format for messages and schemas", async () => {
  await withServer(async (url, bodies) => {
    const m = createOpenAiEvalModel({ baseUrl: url, model: "m", tokenize: chars });
    assert.equal(await m.generate("Q: 6*7?\nA:", { maxTokens: 8, stop: ["\n"] }), " 42");
    assert.deepEqual(bodies[0]!.body, { model: "m", max_tokens: 8, temperature: 0, stop: ["\n"], prompt: "Q: 6*7?\nA:" });
    const schema = { type: "object" };
    assert.equal(await m.generate([{ role: "user", content: "ok?" }], { maxTokens: 16, jsonSchema: schema }), '{"ok":true}');
    assert.deepEqual(bodies[1], { path: "/v1/chat/completions", body: { model: "m", max_tokens: 16, temperature: 0,
      response_format: { type: "json_schema", json_schema: { name: "eval", schema } }, messages: [{ role: "user", content: "ok?" }] } });
    await assert.rejects(m.generate("fail", { maxTokens: 1 }), /HTTP 400: .*bad prompt/);
  });
});

test("logprobsOfTokens gives n - 1 logprobs; full distributions are refused", async () => {
  await withServer(async (url) => {
    const m = createOpenAiEvalModel({ baseUrl: url, model: "m", tokenize: chars });
    const r = await m.logprobsOfTokens([65, 66, 67]);
    assert.equal(r.logprobs.length, 2);
    near(r.logprobs[0]!, -0.1);
    near(r.logprobs[1]!, -0.2);
    await assert.rejects(m.logprobsOfTokens([65, 66], { distributions: true }), (e: unknown) => e instanceof ValidationError && e.field === "distributions");
  });
  assert.throws(() => createOpenAiEvalModel({ baseUrl: "localhost:8000", model: "m" }), (e: unknown) => e instanceof ValidationError && e.field === "baseUrl");
});

// `tllm serve` as a real process, driven by the official `openai` npm client: completions and chat,
// streaming and not, n, logprobs, stop strings, usage vs /tokenize, greedy equality with the
// in-process LLM (sequential and under 64 concurrent streams), /metrics counters, and structured
// output / forced tool calls when the engine enforces guided decoding. The reference backend
// (exact and batch-invariant) is used on both sides, so token equality is exact.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { LLM } from "../../src/api/llm.js";
import { fixtureModel, metric, post, scrape, startServer, writeServeFiles, type ServerProc } from "./serve-helpers.js";

const NAME = "tiny";
const PROMPTS = ["The quick brown fox", "Once upon a time", "1 2 3 4", "Hello, my name is", "In the beginning", "def main():", "Paris is", "Roses are red"];
let server: ServerProc;
let client: OpenAI;
let llm: LLM;
let guided = false;

before(async () => {
  const model = await fixtureModel();
  const files = writeServeFiles(join(tmpdir(), `tllm-serve-${process.pid}`));
  server = await startServer(model, ["--config", files.config, "--chat-template", files.template, "--served-model-name", NAME]);
  guided = /guided decoding on/.test(server.log());
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
  llm = await LLM.create({ model, backend: "reference", maxSeqLen: 256, maxBeamWidth: 4 });
});

after(async () => {
  const code = await server?.stop();
  await llm?.shutdown();
  assert.equal(code, 0, "server exits 0 on SIGTERM");
});

const tokenize = async (body: unknown): Promise<number> => (await post(server.url, "/tokenize", body)).json.count as number;
// ignore_eos keeps lengths exact (a random model may sample EOS)
const extra = { ignore_eos: true } as Record<string, unknown>;

describe("completions", () => {
  test("non-streaming: text, token ids and usage agree with /tokenize and max_tokens", async () => {
    const r = await client.completions.create({ model: NAME, prompt: PROMPTS[0]!, max_tokens: 7, temperature: 0, ...extra });
    assert.equal(r.object, "text_completion");
    assert.match(r.id, /^cmpl-/);
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0]!.finish_reason, "length");
    assert.equal(r.usage!.prompt_tokens, await tokenize({ prompt: PROMPTS[0] }));
    assert.equal(r.usage!.completion_tokens, 7);
    assert.equal(r.usage!.total_tokens, r.usage!.prompt_tokens + 7);
    const ids = (r.choices[0] as unknown as { token_ids: number[] }).token_ids;
    assert.equal(ids.length, 7);
    const detok = await post(server.url, "/detokenize", { tokens: ids });
    assert.equal(detok.json.prompt, r.choices[0]!.text);
  });

  test("streaming: the chunks add up to the non-streamed text; usage last; finish_reason set", async () => {
    const plain = await client.completions.create({ model: NAME, prompt: PROMPTS[1]!, max_tokens: 9, temperature: 0, ...extra });
    const stream = await client.completions.create({ model: NAME, prompt: PROMPTS[1]!, max_tokens: 9, temperature: 0, stream: true, stream_options: { include_usage: true }, ...extra });
    let text = "", finish: string | null = null, usage: OpenAI.CompletionUsage | undefined;
    for await (const c of stream) {
      if (c.usage) usage = c.usage;
      for (const ch of c.choices) { text += ch.text; finish = ch.finish_reason ?? finish; }
    }
    assert.equal(text, plain.choices[0]!.text);
    assert.equal(finish, "length");
    assert.deepEqual([usage?.prompt_tokens, usage?.completion_tokens], [plain.usage!.prompt_tokens, 9]);
  });

  test("token-id prompts and prompt lists: one choice per prompt, usage sums over prompts", async () => {
    const ids = (await post(server.url, "/tokenize", { prompt: PROMPTS[2] })).json.tokens as number[];
    const r = await client.completions.create({ model: NAME, prompt: [ids, ids], max_tokens: 3, temperature: 0, ...extra });
    assert.deepEqual(r.choices.map((c) => c.index), [0, 1]);
    assert.equal(r.choices[0]!.text, r.choices[1]!.text);
    assert.equal(r.usage!.prompt_tokens, 2 * ids.length);
    const byText = await client.completions.create({ model: NAME, prompt: PROMPTS[2]!, max_tokens: 3, temperature: 0, ...extra });
    assert.equal(byText.choices[0]!.text, r.choices[0]!.text);
  });

  test("n=3 sampled: three choices, each max_tokens long; completion_tokens sums them", async () => {
    const r = await client.completions.create({ model: NAME, prompt: PROMPTS[3]!, max_tokens: 5, n: 3, temperature: 1, seed: 11, ...extra });
    assert.deepEqual(r.choices.map((c) => c.index).sort(), [0, 1, 2]);
    assert.equal(r.usage!.completion_tokens, 15);
    const s = await client.completions.create({ model: NAME, prompt: PROMPTS[3]!, max_tokens: 5, n: 3, temperature: 1, seed: 11, stream: true, ...extra });
    const seen = new Set<number>();
    for await (const c of s) for (const ch of c.choices) seen.add(ch.index);
    assert.deepEqual([...seen].sort(), [0, 1, 2]);
  });

  test("logprobs: one entry per token, top-k ranked, the greedy token is the top one", async () => {
    const r = await client.completions.create({ model: NAME, prompt: PROMPTS[4]!, max_tokens: 6, temperature: 0, logprobs: 3, ...extra });
    const lp = r.choices[0]!.logprobs!;
    assert.equal(lp.tokens!.length, 6);
    // token texts concatenate to the text (up to SentencePiece's dropped leading space)
    assert.equal(lp.tokens!.join("").trimStart(), r.choices[0]!.text.trimStart());
    lp.top_logprobs!.forEach((top, j) => {
      const vals = Object.values(top);
      assert.ok(vals.length >= 1 && vals.length <= 3, `top_logprobs[${j}] has ${vals.length} entries`);
      assert.ok(vals.every((v) => v <= 0));
      // greedy: the sampled token's logprob is the largest (tolerance: float ties)
      assert.ok(lp.token_logprobs![j]! >= Math.max(...vals) - 1e-9);
    });
    assert.deepEqual(lp.text_offset!.slice(0, 1), [0]);
  });

  test("stop string: text ends before it, finish_reason stop, stop_reason names it", async () => {
    const base = await client.completions.create({ model: NAME, prompt: PROMPTS[5]!, max_tokens: 12, temperature: 0, ...extra });
    const text = base.choices[0]!.text;
    const stop = text.slice(Math.floor(text.length / 2), Math.floor(text.length / 2) + 3);
    assert.ok(stop.trim().length > 0, `usable stop string from ${JSON.stringify(text)}`);
    const r = await client.completions.create({ model: NAME, prompt: PROMPTS[5]!, max_tokens: 12, temperature: 0, stop: [stop], ...extra });
    assert.equal(r.choices[0]!.text, text.slice(0, text.indexOf(stop)));
    assert.equal(r.choices[0]!.finish_reason, "stop");
    assert.equal((r.choices[0] as unknown as { stop_reason: string }).stop_reason, stop);
  });

  test("greedy over HTTP equals LLM.generate in-process", async () => {
    for (const p of PROMPTS.slice(0, 4)) {
      const local = await llm.generate(p, { maxTokens: 10, temperature: 0, ignoreEos: true });
      const r = await client.completions.create({ model: NAME, prompt: p, max_tokens: 10, temperature: 0, ...extra });
      assert.deepEqual((r.choices[0] as unknown as { token_ids: number[] }).token_ids, local.outputs[0]!.tokenIds, p);
      assert.equal(r.choices[0]!.text, local.outputs[0]!.text);
    }
  });

  test("64 concurrent streaming clients all complete with the sequential greedy outputs", async () => {
    const expected = new Map<string, string>();
    for (const p of PROMPTS) expected.set(p, (await llm.generate(p, { maxTokens: 4, temperature: 0, ignoreEos: true })).outputs[0]!.text);
    const one = async (p: string): Promise<string> => {
      const s = await client.completions.create({ model: NAME, prompt: p, max_tokens: 4, temperature: 0, stream: true, ...extra });
      let t = "";
      for await (const c of s) t += c.choices[0]?.text ?? "";
      return t;
    };
    const jobs = Array.from({ length: 64 }, (_, i) => PROMPTS[i % PROMPTS.length]!);
    const got = await Promise.all(jobs.map(one));
    got.forEach((t, i) => assert.equal(t, expected.get(jobs[i]!), `client ${i}`));
  });
});

describe("chat", () => {
  const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: "system", content: "Be brief." }, { role: "user", content: "Say hi" }];

  test("non-streaming and streaming agree; usage matches /tokenize of the templated messages", async () => {
    const r = await client.chat.completions.create({ model: NAME, messages, max_tokens: 8, temperature: 0, ...extra });
    assert.match(r.id, /^chatcmpl-/);
    assert.equal(r.choices[0]!.message.role, "assistant");
    assert.equal(r.usage!.prompt_tokens, await tokenize({ messages }));
    assert.equal(r.usage!.completion_tokens, 8);
    const s = await client.chat.completions.create({ model: NAME, messages, max_tokens: 8, temperature: 0, stream: true, stream_options: { include_usage: true }, ...extra });
    let text = "", role = "", finish: string | null = null, usage: OpenAI.CompletionUsage | undefined;
    for await (const c of s) {
      if (c.usage) usage = c.usage;
      for (const ch of c.choices) { text += ch.delta.content ?? ""; role ||= ch.delta.role ?? ""; finish = ch.finish_reason ?? finish; }
    }
    assert.equal(text, r.choices[0]!.message.content);
    assert.equal(role, "assistant");
    assert.equal(finish, "length");
    assert.equal(usage?.completion_tokens, 8);
  });

  test("chat logprobs: content entries with token, bytes and top_logprobs", async () => {
    const r = await client.chat.completions.create({ model: NAME, messages, max_tokens: 4, temperature: 0, logprobs: true, top_logprobs: 2, ...extra });
    const c = r.choices[0]!.logprobs!.content!;
    assert.equal(c.length, 4);
    for (const e of c) {
      assert.deepEqual(Buffer.from(e.bytes!).toString("utf8"), e.token);
      assert.ok(e.top_logprobs.length >= 1 && e.top_logprobs.length <= 2);
      assert.ok(e.logprob >= e.top_logprobs[0]!.logprob - 1e-9);
    }
  });

  test("chat_template_kwargs reach the template; add_generation_prompt=false drops the assistant header", async () => {
    const a = await tokenize({ messages, add_generation_prompt: true });
    const b = await tokenize({ messages, add_generation_prompt: false });
    assert.ok(a > b, `${a} > ${b}`);
    const r = await client.chat.completions.create({ model: NAME, messages, max_tokens: 2, temperature: 0, add_generation_prompt: false, chat_template_kwargs: { x: 1 }, ...extra } as never) as OpenAI.ChatCompletion;
    assert.equal(r.usage!.prompt_tokens, b);
  });

  // Guided decoding is part of this build (XGrammar, @mlc-ai/web-xgrammar): the server's startup
  // probe must find it enforced. Each case also runs the same request unguided and checks that that
  // output would not pass, so the assertions fail if the grammar were ignored.
  test("the server enforces guided decoding (startup probe)", () => {
    assert.ok(guided, `server log lacks 'guided decoding on':\n${server.log()}`);
  });

  const unguided = async (body: Record<string, unknown>): Promise<string> => {
    const { response_format: _rf, tools: _t, tool_choice: _tc, parallel_tool_calls: _p, ...rest } = body;
    const r = await post(server.url, "/v1/chat/completions", { ...rest, ...(body["tools"] ? { tools: body["tools"], tool_choice: "none" } : {}) });
    assert.equal(r.status, 200, r.text);
    return r.json.choices[0].message.content as string;
  };
  const parses = (t: string, check: (v: any) => boolean): boolean => {
    try { return check(JSON.parse(t)); } catch { return false; }
  };

  test("response_format json_schema: output parses and validates; unguided it would not", async () => {
    // bounded values, so that a random model cannot run past max_tokens inside the JSON
    const schema = { type: "object", properties: { n: { type: "integer", minimum: 0, maximum: 99 }, ok: { type: "boolean" } }, required: ["n", "ok"], additionalProperties: false };
    const valid = (v: any) => typeof v === "object" && v !== null && Number.isInteger(v.n) && v.n >= 0 && v.n <= 99 && typeof v.ok === "boolean" && Object.keys(v).sort().join() === "n,ok";
    const body = { model: NAME, messages, max_tokens: 64, temperature: 0, response_format: { type: "json_schema", json_schema: { name: "t", schema } } };
    const r = await post(server.url, "/v1/chat/completions", body);
    assert.equal(r.status, 200, r.text);
    assert.ok(parses(r.json.choices[0].message.content, valid), r.json.choices[0].message.content);
    const free = await unguided(body);
    assert.ok(!parses(free, valid), `the unguided output ${JSON.stringify(free)} already fits: the test could not tell`);
  });

  test("response_format json_schema streamed: the chunks add up to a valid object", async () => {
    const schema = { type: "object", properties: { word: { type: "string", enum: ["red", "green", "blue"] } }, required: ["word"], additionalProperties: false };
    const s = await client.chat.completions.create({ model: NAME, messages, max_tokens: 32, temperature: 0, stream: true, response_format: { type: "json_schema", json_schema: { name: "c", schema } } });
    let text = "";
    for await (const c of s) text += c.choices[0]?.delta.content ?? "";
    assert.ok(["red", "green", "blue"].includes(JSON.parse(text).word), text);
  });

  const weather: OpenAI.ChatCompletionTool[] = [
    { type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string", maxLength: 8 } }, required: ["city"], additionalProperties: false } } },
    { type: "function", function: { name: "add", parameters: { type: "object", properties: { a: { type: "integer", minimum: 0, maximum: 9 }, b: { type: "integer", minimum: 0, maximum: 9 } }, required: ["a", "b"], additionalProperties: false } } },
  ];

  test("tool_choice required: a tool call whose arguments fit the tool's schema; unguided there is none", async () => {
    const body = { model: NAME, messages, max_tokens: 80, temperature: 0, tools: weather.slice(0, 1), tool_choice: "required", parallel_tool_calls: false };
    const r = await post(server.url, "/v1/chat/completions", body);
    assert.equal(r.status, 200, r.text);
    const choice = r.json.choices[0];
    assert.equal(choice.finish_reason, "tool_calls");
    assert.equal(choice.message.tool_calls.length, 1);
    const call = choice.message.tool_calls[0];
    assert.equal(call.function.name, "get_weather");
    const args = JSON.parse(call.function.arguments);
    assert.deepEqual(Object.keys(args), ["city"]);
    assert.equal(typeof args.city, "string");
    assert.ok(args.city.length <= 8);
    const free = await unguided(body);
    assert.ok(!parses(free, (v) => Array.isArray(v) && v.length >= 1), `the unguided output ${JSON.stringify(free)} is already a call list`);
  });

  test("tool_choice named: the named tool (not the first one) is called with arguments that fit its schema", async () => {
    const body = { model: NAME, messages, max_tokens: 20, temperature: 0, tools: weather, tool_choice: { type: "function", function: { name: "add" } } };
    const r = await client.chat.completions.create(body as OpenAI.ChatCompletionCreateParamsNonStreaming);
    const choice = r.choices[0]!;
    assert.equal(choice.finish_reason, "tool_calls");
    assert.equal(choice.message.tool_calls!.length, 1);
    const call = choice.message.tool_calls![0]! as OpenAI.ChatCompletionMessageToolCall & { function: { name: string; arguments: string } };
    assert.equal(call.function.name, "add");
    const args = JSON.parse(call.function.arguments);
    assert.deepEqual(Object.keys(args).sort(), ["a", "b"]);
    assert.ok([args.a, args.b].every((x) => Number.isInteger(x) && x >= 0 && x <= 9), call.function.arguments);
    const free = await unguided(body);
    assert.ok(!parses(free, (v) => typeof v === "object" && v !== null && "a" in v && "b" in v), `the unguided output ${JSON.stringify(free)} already fits`);
  });
});

describe("beam search (use_beam_search, best_of = beam width)", () => {
  test("completions: the n best beams over HTTP equal LLM.generate's, with cumulative logprobs in order", async () => {
    const p = PROMPTS[7]!;
    const local = await llm.generate(p, { useBeamSearch: true, bestOf: 4, n: 3, maxTokens: 6, ignoreEos: true, lengthPenalty: 1, logprobs: 0 });
    const r = await post(server.url, "/v1/completions", { model: NAME, prompt: p, use_beam_search: true, best_of: 4, n: 3, max_tokens: 6, length_penalty: 1, early_stopping: true, logprobs: 0, ...extra });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices.length, 3);
    for (const c of r.json.choices) {
      const o = local.outputs[c.index]!;
      assert.deepEqual(c.token_ids, o.tokenIds, `beam ${c.index}`);
      assert.equal(c.text, o.text);
      // each token's own logprob (logprobs: 0) sums to the beam's cumulative logprob (f64 sums of the same values: 1e-9)
      const sum = (c.logprobs.token_logprobs as number[]).reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(sum - o.cumulativeLogprob!) <= 1e-9, `beam ${c.index}: ${sum} vs ${o.cumulativeLogprob}`);
    }
    assert.equal(new Set(r.json.choices.map((c: { token_ids: number[] }) => c.token_ids.join())).size, 3, "three different beams");
    assert.equal(r.json.usage.completion_tokens, 18);
  });

  test("chat: a beam search reply equals LLM.generate's on the same templated prompt", async () => {
    const messages = [{ role: "user", content: "Pick a word" }];
    const ids = (await post(server.url, "/tokenize", { messages })).json.tokens as number[];
    const local = await llm.generate(ids, { useBeamSearch: true, bestOf: 3, maxTokens: 5, ignoreEos: true });
    const r = await client.chat.completions.create({ model: NAME, messages, max_tokens: 5, use_beam_search: true, best_of: 3, ...extra } as never) as OpenAI.ChatCompletion;
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0]!.message.content, local.outputs[0]!.text);
  });

  test("stream=true and stop strings with beam search are 400s naming the field", async () => {
    const base = { model: NAME, prompt: "hi", use_beam_search: true, best_of: 2, max_tokens: 4 };
    const s = await post(server.url, "/v1/completions", { ...base, stream: true });
    assert.deepEqual([s.status, s.json.error.param], [400, "use_beam_search"]);
    const st = await post(server.url, "/v1/completions", { ...base, stop: ["x"] });
    assert.deepEqual([st.status, st.json.error.param], [400, "stop"]);
    const bad = await post(server.url, "/v1/completions", { ...base, use_beam_search: "yes" });
    assert.deepEqual([bad.status, bad.json.error.param], [400, "use_beam_search"]);
    // the server runs with max_beam_width 4 (serve-helpers' YAML): a wider beam is a 400 naming best_of
    const wide = await post(server.url, "/v1/completions", { ...base, best_of: 5 });
    assert.equal(wide.status, 400);
    assert.equal(wide.json.error.param, "best_of");
    assert.match(wide.json.error.message, /maxBeamWidth \(4\)/);
  });
});

describe("other endpoints", () => {
  test("/v1/models, /version, /health, /health_generate", async () => {
    const models = await client.models.list();
    assert.deepEqual(models.data.map((m) => m.id), [NAME]);
    const v = await (await fetch(`${server.url}/version`)).json() as { version: string };
    assert.match(v.version, /^\d+\.\d+\.\d+/);
    assert.equal((await fetch(`${server.url}/health`)).status, 200);
    assert.equal((await fetch(`${server.url}/health_generate`)).status, 200);
  });

  test("/metrics is Prometheus text and its counters move with a request", async () => {
    const res = await fetch(`${server.url}/metrics`);
    assert.match(res.headers.get("content-type") ?? "", /text\/plain/);
    const text = await res.text();
    for (const line of text.split("\n")) {
      if (line === "" || line.startsWith("#")) continue;
      assert.match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/, line);
    }
    const before = await scrape(server.url);
    const prompt = PROMPTS[6]!;
    await client.completions.create({ model: NAME, prompt, max_tokens: 5, temperature: 0, ...extra });
    const after = await scrape(server.url);
    const d = (name: string, labels = {}) => metric(after, name, labels) - metric(before, name, labels);
    assert.equal(d("tllm_generation_tokens_total"), 5);
    assert.equal(d("tllm_prompt_tokens_total"), await tokenize({ prompt }));
    assert.equal(d("tllm_request_success_total", { finish_reason: "length" }), 1);
    assert.equal(d("tllm_e2e_request_latency_seconds_count"), 1);
    assert.equal(d("tllm_time_to_first_token_seconds_count"), 1);
    assert.equal(d("tllm_time_per_output_token_seconds_count"), 1);
    assert.equal(metric(after, "tllm_num_requests_running"), 0);
    for (const n of ["tllm_kv_cache_blocks_free", "tllm_kv_cache_usage_perc", "tllm_prefix_cache_hits_total", "tllm_prefix_cache_queries_total", "tllm_num_requests_waiting", "tllm_request_queue_time_seconds_count"]) {
      assert.ok(Number.isFinite(metric(after, n)), n);
    }
  });
});

// `tllm serve` against bad clients: >= 200 generated malformed requests (each must get a 4xx with an
// OpenAI error body, and the server must still answer afterwards), API keys, clients that drop
// mid-stream (their KV blocks come back), a full queue (429 + Retry-After), and SIGTERM while 8
// streams are in flight (all 8 finish with a finish_reason, then the process exits 0).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fixtureModel, metric, post, readSse, scrape, startServer, writeServeFiles, type ServerProc } from "./serve-helpers.js";

const KEY = "sk-test-key";
const AUTH = { authorization: `Bearer ${KEY}` };
const NAME = "tiny";
const MAX_SEQ_LEN = 256; // from writeServeFiles' YAML
let model = "";
let files: { template: string; config: string };
let server: ServerProc;

before(async () => {
  model = await fixtureModel();
  files = writeServeFiles(join(tmpdir(), `tllm-serve-rob-${process.pid}`));
  server = await startServer(model, ["--config", files.config, "--chat-template", files.template, "--served-model-name", NAME, "--api-key", KEY]);
});

after(async () => {
  assert.equal(await server?.stop(), 0);
});

/** Sends raw bytes (node:http, so that invalid UTF-8 and odd bodies go out exactly as given). */
function raw(url: string, path: string, body: Buffer | string, headers: Record<string, string> = AUTH, method = "POST"): Promise<{ status: number; text: string }> {
  return new Promise((ok, fail) => {
    const u = new URL(path, url);
    const buf = typeof body === "string" ? Buffer.from(body) : body;
    const req = request(u, { method, headers: { "content-type": "application/json", "content-length": String(buf.length), ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => ok({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", fail);
    });
    req.on("error", fail);
    req.end(method === "GET" ? undefined : buf);
  });
}

interface BadCase { name: string; path: string; body: Buffer | string; status?: number; param?: string; headers?: Record<string, string>; method?: string }

const j = (o: unknown): string => JSON.stringify(o);
const C = "/v1/completions", CH = "/v1/chat/completions";
const okMsgs = [{ role: "user", content: "hi" }];

/** Field -> values that are wrong for it (type, range, or shape). */
const BAD_VALUES: Record<string, unknown[]> = {
  max_tokens: ["8", -1, 0, 1.5, 1e12, 2 ** 53, true, [4], {}],
  temperature: ["hot", -0.5, [1], {}, true],
  top_p: [1.5, -0.1, "x", []],
  top_k: [-2, 1.5, "5", 1e20],
  min_p: [2, -1, "x"],
  n: [0, -1, 1e9, 2.5, "3"],
  best_of: [0, 1e6, "2"],
  seed: ["s", 1.5, 1e30],
  stop: [5, [1, 2], "", [""], {}, Array.from({ length: 40 }, (_, i) => `s${i}`)],
  stream: ["yes", 1],
  logprobs: [-1, 1e9, "x", 2.5],
  echo: ["true", 1],
  repetition_penalty: [0, -1, "x"],
  presence_penalty: ["x", []],
  frequency_penalty: ["x", {}],
  stop_token_ids: [[-1], [1e9], "1", [1.5]],
  ignore_eos: ["no", 0],
  min_tokens: [-1, "x"],
  logit_bias: [[], "x", { abc: 1 }, { "5": 1000 }, { "5": "x" }, { "99999999": 1 }],
  response_format: ["json", { type: "nope" }, { type: "json_schema" }, { type: "regex" }, { type: "ebnf", ebnf: 5 }, 7],
  stream_options: [{ include_usage: true }, "x", { include_usage: "yes" }, { bogus: 1 }],
  priority: [2, -1, "high"],
  cache_salt: [5, {}],
  include_stop_str_in_output: ["x"],
  skip_special_tokens: [1],
  model: [5, {}, "no-such-model"],
  use_beam_search: ["yes", 1],
  truncate_prompt_tokens: [0, -3, "x"],
};

function generateBadRequests(): BadCase[] {
  const cases: BadCase[] = [];
  const syntax = ["{", "{\"prompt\":", "[1,2", "nul", "'x'", "{prompt: 1}", "", "   ", "{\"prompt\": \"a\",}", "\u0000", "{}}", "{\"a\":1}{\"b\":2}"];
  for (const path of [C, CH, "/tokenize"]) {
    for (const s of syntax) cases.push({ name: `syntax ${JSON.stringify(s)} ${path}`, path, body: s, status: 400 });
    for (const v of ["1", "\"s\"", "[]", "null", "true"]) cases.push({ name: `non-object ${v} ${path}`, path, body: v, status: 400 });
    cases.push({ name: `invalid UTF-8 ${path}`, path, body: Buffer.concat([Buffer.from("{\"prompt\": \""), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from("\"}")]), status: 400 });
    cases.push({ name: `oversized ${path}`, path, body: j({ prompt: "x".repeat(5 << 20) }), status: 413 });
  }
  for (const [field, values] of Object.entries(BAD_VALUES)) {
    for (const v of values) {
      const status = field === "model" && typeof v === "string" ? 404 : undefined;
      cases.push({ name: `completions ${field}=${j(v)?.slice(0, 30)}`, path: C, body: j({ prompt: "hi", [field]: v }), ...(status ? { status } : {}) });
      if (field !== "echo" && field !== "logprobs") {
        cases.push({ name: `chat ${field}=${j(v)?.slice(0, 30)}`, path: CH, body: j({ messages: okMsgs, [field]: v }), ...(status ? { status } : {}) });
      }
    }
  }
  const chatBodies: [string, unknown, string?][] = [
    ["missing messages", {}, "messages"], ["messages not array", { messages: "hi" }, "messages"], ["empty messages", { messages: [] }, "messages"],
    ["unknown role", { messages: [{ role: "wizard", content: "hi" }] }, "messages[0].role"], ["role number", { messages: [{ role: 1, content: "hi" }] }, "messages[0].role"],
    ["content number", { messages: [{ role: "user", content: 5 }] }, "messages[0].content"], ["content missing", { messages: [{ role: "user" }] }, "messages[0].content"],
    ["image part", { messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "x" } }] }] }, "messages[0].content[0]"],
    ["message not object", { messages: ["hi"] }, "messages[0]"], ["top_logprobs without logprobs", { messages: okMsgs, top_logprobs: 2 }, "top_logprobs"],
    ["top_logprobs huge", { messages: okMsgs, logprobs: true, top_logprobs: 1000 }, "top_logprobs"], ["logprobs not bool", { messages: okMsgs, logprobs: 3 }, "logprobs"],
    ["tools not array", { messages: okMsgs, tools: {} }, "tools"], ["tool bad type", { messages: okMsgs, tools: [{ type: "x" }] }, "tools[0]"],
    ["tool bad name", { messages: okMsgs, tools: [{ type: "function", function: { name: "a b" } }] }, "tools[0].function.name"],
    ["tool_choice unknown", { messages: okMsgs, tool_choice: "sometimes" }, "tool_choice"], ["tool_choice required w/o tools", { messages: okMsgs, tool_choice: "required" }, "tool_choice"],
    ["tool_choice names missing tool", { messages: okMsgs, tools: [{ type: "function", function: { name: "f" } }], tool_choice: { type: "function", function: { name: "g" } } }, "tool_choice"],
    ["chat_template_kwargs not object", { messages: okMsgs, chat_template_kwargs: 3 }, "chat_template_kwargs"], ["unknown field", { messages: okMsgs, bogus: 1 }, "bogus"],
    ["max_tokens and max_completion_tokens", { messages: okMsgs, max_tokens: 2, max_completion_tokens: 2 }, "max_completion_tokens"],
    ["bad tool_calls arguments", { messages: [{ role: "assistant", content: null, tool_calls: [{ function: { name: "f", arguments: "{" } }] }] }, "messages[0].tool_calls[0].function.arguments"],
    ["broken chat_template", { messages: okMsgs, chat_template: "{% if %}" }, "chat_template"],
  ];
  for (const [name, body, param] of chatBodies) cases.push({ name: `chat ${name}`, path: CH, body: j(body), ...(param ? { param } : {}) });
  const completionBodies: [string, unknown, string?][] = [
    ["missing prompt", {}, "prompt"], ["prompt number", { prompt: 5 }, "prompt"], ["prompt empty list", { prompt: [] }, "prompt"],
    ["prompt mixed list", { prompt: ["a", 1] }, "prompt"], ["prompt id out of range", { prompt: [999999] }, "prompt"], ["prompt negative id", { prompt: [-1] }, "prompt"],
    ["prompt fractional id", { prompt: [1.5] }, "prompt"], ["prompt nested empty", { prompt: [[]] }, "prompt"], ["suffix", { prompt: "a", suffix: "b" }, "suffix"],
    ["unknown field", { prompt: "a", foo: 1 }, "foo"], ["too many prompts", { prompt: Array.from({ length: 300 }, () => "a") }, "prompt"],
    ["prompt longer than max_seq_len", { prompt: Array.from({ length: MAX_SEQ_LEN + 10 }, () => 100) }, "prompt"],
    ["prompt + max_tokens over max_seq_len", { prompt: "hello", max_tokens: MAX_SEQ_LEN }, "max_tokens"],
    ["best_of > n with stream", { prompt: "a", n: 1, best_of: 2, temperature: 1, stream: true }, "best_of"],
    ["greedy n > 1", { prompt: "a", n: 2 }, "best_of"], ["empty prompt string", { prompt: "", add_special_tokens: false }, "prompt"],
  ];
  for (const [name, body, param] of completionBodies) cases.push({ name: `completions ${name}`, path: C, body: j(body), ...(param ? { param } : {}) });
  for (const b of [{}, { prompt: 5 }, { messages: "x" }, { prompt: "a", add_special_tokens: "x" }]) cases.push({ name: `tokenize ${j(b)}`, path: "/tokenize", body: j(b) });
  for (const b of [{}, { tokens: "x" }, { tokens: [-1] }, { tokens: [1e9] }, { tokens: [1.5] }]) cases.push({ name: `detokenize ${j(b)}`, path: "/detokenize", body: j(b), param: "tokens" });
  cases.push({ name: "no API key", path: C, body: j({ prompt: "a" }), headers: {}, status: 401 });
  cases.push({ name: "wrong API key", path: C, body: j({ prompt: "a" }), headers: { authorization: "Bearer nope" }, status: 401 });
  cases.push({ name: "API key without Bearer", path: CH, body: j({ messages: okMsgs }), headers: { authorization: KEY }, status: 401 });
  cases.push({ name: "GET on a POST route", path: C, body: "", method: "GET", status: 405 });
  cases.push({ name: "unknown route", path: "/v1/nothing", body: "{}", status: 404 });
  return cases;
}

describe("bad clients", () => {
  test("at least 200 malformed requests each get a 4xx OpenAI error body; the server still answers", async () => {
    const cases = generateBadRequests();
    assert.ok(cases.length >= 200, `${cases.length} cases`);
    for (const c of cases) {
      const r = await raw(server.url, c.path, c.body, c.headers ?? AUTH, c.method);
      assert.ok(r.status >= 400 && r.status < 500, `${c.name}: HTTP ${r.status} ${r.text.slice(0, 200)}`);
      if (c.status !== undefined) assert.equal(r.status, c.status, `${c.name}: ${r.text.slice(0, 200)}`);
      const body = JSON.parse(r.text) as { error: { message: string; type: string; param: string | null; code: number } };
      assert.equal(typeof body.error.message, "string", c.name);
      assert.ok(body.error.message.length > 0, c.name);
      assert.equal(typeof body.error.type, "string", c.name);
      assert.equal(body.error.code, r.status, c.name);
      if (c.param !== undefined) assert.equal(body.error.param, c.param, `${c.name}: ${body.error.message}`);
    }
    const ok = await post(server.url, C, { model: NAME, prompt: "Hello", max_tokens: 3, ignore_eos: true }, AUTH);
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.usage.completion_tokens, 3);
    assert.equal((await fetch(`${server.url}/health`)).status, 200);
  });

  test("a prompt over the length limit is refused with both lengths in the message", async () => {
    const r = await post(server.url, C, { prompt: Array.from({ length: 300 }, () => 100), max_tokens: 1 }, AUTH);
    assert.equal(r.status, 400);
    assert.match(r.json.error.message, /300 tokens/);
    assert.match(r.json.error.message, new RegExp(`${MAX_SEQ_LEN}`));
  });

  test("16 clients dropping mid-stream: KV free blocks and running/waiting gauges return to idle", async () => {
    const idle = await scrape(server.url);
    const idleFree = metric(idle, "tllm_kv_cache_blocks_free");
    const cancelled0 = (() => { try { return metric(idle, "tllm_request_success_total", { finish_reason: "cancelled" }); } catch { return 0; } })();
    const drop = async (i: number): Promise<void> => {
      const ac = new AbortController();
      const res = await fetch(`${server.url}${C}`, {
        method: "POST", signal: ac.signal, headers: { "content-type": "application/json", ...AUTH },
        body: j({ prompt: `Client ${i} says`, max_tokens: 200, ignore_eos: true, stream: true }),
      });
      const reader = res.body!.getReader();
      const first = await reader.read(); // at least one chunk arrived: the stream is live
      assert.ok(first.value && first.value.length > 0);
      ac.abort();
      await reader.cancel().catch(() => {});
    };
    await Promise.all(Array.from({ length: 16 }, (_, i) => drop(i)));
    const deadline = Date.now() + 20_000;
    let m = await scrape(server.url);
    // the executor frees an aborted request at once; the server records its finish a moment later
    const cancelledNow = () => { try { return metric(m, "tllm_request_success_total", { finish_reason: "cancelled" }) - cancelled0; } catch { return 0; } };
    while (Date.now() < deadline && (metric(m, "tllm_kv_cache_blocks_free") !== idleFree || metric(m, "tllm_num_requests_running") + metric(m, "tllm_num_requests_waiting") > 0 || cancelledNow() < 16)) {
      await new Promise((r) => setTimeout(r, 100));
      m = await scrape(server.url);
    }
    assert.equal(metric(m, "tllm_kv_cache_blocks_free"), idleFree);
    assert.equal(metric(m, "tllm_num_requests_running"), 0);
    assert.equal(metric(m, "tllm_num_requests_waiting"), 0);
    // every dropped request ended as cancelled rather than running its 200 tokens
    assert.equal(metric(m, "tllm_request_success_total", { finish_reason: "cancelled" }) - cancelled0, 16);
    const ok = await post(server.url, C, { prompt: "Hello", max_tokens: 2 }, AUTH);
    assert.equal(ok.status, 200);
  });
});

describe("queue limit and shutdown", () => {
  test("9th request over batch 4 + queue 4 gets 429 with Retry-After; SIGTERM lets 8 streams finish, exit 0", async () => {
    const s = await startServer(model, ["--config", files.config, "--max-batch-size", "4", "--max-queue-size", "4"]);
    try {
      const open = (i: number) => fetch(`${s.url}${C}`, {
        method: "POST", headers: { "content-type": "application/json" },
        body: j({ prompt: `Stream ${i}`, max_tokens: 24, ignore_eos: true, stream: true }),
      });
      const streams = await Promise.all(Array.from({ length: 8 }, (_, i) => open(i)));
      streams.forEach((r) => assert.equal(r.status, 200));
      const ninth = await post(s.url, C, { prompt: "one too many", max_tokens: 2 });
      assert.equal(ninth.status, 429, ninth.text);
      assert.equal(ninth.json.error.code, 429);
      const again = await fetch(`${s.url}${C}`, { method: "POST", body: j({ prompt: "x", max_tokens: 1 }) });
      assert.equal(again.status, 429);
      assert.equal(again.headers.get("retry-after"), "1");
      s.proc.kill("SIGTERM");
      const results = await Promise.all(streams.map((r) => readSse(r)));
      for (const [i, r] of results.entries()) {
        assert.ok(r.done, `stream ${i} ended with [DONE]`);
        const finishes = r.chunks.flatMap((c) => c.choices ?? []).map((c: { finish_reason: string | null }) => c.finish_reason).filter((f: string | null) => f !== null);
        assert.deepEqual(finishes, ["length"], `stream ${i} finished normally`);
      }
      assert.equal(await s.exited, 0);
      assert.match(s.log(), /SIGTERM: draining/);
    } finally {
      await s.stop();
    }
  });
});

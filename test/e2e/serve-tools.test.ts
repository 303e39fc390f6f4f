// Tool-call parsing and forced-choice guides of the server (src/serve/tools.ts), and the
// response_format -> guided decoding mapping (src/serve/protocol.ts). Pure functions: no server.
import { test } from "node:test";
import assert from "node:assert/strict";
import { forcedToolCalls, parseToolCalls, toolChoiceGuide } from "../../src/serve/tools.js";
import { guidedFrom, parseChatRequest } from "../../src/serve/protocol.js";
import { HttpError } from "../../src/serve/errors.js";

const tools = [
  { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } },
  { name: "add", parameters: { type: "object", properties: { a: { type: "number" }, b: { type: "number" } } } },
];

test("Hermes/Qwen <tool_call> blocks: several calls, text before them kept as content", () => {
  const text = 'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n<tool_call>{"name": "add", "arguments": {"a": 1, "b": 2}}</tool_call>';
  const r = parseToolCalls(text, tools);
  assert.equal(r.content, "Let me check.");
  assert.deepEqual(r.calls.map((c) => [c.function.name, JSON.parse(c.function.arguments)]), [["get_weather", { city: "Paris" }], ["add", { a: 1, b: 2 }]]);
  assert.ok(r.calls.every((c) => /^chatcmpl-tool-[0-9a-f]{24}$/.test(c.id) && c.type === "function"));
  assert.notEqual(r.calls[0]!.id, r.calls[1]!.id);
});

test("an unterminated final <tool_call> (generation cut at the end tag) still parses", () => {
  const r = parseToolCalls('<tool_call>{"name": "add", "arguments": {"a": 3, "b": 4}}', tools);
  assert.deepEqual(r.calls.map((c) => JSON.parse(c.function.arguments)), [{ a: 3, b: 4 }]);
  assert.equal(r.content, null);
});

test("Llama 3.x JSON: with and without <|python_tag|>, 'parameters' key, ';'-separated calls", () => {
  const one = parseToolCalls('<|python_tag|>{"name": "get_weather", "parameters": {"city": "Oslo"}}', tools);
  assert.deepEqual(one.calls.map((c) => [c.function.name, JSON.parse(c.function.arguments)]), [["get_weather", { city: "Oslo" }]]);
  const two = parseToolCalls('{"name": "add", "parameters": {"a": 1, "b": 1}}; {"name": "get_weather", "parameters": {"city": "Rome"}}', tools);
  assert.deepEqual(two.calls.map((c) => c.function.name), ["add", "get_weather"]);
});

test("plain text, invalid JSON and calls to unknown tools are content, not calls", () => {
  for (const text of ["The weather is nice.", '<tool_call>{"name": "get_weather", "arguments": </tool_call>', '{"name": "launch_rockets", "parameters": {}}', '{"not": "a call"}']) {
    const r = parseToolCalls(text, tools);
    assert.deepEqual(r.calls, [], text);
    assert.equal(r.content, text);
  }
});

test("tool_choice guides: named -> the tool's parameters schema; required -> an array of {name, parameters}; none/auto -> no guide", () => {
  assert.equal(toolChoiceGuide("none", tools), null);
  assert.equal(toolChoiceGuide("auto", tools), null);
  assert.deepEqual(toolChoiceGuide({ name: "add" }, tools), { json: tools[1]!.parameters });
  const req = toolChoiceGuide("required", tools)!.json as { type: string; minItems: number; items: { anyOf: { properties: { name: { enum: string[] } } }[] } };
  assert.equal(req.type, "array");
  assert.equal(req.minItems, 1);
  assert.deepEqual(req.items.anyOf.map((s) => s.properties.name.enum), [["get_weather"], ["add"]]);
  assert.equal((toolChoiceGuide("required", tools, false)!.json as { maxItems?: number }).maxItems, 1);
  assert.equal((toolChoiceGuide("required", tools, true)!.json as { maxItems?: number }).maxItems, undefined);
  const calls = forcedToolCalls("required", '[{"name": "add", "parameters": {"a": 2, "b": 5}}]');
  assert.deepEqual(calls.map((c) => [c.function.name, JSON.parse(c.function.arguments)]), [["add", { a: 2, b: 5 }]]);
  const named = forcedToolCalls({ name: "get_weather" }, '{"city": "Lima"}');
  assert.deepEqual(named.map((c) => [c.function.name, c.function.arguments]), [["get_weather", '{"city": "Lima"}']]);
});

test("response_format maps to guided decoding; bad shapes are 400s naming the field", () => {
  const schema = { type: "object" };
  assert.deepEqual(guidedFrom({ type: "json_schema", json_schema: { name: "x", schema } }), { json: schema });
  assert.deepEqual(guidedFrom({ type: "json_object" }), { jsonObject: true });
  assert.deepEqual(guidedFrom({ type: "regex", regex: "[a-z]+" }), { regex: "[a-z]+" });
  assert.deepEqual(guidedFrom({ type: "ebnf", ebnf: 'root ::= "a"' }), { grammar: 'root ::= "a"' });
  assert.equal(guidedFrom({ type: "text" }), null);
  for (const [bad, param] of [[{ type: "json_schema" }, "response_format.json_schema.schema"], [{ type: "regex", regex: "" }, "response_format.regex"], [{ type: 1 }, "response_format"]] as const) {
    assert.throws(() => guidedFrom(bad), (e: unknown) => e instanceof HttpError && e.status === 400 && e.param === param);
  }
});

test("chat requests: tool_choice defaults to auto with tools, none without; named choice must exist", () => {
  const msgs = [{ role: "user", content: "hi" }];
  const fn = { type: "function", function: { name: "f", parameters: { type: "object" } } };
  assert.equal(parseChatRequest({ messages: msgs }).toolChoice, "none");
  assert.equal(parseChatRequest({ messages: msgs, tools: [fn] }).toolChoice, "auto");
  assert.deepEqual(parseChatRequest({ messages: msgs, tools: [fn], tool_choice: { type: "function", function: { name: "f" } } }).toolChoice, { name: "f" });
  assert.throws(() => parseChatRequest({ messages: msgs, tools: [fn], tool_choice: { type: "function", function: { name: "g" } } }), (e: unknown) => e instanceof HttpError && e.param === "tool_choice");
  // assistant tool_calls with JSON-text arguments reach the template as objects
  const r = parseChatRequest({ messages: [...msgs, { role: "assistant", content: null, tool_calls: [{ id: "1", type: "function", function: { name: "f", arguments: '{"x": 1}' } }] }] });
  assert.deepEqual((r.messages[1]!["tool_calls"] as { function: { arguments: unknown } }[])[0]!.function.arguments, { x: 1 });
});

test("executor statistics map onto the /metrics fields (snapshot, or the last of an iteration list)", async () => {
  const { fromExecutor } = await import("../../src/serve/engine.js");
  const kv = { maxNumBlocks: 100, freeNumBlocks: 70, usedNumBlocks: 30, tokensPerBlock: 16, reusedBlocks: 3, missedBlocks: 9, cacheHitRate: 0.25 };
  const snap = { numActiveRequests: 2, numQueuedRequests: 5, kvCacheStats: kv };
  const want = { running: 2, waiting: 5, kvBlocksUsed: 30, kvBlocksFree: 70, kvBlocksTotal: 100, prefixHitTokens: 48, prefixQueryTokens: 192, prefixHitRate: 0.25 };
  assert.deepEqual(fromExecutor(snap, 32), want);
  assert.deepEqual(fromExecutor([{ ...snap, numActiveRequests: 9 }, snap], 32), want);
  assert.deepEqual(fromExecutor([], 32), {});
  assert.deepEqual(fromExecutor(null, 32), {});
});

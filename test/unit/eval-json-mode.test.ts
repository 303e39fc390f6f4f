// JSON mode: the schema validator on valid and invalid values, output extraction, and the task's
// rates on the fixture file with fixed generations.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { extractJsonText, loadJsonMode, parseJsonModeJsonl, run } from "../../src/eval/json-mode.js";
import { validateJsonSchema } from "../../src/eval/json-schema.js";
import { TaskFileError } from "../../src/eval/files.js";
import type { EvalModel, GenerateParams } from "../../src/eval/model.js";

const FILE = join(import.meta.dirname, "../fixtures/eval/json-mode/tasks.jsonl");

const PERSON = {
  type: "object",
  properties: {
    name: { type: "string", minLength: 1, pattern: "^[A-Z]" },
    age: { type: "integer", minimum: 0, maximum: 150 },
    tags: { type: "array", items: { enum: ["a", "b"] }, uniqueItems: true, maxItems: 2 },
    address: { $ref: "#/$defs/address" },
  },
  required: ["name", "age"],
  additionalProperties: false,
  $defs: { address: { type: "object", properties: { zip: { type: "string", pattern: "^\\d{5}$" } }, required: ["zip"] } },
};

test("schema validator: valid values pass", () => {
  assert.deepEqual(validateJsonSchema({ name: "Ann", age: 3, tags: ["a"], address: { zip: "12345" } }, PERSON), []);
  assert.deepEqual(validateJsonSchema(5, { type: "number", multipleOf: 0.5, exclusiveMaximum: 6 }), []);
  assert.deepEqual(validateJsonSchema([1, "x"], { prefixItems: [{ type: "integer" }, { type: "string" }], items: false }), []);
  assert.deepEqual(validateJsonSchema("b", { oneOf: [{ const: "a" }, { const: "b" }] }), []);
  assert.deepEqual(validateJsonSchema(null, { type: ["string", "null"] }), []);
});

test("schema validator: each violation is reported with its path", () => {
  const errs = validateJsonSchema({ name: "ann", age: 3.5, tags: ["a", "a", "c"], address: { zip: "1" }, extra: 1 }, PERSON);
  assert.deepEqual(errs.map((e) => e.path).sort(), ["/address/zip", "/age", "/extra", "/name", "/tags", "/tags", "/tags/2"].sort());
  assert.match(errs.find((e) => e.path === "/extra")!.message, /additional property 'extra'/);
  assert.deepEqual(validateJsonSchema({ age: 1 }, PERSON).map((e) => e.message), ["missing required property 'name'"]);
  assert.equal(validateJsonSchema(1, { anyOf: [{ type: "string" }, { type: "boolean" }] }).length, 1);
  assert.equal(validateJsonSchema(1, { not: { type: "integer" } }).length, 1);
  assert.equal(validateJsonSchema([1, 2], { contains: { const: 3 } }).length, 1);
  assert.equal(validateJsonSchema(1.5, { type: "integer" }).length, 1);
  assert.equal(validateJsonSchema({ a: 1 }, { if: { required: ["a"] }, then: { required: ["b"] } }).length, 1);
});

test("JSON text is found inside fences and prose", () => {
  assert.equal(extractJsonText('Sure!\n```json\n{"a": [1]}\n```\nDone.'), '{"a": [1]}');
  assert.equal(extractJsonText('The list is ["x", "y"] as asked.'), '["x", "y"]');
  assert.equal(extractJsonText("no json"), "no json");
});

test("task file: schema strings are parsed; bad records are TaskFileErrors", () => {
  const items = parseJsonModeJsonl(readFileSync(FILE, "utf8"), FILE);
  assert.equal(items.length, 3);
  assert.equal((items[0]!.schema as Record<string, unknown>).type, "object");
  assert.deepEqual(items[1]!.reference, ["red", "blue"]);
  assert.equal(items[2]!.reference, undefined);
  assert.throws(() => parseJsonModeJsonl('{"schema":"{bad","prompt":"p"}', "j.jsonl"), (e: unknown) => e instanceof TaskFileError && e.field === "schema");
  assert.throws(() => parseJsonModeJsonl('{"schema":{},"prompt":[{"role":1}]}', "j.jsonl"), (e: unknown) => e instanceof TaskFileError && e.field === "prompt");
});

test("loadJsonMode reads a local JSONL file", async () => {
  assert.equal((await loadJsonMode(FILE)).length, 3);
});

test("rates: valid JSON 2/3, schema-valid 1/3, exact match 1/2", async () => {
  const outs = ['```json\n{"age": 30, "name": "Alice"}\n```', 'Here: ["red", "purple"]', '{"ok": tru'];
  const calls: { prompt: unknown; params: GenerateParams }[] = [];
  const model: EvalModel = {
    tokenize: async () => [],
    loglikelihood: async () => ({ logprob: 0 }),
    logprobsOfTokens: async () => ({ logprobs: [] }),
    generate: async (prompt, params) => outs[calls.push({ prompt, params }) - 1]!,
  };
  const items = parseJsonModeJsonl(readFileSync(FILE, "utf8"), FILE);
  const r = await run(model, { items });
  assert.deepEqual([r.validJson.correct, r.validJson.total], [2, 3]);
  assert.deepEqual([r.schemaValid.correct, r.schemaValid.total], [1, 3]);
  assert.deepEqual([r.exactMatch!.correct, r.exactMatch!.total], [1, 2]); // the third record has no reference
  assert.deepEqual(r.items[1]!.errors.map((e) => e.path), ["/1"]);
  assert.deepEqual(calls[0]!.prompt, [{ role: "system", content: "Answer in JSON." }, { role: "user", content: "Alice is 30." }]);
  assert.deepEqual(calls[0]!.params.jsonSchema, items[0]!.schema);
  assert.equal(calls[0]!.params.maxTokens, 512);
});

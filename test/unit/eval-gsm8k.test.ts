// GSM8K: answer extraction on tricky strings, exact few-shot prompt, and scoring of both filters
// with a fake model whose generations are fixed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  buildGsm8kPrompt, extractFlexible, extractStrict, GSM8K_STOP, loadGsm8k, normalizeNumber, parseGsm8kJsonl, run, targetOf,
} from "../../src/eval/gsm8k.js";
import { TaskFileError } from "../../src/eval/files.js";
import type { EvalModel, GenerateParams } from "../../src/eval/model.js";

const DIR = join(import.meta.dirname, "../fixtures/eval/gsm8k");
const load = (f: string) => parseGsm8kJsonl(readFileSync(join(DIR, f), "utf8"), f);

test("loadGsm8k reads a local JSONL file", async () => {
  const items = await loadGsm8k(join(DIR, "test.jsonl"));
  assert.equal(items.length, 4);
  assert.equal(targetOf(items[1]!.answer), "1200");
});

test("normalisation strips commas, dollars and one trailing period", () => {
  assert.equal(normalizeNumber("$1,234."), "1234");
  assert.equal(normalizeNumber(" -3.50 "), "-3.50");
  assert.equal(targetOf("1250 - 50 = 1200\n#### 1,200"), "1200");
});

test("strict match needs '#### N'", () => {
  assert.equal(extractStrict("so the total is\n#### 1,234."), "1234");
  assert.equal(extractStrict("#### -7"), "-7");
  assert.equal(extractStrict("The answer is 5"), null);
  assert.equal(extractStrict("####5"), null); // lm-eval's pattern has a space after ####
});

test("flexible extract: ####, then 'The answer is N', then the last number", () => {
  assert.equal(extractFlexible("#### 8\nand then 99"), "8");
  assert.equal(extractFlexible("The answer is $1,000."), "1000");
  assert.equal(extractFlexible("the answer is 12.\nBut wait, 13"), "12");
  assert.equal(extractFlexible("First 3 apples, then 4.5 pears, total 42."), "42");
  assert.equal(extractFlexible("It costs $5 and then drops to -7 degrees"), "-7");
  assert.equal(extractFlexible("values 1, 2, 3"), "3");
  assert.equal(extractFlexible("price: $."), null);
  assert.equal(extractFlexible("no digits here."), null);
});

test("few-shot prompt: lm-eval's exact text", () => {
  const shots = load("train.jsonl").slice(0, 2);
  assert.equal(buildGsm8kPrompt(shots, "What is 7 times 6?"),
    "Question: Tom has 3 apples and buys 2 more. How many apples does he have?\nAnswer: He has 3 + 2 = <<3+2=5>>5 apples.\n#### 5\n\n" +
    "Question: A pen costs $1,200 cents... no, $12. How much do 2 pens cost?\nAnswer: 2 * 12 = <<2*12=24>>24 dollars.\n#### 24\n\n" +
    "Question: What is 7 times 6?\nAnswer:");
});

test("bad records are TaskFileErrors", () => {
  assert.throws(() => parseGsm8kJsonl('{"question":"q","answer":"no marker"}', "g.jsonl"), (e: unknown) => e instanceof TaskFileError && e.field === "answer" && e.line === 1);
  assert.throws(() => parseGsm8kJsonl('{"question":"q","answer":"#### 1"}\n{"answer":"#### 2"}', "g.jsonl"), (e: unknown) => e instanceof TaskFileError && e.field === "question" && e.line === 2);
});

test("scoring: strict 1/4, flexible 3/4 on fixed generations", async () => {
  const outputs: Record<string, string> = {
    "Janet sells": "16 * 2 = 32 dollars.\n#### 32", // both right
    "1,250 cows": "She has 1,200 cows left. The answer is 1,200.", // flexible only
    "temperature drops": "It is -4 degrees.\n\nQuestion: What is 2+2?\nAnswer: 4", // flexible only, after the stop cut
    "7 times 6": "#### 41", // both wrong
  };
  const calls: { prompt: string; params: GenerateParams }[] = [];
  const model: EvalModel = {
    tokenize: async () => [],
    loglikelihood: async () => ({ logprob: 0 }),
    logprobsOfTokens: async () => ({ logprobs: [] }),
    generate: async (prompt, params) => {
      calls.push({ prompt: prompt as string, params });
      const q = (prompt as string).split("Question: ").pop()!;
      return outputs[Object.keys(outputs).find((k) => q.includes(k))!]!;
    },
  };
  const r = await run(model, { items: load("test.jsonl"), fewShot: load("train.jsonl"), numFewshot: 2 });
  assert.deepEqual([r.strictMatch.correct, r.strictMatch.total], [1, 4]);
  assert.deepEqual([r.flexibleExtract.correct, r.flexibleExtract.total], [3, 4]);
  assert.deepEqual(r.items.map((i) => [i.target, i.strict, i.flexible]),
    [["32", "32", "32"], ["1200", null, "1200"], ["-4", null, "-4"], ["42", "41", "41"]]);
  assert.deepEqual(calls[0]!.params, { maxTokens: 256, stop: GSM8K_STOP, temperature: 0 });
  assert.equal(calls[0]!.prompt.split("Question: ").length, 4); // 2 shots + the question
});

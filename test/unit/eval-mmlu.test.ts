// MMLU on the tiny fixture files: CSV/JSONL parsing (quoted commas, "" quotes, embedded newlines),
// exact few-shot prompt text, scoring with a fake model whose log-likelihoods are a known table.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { buildMmluPrompt, loadMmlu, parseMmluCsv, run, type McQuestion } from "../../src/eval/mmlu.js";
import { TaskFileError } from "../../src/eval/files.js";
import type { EvalModel } from "../../src/eval/model.js";

const DIR = join(import.meta.dirname, "../fixtures/eval/mmlu");

test("CSV layout: quoted fields, doubled quotes, multi-line questions, answer letters", async () => {
  const qs = await loadMmlu(join(DIR, "test/abstract_algebra_test.csv"));
  assert.equal(qs.length, 3);
  assert.deepEqual(qs[1], {
    question: 'Statement 1 | Every group of order 4 is cyclic, or not. Statement 2 | "Abelian" means commutative.',
    choices: ["True, True", "False, True", "True, False", "False, False"], answer: 1, subject: "abstract_algebra",
  });
  assert.equal(qs[2]!.question, "Which ring\nspans two lines?");
  assert.deepEqual(qs.map((q) => q.answer), [0, 1, 3]);
});

test("a folder loads every subject file in name order; JSONL takes letters or indices", async () => {
  const all = await loadMmlu(join(DIR, "test"));
  assert.deepEqual(all.map((q) => q.subject), ["abstract_algebra", "abstract_algebra", "abstract_algebra", "astronomy", "astronomy"]);
  const js = await loadMmlu(join(DIR, "questions.jsonl"));
  assert.deepEqual(js.map((q) => [q.subject, q.answer, q.choices.length]), [["elementary_mathematics", 1, 4], ["geography", 0, 2]]);
});

test("bad rows are TaskFileErrors naming line and field", () => {
  assert.throws(() => parseMmluCsv("q,a,b,c,d,A\nq2,a,b,c,d,E\n", "x_test.csv"),
    (e: unknown) => e instanceof TaskFileError && e.line === 2 && e.field === "answer" && /^x_test\.csv:2: /.test(e.message));
  assert.throws(() => parseMmluCsv('q,a,b,c,d,A\n"open quote,a\n', "x_test.csv"), (e: unknown) => e instanceof TaskFileError && e.line === 2 && e.field === "csv");
  assert.throws(() => parseMmluCsv("q,a,A\n", "x.csv"), (e: unknown) => e instanceof TaskFileError && e.field === "columns");
});

test("few-shot prompt: the exact standard text", async () => {
  const dev = await loadMmlu(join(DIR, "dev/abstract_algebra_dev.csv"));
  const [q] = await loadMmlu(join(DIR, "test/abstract_algebra_test.csv"));
  const expected =
    "The following are multiple choice questions (with answers) about abstract algebra.\n\n" +
    "Find all c in Z_3 such that Z_3[x]/(x^2 + c) is a field.\nA. 0\nB. 1\nC. 2\nD. 3\nAnswer: B\n\n" +
    "Is Z, under addition, a group?\nA. Yes\nB. No\nC. Only mod 2\nD. Only mod 3\nAnswer: A\n\n" +
    "Find the order of the group Z_4 x Z_6.\nA. 12\nB. 24\nC. 6\nD. 4\nAnswer:";
  assert.equal(buildMmluPrompt(dev.slice(0, 2), q!), expected);
  assert.equal(buildMmluPrompt([], q!), "The following are multiple choice questions (with answers) about abstract algebra.\n\n" +
    "Find the order of the group Z_4 x Z_6.\nA. 12\nB. 24\nC. 6\nD. 4\nAnswer:");
});

/** Log-likelihoods by (question asked last in the prompt, continuation); words are tokens. */
function tableModel(table: Record<string, Record<string, number>>, seen: { context: string; cont: string }[] = []): EvalModel {
  return {
    tokenize: async (s) => s.split(/\s+/).filter(Boolean).map((w) => w.length),
    loglikelihood: async (context, cont) => {
      seen.push({ context, cont });
      const asked = Object.keys(table).map((q) => [q, context.lastIndexOf(q)] as const).sort((a, b) => b[1] - a[1])[0]!;
      const ll = table[asked[0]]![cont];
      if (ll === undefined) throw new Error(`no entry for ${asked[0]} / ${JSON.stringify(cont)}`);
      return { logprob: ll };
    },
    generate: async () => "",
    logprobsOfTokens: async () => ({ logprobs: [] }),
  };
}

const LETTER_TABLE = {
  "order of the group Z_4": { " A": -1, " B": -2, " C": -3, " D": -4 }, // answer A: right
  "Statement 1": { " A": -0.5, " B": -1.5, " C": -2, " D": -3 }, // answer B: wrong (A)
  "Which ring": { " A": -5, " B": -5, " C": -5, " D": -0.1 }, // answer D: right
  "closest star": { " A": -1, " B": -0.2, " C": -3, " D": -3 }, // answer B: right
  "How many planets": { " A": -2, " B": -1, " C": -0.5, " D": -4 }, // answer B: wrong (C)
};

test("letter scoring: argmax of ln p(' X' | prompt), per-subject accuracy", async () => {
  const seen: { context: string; cont: string }[] = [];
  const questions = await loadMmlu(join(DIR, "test"));
  const fewShot = await loadMmlu(join(DIR, "dev"));
  const r = await run(tableModel(LETTER_TABLE, seen), { questions, fewShot, numFewshot: 2 });
  assert.deepEqual([r.correct, r.total], [3, 5]);
  assert.equal(r.accuracy, 0.6);
  assert.deepEqual(r.items.map((i) => i.predicted), [0, 0, 3, 1, 2]);
  assert.deepEqual(Object.fromEntries(Object.entries(r.bySubject).map(([s, a]) => [s, [a.correct, a.total]])),
    { abstract_algebra: [2, 3], astronomy: [1, 2] });
  // astronomy has no dev rows: zero-shot; abstract algebra gets its first 2 dev rows.
  assert.deepEqual(r.items.map((i) => i.numFewshot), [2, 2, 2, 0, 0]);
  assert.equal(seen.length, 20); // 5 questions x 4 letters
  assert.ok(r.ci95.lo < 0.6 && r.ci95.hi > 0.6);
});

test("few-shot examples are dropped until the prompt fits maxInputLength", async () => {
  const questions = (await loadMmlu(join(DIR, "test/abstract_algebra_test.csv"))).slice(0, 1);
  const fewShot = await loadMmlu(join(DIR, "dev"));
  const oneShot = buildMmluPrompt(fewShot.slice(0, 1), questions[0]!).split(/\s+/).filter(Boolean).length;
  const r = await run(tableModel(LETTER_TABLE), { questions, fewShot, numFewshot: 3, maxInputLength: oneShot });
  assert.equal(r.items[0]!.numFewshot, 1);
});

test("continuation scoring reports acc and byte-length-normalised acc_norm", async () => {
  const questions: McQuestion[] = [{ question: "What is the closest star to Earth?", choices: ["Proxima Centauri", "The Sun"], answer: 1, subject: "astronomy" }];
  // " Proxima Centauri" is 17 bytes: -3.4 / 17 = -0.2; " The Sun" is 8 bytes: -2.0 / 8 = -0.25.
  const model = tableModel({ "closest star": { " Proxima Centauri": -3.4, " The Sun": -2.0 } });
  const r = await run(model, { questions, mode: "continuation", numFewshot: 0 });
  assert.equal(r.correct, 1); // -2.0 > -3.4
  assert.equal(r.accNorm!.correct, 0); // -0.2 > -0.25 picks Proxima
});

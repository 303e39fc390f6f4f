// MMLU (Hendrycks et al.): multiple choice scored by log-likelihood.
// Files: the original CSV layout `question,A,B,C,D,answer` without a header, one file per subject
// named `<subject>_test.csv` / `<subject>_dev.csv` (folders data/test and data/dev), or JSONL
// records {question, choices: [..], answer: "B" | 1, subject?}.
// Prompt (Hendrycks' format_example / gen_prompt, as lm-eval and trtllm-eval use it):
//   "The following are multiple choice questions (with answers) about {subject}.\n\n"
//   + for each few-shot: "{question}\nA. {a}\nB. {b}\nC. {c}\nD. {d}\nAnswer: {letter}\n\n"
//   + "{question}\nA. ...\nD. {d}\nAnswer:"
// (Hendrycks' format_subject prefixes a space, which yields "about  abstract algebra"; we write one
// space as lm-eval does.) Few-shot examples are the first k dev rows of the same subject; k drops
// until the prompt fits maxInputLength tokens.
// Scoring: "letter" (default) compares ln p(" A" | prompt) ... ln p(" D" | prompt); "continuation"
// compares ln p(" " + choice text | prompt) and also reports acc_norm (divided by the choice's length
// in bytes, lm-eval's acc_norm).
import { readFile, readdir, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { ValidationError } from "../errors.js";
import { parseCsv, parseJsonl, TaskFileError } from "./files.js";
import type { EvalModel } from "./model.js";
import { timed, wilsonInterval, type Interval } from "./stats.js";

export interface McQuestion {
  question: string;
  choices: string[];
  /** index of the correct choice */
  answer: number;
  subject: string;
}

export const LETTERS = "ABCDEFGHIJ";

/** "abstract_algebra" -> "abstract algebra". */
export function formatSubject(subject: string): string {
  return subject.split("_").filter(Boolean).join(" ");
}

function answerIndex(v: unknown, nChoices: number, file: string, line: number): number {
  let idx = -1;
  if (typeof v === "number") idx = v;
  else if (typeof v === "string") {
    const t = v.trim();
    idx = /^\d+$/.test(t) ? Number(t) : t.length === 1 ? LETTERS.indexOf(t.toUpperCase()) : -1;
  }
  if (!Number.isInteger(idx) || idx < 0 || idx >= nChoices) {
    throw new TaskFileError(file, line, "answer", v, `must be a letter A-${LETTERS[nChoices - 1]} or an index below ${nChoices}`);
  }
  return idx;
}

/** Subject from a file name: "college_physics_test.csv" -> "college_physics". */
export function subjectFromFile(file: string): string {
  return basename(file).replace(/\.(csv|jsonl)$/, "").replace(/_(test|dev|val|validation|train)$/, "");
}

export function parseMmluCsv(text: string, file: string, subject = subjectFromFile(file)): McQuestion[] {
  return parseCsv(text, file).map(({ line, fields }) => {
    if (fields.length < 4) throw new TaskFileError(file, line, "columns", fields.length, "expected question, 2+ choices, answer");
    const choices = fields.slice(1, -1);
    return { question: fields[0]!, choices, answer: answerIndex(fields[fields.length - 1], choices.length, file, line), subject };
  });
}

export function parseMmluJsonl(text: string, file: string): McQuestion[] {
  return parseJsonl(text, file).map(({ line, value: v }) => {
    if (typeof v.question !== "string") throw new TaskFileError(file, line, "question", v.question, "must be a string");
    const choices = v.choices;
    if (!Array.isArray(choices) || choices.length < 2 || choices.some((c) => typeof c !== "string")) {
      throw new TaskFileError(file, line, "choices", choices, "must be an array of 2+ strings");
    }
    const subject = typeof v.subject === "string" ? v.subject : subjectFromFile(file);
    return { question: v.question, choices: choices as string[], answer: answerIndex(v.answer, choices.length, file, line), subject };
  });
}

/** Loads one .csv/.jsonl file, or every *.csv/*.jsonl in a folder (sorted by name). */
export async function loadMmlu(path: string): Promise<McQuestion[]> {
  const files = (await stat(path)).isDirectory()
    ? (await readdir(path)).filter((f) => /\.(csv|jsonl)$/.test(f)).sort().map((f) => join(path, f))
    : [path];
  const out: McQuestion[] = [];
  for (const f of files) {
    const text = await readFile(f, "utf8");
    out.push(...(f.endsWith(".jsonl") ? parseMmluJsonl(text, f) : parseMmluCsv(text, f)));
  }
  return out;
}

/** Hendrycks' format_example. */
export function formatExample(q: McQuestion, includeAnswer: boolean): string {
  let s = q.question;
  q.choices.forEach((c, j) => (s += `\n${LETTERS[j]}. ${c}`));
  s += "\nAnswer:";
  if (includeAnswer) s += ` ${LETTERS[q.answer]}\n\n`;
  return s;
}

export function buildMmluPrompt(fewShot: readonly McQuestion[], q: McQuestion): string {
  let s = `The following are multiple choice questions (with answers) about ${formatSubject(q.subject)}.\n\n`;
  for (const f of fewShot) s += formatExample(f, true);
  return s + formatExample(q, false);
}

export interface MmluOptions {
  questions: readonly McQuestion[];
  /** dev examples; those with the question's subject are used, first k */
  fewShot?: readonly McQuestion[];
  numFewshot?: number;
  mode?: "letter" | "continuation";
  /** drop few-shot examples until the prompt has at most this many tokens (default 4094) */
  maxInputLength?: number;
  /** evaluate the first n questions only */
  numSamples?: number;
}

export interface MmluItemResult {
  subject: string;
  predicted: number;
  answer: number;
  correct: boolean;
  correctNorm?: boolean;
  numFewshot: number;
  logprobs: number[];
}

export interface Accuracy {
  correct: number;
  total: number;
  accuracy: number;
  ci95: Interval;
}

export interface MmluResult extends Accuracy {
  /** continuation mode only */
  accNorm?: Accuracy;
  bySubject: Record<string, Accuracy>;
  items: MmluItemResult[];
  seconds: number;
}

export function accuracyOf(correct: number, total: number): Accuracy {
  return { correct, total, accuracy: total ? correct / total : NaN, ci95: wilsonInterval(correct, total) };
}

async function fitPrompt(model: EvalModel, shots: readonly McQuestion[], q: McQuestion, maxLen: number): Promise<{ prompt: string; k: number }> {
  for (let k = shots.length; ; k--) {
    const prompt = buildMmluPrompt(shots.slice(0, k), q);
    if (k === 0 || (await model.tokenize(prompt)).length <= maxLen) return { prompt, k };
  }
}

const argmax = (xs: readonly number[]): number => xs.reduce((b, x, i) => (x > xs[b]! ? i : b), 0);

async function scoreOne(model: EvalModel, q: McQuestion, shots: readonly McQuestion[], o: MmluOptions): Promise<MmluItemResult> {
  const { prompt, k } = await fitPrompt(model, shots, q, o.maxInputLength ?? 4094);
  const conts = o.mode === "continuation" ? q.choices.map((c) => ` ${c}`) : q.choices.map((_, j) => ` ${LETTERS[j]}`);
  const lls = (await Promise.all(conts.map((c) => model.loglikelihood(prompt, c)))).map((r) => r.logprob);
  const predicted = argmax(lls);
  const r: MmluItemResult = { subject: q.subject, predicted, answer: q.answer, correct: predicted === q.answer, numFewshot: k, logprobs: lls };
  if (o.mode === "continuation") {
    const norm = lls.map((ll, j) => ll / Buffer.byteLength(conts[j]!));
    r.correctNorm = argmax(norm) === q.answer;
  }
  return r;
}

/** Runs MMLU; questions are scored one after another, a question's choices concurrently. */
export async function run(model: EvalModel, o: MmluOptions): Promise<MmluResult> {
  const k = o.numFewshot ?? 5;
  if (!Number.isInteger(k) || k < 0) throw new ValidationError("numFewshot", k, "must be an integer >= 0");
  const qs = o.numSamples !== undefined ? o.questions.slice(0, o.numSamples) : o.questions;
  if (qs.length === 0) throw new ValidationError("questions", qs.length, "no questions to evaluate");
  const bySubjectShots = new Map<string, McQuestion[]>();
  for (const f of o.fewShot ?? []) bySubjectShots.set(f.subject, [...(bySubjectShots.get(f.subject) ?? []), f]);
  const { result: items, seconds } = await timed(async () => {
    const out: MmluItemResult[] = [];
    for (const q of qs) out.push(await scoreOne(model, q, (bySubjectShots.get(q.subject) ?? []).slice(0, k), o));
    return out;
  });
  const subjects: Record<string, Accuracy> = {};
  for (const s of [...new Set(items.map((i) => i.subject))].sort()) {
    const its = items.filter((i) => i.subject === s);
    subjects[s] = accuracyOf(its.filter((i) => i.correct).length, its.length);
  }
  const res: MmluResult = { ...accuracyOf(items.filter((i) => i.correct).length, items.length), bySubject: subjects, items, seconds };
  if (o.mode === "continuation") res.accNorm = accuracyOf(items.filter((i) => i.correctNorm).length, items.length);
  return res;
}

// GSM8K (Cobbe et al.): grade-school math by generation, scored as lm-eval's `gsm8k` task does.
// File: JSONL {question, answer} where the answer's reasoning ends in "#### <number>".
// Prompt (lm-eval gsm8k.yaml): few-shot "Question: {q}\nAnswer: {full answer}" joined by "\n\n",
// then "Question: {q}\nAnswer:"; generation stops at "Question:", "</s>", "<|im_end|>".
// Answer extraction (two filters, each reported):
//   strict-match:     /#### (\-?[0-9\.\,]+)/                              first match
//   flexible-extract: "The answer is N" (lm-eval's CoT pattern), else the last match of
//                     /(-?[$0-9.,]{2,})|(-?[0-9]+)/
// Normalisation before the exact string match (lm-eval's regexes_to_ignore): remove ",", "$",
// and a trailing "."; trim. "72.0" and "72" stay different, as in lm-eval.
import { readFile } from "node:fs/promises";
import { ValidationError } from "../errors.js";
import { parseJsonl, TaskFileError } from "./files.js";
import type { EvalModel } from "./model.js";
import { timed } from "./stats.js";
import { accuracyOf, type Accuracy } from "./mmlu.js";

export interface Gsm8kItem {
  question: string;
  /** reference solution ending in "#### N" */
  answer: string;
}

export const GSM8K_STOP = ["Question:", "</s>", "<|im_end|>"];

export function parseGsm8kJsonl(text: string, file = "<gsm8k>"): Gsm8kItem[] {
  return parseJsonl(text, file).map(({ line, value: v }) => {
    if (typeof v.question !== "string" || v.question === "") throw new TaskFileError(file, line, "question", v.question, "must be a non-empty string");
    if (typeof v.answer !== "string" || !/####/.test(v.answer)) throw new TaskFileError(file, line, "answer", v.answer, 'must be a string ending in "#### <number>"');
    return { question: v.question, answer: v.answer };
  });
}

export async function loadGsm8k(file: string): Promise<Gsm8kItem[]> {
  return parseGsm8kJsonl(await readFile(file, "utf8"), file);
}

/** Removes ",", "$" and one trailing ".", then trims. */
export function normalizeNumber(s: string): string {
  return s.replace(/[,$]/g, "").trim().replace(/\.$/, "").trim();
}

/** The reference number after "####", normalised. */
export function targetOf(answer: string): string {
  const i = answer.lastIndexOf("####");
  return normalizeNumber(answer.slice(i + 4));
}

export function extractStrict(text: string): string | null {
  const m = /#### (-?[0-9.,]+)/.exec(text);
  return m ? normalizeNumber(m[1]!) : null;
}

export function extractFlexible(text: string): string | null {
  const strict = extractStrict(text);
  if (strict !== null) return strict;
  const cot = /The answer is (-?[$0-9.,]+)/i.exec(text);
  if (cot && /[0-9]/.test(cot[1]!)) return normalizeNumber(cot[1]!);
  let last: string | null = null;
  for (const m of text.matchAll(/(-?[$0-9.,]{2,})|(-?[0-9]+)/g)) {
    const s = m[1] ?? m[2]!;
    if (/[0-9]/.test(s)) last = s; // "$." or ".," alone is no number
  }
  return last === null ? null : normalizeNumber(last);
}

export function buildGsm8kPrompt(fewShot: readonly Gsm8kItem[], question: string): string {
  const shots = fewShot.map((f) => `Question: ${f.question}\nAnswer: ${f.answer}`);
  return [...shots, `Question: ${question}\nAnswer:`].join("\n\n");
}

export interface Gsm8kOptions {
  items: readonly Gsm8kItem[];
  /** few-shot examples (lm-eval takes them from the train split), first k used */
  fewShot?: readonly Gsm8kItem[];
  numFewshot?: number;
  /** generation budget (default 256, trtllm-eval's OSL) */
  maxTokens?: number;
  numSamples?: number;
}

export interface Gsm8kItemResult {
  target: string;
  output: string;
  strict: string | null;
  flexible: string | null;
  strictCorrect: boolean;
  flexibleCorrect: boolean;
}

export interface Gsm8kResult {
  strictMatch: Accuracy;
  flexibleExtract: Accuracy;
  items: Gsm8kItemResult[];
  seconds: number;
}

/** Truncates at the first stop string (for targets that return it). */
function cutAtStop(text: string): string {
  let end = text.length;
  for (const s of GSM8K_STOP) {
    const i = text.indexOf(s);
    if (i >= 0 && i < end) end = i;
  }
  return text.slice(0, end);
}

export async function run(model: EvalModel, o: Gsm8kOptions): Promise<Gsm8kResult> {
  const k = o.numFewshot ?? 5;
  if (!Number.isInteger(k) || k < 0) throw new ValidationError("numFewshot", k, "must be an integer >= 0");
  const items = o.numSamples !== undefined ? o.items.slice(0, o.numSamples) : o.items;
  if (items.length === 0) throw new ValidationError("items", 0, "no questions to evaluate");
  const shots = (o.fewShot ?? []).slice(0, k);
  const { result, seconds } = await timed(async () => {
    const out: Gsm8kItemResult[] = [];
    for (const it of items) {
      const output = cutAtStop(await model.generate(buildGsm8kPrompt(shots, it.question), { maxTokens: o.maxTokens ?? 256, stop: GSM8K_STOP, temperature: 0 }));
      const target = targetOf(it.answer);
      const strict = extractStrict(output);
      const flexible = extractFlexible(output);
      out.push({ target, output, strict, flexible, strictCorrect: strict === target, flexibleCorrect: flexible === target });
    }
    return out;
  });
  return {
    strictMatch: accuracyOf(result.filter((r) => r.strictCorrect).length, result.length),
    flexibleExtract: accuracyOf(result.filter((r) => r.flexibleCorrect).length, result.length),
    items: result, seconds,
  };
}

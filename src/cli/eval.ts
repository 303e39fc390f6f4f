// `tllm eval --model M TASK`: trtllm-eval's tasks over the in-process model (or an OpenAI-compatible
// server with --base-url). Prints the score with its 95% interval; with --check-accuracy the exit
// code is 1 when the score misses --accuracy-threshold (accuracy tasks: the score in percent must
// be >= the threshold; perplexity: the perplexity must be <= the threshold).
import { existsSync, statSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { LLM } from "../api/llm.js";
import { ValidationError } from "../errors.js";
import { createLlmEvalModel } from "../eval/llm-model.js";
import { gsm8k, jsonMode, mmlu, perplexity, createOpenAiEvalModel, type EvalModel } from "../eval/index.js";
import { readGgufMetadata } from "../checkpoint/gguf.js";
import { Tokenizer } from "../tokenizer/tokenizer.js";
import { numberFlag, parseFlags, stringFlag, UsageError, type Options, type Parsed } from "./args.js";

export const EVAL_HELP = `Usage: tllm eval --model MODEL TASK [options]

Tasks:
  perplexity      --file TEXT [--context-length N] [--stride S] [--max-tokens N]
                  [--kl-divergence-base FILE [--kl-divergence]]  (save a base run, or compare against it)
  mmlu            --dataset-path DIR|FILE   (DIR with test/ and dev/ CSVs, or one .csv/.jsonl)
  gsm8k           --dataset-path DIR|FILE   (DIR with test.jsonl and train.jsonl for few-shot)
  json_mode_eval  --dataset-path FILE

Options:
  --model MODEL           .gguf file, HF directory, hub id or 'demo' (with --base-url: the served name)
  --base-url URL          evaluate an OpenAI-compatible server instead of the in-process model
  --num-samples N         evaluate the first N items
  --num-fewshot K         few-shot examples (mmlu, gsm8k; default 5)
  --max-output-tokens N   generation budget (gsm8k default 256, json_mode_eval 512)
  --apply-chat-template   send generation prompts as one user message through the chat template
  --check-accuracy        exit 1 when the score misses --accuracy-threshold
  --accuracy-threshold X  percent for accuracy tasks; an upper bound on the perplexity for perplexity
  --output-json FILE      write the result (without per-item outputs) as JSON
  --backend B --threads N --max-seq-len N --tokenizer DIR --offline   engine options
  -h, --help              this help
`;

const OPTIONS: Options = {
  model: { type: "string" }, "base-url": { type: "string" }, "api-key": { type: "string" }, tokenizer: { type: "string" },
  "num-samples": { type: "string" }, "num-fewshot": { type: "string" }, "apply-chat-template": { type: "boolean" },
  "check-accuracy": { type: "boolean" }, "accuracy-threshold": { type: "string" }, "max-output-tokens": { type: "string" },
  file: { type: "string" }, "context-length": { type: "string" }, stride: { type: "string" }, "max-tokens": { type: "string" },
  "kl-divergence-base": { type: "string" }, "kl-divergence": { type: "boolean" }, "dataset-path": { type: "string" },
  "output-json": { type: "string" }, backend: { type: "string" }, threads: { type: "string" }, "max-seq-len": { type: "string" },
  offline: { type: "boolean" }, revision: { type: "string" }, help: { type: "boolean", short: "h" },
};

const C = "eval";
type V = Parsed["values"];
export const TASKS = ["perplexity", "mmlu", "gsm8k", "json_mode_eval"] as const;
type Task = (typeof TASKS)[number];

/** What a task run yields for printing and the accuracy check. */
interface Outcome { lines: string[]; score: number; higherIsBetter: boolean; json: Record<string, unknown> }

const pct = (x: number): string => `${(x * 100).toFixed(2)}%`;
function accLine(name: string, a: mmlu.Accuracy): string {
  return `${name}: ${pct(a.accuracy)} (${a.correct}/${a.total}), 95% CI [${pct(a.ci95.lo)}, ${pct(a.ci95.hi)}]`;
}
function dataPath(v: V): string {
  const p = stringFlag(v, "dataset-path");
  if (p === undefined) throw new UsageError("missing --dataset-path", C);
  if (!existsSync(p)) throw new ValidationError("dataset-path", p, "does not exist");
  return p;
}
const isDir = (p: string): boolean => existsSync(p) && statSync(p).isDirectory();

async function runPerplexity(m: EvalModel, v: V): Promise<Outcome> {
  const file = stringFlag(v, "file");
  if (file === undefined) throw new UsageError("missing --file (the text to score)", C);
  const o: perplexity.PerplexityOptions = { text: await readFile(file, "utf8"), contextLength: numberFlag(C, v, "context-length", true) ?? 512 };
  const stride = numberFlag(C, v, "stride", true), maxTokens = numberFlag(C, v, "max-tokens", true), base = stringFlag(v, "kl-divergence-base");
  if (stride !== undefined) o.stride = stride;
  if (maxTokens !== undefined) o.maxTokens = maxTokens;
  if (base !== undefined) o.klDivergenceBase = base;
  if (v["kl-divergence"] === true) o.klDivergence = true;
  const r = await perplexity.run(m, o);
  const lines = [
    `perplexity: PPL = ${r.ppl.toPrecision(10)}, 95% CI [${r.ci95.lo.toPrecision(6)}, ${r.ci95.hi.toPrecision(6)}]`,
    `mean NLL: ${r.meanNll.toPrecision(10)} over ${r.numTokensScored} tokens in ${r.numWindows} windows (${r.seconds.toFixed(2)} s, ${r.tokensPerSecond.toFixed(1)} tok/s)`,
  ];
  if (r.savedBase) lines.push(`saved KL-divergence base: ${r.savedBase}`);
  if (r.kld) {
    const k = r.kld;
    lines.push(`KL divergence: mean ${k.meanKld.toExponential(6)} ± ${k.kldSe.toExponential(3)}, median ${k.medianKld.toExponential(3)}, ` +
      `p99 ${k.p99Kld.toExponential(3)}, max ${k.maxKld.toExponential(3)} over ${k.positions} positions`);
    lines.push(`top-1 agreement: ${pct(k.top1Agreement)}; PPL base ${k.basePpl.toPrecision(8)} -> ${k.ppl.toPrecision(8)} (delta ${k.deltaPpl.toExponential(3)})`);
  }
  return { lines, score: r.ppl, higherIsBetter: false, json: { task: "perplexity", ...r } };
}

async function runMmlu(m: EvalModel, v: V, common: { numSamples?: number; numFewshot?: number }): Promise<Outcome> {
  const p = dataPath(v);
  const testDir = join(p, "test"), devDir = join(p, "dev");
  const questions = await mmlu.loadMmlu(isDir(testDir) ? testDir : p);
  const fewShot = isDir(devDir) ? await mmlu.loadMmlu(devDir) : [];
  const r = await mmlu.run(m, { questions, fewShot, ...common });
  const lines = [accLine("mmlu accuracy", r)];
  for (const [s, a] of Object.entries(r.bySubject)) lines.push(`  ${accLine(s, a)}`);
  lines.push(`(${r.seconds.toFixed(2)} s)`);
  const { items: _items, ...summary } = r;
  return { lines, score: r.accuracy * 100, higherIsBetter: true, json: { task: "mmlu", ...summary } };
}

async function runGsm8k(m: EvalModel, v: V, common: { numSamples?: number; numFewshot?: number }): Promise<Outcome> {
  const p = dataPath(v);
  const items = await gsm8k.loadGsm8k(isDir(p) ? join(p, "test.jsonl") : p);
  const train = isDir(p) && existsSync(join(p, "train.jsonl")) ? await gsm8k.loadGsm8k(join(p, "train.jsonl")) : [];
  const maxTokens = numberFlag(C, v, "max-output-tokens", true);
  const r = await gsm8k.run(m, { items, fewShot: train, ...common, ...(maxTokens !== undefined ? { maxTokens } : {}) });
  const lines = [accLine("gsm8k exact_match,strict-match", r.strictMatch), accLine("gsm8k exact_match,flexible-extract", r.flexibleExtract), `(${r.seconds.toFixed(2)} s)`];
  return { lines, score: r.flexibleExtract.accuracy * 100, higherIsBetter: true,
    json: { task: "gsm8k", strictMatch: r.strictMatch, flexibleExtract: r.flexibleExtract, seconds: r.seconds } };
}

async function runJsonMode(m: EvalModel, v: V, numSamples?: number): Promise<Outcome> {
  const items = await jsonMode.loadJsonMode(dataPath(v));
  const maxTokens = numberFlag(C, v, "max-output-tokens", true);
  const r = await jsonMode.run(m, { items, ...(numSamples !== undefined ? { numSamples } : {}), ...(maxTokens !== undefined ? { maxTokens } : {}) });
  const lines = [accLine("json_mode_eval valid JSON", r.validJson), accLine("json_mode_eval schema valid", r.schemaValid)];
  if (r.exactMatch) lines.push(accLine("json_mode_eval exact match", r.exactMatch));
  lines.push(`(${r.seconds.toFixed(2)} s)`);
  const { items: _items, ...summary } = r;
  return { lines, score: r.schemaValid.accuracy * 100, higherIsBetter: true, json: { task: "json_mode_eval", ...summary } };
}

/** With --apply-chat-template, a raw string prompt becomes one user message. */
function withChat(m: EvalModel): EvalModel {
  return { ...m, generate: (prompt, p) => m.generate(typeof prompt === "string" ? [{ role: "user", content: prompt }] : prompt, p) };
}

async function runTask(task: Task, m: EvalModel, v: V): Promise<Outcome> {
  const common: { numSamples?: number; numFewshot?: number } = {};
  const n = numberFlag(C, v, "num-samples", true), k = numberFlag(C, v, "num-fewshot", true);
  if (n !== undefined) common.numSamples = n;
  if (k !== undefined) common.numFewshot = k;
  const model = v["apply-chat-template"] === true ? withChat(m) : m;
  switch (task) {
    case "perplexity": return runPerplexity(model, v);
    case "mmlu": return runMmlu(model, v, common);
    case "gsm8k": return runGsm8k(model, v, common);
    case "json_mode_eval": return runJsonMode(model, v, common.numSamples);
  }
}

/** Opens the target: an OpenAI server (--base-url) or the in-process model; `close` releases it. */
async function openModel(v: V, modelSpec: string): Promise<{ model: EvalModel; close: () => Promise<void> }> {
  const baseUrl = stringFlag(v, "base-url");
  if (baseUrl !== undefined) {
    const tokDir = stringFlag(v, "tokenizer"), apiKey = stringFlag(v, "api-key");
    let tokenize: ((s: string) => Promise<number[]>) | undefined;
    if (tokDir !== undefined) {
      const tok = isDir(tokDir) ? Tokenizer.fromHfDir(tokDir) : Tokenizer.fromGgufMetadata(readGgufMetadata(tokDir), tokDir);
      tokenize = (s) => tok.encode(s, { addSpecialTokens: false });
    }
    const model = createOpenAiEvalModel({ baseUrl, model: modelSpec, ...(apiKey ? { apiKey } : {}), ...(tokenize ? { tokenize } : {}) });
    return { model, close: async () => {} };
  }
  const args: ConstructorParameters<typeof LLM>[0] = { model: modelSpec };
  const backend = stringFlag(v, "backend"), tok = stringFlag(v, "tokenizer"), rev = stringFlag(v, "revision");
  if (backend !== undefined) args.backend = backend as typeof args.backend;
  if (tok !== undefined) args.tokenizer = tok;
  if (rev !== undefined) args.revision = rev;
  if (v["offline"] === true) args.offline = true;
  const threads = numberFlag(C, v, "threads", true), maxSeqLen = numberFlag(C, v, "max-seq-len", true);
  if (threads !== undefined) args.threads = threads;
  if (maxSeqLen !== undefined) args.maxSeqLen = maxSeqLen;
  const llm = await LLM.create(args);
  const model = await createLlmEvalModel(llm);
  return { model, close: async () => { model.close(); await llm.shutdown(); } };
}

export async function runEval(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(C, argv, OPTIONS, true);
  if (values["help"]) {
    process.stdout.write(EVAL_HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError(`expected one task (${TASKS.join(", ")}), got ${positionals.length}`, C);
  const task = positionals[0] as Task;
  if (!TASKS.includes(task)) throw new UsageError(`unknown task '${task}' (${TASKS.join(", ")})`, C);
  const modelSpec = stringFlag(values, "model");
  if (modelSpec === undefined) throw new UsageError("missing --model", C);
  const threshold = numberFlag(C, values, "accuracy-threshold");
  const check = values["check-accuracy"] === true;
  if (check && threshold === undefined) throw new UsageError("--check-accuracy needs --accuracy-threshold", C);
  const { model, close } = await openModel(values, modelSpec);
  let out: Outcome;
  try {
    out = await runTask(task, model, values);
  } finally {
    await close();
  }
  process.stdout.write(out.lines.join("\n") + "\n");
  const json = stringFlag(values, "output-json");
  if (json !== undefined) await writeFile(json, JSON.stringify(out.json, null, 2) + "\n");
  if (!check) return 0;
  const pass = out.higherIsBetter ? out.score >= threshold! : out.score <= threshold!;
  const rel = out.higherIsBetter ? ">=" : "<=";
  process.stdout.write(`accuracy check: ${out.score.toPrecision(6)} ${rel} ${threshold}: ${pass ? "PASSED" : "FAILED"}\n`);
  return pass ? 0 : 1;
}
